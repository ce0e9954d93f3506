/**
 * A plaintext forger, run in its own process by rotation.test.ts, driven over
 * IPC so that no step of it races a clock:
 *
 *   child -> 'ready'            loaded; the parent starts its deadline now
 *   parent -> { port }          the child connects from 127.0.0.2 and writes a frame
 *   parent -> 'ack'             a frame arrived; the next is written, until BEFORE;
 *                               then it waits, across the deadline, for the close
 *   parent -> 'go'              only if the connection is still open long after the
 *                               deadline: from now on a frame every 50 ms, until it
 *                               closes or 20 more
 *
 * When the connection closes it prints how many frames it wrote in all and
 * exits.
 *
 * Usage: fork('plaintext-forger.js', [BEFORE])
 */
import { connect, type Socket } from 'node:net';

const before = Number(process.argv[2]);
let socket: Socket | undefined;
let written = 0;
let timer: NodeJS.Timeout | undefined;

const writeOne = (): void => {
  written++;
  socket!.write(JSON.stringify({ digest: [], sender: { id: 'forger' } }) + '\r\n');
};

const keepWriting = (): void => {
  if (socket!.destroyed || written >= before + 20) return;
  writeOne();
  timer = setTimeout(keepWriting, 50);
};

process.on('message', (message: { port?: number } | string) => {
  if (typeof message === 'object' && message.port !== undefined) {
    socket = connect({ host: '127.0.0.1', port: message.port, localAddress: '127.0.0.2' });
    socket.on('error', () => {});
    socket.once('connect', writeOne);
    socket.once('close', () => {
      if (timer) clearTimeout(timer);
      process.stdout.write(`${written}\n`);
      process.exit(0);
    });
  } else if (message === 'ack' && socket !== undefined && !socket.destroyed && written < before) {
    writeOne();
  } else if (message === 'go' && socket !== undefined) {
    keepWriting();
  }
});
process.send!('ready');
