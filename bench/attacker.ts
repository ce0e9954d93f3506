/**
 * An attacker in a process of its own, from loopback addresses of its own
 * (all of 127.0.0.0/8 is loopback), for the attack tests and
 * bench/attacks.ts. Started with child_process.fork:
 *
 *   fork('dist/bench/attacker.js', [JSON.stringify(plan)])
 *
 * It attacks until the parent sends 'stop' (or `plan.duration` passes), then
 * sends back what it did ({ type: 'done', ... }) and exits. Every kind speaks
 * the wire protocol by hand, as a hostile peer would: no transport involved.
 */
import { connect as netConnect, createServer as netServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export type AttackKind =
  /** Hold connections mid-frame, one byte every `dripMs` (0: hold idle), reconnecting whenever closed. */
  | 'drip'
  /** Hold connections between frames, sending only empty lines ("\n", "\r" then "\n") every `dripMs`. */
  | 'blank-lines'
  /** Open TLS connections (full handshakes, no resumption) as fast as `connections` allow, close once done. */
  | 'handshake'
  /** Send one frame of `frameBytes` one byte per write: one TCP segment or TLS record each. */
  | 'one-byte'
  /** Send valid digests naming `entries` new fake peers each, `messages` times. */
  | 'poison'
  /** Stream valid-looking 1 MiB frames built for parse cost (a sender with 90,000 keys). */
  | 'costly'
  /**
   * Reflection: run `tarpits` TCP servers (accept, never read, never answer,
   * never close) and send the victim digests at `rate` frames a second, each
   * from a sender whose advertised transport is one of the tarpits, so that
   * gossipmonger answers every one of them there.
   */
  | 'reflect'
  /** Start a TLS handshake and stall it: the first bytes of a ClientHello, then nothing (plan.tls unset). */
  | 'stalled-hello';

export interface AttackPlan {
  kind: AttackKind;
  port: number;
  /** Loopback source addresses; connections are spread over them. */
  sources: string[];
  /** Connections held (or in flight) at once, per source. */
  connections: number;
  /** TLS client options (ca, and key/cert for mutual TLS); plain TCP when absent. */
  tls?: ConnectionOptions;
  dripMs?: number;
  frameBytes?: number;
  entries?: number;
  messages?: number;
  /** poison: the sender id (under 'sender-id', the one the certificate names). */
  senderId?: string;
  /** poison: pad each entry's transport with this many bytes (the old schema left it open). */
  transportBytes?: number;
  /** poison: each message (each its own connection) from a sender id of its own, to prove made-up ids by contact. */
  distinctSenders?: boolean;
  /** poison: the address every made-up peer (and the sender) claims. @default 192.0.2.1:9 (TEST-NET, nothing there) */
  fakeAddress?: { host: string; port: number };
  /** Give up after this many ms even without 'stop'. */
  duration?: number;
  /** reflect: tarpit servers to name (on 127.0.0.3). */
  tarpits?: number;
  /** reflect: digests a second. */
  rate?: number;
  /** reflect: instead of a rate, this many digests in one write, once. */
  burst?: number;
  /**
   * one-byte: each connection stops before its frame's last byte; once all
   * have, the attacker sends { type: 'holding' } and waits for 'release'. The
   * victim then holds every unfinished frame at its largest: the moment a test
   * measures what it retains.
   */
  holdLast?: boolean;
}

export interface AttackReport {
  type: 'done';
  /** Connections opened (TCP connect completed). */
  opened: number;
  /** TLS handshakes completed. */
  handshakes: number;
  /** Connections the server closed or reset. */
  closedByServer: number;
  /** Bytes written. */
  bytes: number;
  /** Frames written completely. */
  frames: number;
  /** reflect: connections the tarpits accepted. */
  tarpitConnections?: number;
}

const HOST = '127.0.0.1';

class Attacker {
  private stopped = false;
  private readonly sockets = new Set<Socket>();
  private holding = 0;
  private onRelease: () => void = () => {};
  private readonly released = new Promise<void>((resolve) => { this.onRelease = resolve; });
  readonly report: AttackReport = { type: 'done', opened: 0, handshakes: 0, closedByServer: 0, bytes: 0, frames: 0 };

  constructor (private readonly plan: AttackPlan) {}

  async run (): Promise<void> {
    if (this.plan.kind === 'reflect') return this.reflect();
    const { sources, connections } = this.plan;
    const workers: Array<Promise<void>> = [];
    for (const source of sources) {
      for (let i = 0; i < connections; i++) workers.push(this.worker(source, i));
    }
    await Promise.all(workers);
  }

  stop (): void {
    this.stopped = true;
    this.onRelease();
    for (const socket of this.sockets) socket.destroy();
    for (const server of this.tarpits) server.close();
    for (const socket of this.held) socket.destroy();
  }

  private readonly tarpits: Server[] = [];
  /** Connections the tarpits hold. */
  private readonly held = new Set<Socket>();

  /**
   * Tarpits on 127.0.0.3, then digests naming them, `rate` a second from the
   * first source, one connection per reflected sender (see below). Sender ids
   * cycle over one per tarpit, so the victim's maxPeers never stops the flood.
   */
  private async reflect (): Promise<void> {
    const count = this.plan.tarpits ?? 3;
    const ports: number[] = [];
    this.report.tarpitConnections = 0;
    for (let i = 0; i < count; i++) {
      const server = netServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
        // Never read, never write, never close: the victim's frame waits in its own buffers.
        this.report.tarpitConnections!++;
        this.held.add(socket);
        socket.on('error', () => {});
        socket.once('close', () => this.held.delete(socket));
      });
      server.on('error', () => {});
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.3', resolve));
      this.tarpits.push(server);
      ports.push((server.address() as { port: number }).port);
    }
    const rate = this.plan.rate ?? 600;
    const frames = ports.map((port, i) => Buffer.from(JSON.stringify({
      digest: [{ id: 'victim', maxVersionSeen: 0 }],
      sender: { id: `reflector-${i}`, transport: { host: '127.0.0.3', port } }
    }) + '\n'));
    let next = 0;
    const source = this.plan.sources[0]!;
    const burst = this.plan.burst;
    if (burst !== undefined) {
      // One proven sender (the first tarpit's), `burst` digests in one write, once.
      const socket = await this.open(source);
      if (socket === undefined) return;
      const bytes = Buffer.concat(Array.from({ length: burst }, () => frames[0]!));
      socket.write(bytes);
      this.report.bytes += bytes.length;
      this.report.frames += burst;
      await closedOf(socket);
      return;
    }
    // A victim with proven membership passes on a sender only over a connection
    // of its own (the first sender a connection speaks for), so the attack opens
    // one connection per reflected sender: every 10 ms, a connection carrying a
    // batch of digests from the next tarpit's sender, then ended. `rate` frames a
    // second in all.
    const perTick = Math.max(1, Math.round(rate / 100));
    while (!this.stopped) {
      const started = Date.now();
      const socket = await this.open(source);
      if (socket !== undefined) {
        const frame = frames[next++ % frames.length]!;
        const bytes = Buffer.concat(Array.from({ length: perTick }, () => frame));
        socket.end(bytes);
        this.report.bytes += bytes.length;
        this.report.frames += perTick;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10 - (Date.now() - started))));
    }
  }

  /** holdLast: lets every connection write its last byte. */
  release (): void {
    this.onRelease();
  }

  /** holdLast: one more connection waits before its last byte; the last to arrive says so. */
  private async holdBeforeLast (): Promise<void> {
    this.holding++;
    if (this.holding === this.plan.sources.length * this.plan.connections) process.send?.({ type: 'holding' });
    await this.released;
  }

  /** One connection slot: keeps attacking until stopped. */
  private async worker (source: string, index: number): Promise<void> {
    const kind = this.plan.kind;
    let sent = 0;
    while (!this.stopped) {
      if (kind === 'poison' && sent >= (this.plan.messages ?? 1)) return;
      if (kind === 'one-byte' && sent >= 1) return;
      const socket = await this.open(source);
      if (socket === undefined) {
        // Refused before connecting, or before the handshake finished: try again at once (a storm).
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (kind === 'handshake') {
        socket.destroy();
        continue;
      }
      if (kind === 'drip') await this.drip(socket);
      else if (kind === 'blank-lines') await this.blankLines(socket);
      else if (kind === 'one-byte') await this.oneByte(socket);
      else if (kind === 'poison') await this.send(socket, poisonFrame(this.plan, source, index, sent));
      else if (kind === 'stalled-hello') await this.stalledHello(socket);
      else await this.costly(socket);
      sent++;
    }
  }

  /** Connects (and handshakes); undefined when the server refused or closed first. */
  private open (source: string): Promise<Socket | undefined> {
    const tls = this.plan.tls;
    return new Promise((resolve) => {
      const socket: Socket | TLSSocket = tls
        // tls.connect hands localAddress on to net.connect; its type just does not list it.
        ? tlsConnect({ host: HOST, port: this.plan.port, localAddress: source, ...tls } as ConnectionOptions)
        : netConnect({ host: HOST, port: this.plan.port, localAddress: source });
      this.sockets.add(socket);
      let settled = false;
      socket.on('error', () => {});
      socket.setNoDelay(true);
      socket.once('connect', () => { this.report.opened++; });
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        if (tls) this.report.handshakes++;
        settled = true;
        resolve(socket);
      });
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (!this.stopped) this.report.closedByServer++;
        if (!settled) resolve(undefined);
      });
    });
  }

  /** Starts a frame, then a byte every dripMs, until the server closes the connection. */
  private async drip (socket: Socket): Promise<void> {
    this.write(socket, '{"digest":[');
    const dripMs = this.plan.dripMs ?? 0;
    const timer = dripMs > 0 ? setInterval(() => this.write(socket, ' '), dripMs) : undefined;
    await closedOf(socket);
    clearInterval(timer);
  }

  /** Never a frame: a bare "\n", then "\r", then "\n", one write every dripMs, until the server closes. */
  private async blankLines (socket: Socket): Promise<void> {
    const bytes = ['\n', '\r', '\n'];
    let i = 0;
    const timer = setInterval(() => this.write(socket, bytes[i++ % bytes.length]!), this.plan.dripMs ?? 100);
    await closedOf(socket);
    clearInterval(timer);
  }

  /** One frame, one byte per write, each write waiting for the last: one segment or record each. */
  private async oneByte (socket: Socket): Promise<void> {
    const frame = paddedFrame(this.plan.frameBytes ?? 65536);
    for (let i = 0; i < frame.length && !socket.destroyed && !this.stopped; i++) {
      if (i === frame.length - 1 && this.plan.holdLast === true) await this.holdBeforeLast();
      if (socket.destroyed || this.stopped) break;
      await new Promise<void>((resolve) => socket.write(frame.subarray(i, i + 1), () => resolve()));
      this.report.bytes++;
    }
    if (!socket.destroyed) this.report.frames++;
    socket.end();
    await closedOf(socket);
  }

  /**
   * A TLS record announcing a 512-byte ClientHello, and only its first 16
   * bytes: the server has started the handshake and waits for the rest.
   */
  private async stalledHello (socket: Socket): Promise<void> {
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a]);
    socket.write(hello);
    this.report.bytes += hello.length;
    await closedOf(socket);
  }

  private async send (socket: Socket, frame: Buffer): Promise<void> {
    socket.end(frame);
    this.report.bytes += frame.length;
    this.report.frames++;
    await closedOf(socket);
  }

  /** Costly frames back to back on one connection, as fast as the server reads them. */
  private async costly (socket: Socket): Promise<void> {
    const frame = costlyFrame();
    while (!socket.destroyed && !this.stopped) {
      const more = socket.write(frame);
      this.report.bytes += frame.length;
      this.report.frames++;
      if (!more) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closedOf(socket)]);
    }
    await closedOf(socket);
  }

  private write (socket: Socket, text: string): void {
    if (socket.destroyed) return;
    socket.write(text);
    this.report.bytes += text.length;
  }
}

function closedOf (socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** A valid deltas frame of exactly `size` bytes plus "\n" (padding in the value). */
export function paddedFrame (size: number): Buffer {
  const frame = (n: number): string => JSON.stringify({ deltas: [['pad', 'k', 'p'.repeat(n), 1]], sender: { id: 'pad' } });
  return Buffer.from(frame(Math.max(0, size - frame(0).length)) + '\n');
}

/** A digest naming `plan.entries` fake peers the victim has never heard of (schema-valid, unless padded). */
export function poisonFrame (plan: AttackPlan, source: string, worker: number, message: number): Buffer {
  const transport = { ...(plan.fakeAddress ?? { host: '192.0.2.1', port: 9 }), ...(plan.transportBytes ? { blob: 'x'.repeat(plan.transportBytes) } : {}) };
  const digest = Array.from({ length: plan.entries ?? 1000 }, (_, i) => ({ id: `fake-${source}-${worker}-${message}-${i}`, maxVersionSeen: 1, transport }));
  const sender = plan.senderId ?? `attacker-${source}-${worker}${plan.distinctSenders === true ? `-${message}` : ''}`;
  return Buffer.from(JSON.stringify({ digest, sender: { id: sender, transport: plan.fakeAddress ?? { host: '192.0.2.1', port: 9 } } }) + '\n');
}

/** Just under 1 MiB: a sender with 90,000 extra keys, which the old schema accepted. */
export function costlyFrame (): Buffer {
  const keys = Array.from({ length: 90000 }, (_, i) => `"k${i}":0`).join(',');
  return Buffer.from(`{"digest":[],"sender":{"id":"costly",${keys}}}\n`);
}

if (require.main === module) {
  const plan = JSON.parse(process.argv[2]!) as AttackPlan;
  const attacker = new Attacker(plan);
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    attacker.stop();
    // Let the last closes land, then report and leave.
    setTimeout(() => {
      process.send?.(attacker.report, () => process.exit(0));
      if (!process.send) process.exit(0);
    }, 20);
  };
  process.on('message', (message) => {
    if (message === 'stop') finish();
    if (message === 'release') attacker.release();
  });
  process.on('disconnect', finish);
  if (plan.duration !== undefined) setTimeout(finish, plan.duration).unref();
  attacker.run().then(() => { if (plan.kind === 'poison' || plan.kind === 'one-byte') process.send?.({ type: 'finished' }); }, () => {});
  process.send?.({ type: 'ready' });
}
