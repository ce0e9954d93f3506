/**
 * One gossipmonger peer for the multi-host test, run inside a network
 * namespace by `ip netns exec`. Prints JSON lines: listening (with its port),
 * then converged (with the remote addresses it heard from).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import TcpTransport = require('../src/index');
import { Gossipmonger } from '../scripts/typed-packages';

interface PeerConfig {
  id: string;
  /** Address peers are told to use. */
  advertise: string;
  /** Address to bind; may differ from `advertise` (0.0.0.0 on one peer). */
  bind: string;
  certDir: string;
  all: string[];
  seed?: { id: string; host: string; port: number };
  interval: number;
}

const config = JSON.parse(process.argv[2]!) as PeerConfig;
const read = (name: string): string => readFileSync(join(config.certDir, name), 'utf8');
const say = (message: Record<string, unknown>): void => { process.stdout.write(JSON.stringify({ id: config.id, ...message }) + '\n'); };

const transport = new TcpTransport({
  host: config.advertise,
  port: 0,
  tls: { key: read(`${config.id}.key`), cert: read(`${config.id}.crt`), ca: read('ca.crt'), requestCert: true, authorize: 'sender-id' }
});
const heardFrom = new Set<string>();
const errors: string[] = [];
transport.on('error', (error) => errors.push((error as { code?: string }).code ?? error.message));
transport.on('digest', (_sender, _digest, info) => { if (info.remoteAddress) heardFrom.add(info.remoteAddress); });
transport.on('deltas', (_sender, _deltas, info) => { if (info.remoteAddress) heardFrom.add(info.remoteAddress); });

transport.listen({ host: config.bind, port: 0 }, () => {
  const port = transport.address()!.port;
  transport.port = port;
  say({ event: 'listening', port, bound: transport.address()!.address });
  const peer = new Gossipmonger({ id: config.id, transport: { host: config.advertise, port } }, {
    transport,
    GOSSIP_INTERVAL: config.interval,
    seeds: config.seed ? [{ id: config.seed.id, transport: { host: config.seed.host, port: config.seed.port } }] : []
  });
  peer.on('error', () => {});
  peer.update(`key-${config.id}`, `value-${config.id}`);
  peer.gossip();
  let reported = false;
  setInterval(() => {
    const missing = config.all.filter((other) => other !== config.id && peer.storage.get(other)?.data[`key-${other}`]?.[0] !== `value-${other}`);
    if (missing.length === 0 && !reported) {
      reported = true;
      say({ event: 'converged', heardFrom: [...heardFrom].sort(), errors });
    }
  }, 50);
});

process.on('SIGTERM', () => transport.close(() => process.exit(0)));
