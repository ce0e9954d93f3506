/**
 * A plaintext forger, run in its own process by rotation.test.ts: from
 * 127.0.0.2 it opens one plaintext connection during a migration window,
 * writes BEFORE frames 50 ms apart, pauses PAUSE ms (across the deadline),
 * then goes on writing a frame every 50 ms, until the connection closes or
 * 20 more frames are written. It prints how many frames it wrote in all.
 *
 * Usage: node plaintext-forger.js PORT BEFORE PAUSE
 */
import { connect } from 'node:net';

const [port, before, pause] = process.argv.slice(2).map(Number) as [number, number, number];
const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
let written = 0;
let timer: NodeJS.Timeout | undefined;
const write = (): void => {
  if (socket.destroyed || written >= before + 20) return;
  written++;
  socket.write(JSON.stringify({ digest: [], sender: { id: 'forger' } }) + '\r\n');
  timer = setTimeout(write, written === before ? pause : 50);
};
socket.on('error', () => {});
socket.once('connect', write);
socket.once('close', () => {
  if (timer) clearTimeout(timer);
  process.stdout.write(`${written}\n`);
  process.exit(0);
});
