/**
 * Micro-benchmark of the receiver's per-message parse path, in its own
 * process (started by run.ts: `npm run bench -- --only validate`): CPU per
 * message of
 *
 * - `JSON.parse` alone (what a bare receiver does: the floor),
 * - parseMessage as it was before issue 24 (main at db27e2d): ajv's
 *   standalone code alone, without the specialised check of
 *   scripts/fast-path.ts, and every frame decoded as UTF-8,
 * - parseMessage as shipped (the specialised check with ajv behind it;
 *   ASCII frames decoded as latin1),
 *
 * over the messages gossipmonger sends. The three run interleaved in short
 * batches, so that whatever else the machine does hits them alike; each
 * batch is timed with process.cpuUsage() (this process's CPU, not the
 * clock: the machine is shared).
 */
import { isUtf8 } from 'node:buffer';
import { InvalidMessageError } from '../src/errors';
import { jsonCostOver, parseMessage, generatedValidator, type Message } from '../src/wire/message';
import { MAX_JSON_PROPERTIES, MAX_JSON_TOKENS } from '../src/wire/schema';
import { PARSE_VARIANTS, payloadFor, type FromWorker, type ParseRound, type ParseVariant } from './cases';

const sender = { id: 'bench', transport: { host: '127.0.0.1', port: 1 }, t: 1733600000000.123 };

/**
 * parseMessage before issue 24, kept here as the baseline of the comparison
 * (the same steps and bounds; only the validator and the decoding differ).
 */
function parseBefore (frame: Buffer): Message {
  if (!isUtf8(frame)) throw new InvalidMessageError('frame is not valid UTF-8');
  if (frame.length > 32 * 1024 && jsonCostOver(frame, MAX_JSON_TOKENS, MAX_JSON_PROPERTIES) !== undefined) throw new InvalidMessageError('over budget');
  let value: unknown;
  try {
    value = JSON.parse(frame.toString('utf8'));
  } catch (error) {
    throw new InvalidMessageError('frame is not JSON', { cause: error });
  }
  const validate = generatedValidator.ajv;
  if (!validate(value)) throw new InvalidMessageError(`message does not fit the schema: ${validate.errors?.[0]?.instancePath ?? ''}`);
  const port = (transport: { port?: unknown } | undefined): void => {
    if (typeof transport?.port === 'string') transport.port = Number(transport.port);
  };
  port(value.sender.transport);
  if (value.digest !== undefined) for (const entry of value.digest) port(entry.transport);
  return value;
}

/** The frames measured, as gossipmonger@0.1.10 builds them (and the two of the throughput cases). */
export function parseFrames (): Array<{ name: string; frame: Buffer }> {
  const frame = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
  const digestOf = (peers: number): unknown[] => Array.from({ length: peers }, (_, i) => ({ id: `peer-${i}`, maxVersionSeen: 1000 + i, transport: { host: '127.0.0.1', port: 9000 + i } }));
  return [
    { name: '1 KB digest (16 peers)', frame: frame({ ...payloadFor('1 KB digest'), sender }) },
    { name: '100-peer digest', frame: frame({ digest: digestOf(100), sender }) },
    // gossipmonger sends at most MAX_DELTAS_PER_GOSSIP (5) deltas a round.
    { name: '5 deltas', frame: frame({ deltas: Array.from({ length: 5 }, (_, i) => [`peer-${i}`, `key-${i}`, `value ${i}`, 1000 + i]), sender }) },
    { name: '64 KB deltas', frame: frame({ ...payloadFor('64 KB deltas'), sender }) }
  ];
}

function measure (ms: number): ParseRound {
  const frames = parseFrames();
  const run: Record<ParseVariant, (frame: Buffer) => unknown> = {
    'JSON.parse alone': (frame) => JSON.parse(frame.toString('utf8')),
    before: parseBefore,
    after: parseMessage
  };
  const round: ParseRound = {};
  let sink = 0;
  for (const { name, frame } of frames) {
    // A batch takes about 2 ms whatever the frame's size. Sized on the clock:
    // CPU time is counted in scheduler ticks here (a 1 ms probe can read 0),
    // which only averages out over many batches.
    const probe = performance.now();
    for (let i = 0; i < 100; i++) sink += (run.after(frame) as { sender: unknown }).sender === undefined ? 0 : 1;
    const probeMs = Math.max(0.01, performance.now() - probe);
    const batch = Math.min(10000, Math.max(10, Math.round((100 * 2) / probeMs)));
    // Warm every variant up on this frame before timing any.
    for (const variant of PARSE_VARIANTS) for (let i = 0; i < batch * 5; i++) run[variant](frame);
    const cpu: Record<ParseVariant, number> = { 'JSON.parse alone': 0, before: 0, after: 0 };
    const count: Record<ParseVariant, number> = { 'JSON.parse alone': 0, before: 0, after: 0 };
    const end = performance.now() + ms;
    for (let b = 0; performance.now() < end || b < 3; b++) {
      // Each batch in a rotated order, so no variant always follows the same one.
      for (let v = 0; v < PARSE_VARIANTS.length; v++) {
        const variant = PARSE_VARIANTS[(v + b) % PARSE_VARIANTS.length]!;
        const fn = run[variant];
        const t0 = process.cpuUsage();
        for (let i = 0; i < batch; i++) fn(frame);
        const t = process.cpuUsage(t0);
        cpu[variant] += t.user + t.system;
        count[variant] += batch;
      }
    }
    round[name] = { 'JSON.parse alone': cpu['JSON.parse alone'] / count['JSON.parse alone'], before: cpu.before / count.before, after: cpu.after / count.after };
  }
  if (sink < 0) process.stderr.write('');
  return round;
}

if (require.main === module) {
  if (!process.send) {
    process.stderr.write('usage: validate.js <ms per frame> (started by run.js)\n');
    process.exit(2);
  }
  const round = measure(Number(process.argv[2] ?? 300));
  process.send({ type: 'parse', round } satisfies FromWorker, () => process.exit(0));
}
