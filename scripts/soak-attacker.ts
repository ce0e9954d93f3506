/**
 * The hostile side of the soak (scripts/soak.ts), in its own process and from
 * its own loopback address (127.0.0.2): it keeps opening connections that a
 * gossip peer must refuse or drop, at most 10 at a time, one every 100 ms,
 * each held for at most 2 s. Kinds, in turn: random bytes; a plaintext frame
 * to a TLS port; a TLS record header and then nothing (a stalled handshake);
 * TLS without a client certificate; TLS with a certificate from another CA;
 * a connection that says nothing. Reports its count to the parent.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { randomBytes } from 'node:crypto';

interface Setup { ports: number[]; rogue: { key: string; cert: string }; ca: string }

const HOST = '127.0.0.1';
const FROM = '127.0.0.2';
const MAX_OPEN = 10;
const HOLD = 2000;

let open = 0;
let opened = 0;
const frame = JSON.stringify({ digest: [], sender: { id: 'soak-1', transport: { host: HOST, port: 1 } } }) + '\r\n';

function hold (socket: Socket): void {
  open++;
  opened++;
  socket.on('error', () => {});
  const timer = setTimeout(() => socket.destroy(), HOLD);
  socket.once('close', () => {
    open--;
    clearTimeout(timer);
  });
}

function attack (setup: Setup, kind: number): void {
  const port = setup.ports[Math.floor(Math.random() * setup.ports.length)]!;
  switch (kind) {
    case 0: {
      const socket = netConnect({ host: HOST, port, localAddress: FROM }, () => socket.write(randomBytes(512)));
      hold(socket);
      break;
    }
    case 1: {
      const socket = netConnect({ host: HOST, port, localAddress: FROM }, () => socket.write(frame));
      hold(socket);
      break;
    }
    case 2: {
      // A handshake record header that promises bytes it never sends.
      const socket = netConnect({ host: HOST, port, localAddress: FROM }, () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
      hold(socket);
      break;
    }
    case 3: {
      const socket = tlsConnect({ socket: netConnect({ host: HOST, port, localAddress: FROM }), host: HOST, ca: setup.ca }, () => socket.write(frame));
      hold(socket);
      break;
    }
    case 4: {
      const socket = tlsConnect({ socket: netConnect({ host: HOST, port, localAddress: FROM }), host: HOST, ca: setup.ca, ...setup.rogue }, () => socket.write(frame));
      hold(socket);
      break;
    }
    default: {
      hold(netConnect({ host: HOST, port, localAddress: FROM }));
    }
  }
}

process.once('message', (setup: Setup) => {
  let kind = 0;
  setInterval(() => {
    if (open < MAX_OPEN) attack(setup, kind++ % 6);
  }, 100);
  setInterval(() => process.send?.({ hostile: opened }), 1000);
});
process.on('disconnect', () => process.exit(0));
