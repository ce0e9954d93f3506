/**
 * One gossipmonger peer in its own process, run inside a network namespace by
 * `ip netns exec` (the multi-host test, the chaos suite). Prints JSON lines:
 * listening (with its port), then converged (with the remote addresses it
 * heard from).
 *
 * For the chaos suite it can also, by configuration:
 * - advertise another port than it listens on: the port of a fault proxy
 *   (test/support/fault-proxy.ts, its own process) in front of it;
 * - keep updating its own value, so that faults strike mid-traffic;
 * - print one line per frame handed to the transport (`sent`), per frame
 *   delivered as an event (`delivered`) and per error (`error`, with its frame
 *   counts), for the ledger. stdout is a pipe, written synchronously on
 *   Linux, so a line printed is a line the parent gets, even if this process
 *   is killed the next instant;
 * - take commands on stdin, one JSON object a line: `mark`, `pause`,
 *   `resume`, `tls` (setSecureContext from files).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import TcpTransport = require('../../src/index');
import { Gossipmonger } from '../../scripts/typed-packages';

interface Seed { id: string; host: string; port: number }

export interface PeerConfig {
  id: string;
  /** Address peers are told to use. */
  advertise: string;
  /** Address to bind; may differ from `advertise` (0.0.0.0 on one peer). */
  bind: string;
  certDir: string;
  all: string[];
  seed?: Seed;
  interval: number;
  /** Chaos suite: */
  /** Port to listen on (default 0: any). */
  port?: number;
  /** Port peers are told to use (a proxy's), when not the one listened on. */
  advertisePort?: number;
  /** Certificate and key file names without extension (default: the id). */
  cert?: string;
  /** CA files trusted (default: ca.crt). */
  caFiles?: string[];
  /** Transport options beyond `tls` (keepAlive...). */
  options?: Record<string, unknown>;
  seeds?: Seed[];
  /** First version number of this incarnation: a restarted peer must not reuse old ones. */
  clock?: number;
  /** Incarnation, carried in `sender.transport.run` so the ledger tells incarnations apart. */
  run?: number;
  /** Milliseconds between updates of this peer's own value. */
  updateEvery?: number;
  /** Print sent / delivered / error lines. */
  ledger?: boolean;
}

interface Command {
  cmd: 'mark' | 'pause' | 'resume' | 'tls';
  mark?: number;
  tls?: { ca?: string[]; cert?: string; crl?: string };
}

const config = JSON.parse(process.argv[2]!) as PeerConfig;
const read = (name: string): string => readFileSync(join(config.certDir, name), 'utf8');
const say = (message: Record<string, unknown>): void => { process.stdout.write(JSON.stringify({ id: config.id, ...message }) + '\n'); };
const certName = config.cert ?? config.id;

const transport = new TcpTransport({
  host: config.advertise,
  port: config.port ?? 0,
  ...config.options,
  tls: { key: read(`${certName}.key`), cert: read(`${certName}.crt`), ca: (config.caFiles ?? ['ca.crt']).map(read), requestCert: true, authorize: 'sender-id' }
});
const heardFrom = new Set<string>();
const errors: string[] = [];

if (config.ledger) {
  // Every frame handed to the transport, by destination address.
  const rpc = transport.rpc.bind(transport);
  transport.rpc = (remotePeer: unknown, payload: unknown): void => {
    const target = (remotePeer as { transport?: { host?: string; port?: number } }).transport;
    say({ event: 'sent', to: `${target?.host}:${target?.port}` });
    rpc(remotePeer, payload);
  };
}

transport.on('error', (error) => {
  const e = error as Error & { code?: string; remoteAddress?: string; remotePort?: number; framesDropped?: number; framesWritten?: number; framesLost?: number };
  errors.push(e.code ?? e.message);
  if (config.ledger) {
    say({ event: 'error', code: e.code ?? e.message, to: `${e.remoteAddress}:${e.remotePort}`, framesDropped: e.framesDropped, framesWritten: e.framesWritten, framesLost: e.framesLost });
  }
});
const delivered = (sender: { id: string; transport?: { run?: number } }, info: { remoteAddress?: string }): void => {
  if (info.remoteAddress) heardFrom.add(info.remoteAddress);
  if (config.ledger) say({ event: 'delivered', from: sender.id, run: sender.transport?.run ?? 0 });
};
transport.on('digest', (sender, _digest, info) => delivered(sender as { id: string }, info));
transport.on('deltas', (sender, _deltas, info) => delivered(sender as { id: string }, info));

transport.listen({ host: config.bind, port: config.port ?? 0 }, () => {
  start();
});

function start (): void {
  const port = transport.address()!.port;
  const advertised = config.advertisePort ?? port;
  transport.port = advertised;
  say({ event: 'listening', port: advertised, bound: transport.address()!.address });
  const self = { host: config.advertise, port: advertised, ...(config.run === undefined ? {} : { run: config.run }) };
  const seeds = config.seeds ?? (config.seed ? [config.seed] : []);
  const peer = new Gossipmonger({ id: config.id, transport: self, maxVersionSeen: config.clock ?? 0 }, {
    transport,
    GOSSIP_INTERVAL: config.interval,
    seeds: seeds.map((seed) => ({ id: seed.id, transport: { host: seed.host, port: seed.port } }))
  });
  peer.on('error', () => {});
  let mark = 0;
  let seq = 0;
  const update = (): void => { peer.update(`key-${config.id}`, config.updateEvery === undefined ? `value-${config.id}` : { mark, seq: seq++ }); };
  update();
  peer.gossip();
  let updates: NodeJS.Timeout | undefined;
  if (config.updateEvery !== undefined) updates = setInterval(update, config.updateEvery);

  let reported = false;
  let view = '';
  setInterval(() => {
    if (config.updateEvery === undefined) {
      const missing = config.all.filter((other) => other !== config.id && peer.storage.get(other)?.data[`key-${other}`]?.[0] !== `value-${other}`);
      if (missing.length === 0 && !reported) {
        reported = true;
        say({ event: 'converged', heardFrom: [...heardFrom].sort(), errors });
      }
      return;
    }
    // The mark each other peer's latest value carries, as this peer sees it.
    const marks: Record<string, number> = {};
    for (const other of config.all) {
      if (other === config.id) continue;
      const value = peer.storage.get(other)?.data[`key-${other}`]?.[0] as { mark?: number } | undefined;
      if (value?.mark !== undefined) marks[other] = value.mark;
    }
    const now = JSON.stringify(marks);
    if (now !== view) {
      view = now;
      say({ event: 'view', marks });
    }
  }, 20);

  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as Command;
    switch (command.cmd) {
      case 'mark':
        mark = command.mark ?? 0;
        update();
        break;
      case 'pause':
        // Quiesce for the ledger: no gossip, no updates.
        if (peer.timeout) clearTimeout(peer.timeout);
        peer.timeout = null;
        if (updates) clearInterval(updates);
        updates = undefined;
        break;
      case 'resume':
        peer.gossip();
        if (config.updateEvery !== undefined && updates === undefined) updates = setInterval(update, config.updateEvery);
        break;
      case 'tls': {
        const tls = command.tls ?? {};
        transport.setSecureContext({
          ...(tls.ca ? { ca: tls.ca.map(read) } : {}),
          ...(tls.cert ? { cert: read(`${tls.cert}.crt`), key: read(`${tls.cert}.key`) } : {}),
          ...(tls.crl ? { crl: read(tls.crl) } : {})
        });
        break;
      }
    }
    say({ event: 'done', cmd: command.cmd });
  });
}

process.on('SIGTERM', () => transport.close(() => process.exit(0)));
