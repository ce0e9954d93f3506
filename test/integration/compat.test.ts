/**
 * Rolling upgrade from real 0.1.6 configurations: a port given as a decimal
 * string (from an environment variable) in options and on the wire, and
 * host ''. A mixed cluster whose 0.1.6 node advertises a string port must not
 * partition.
 */
import { expect } from 'chai';
import { OldTcpTransport as Old, freePort, type OldTransport } from '../../scripts/typed-packages';
import { HOST, TcpTransport, closeAll, codeOf, convergeOver, listening, rawClient, record, track, until } from '../support/helpers';

async function sendRaw (port: number, text: string): Promise<void> {
  (await rawClient('plain', port)).end(text);
}

describe('compatibility with 0.1.6 configurations', () => {
  const olds: OldTransport[] = [];
  afterEach(async () => {
    await closeAll();
    await Promise.all(olds.splice(0).map((o) => new Promise<void>((resolve) => o.close(resolve))));
  });

  it('takes port as a decimal string and host \'\' in the constructor and in listen()', async () => {
    const port = await freePort();
    const t = track(new TcpTransport({ host: '', port: String(port) }));
    expect(t.host).to.equal('localhost');
    expect(t.port).to.equal(port);
    await new Promise<void>((resolve) => t.listen({ host: HOST, port: String(port) }, resolve));
    expect(t.address()!.port).to.equal(port);
  });

  it('takes a string port in a message and delivers it as a number', async () => {
    const receiver = await listening('plain');
    const seen = record(receiver);
    const frame = JSON.stringify({
      digest: [{ id: 'old', maxVersionSeen: 1, transport: { host: HOST, port: '9742' } }],
      sender: { id: 'old', transport: { host: HOST, port: '9742' } }
    });
    await sendRaw(receiver.port, frame);
    await until(() => seen.digests.length === 1);
    const [sender, digest] = seen.digests[0] as [{ transport: { port: unknown } }, Array<{ transport: { port: unknown } }>];
    expect(sender.transport.port).to.equal(9742);
    expect(digest[0]!.transport.port).to.equal(9742);
  });

  for (const bad of ['70000', '-1', '97 42', '0x10', '']) {
    it(`refuses the string port ${JSON.stringify(bad)} on the wire with ERR_INVALID_MESSAGE`, async () => {
      const receiver = await listening('plain');
      const seen = record(receiver);
      await sendRaw(receiver.port, JSON.stringify({ digest: [], sender: { id: 'old', transport: { host: HOST, port: bad } } }));
      await until(() => seen.errors.length === 1);
      expect(codeOf(seen.errors[0])).to.equal('ERR_INVALID_MESSAGE');
      expect(seen.digests).to.have.length(0);
    });
  }

  it('a mixed cluster converges when its 0.1.6 node advertises a string port', async function () {
    this.timeout(20000);
    const oldPort = String(await freePort());
    // As a 0.1.6 deployment reading PORT from the environment would be configured.
    const old = new Old({ host: HOST, port: oldPort as unknown as number });
    old.on('error', () => {});
    await new Promise<void>((resolve) => old.listen(resolve));
    olds.push(old);
    const endpoints: Array<{ transport: unknown; port: number | string }> = [{ transport: old, port: oldPort }];
    const ours: TcpTransport[] = [];
    for (let i = 0; i < 2; i++) {
      const t = await listening('plain');
      ours.push(t);
      endpoints.push({ transport: t, port: t.port });
    }
    await convergeOver(endpoints, 50, 'convergence with a 0.1.6 node advertising a string port');
    for (const t of ours) expect(t.stats().errors.ERR_INVALID_MESSAGE ?? 0, 'no message refused for its string port').to.equal(0);
  });
});
