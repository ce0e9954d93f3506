/**
 * diagnostics_channel: every lifecycle channel publishes what the README says,
 * and NODE_DEBUG=gossipmonger-tls-transport logs through util.debuglog.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { HOST, closeAll, codeOf, listening, peerAt, rawClient, record, sender, track, transport, until, type Mode } from '../support/helpers';

const NAMES = ['inbound:accepted', 'inbound:refused', 'inbound:closed', 'outbound:opened', 'outbound:failed', 'outbound:closed', 'frame:refused', 'tls:rotated', 'error'] as const;
type Name = typeof NAMES[number];

describe('diagnostics', () => {
  const seen = new Map<Name, Array<Record<string, unknown>>>();
  const handlers = new Map<Name, (message: unknown) => void>();
  beforeEach(() => {
    for (const name of NAMES) {
      seen.set(name, []);
      const handler = (message: unknown): void => { seen.get(name)!.push(message as Record<string, unknown>); };
      handlers.set(name, handler);
      subscribe(`gossipmonger-tls-transport:${name}`, handler);
    }
  });
  afterEach(async () => {
    for (const name of NAMES) unsubscribe(`gossipmonger-tls-transport:${name}`, handlers.get(name)!);
    await closeAll();
  });
  const of = (name: Name): Array<Record<string, unknown>> => seen.get(name)!;

  for (const mode of ['plain', 'mtls'] as Mode[]) {
    it(`[${mode}] publishes inbound accepted/closed and outbound opened/closed for one message sent per connection`, async () => {
      const receiver = await listening(mode);
      const inbound = record(receiver);
      const t = track(transport(mode, { keepAlive: false }, 'peer-2'));
      record(t);
      t.digest(peerAt(receiver), sender, []);
      await until(() => inbound.digests.length === 1 && of('inbound:closed').length === 1 && of('outbound:closed').length === 1);
      expect(of('inbound:accepted')).to.have.length(1);
      expect(of('inbound:accepted')[0]).to.have.property('remoteAddress').that.matches(/127\.0\.0\.1/);
      expect(of('inbound:accepted')[0]!.remotePort).to.be.a('number');
      expect(of('inbound:closed')[0]).to.include({ error: undefined });
      expect(of('outbound:opened')[0]).to.deep.equal({ host: HOST, port: receiver.port, secure: mode !== 'plain', resumed: false });
      expect(of('outbound:closed')[0]).to.deep.equal({ host: HOST, port: receiver.port, error: undefined });
      expect(of('outbound:failed')).to.have.length(0);
      expect(of('frame:refused')).to.have.length(0);
    });
  }

  it('publishes outbound:failed with the error when the dial fails', async () => {
    const gone = await listening('plain');
    const port = gone.port;
    await gone.close();
    const t = track(transport('plain'));
    record(t);
    t.digest(peerAt({ port }), sender, []);
    await until(() => of('outbound:failed').length === 1);
    const message = of('outbound:failed')[0]!;
    expect(message).to.include({ host: HOST, port });
    expect(codeOf(message.error)).to.equal('ECONNREFUSED');
  });

  it('publishes frame:refused, then inbound:closed with the same error, for a bad frame', async () => {
    const receiver = await listening('plain');
    const inbound = record(receiver);
    (await rawClient('plain', receiver.port)).end('{"not":"a message"}\n');
    await until(() => inbound.errors.length === 1 && of('inbound:closed').length === 1);
    const refused = of('frame:refused');
    expect(refused).to.have.length(1);
    expect(codeOf(refused[0]!.error)).to.equal('ERR_INVALID_MESSAGE');
    expect(refused[0]!.remoteAddress).to.match(/127\.0\.0\.1/);
    expect(refused[0]!.error).to.equal(inbound.errors[0]);
    expect(of('inbound:closed')[0]!.error).to.equal(inbound.errors[0]);
  });

  it('publishes inbound:refused with a reason at the connection cap', async () => {
    const receiver = await listening('plain', { maxConnections: 1 });
    record(receiver);
    const first = await rawClient('plain', receiver.port);
    first.write('{"unfinished":');
    await until(() => receiver.stats().bytes.in > 0);
    const second = await rawClient('plain', receiver.port);
    await until(() => of('inbound:refused').length === 1);
    const message = of('inbound:refused')[0]!;
    expect(message.reason).to.be.oneOf(['max-connections', 'evicted']);
    expect(message.remoteAddress).to.match(/127\.0\.0\.1/);
    expect(receiver.stats().refusals[message.reason as string]).to.equal(1);
    first.destroy();
    second.destroy();
  });

  it('logs with NODE_DEBUG=gossipmonger-tls-transport, and not without it', async () => {
    const script = `
      const T = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'index.js'))});
      const t = new T({ host: '127.0.0.1', port: 0 });
      t.on('error', () => t.close());
      t.digest({ id: 'x', transport: { host: '127.0.0.1', port: 1 } }, { id: 'y' }, []);`;
    const run = (env: NodeJS.ProcessEnv): Promise<string> => new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { env, timeout: 10000 }, (error, _out, err) => error ? reject(error) : resolve(err));
    });
    const { NODE_DEBUG: _, ...env } = process.env;
    expect(await run({ ...env, NODE_DEBUG: 'gossipmonger-tls-transport' })).to.match(/^GOSSIPMONGER-TLS-TRANSPORT \d+: outbound 127\.0\.0\.1:1 failed \(ECONNREFUSED/m);
    expect(await run(env)).to.equal('');
  });

  it('NODE_DEBUG on a 2-node TLS cluster prints a line for each accepted and opened connection, each refusal and each reload', async () => {
    // Node b admits only 127.0.0.1; a stranger from 127.0.0.2 is refused before
    // its handshake, a plaintext client is refused after its first byte, and a
    // rotation swaps b's material in. Every step waits for the one before it.
    const script = `
      const T = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'index.js'))});
      const { readFileSync } = require('node:fs');
      const net = require('node:net');
      const dir = ${JSON.stringify(join(__dirname, '..', '..', '..', 'certs'))};
      const pem = (n) => ({ key: readFileSync(dir + '/' + n + '.key', 'utf8'), cert: readFileSync(dir + '/' + n + '.crt', 'utf8') });
      const ca = readFileSync(dir + '/ca.crt', 'utf8');
      const a = new T({ host: '127.0.0.1', port: 0, tls: { ...pem('peer-1'), ca, requestCert: true } });
      const b = new T({ host: '127.0.0.1', port: 0, allowFrom: ['127.0.0.1'], tls: { ...pem('peer-2'), ca, requestCert: true } });
      const errors = [];
      a.on('error', (e) => errors.push(e.code)); b.on('error', (e) => errors.push(e.code));
      const step = (f) => new Promise((r) => f(r));
      (async () => {
        await step((r) => a.listen(r)); await step((r) => b.listen(r));
        await step((r) => { b.once('digest', () => r()); a.digest({ id: 'b', transport: { host: '127.0.0.1', port: b.port } }, { id: 'a', transport: { host: '127.0.0.1', port: a.port } }, []); });
        await step((r) => { const s = net.connect({ host: '127.0.0.1', port: b.port, localAddress: '127.0.0.2' }); s.on('error', () => {}); s.on('close', r); });
        await step((r) => { const s = net.connect({ host: '127.0.0.1', port: b.port }, () => s.write('{}\\n')); s.on('data', () => {}); s.on('error', r); s.on('end', r); s.on('close', r); });
        b.setSecureContext(pem('peer-2'));
        await a.close(); await b.close();
      })();`;
    const stderr = await new Promise<string>((resolve, reject) => {
      const { NODE_DEBUG: _, ...env } = process.env;
      execFile(process.execPath, ['-e', script], { env: { ...env, NODE_DEBUG: 'gossipmonger-tls-transport' }, timeout: 20000 }, (error, _out, err) => error ? reject(error) : resolve(err));
    });
    expect(stderr).to.match(/: inbound 127\.0\.0\.1:\d+ accepted$/m);
    expect(stderr).to.match(/: outbound 127\.0\.0\.1:\d+ opened \(TLS\)$/m);
    expect(stderr).to.match(/: inbound 127\.0\.0\.2:\d+ refused \(not-allowed\)$/m);
    expect(stderr).to.match(/: inbound 127\.0\.0\.1:\d+ closed \(ERR_PLAINTEXT_REFUSED: /m);
    expect(stderr).to.match(/: error ERR_PLAINTEXT_REFUSED: /m);
    expect(stderr).to.match(/: secure context replaced \(generation 1, certificate expires \d{4}-/m);
  });
});
