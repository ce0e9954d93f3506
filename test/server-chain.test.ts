/**
 * The server certificate an outbound TLS connection reads. Node's identity
 * check asks for the whole chain (getPeerCertificate(true), 0.6-0.8 ms of CPU
 * per full handshake on Node 20); with our own `ca` and Node's default check,
 * the transport gives that check the leaf alone. These tests hold it to what
 * the whole chain gave: the same identity answers, the whole chain for a check
 * of the caller's own, and the same verdicts when a rotation re-checks the
 * server against a new CA or CRL, whether the server's CA is ours or an
 * intermediate it sent itself.
 */
import { expect } from 'chai';
import { createServer as tlsServer, TLSSocket, type PeerCertificate, type Server } from 'node:tls';
import { makeCa, makePeer, LOOPBACK, type Pem } from '../scripts/generate-certs';
import { resolveOptions } from '../src/options';
import { SocketFactory } from '../src/socket-factory';
import { presentedChain, trustStore, verifyChain } from '../src/trust';
import { HOST, TcpTransport, ca, closeAll, codeOf, listening, next, pem, record, track, until } from './helpers';
import { HAVE_OPENSSL, makeCrl } from './trust-fixtures';

/** Counts getPeerCertificate(true) calls on every TLS socket of this process while `body` runs. */
async function countingDetailedReads (body: () => Promise<void>): Promise<number> {
  const original = TLSSocket.prototype.getPeerCertificate;
  let detailed = 0;
  TLSSocket.prototype.getPeerCertificate = function (this: TLSSocket, full?: boolean) {
    if (full === true) detailed++;
    return original.call(this, full as true);
  } as typeof original;
  try {
    await body();
  } finally {
    TLSSocket.prototype.getPeerCertificate = original;
  }
  return detailed;
}

/** PEM blocks one after the other, each on its own lines. */
function bundle (...pems: string[]): string {
  return pems.map((block) => `${block.trim()}\n`).join('');
}

async function serve (identity: Pem, chain: string[] = []): Promise<{ server: Server; port: number }> {
  const server = tlsServer({ key: identity.key, cert: bundle(identity.cert, ...chain) }, (socket) => socket.resume());
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** A client factory trusting `caPem`; `connect()` resolves once the handshake is done. */
function client (caPem: string, extra: Record<string, unknown> = {}): { factory: SocketFactory; connect: (port: number) => Promise<TLSSocket>; close: () => void } {
  const factory = new SocketFactory(resolveOptions({ tls: { ...pem('peer-2'), ca: caPem, ...extra } }).tls, undefined);
  const sockets: TLSSocket[] = [];
  return {
    factory,
    async connect (port: number): Promise<TLSSocket> {
      const socket = factory.connect({ host: HOST, port }) as TLSSocket;
      sockets.push(socket);
      socket.on('error', () => {});
      await next(socket, 'secureConnect');
      return socket;
    },
    close: () => { for (const socket of sockets) socket.destroy(); }
  };
}

describe('the server certificate an outbound TLS connection reads', () => {
  afterEach(closeAll);

  it('reads the leaf alone for the default identity check: a pooled mutual-TLS send reads no chain, and a wrong name is still refused', async () => {
    const receiver = await listening('mtls', {}, 'peer-1');
    const seen = record(receiver);
    const sender = track(new TcpTransport({ host: HOST, port: 0, tls: { ...pem('peer-2'), ca: ca(), requestCert: true } }));
    record(sender);
    const detailed = await countingDetailedReads(async () => {
      sender.digest({ id: 'peer-1', transport: { host: HOST, port: receiver.port } }, { id: 'peer-2' }, []);
      await until(() => seen.digests.length === 1, 5000, 'the digest');
    });
    expect(detailed, 'getPeerCertificate(true) calls').to.equal(0);

    // The identity check itself is Node's, on the leaf: a server named otherwise is refused.
    const { server, port } = await serve(pem('wrong-name-peer'));
    try {
      const errors = record(sender).errors;
      sender.digest({ id: 'x', transport: { host: HOST, port } }, { id: 'peer-2' }, []);
      await until(() => errors.length === 1, 5000, 'the refusal');
      expect(codeOf(errors[0])).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      server.close();
    }
  });

  it("hands a check of the caller's own the whole chain, as Node does", async () => {
    const receiver = await listening('tls', {}, 'peer-1');
    const seen = record(receiver);
    const given: PeerCertificate[] = [];
    const sender = track(new TcpTransport({
      host: HOST,
      port: 0,
      tls: { ...pem('peer-2'), ca: ca(), checkServerIdentity: (_name: string, cert: PeerCertificate) => { given.push(cert); return undefined; } }
    }));
    record(sender);
    sender.digest({ id: 'peer-1', transport: { host: HOST, port: receiver.port } }, { id: 'peer-2' }, []);
    await until(() => seen.digests.length === 1, 5000, 'the digest');
    expect(given).to.have.length(1);
    expect((given[0] as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate?.subject).to.deep.include({ CN: 'gossipmonger test CA' });
  });

  it('re-checks a leaf read alone exactly as the whole chain: the same verdict against every new CA, bundle and CRL', async function () {
    const { server, port } = await serve(pem('peer-1'));
    const c = client(ca());
    try {
      const socket = await c.connect(port);
      const leaf = c.factory.serverCertificate(socket)!;
      expect(leaf.subject).to.deep.include({ CN: 'peer-1' });
      const whole = socket.getPeerCertificate(true);
      expect(whole.issuerCertificate, 'the whole chain, read for the comparison').to.not.equal(undefined);
      expect(c.factory.serverChain(leaf).map((cert) => cert.subject)).to.deep.equal(['CN=peer-1', 'CN=gossipmonger test CA']);
      const stores = {
        'the same CA': trustStore(ca(), undefined, []),
        'another CA': trustStore(ca('next-ca'), undefined, []),
        'a bundle of both': trustStore(bundle(ca(), ca('next-ca')), undefined, []),
        'an unrelated CA': trustStore(ca('rogue-ca'), undefined, []),
        ...(HAVE_OPENSSL ? { 'a CRL revoking it': trustStore(ca(), makeCrl('ca', ['peer-1']), []) } : {})
      };
      const verdicts: Record<string, [string | undefined, string | undefined]> = {};
      for (const [label, store] of Object.entries(stores)) verdicts[label] = [verifyChain(c.factory.serverChain(leaf), store), verifyChain(presentedChain(whole), store)];
      for (const [label, [alone, chain]] of Object.entries(verdicts)) expect(alone, label).to.equal(chain);
      // The comparison is not empty: the stores give different answers.
      expect(new Set(Object.values(verdicts).map(([v]) => v)).size).to.be.above(1);
    } finally {
      c.close();
      server.close();
    }
  });

  it('keeps the chain a server sends with its leaf (an intermediate CA): a rotation to the same root re-checks it as trusted', async function () {
    this.timeout(10000);
    const root = pem('ca');
    const intermediate = await makeCa('gossipmonger intermediate CA', 'ec', 30, root);
    const leafPem = await makePeer(intermediate, { cn: 'peer-behind-intermediate', ...LOOPBACK });
    const { server, port } = await serve(leafPem, [intermediate.cert]);
    const c = client(ca());
    try {
      const detailed = await countingDetailedReads(async () => {
        const socket = await c.connect(port);
        const certificate = c.factory.serverCertificate(socket)!;
        expect(certificate.subject).to.deep.include({ CN: 'peer-behind-intermediate' });
        expect(c.factory.serverChain(certificate).map((cert) => cert.subject)).to.deep.equal(['CN=peer-behind-intermediate', 'CN=gossipmonger intermediate CA', 'CN=gossipmonger test CA']);
        expect(verifyChain(c.factory.serverChain(certificate), trustStore(ca(), undefined, []))).to.equal(undefined);
        expect(verifyChain(c.factory.serverChain(certificate), trustStore(ca('next-ca'), undefined, []))).to.equal('SELF_SIGNED_CERT_IN_CHAIN');
      });
      expect(detailed, 'the chain was read once, for the intermediate').to.equal(1);
    } finally {
      c.close();
      server.close();
    }

    // The same leaf served alone, to a client that has the intermediate in its own `ca`:
    // read alone, its chain is rebuilt from that `ca` up to the root, and re-checks as the whole chain does.
    const alone = await serve(leafPem);
    const d = client(bundle(ca(), intermediate.cert));
    try {
      let whole: PeerCertificate | undefined;
      let leaf: PeerCertificate | undefined;
      const detailed = await countingDetailedReads(async () => {
        const socket = await d.connect(alone.port);
        leaf = d.factory.serverCertificate(socket)!;
      });
      expect(detailed, 'nothing read for the chain').to.equal(0);
      const socket = await d.connect(alone.port);
      whole = socket.getPeerCertificate(true);
      expect(d.factory.serverChain(leaf).map((cert) => cert.subject)).to.deep.equal(['CN=peer-behind-intermediate', 'CN=gossipmonger intermediate CA', 'CN=gossipmonger test CA']);
      const stores = [ca(), intermediate.cert, ca('next-ca'), bundle(ca(), intermediate.cert), bundle(ca('next-ca'), intermediate.cert)];
      for (const material of stores) {
        const store = trustStore(material, undefined, []);
        expect(verifyChain(d.factory.serverChain(leaf), store)).to.equal(verifyChain(presentedChain(whole), store));
      }
    } finally {
      d.close();
      alone.server.close();
    }
  });
});
