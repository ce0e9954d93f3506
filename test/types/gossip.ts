// Compiled by test/integration/module.test.ts: the README's typed usage of
// gossipmonger with this transport. The shipped declaration is opted into
// with one line; the 'error' event carries this package's error classes and
// Node's errors, and `switch (error.code)` narrows to the class.
/// <reference types="gossipmonger-tls-transport/gossipmonger" />
import Gossipmonger = require('gossipmonger');
import TcpTransport = require('gossipmonger-tls-transport');

class StoppableGossipmonger extends Gossipmonger {
  stopped = false;
  override gossip (): void { if (!this.stopped) super.gossip(); }
  stop (): void { this.stopped = true; }
}

const transport = new TcpTransport({ host: 'localhost', port: 0 });
const gossip = new StoppableGossipmonger({ id: 'node-a', transport: { host: 'localhost', port: transport.port } }, {
  transport,
  seeds: [{ id: 'node-b', transport: { host: 'localhost', port: 9002 } }]
});

gossip.on('update', (peerId, key, value) => {
  const line: string = `${peerId} set ${key} = ${String(value)}`;
  void line;
});

/** Every kind of error, narrowed by code. */
function describe (error: TcpTransport.EmittedError): string {
  const where = `${error.remoteAddress ?? '?'}:${error.remotePort ?? '?'} (${error.peerId ?? 'no id'})`;
  switch (error.code) {
    case 'ERR_TLS_HANDSHAKE': {
      const reason: string = error.reason;
      return `${where}: handshake refused: ${reason}`;
    }
    case 'ERR_CONNECTION_LOST': {
      const lost: number = error.framesLost;
      return `${where}: ${lost} frame(s) lost`;
    }
    case 'ERR_CONNECTIONS_REFUSED': {
      const count: number = error.count;
      return `${where}: ${count} refused from ${error.source}`;
    }
    case 'ERR_PEER_UNAUTHORIZED':
      return `${where}: ${error.senderId} refused`;
    case 'ECONNREFUSED':
    case 'ERR_CONNECT_TIMEOUT':
      // An outage is reported once per interval: count says how many failures.
      return `${where}: unreachable (${error.count ?? 1} time(s), ${error.framesDropped ?? 0} frame(s) dropped)`;
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `${where}: certificate problem ${error.code}`;
    default:
      return `${where}: ${error.code ?? 'no code'}: ${error.message}`;
  }
}
gossip.on('error', (error) => { void describe(error); });
transport.on('error', (error) => {
  if (error instanceof TcpTransport.TlsHandshakeError) void error.reason;
});

try {
  void new TcpTransport({ maxFrameSize: -1 });
} catch (error) {
  // A wrong option throws (never emits) a TypeError or RangeError with a code.
  if ((error as { code?: unknown }).code === 'ERR_INVALID_OPTION') {
    const thrown = error as TcpTransport.InvalidOptionError;
    const code: TcpTransport.ThrownCode = thrown.code;
    void [code, thrown.message];
  }
}

void gossip.storage.get('node-b')?.data.greeting;
gossip.update('greeting', 'hello');
gossip.gossip();
gossip.stop();
void transport.close();

// Wrong usages must not compile:
gossip.on('error', (error) => {
  // @ts-expect-error a misspelt code of this package is no code at all
  if (error.code === 'ERR_CONECTION_LOST') void error;
  // @ts-expect-error reason exists on ERR_TLS_HANDSHAKE only: narrow first
  void error.reason;
});
// @ts-expect-error update takes a key and a value
gossip.update('greeting');
// @ts-expect-error gossipmonger has no such event
gossip.on('updated', () => undefined);
// @ts-expect-error a peer's id is a string
void new Gossipmonger({ id: 1 });
