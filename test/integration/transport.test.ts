import { expect } from 'chai';
import { closeAll, codeOf, listening, next, record, tcpFrom, track, until, TcpTransport, MODES } from '../support/helpers';
import { transportSuite } from './transport.suite';

for (const mode of MODES) transportSuite(mode);

describe('TcpTransport', () => {
  afterEach(closeAll);

  describe('constructor', () => {
    it("defaults to host 'localhost' and port 9742, like 0.1.6", () => {
      const t = new TcpTransport();
      expect(t.host).to.equal('localhost');
      expect(t.port).to.equal(9742);
      expect(t.server).to.equal(null);
      expect(t.address()).to.equal(null);
    });

    it('listens on 9742 when no port is given', async function () {
      const t = track(new TcpTransport({ host: '127.0.0.1' }));
      const seen = record(t);
      t.listen();
      await Promise.race([next(t, 'listening'), next(t, 'error')]);
      if (seen.errors.length > 0 && (seen.errors[0] as NodeJS.ErrnoException).code === 'EADDRINUSE') this.skip();
      expect(t.address()!.port).to.equal(9742);
    });

    it('throws a TypeError naming the option, before any network activity', () => {
      expect(() => new TcpTransport({ maxFrameSize: -1 })).to.throw(RangeError, /options\.maxFrameSize/);
    });

    it('does not emit during construction', () => {
      let emitted = 0;
      const emit = TcpTransport.prototype.emit;
      TcpTransport.prototype.emit = function (this: TcpTransport, ...args: Parameters<typeof emit>) { emitted++; return emit.apply(this, args); } as typeof emit;
      try {
        void new TcpTransport({ port: 0 });
      } finally {
        TcpTransport.prototype.emit = emit;
      }
      expect(emitted).to.equal(0);
    });
  });

  describe('inbound deadlines and the wall clock', () => {
    it('closes a stalled frame at frameTimeout even when the wall clock steps back an hour meanwhile, and still admits its source', async () => {
      const victim = await listening('plain', { frameTimeout: 300, idleTimeout: 60000 });
      const seen = record(victim);
      const socket = tcpFrom(victim.port, '127.0.0.15');
      socket.write('{"digest":[');
      await until(() => victim.stats().bytes.in > 0, undefined, 'the half frame read');
      const realNow = Date.now;
      // An NTP step, or an operator fixing the clock: Date.now() jumps an hour back.
      Date.now = () => realNow() - 3_600_000;
      try {
        await until(() => seen.errors.some((e) => codeOf(e) === 'ERR_FRAME_TIMEOUT'), 5000, 'the stalled frame closed');
        const again = tcpFrom(victim.port, '127.0.0.15');
        again.write('{"digest":[');
        await until(() => seen.errors.length >= 2, 5000, 'the second stalled frame closed');
        expect(seen.errors.map(codeOf)).to.deep.equal(['ERR_FRAME_TIMEOUT', 'ERR_FRAME_TIMEOUT']);
        again.destroy();
      } finally {
        Date.now = realNow;
        socket.destroy();
      }
    });
  });
});
