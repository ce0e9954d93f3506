/**
 * Rotation and revocation reach live connections: an inbound handshake in
 * progress during setSecureContext() (stalled by a proxy; the outbound one is
 * in dial.test.ts, sessions in socket-factory.test.ts), CRLs and policy
 * changes against open pooled connections, and the plaintext deadline against
 * a plaintext connection held open across it.
 */
import { expect } from 'chai';
import { fork } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { HOST, TcpTransport, ca, closeAll, closed, codeOf, digestFrame, listening, next, pem, record, sleep, track, until } from '../support/helpers';
import { HAVE_OPENSSL, holdingProxy, makeCrl, type HoldingProxy } from '../support/trust-fixtures';

const proxies: HoldingProxy[] = [];
async function proxyTo (port: number, direction: 'to-client' | 'to-server'): Promise<HoldingProxy> {
  const p = await holdingProxy(port, direction);
  proxies.push(p);
  return p;
}

/** A mutual-TLS sender presenting `peer`, trusting `caName`. */
function sender (peer: string, keepAlive: boolean, caName = 'ca', extra: Record<string, unknown> = {}): TcpTransport {
  return track(new TcpTransport({ host: HOST, port: 0, keepAlive, ...extra, tls: { ...pem(peer), ca: ca(caName), requestCert: true } }));
}

const NEW_MATERIAL = { ...pem('next-peer-1'), ca: ca('next-ca') };

describe('rotation with a handshake in progress', () => {
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
    await closeAll();
  });

  for (const keepAlive of [false, true]) {
    const mode = keepAlive ? 'keepAlive' : 'per message';

    it(`inbound [${mode}]: a client whose certificate arrives after the rotation is checked against the new CA`, async () => {
      const receiver = await listening('mtls', { keepAlive: false }, 'peer-1');
      const seen = record(receiver);
      const proxy = await proxyTo(receiver.port, 'to-server');
      const s = sender('peer-2', keepAlive);
      record(s);
      s.digest({ id: 'peer-1', transport: { host: HOST, port: proxy.port } }, { id: 'peer-2' }, []);
      await until(() => proxy.held() > 0, undefined, "the client's certificate to be held");
      receiver.setSecureContext(NEW_MATERIAL);
      proxy.release();
      await until(() => seen.errors.length === 1, 5000, 'the late certificate to be refused');
      await sleep(50);
      expect(codeOf(seen.errors[0])).to.equal('ERR_PEER_UNTRUSTED');
      expect(seen.errors[0]).to.include({ subject: 'peer-2' });
      // The peer may present its chain up to the old root: either way, not the new CA's.
      expect((seen.errors[0] as unknown as { reason: string }).reason).to.match(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/);
      expect(seen.digests).to.have.length(0);
    });
  }

});

(HAVE_OPENSSL ? describe : describe.skip)('revocation of live connections', () => {
  afterEach(closeAll);

  it('inbound: a CRL closes the open pooled connection of the revoked peer once, and only that one', async () => {
    const receiver = await listening('mtls', { keepAlive: false }, 'peer-1');
    const seen = record(receiver);
    const revoked = sender('peer-2', true);
    const kept = sender('peer-3', true);
    const revokedErrors = record(revoked).errors;
    const to = { id: 'peer-1', transport: { host: HOST, port: receiver.port } };
    revoked.digest(to, { id: 'peer-2' }, []);
    kept.digest(to, { id: 'peer-3' }, []);
    await until(() => seen.digests.length === 2);
    expect(receiver.stats().connections.open).to.equal(2);
    receiver.setSecureContext({ crl: makeCrl('ca', ['peer-2']) });
    await until(() => seen.errors.length === 1);
    expect(codeOf(seen.errors[0])).to.equal('ERR_PEER_UNTRUSTED');
    expect(seen.errors[0]).to.include({ reason: 'CERT_REVOKED', subject: 'peer-2' });
    await until(() => receiver.stats().connections.open === 1);
    // The other peer's connection carries on; the revoked peer cannot come back.
    kept.digest(to, { id: 'peer-3' }, []);
    await until(() => seen.digests.length === 3);
    expect(receiver.stats().connections.accepted).to.equal(2);
    await sleep(50);
    revoked.digest(to, { id: 'peer-2' }, []);
    await until(() => revokedErrors.length >= 1, undefined, 'the revoked peer to be refused');
    await sleep(50);
    expect(seen.digests).to.have.length(3);
    expect(seen.errors.filter((e) => codeOf(e) === 'ERR_PEER_UNTRUSTED')).to.have.length(1);
  });

  it('outbound: a CRL naming the server of an open pooled connection reports it once and sends nothing more to it', async () => {
    const receiver = await listening('mtls', { keepAlive: false }, 'peer-1');
    const seen = record(receiver);
    const s = sender('peer-2', true);
    const errors = record(s).errors;
    const to = { id: 'peer-1', transport: { host: HOST, port: receiver.port } };
    s.digest(to, { id: 'peer-2' }, []);
    await until(() => seen.digests.length === 1);
    s.setSecureContext({ crl: makeCrl('ca', ['peer-1']) });
    await until(() => errors.length === 1);
    expect(codeOf(errors[0])).to.equal('ERR_PEER_UNTRUSTED');
    expect(errors[0]).to.include({ reason: 'CERT_REVOKED', subject: 'peer-1' });
    s.digest(to, { id: 'peer-2' }, []);
    await until(() => errors.length === 2);
    expect(codeOf(errors[1])).to.equal('CERT_REVOKED');
    await sleep(50);
    expect(seen.digests).to.have.length(1);
  });
});

describe('authorize policy re-checked at a rotation', () => {
  afterEach(closeAll);

  it('closes an inbound connection whose last sender the function policy now refuses', async () => {
    const denied = new Set<string>();
    const policy = (peer: { id: string }): boolean => !denied.has(peer.id);
    const receiver = await listening('mtls', { keepAlive: false, tls: { ...pem('peer-1'), ca: ca(), requestCert: true, authorize: policy as never } });
    const seen = record(receiver);
    const a = sender('peer-2', true);
    const b = sender('peer-3', true);
    const to = { id: 'peer-1', transport: { host: HOST, port: receiver.port } };
    a.digest(to, { id: 'peer-2' }, []);
    b.digest(to, { id: 'peer-3' }, []);
    await until(() => seen.digests.length === 2);
    denied.add('peer-2');
    receiver.setSecureContext({});
    await until(() => seen.errors.length === 1);
    expect(seen.errors[0]).to.include({ code: 'ERR_PEER_UNTRUSTED', reason: 'authorize' });
    expect(receiver.stats().connections.open).to.equal(1);
  });
});

describe('tls.plaintext.until against live connections', () => {
  afterEach(closeAll);

  it('closes a plaintext connection opened before the deadline at the deadline: a forger in its own process delivers nothing after it', async function () {
    this.timeout(30000);
    // From 127.0.0.2: 5 frames, each written once the previous one arrived,
    // then a pause across the deadline (see test/support/plaintext-forger.ts).
    const child = fork(join(__dirname, '..', 'support', 'plaintext-forger.js'), ['5'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const send = (message: unknown): void => { if (child.connected) child.send(message as string, () => {}); };
    try {
      // The deadline starts when the forger is loaded (its start-up, seconds
      // on a loaded machine, is not in the window). 800 ms is the window for
      // a loopback connect and five frames each acknowledged over IPC.
      await new Promise((resolve) => child.once('message', resolve));
      const until0 = Date.now() + 800;
      const receiver = await listening('mtls', { tls: { ...pem('peer-1'), ca: ca(), requestCert: true, plaintext: { accept: true, until: until0 } } });
      const seen = record(receiver);
      const deliveredAt: number[] = [];
      receiver.on('digest', () => { deliveredAt.push(Date.now()); send('ack'); });
      send({ port: receiver.port });
      // The connection must be closed at the deadline, without the forger
      // writing again. Only if it is still open long after (liveness bound, a
      // failure) is the forger told to write on, to show what then arrives.
      const past = new Promise((resolve) => setTimeout(resolve, until0 - Date.now() + 10000).unref());
      if (await Promise.race([exited.then(() => 'exited'), past]) !== 'exited') send('go');
      await exited;
      expect(deliveredAt, 'the frames before the deadline arrive').to.have.length(5);
      expect(deliveredAt.every((t) => t < until0)).to.equal(true);
      // The connection was closed during the pause: the forger never wrote again.
      expect(Number(out.trim()), 'frames the forger could write').to.equal(5);
      expect(seen.errors.map(codeOf)).to.deep.equal(['ERR_PLAINTEXT_REFUSED']);
      expect(receiver.stats().connections.open).to.equal(0);
    } finally {
      child.kill();
    }
  });

  it('refuses a plaintext frame read after the deadline even before the timer has run', async () => {
    const until0 = Date.now() + 300;
    const receiver = await listening('mtls', { tls: { ...pem('peer-1'), ca: ca(), requestCert: true, plaintext: { accept: true, until: until0 } } });
    const seen = record(receiver);
    // The first frame's listener holds the event loop past the deadline, so
    // the second frame of the same chunk is read after it, before any timer.
    receiver.on('digest', (peer: { id: string }) => {
      if (peer.id === 'first') while (Date.now() <= until0 + 20) { /* hold the loop */ }
    });
    const socket = netConnect({ host: HOST, port: receiver.port });
    socket.on('error', () => {});
    await next(socket, 'connect');
    socket.write(digestFrame('first') + '\r\n' + digestFrame('second') + '\r\n');
    await closed(socket);
    expect(seen.digests.map((d) => (d[0] as { id: string }).id)).to.deep.equal(['first']);
    expect(seen.errors.map(codeOf)).to.deep.equal(['ERR_PLAINTEXT_REFUSED']);
  });

  it('keeps TLS connections open across the deadline', async () => {
    const until0 = Date.now() + 200;
    const receiver = await listening('mtls', { tls: { ...pem('peer-1'), ca: ca(), requestCert: true, plaintext: { accept: true, until: until0 } } });
    const seen = record(receiver);
    const tls = tlsConnect({ host: HOST, port: receiver.port, ...pem('peer-2'), ca: ca() });
    tls.on('error', () => {});
    await next(tls, 'secureConnect');
    tls.write(digestFrame('peer-2') + '\n');
    await until(() => seen.digests.length === 1);
    await sleep(until0 - Date.now() + 100);
    tls.write(digestFrame('peer-2') + '\n');
    await until(() => seen.digests.length === 2);
    expect(seen.errors).to.deep.equal([]);
    tls.destroy();
  });
});
