/**
 * A small fault-injecting TCP proxy, for the faults this kernel cannot make
 * (it has no netem): latency, a bandwidth cap, a stall (the proxy stops
 * reading, so the sender sees a peer that stops reading), and a reset after
 * N bytes from the client (a connection cut mid-frame). Faults can change
 * while connections are open; they apply to every connection from then on.
 *
 * Bytes are never altered or reordered, only delayed, held or cut. Ends and
 * resets pass through: a side that ends is ended on the other side once its
 * bytes have gone, a side that breaks is reset on the other, so a sender
 * sees what it would see without the proxy.
 *
 * Run as a program (`node fault-proxy.js '{"listen":{...},"target":{...}}'`)
 * it takes commands on stdin, one JSON object a line: `{"cmd":"faults",
 * "faults":{...}}` or `{"cmd":"resetAll"}`, answering `{"event":"done"}`.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

export interface Faults {
  /** Delay added to every chunk, each direction (ms). */
  latency?: number;
  /** Bytes per second, each direction; 0 or unset: no cap. */
  bandwidth?: number;
  /** Hold every byte (and stop reading) until set back to false. */
  stall?: boolean;
  /** Reset both sides once this many bytes have gone from client to server. */
  resetAtByte?: number;
}

interface Chunk { data: Buffer; due: number; thenReset: boolean }

/** One direction of one connection: reads from `from`, writes to `to` under the faults. */
class Pipe {
  private readonly queue: Chunk[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the bandwidth cap next lets a byte through. */
  private nextFree = 0;
  /** Bytes read from `from`; once a reset is due, nothing more is read. */
  received = 0;
  private cut = false;

  constructor (
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly faults: () => Faults,
    /** Counts reset bytes in this direction (client to server only). */
    private readonly resets: boolean,
    private readonly reset: () => void
  ) {
    from.on('data', (data: Buffer) => {
      if (this.cut) return;
      const limit = this.resets ? this.faults().resetAtByte : undefined;
      let chunk = data;
      if (limit !== undefined && this.received + data.length >= limit) {
        // Forward exactly up to the limit, then cut both sides once that part has gone.
        chunk = data.subarray(0, Math.max(0, limit - this.received));
        this.cut = true;
      }
      this.received += chunk.length;
      this.queue.push({ data: chunk, due: Date.now() + (this.faults().latency ?? 0), thenReset: this.cut });
      this.pump();
    });
    from.on('end', () => this.pump());
  }

  /** Forwards what is due, unless stalled or the destination is full. */
  pump (): void {
    if (this.timer) return;
    const faults = this.faults();
    if (faults.stall) {
      this.from.pause();
      return;
    }
    const now = Date.now();
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const at = Math.max(head.due, this.nextFree);
      if (at > now) {
        this.timer = setTimeout(() => { this.timer = undefined; this.pump(); }, at - now);
        return;
      }
      this.queue.shift();
      const cap = faults.bandwidth ?? 0;
      if (cap > 0) this.nextFree = Math.max(now, this.nextFree) + (head.data.length * 1000) / cap;
      if (head.thenReset) {
        this.to.write(head.data, () => setImmediate(this.reset));
        return;
      }
      if (!this.to.destroyed && !this.to.write(head.data)) {
        this.from.pause();
        this.to.once('drain', () => this.pump());
        return;
      }
    }
    if (this.from.readableEnded) {
      if (!this.to.destroyed) this.to.end();
    } else {
      this.from.resume();
    }
  }

  stop (): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

export class FaultProxy {
  readonly server: Server;
  private faults: Faults = {};
  private readonly connections = new Set<{ client: Socket; upstream: Socket; pipes: Pipe[] }>();
  /** Connections accepted, and connections this proxy reset. */
  accepted = 0;
  resets = 0;

  constructor (private target: { host: string; port: number }) {
    this.server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => this.accept(client));
  }

  async listen (host = '127.0.0.1', port = 0): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => { this.server.removeListener('error', reject); resolve(); });
    });
    return this.server.address() as AddressInfo;
  }

  get port (): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Open connections through the proxy. */
  get size (): number {
    return this.connections.size;
  }

  /** New connections go to `target` from now on (a restarted server on another port). */
  retarget (target: { host: string; port: number }): void {
    this.target = { ...target };
  }

  /** Replaces the faults; held bytes move again once `stall` is cleared. */
  set (faults: Faults): void {
    this.faults = { ...faults };
    for (const connection of this.connections) for (const pipe of connection.pipes) pipe.pump();
  }

  /**
   * Resets every open connection now: RST to both sides (a side whose kernel
   * has already received every byte may see an end instead).
   */
  resetAll (): void {
    for (const connection of [...this.connections]) this.reset(connection);
  }

  async close (): Promise<void> {
    for (const connection of [...this.connections]) {
      for (const pipe of connection.pipes) pipe.stop();
      connection.client.destroy();
      connection.upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }

  private reset (connection: { client: Socket; upstream: Socket; pipes: Pipe[] }): void {
    if (!this.connections.delete(connection)) return;
    this.resets++;
    for (const pipe of connection.pipes) pipe.stop();
    connection.client.resetAndDestroy();
    // An upstream still connecting cannot be reset; destroying it is the same to the server.
    if (connection.upstream.pending) connection.upstream.destroy();
    else connection.upstream.resetAndDestroy();
  }

  private accept (client: Socket): void {
    this.accepted++;
    const upstream = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    const connection = { client, upstream, pipes: [] as Pipe[] };
    this.connections.add(connection);
    // A break on either side (the target down, refused, reset) resets the other.
    const broken = (): void => this.reset(connection);
    client.on('error', broken);
    upstream.on('error', broken);
    let open = 2;
    const closed = (): void => {
      if (--open > 0) return;
      if (this.connections.delete(connection)) for (const pipe of connection.pipes) pipe.stop();
    };
    client.on('close', closed);
    upstream.on('close', closed);
    const faults = (): Faults => this.faults;
    const reset = (): void => this.reset(connection);
    const toServer = new Pipe(client, upstream, faults, true, reset);
    const toClient = new Pipe(upstream, client, faults, false, reset);
    connection.pipes.push(toServer, toClient);
    upstream.once('connect', () => client.resume());
  }
}

if (require.main === module) {
  const config = JSON.parse(process.argv[2]!) as { listen: { host: string; port: number }; target: { host: string; port: number } };
  const proxy = new FaultProxy(config.target);
  const say = (message: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(message) + '\n'); };
  void proxy.listen(config.listen.host, config.listen.port).then((address) => say({ event: 'listening', port: address.port }));
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as { cmd: string; faults?: Faults };
    if (command.cmd === 'faults') proxy.set(command.faults ?? {});
    else if (command.cmd === 'resetAll') proxy.resetAll();
    say({ event: 'done', cmd: command.cmd, accepted: proxy.accepted, resets: proxy.resets });
  });
}
