/**
 * An id squatter in a process of its own, for test/system/membership.test.ts
 * and bench/membership.ts: a cluster member with a valid certificate (for
 * `cert`) that announces another member's id (`announce`) at its own
 * address, to receive what is meant for that member. It runs a transport of
 * the build given (`lib`: the path of its dist/src/index.js), listens, and
 * sends the victim a digest every `every` ms naming `announce` at its own
 * address, speaking as itself (under 'sender-id' it can speak as no other
 * id). Started with child_process.fork:
 *
 *   fork('dist/bench/squatter.js', [JSON.stringify(plan)])
 *
 * It sends { type: 'ready', port } once listening, { type: 'sent', count }
 * after each digest, and on 'stop' { type: 'done', framesIn } (frames
 * delivered to it, by sender id) before exiting.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SquatPlan {
  lib: string;
  certs: string;
  /** The certificate it holds (its own id). */
  cert: string;
  /** The id it claims at its own address. */
  announce: string;
  victimId: string;
  victimPort: number;
  every: number;
}

interface MinimalTransport {
  port: number;
  on (event: string, listener: (...args: unknown[]) => void): void;
  listen (callback: () => void): void;
  digest (remote: unknown, local: unknown, digest: unknown): void;
  close (): Promise<void>;
}

const HOST = '127.0.0.1';

if (require.main === module) {
  const plan = JSON.parse(process.argv[2]!) as SquatPlan;
  const Transport = require(plan.lib) as new (options: unknown) => MinimalTransport;
  const pem = (name: string): string => readFileSync(join(plan.certs, name), 'utf8');
  const transport = new Transport({
    host: HOST,
    port: 0,
    tls: { key: pem(`${plan.cert}.key`), cert: pem(`${plan.cert}.crt`), ca: pem('ca.crt'), requestCert: true, authorize: 'sender-id' }
  });
  const framesIn: Record<string, number> = {};
  const count = (sender: unknown): void => {
    const id = (sender as { id?: string }).id ?? '?';
    framesIn[id] = (framesIn[id] ?? 0) + 1;
  };
  transport.on('digest', count);
  transport.on('deltas', count);
  transport.on('error', () => {});
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  transport.listen(() => {
    process.send!({ type: 'ready', port: transport.port });
    const self = { id: plan.cert, transport: { host: HOST, port: transport.port } };
    const announce = (): void => {
      transport.digest({ id: plan.victimId, transport: { host: HOST, port: plan.victimPort } }, self, [
        { id: plan.announce, maxVersionSeen: 1, transport: { host: HOST, port: transport.port } },
        { id: plan.cert, maxVersionSeen: 0, transport: { host: HOST, port: transport.port } }
      ]);
      process.send!({ type: 'sent', count: ++sent });
    };
    announce();
    timer = setInterval(announce, plan.every);
  });
  process.on('message', (message) => {
    if (message !== 'stop') return;
    clearInterval(timer);
    void transport.close().then(() => process.send!({ type: 'done', framesIn }, () => process.exit(0)));
  });
  process.on('disconnect', () => process.exit(0));
}
