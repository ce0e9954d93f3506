// Compiled by test/integration/module.test.ts: an ES module importing the package gets
// ESM typings (dist/esm/index.d.mts, generated at build) with the default and the named exports.
import TcpTransport, { TcpTransport as Named, TransportError, ConnectionClosedError, type TransportOptions, type EventInfo } from 'gossipmonger-tls-transport';

const options: TransportOptions = { host: '127.0.0.1', port: '9742', tls: { key: 'k', cert: 'c', ca: 'ca', requestCert: true } };
const transport: TcpTransport = new TcpTransport(options);
const same: Named = new Named({ port: 0 });
transport.on('digest', (sender, digest, info: EventInfo) => {
  void [sender.id, digest.length, info.secure];
});
transport.on('error', (error) => {
  if (error instanceof TransportError) {
    const where: string | undefined = error.remoteAddress;
    void [where, error.peerId, error instanceof ConnectionClosedError];
  }
});
const closed: Promise<void> = transport.close();
void [same, closed];

// @ts-expect-error misspelt option
void new TcpTransport({ keepalive: true });

// gossipmonger, typed by the declaration this package ships (opted into in gossip.ts,
// which is in the same compilation): the default import of an ES module.
import Gossipmonger from 'gossipmonger';
const gossip = new Gossipmonger({ id: 'node-a', transport: { host: '127.0.0.1', port: transport.port } }, { transport, seeds: [] });
gossip.on('error', (error) => {
  if (error.code === 'ERR_PLAINTEXT_REFUSED') void error.remoteAddress;
});
