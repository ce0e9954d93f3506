// Compiled by test/integration/module.test.ts (tsc, in an application folder): the
// documented usage must type-check, and a wrong option type must not.
import TcpTransport = require('gossipmonger-tls-transport');
import type { EventInfo, TransportOptions } from 'gossipmonger-tls-transport';

const options: TransportOptions = {
  host: 'localhost',
  port: 0,
  maxFrameSize: Infinity,
  keepAlive: { idleTimeout: 5000, maxQueuedBytes: 1024 },
  tls: { key: 'k', cert: 'c', ca: 'ca', requestCert: true, authorize: 'sender-id', minVersion: 'TLSv1.3', plaintext: { accept: true, until: new Date() } },
  cluster: 'blue'
};
const transport: TcpTransport = new TcpTransport(options);
const listened: TcpTransport = TcpTransport.listen({ port: 0 }, () => undefined);
transport.listen({ host: '127.0.0.1' }, () => undefined);
transport.listen(() => undefined);

transport.on('deltas', (sender, deltas, info: EventInfo) => {
  const id: string = sender.id;
  const [peer, key, , version]: [string, string, unknown, number] = deltas[0]!;
  const secure: boolean = info.secure;
  void [id, peer, key, version, secure, info.certificate?.fingerprint256];
});
transport.on('digest', (sender, digest) => {
  const max: number = digest[0]!.maxVersionSeen;
  void [sender.id, max];
});
transport.on('error', (error) => {
  if (error instanceof TcpTransport.TransportError) {
    const code: TcpTransport.ErrorCode = error.code;
    void code;
  }
  // Narrowing on code, without instanceof: each class has its literal code.
  if (error.code === 'ERR_PEER_LIMIT') {
    const dropped: number = error.count;
    const source: string = error.source;
    void [dropped, source];
  }
  if (error.code === 'ECONNRESET') {
    const written: number | undefined = error.framesWritten;
    const port: number | undefined = error.remotePort;
    void [written, port];
  }
});
// Every class of this package is in the union the 'error' event carries, but those only thrown.
type Listed = Extract<TcpTransport.EmittedError, TcpTransport.TransportError>['code'] | TcpTransport.ThrownTransportError['code'];
const complete: [Exclude<TcpTransport.ErrorCode, Listed>] extends [never] ? true : false = true;
void complete;
transport.digest({ transport: { host: 'h', port: 1 } }, { id: 'me' }, []);
const snapshot: number = transport.stats().connections.open;
void [listened, snapshot, transport.address()?.port];
transport.close(() => undefined);

// @ts-expect-error maxFrameSize must be a number
void new TcpTransport({ maxFrameSize: '1MB' });
// @ts-expect-error authorize takes 'any', 'sender-id' or a function
void new TcpTransport({ tls: { authorize: 'everyone' } });
// @ts-expect-error no such event
transport.on('message', () => undefined);
// @ts-expect-error count is only on the codes that aggregate (ERR_PEER_LIMIT, outages...)
transport.on('error', (error) => { if (error.code === 'ERR_FRAME_TOO_LARGE') void error.count; });
