/**
 * A hostile receiver, run in its own process by outbound.test.ts: it accepts
 * every connection (in TLS mode it completes the handshake), reads the frame
 * and the sender's end, and writes one byte every 40 ms, never closing its side. A gossip receiver never writes, so a
 * sender that counted those bytes as progress would keep the connection, and
 * its outbound slot, for as long as the trickle lasts.
 *
 * Usage: node trickle-receiver.js plain|tls   (sends { port } over IPC; exits when the parent leaves)
 */
import { createServer as netServer, type Socket } from 'node:net';
import { createServer as tlsServer } from 'node:tls';
import { DEFAULT_CERT_DIR, loadPem } from '../../scripts/generate-certs';

const mode = process.argv[2] === 'tls' ? 'tls' : 'plain';
const sockets = new Set<Socket>();
const trickle = (socket: Socket): void => {
  sockets.add(socket);
  socket.on('error', () => {});
  socket.resume();
  const timer = setInterval(() => socket.write('x'), 40);
  socket.once('close', () => { clearInterval(timer); sockets.delete(socket); });
};
const server = mode === 'tls'
  ? tlsServer({ ...loadPem('peer-3', DEFAULT_CERT_DIR), ca: loadPem('ca', DEFAULT_CERT_DIR).cert, allowHalfOpen: true }, trickle)
  : netServer({ allowHalfOpen: true }, trickle);
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
process.once('disconnect', () => {
  for (const socket of sockets) socket.destroy();
  server.close(() => process.exit(0));
});
