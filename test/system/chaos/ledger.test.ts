import { expect } from 'chai';
import { Ledger } from './ledger';

describe('chaos Ledger', () => {
  it('balances when every frame is delivered', () => {
    const ledger = new Ledger();
    ledger.sent('a', 'b', 5);
    ledger.delivered('a', 'b', 5);
    expect(ledger.totals()).to.include({ sent: 5, delivered: 5, missing: 0 });
    expect(ledger.totals().unbalanced).to.deep.equal([]);
  });

  it('does not balance when a frame vanished without an error', () => {
    const ledger = new Ledger();
    ledger.sent('a', 'b', 5);
    ledger.delivered('a', 'b', 4);
    expect(ledger.totals().unbalanced.map((row) => [row.from, row.to, row.missing])).to.deep.equal([['a', 'b', 1]]);
  });

  it('counts dropped and lost frames as certainly lost, and written ones as maybe lost', () => {
    const ledger = new Ledger();
    ledger.sent('a', 'b', 10);
    ledger.delivered('a', 'b', 5);
    ledger.reported('a', 'b', { code: 'ERR_TLS_REFUSED', framesDropped: 2 });
    ledger.reported('a', 'b', { code: 'ERR_CONNECTION_LOST', framesWritten: 4, framesLost: 1 });
    const [row] = ledger.rows();
    expect(row).to.include({ certain: 3, maybe: 3, missing: 2, balanced: true });
  });

  it('does not balance when more frames were delivered than could have been', () => {
    const ledger = new Ledger();
    ledger.sent('a', 'b', 3);
    ledger.delivered('a', 'b', 3);
    ledger.reported('a', 'b', { framesDropped: 1 });
    expect(ledger.rows()[0]).to.include({ missing: -1, balanced: false });
  });

  it('counts an error without frame counts as uncounted, and it explains nothing', () => {
    const ledger = new Ledger();
    ledger.sent('a', 'b', 1);
    ledger.reported('a', 'b', { code: 'ECONNRESET' });
    expect(ledger.totals()).to.include({ uncounted: 1, missing: 1 });
    expect(ledger.totals().unbalanced).to.have.length(1);
  });

  it('keeps pairs apart, and lets a crashed sender miss frames without hiding them', () => {
    const ledger = new Ledger();
    ledger.sent('a#1', 'b', 4);
    ledger.delivered('a#1', 'b', 2);
    ledger.crashed('a#1');
    ledger.sent('a#2', 'b', 1);
    ledger.sent('b', 'a#2', 1);
    ledger.delivered('b', 'a#2', 1);
    const rows = ledger.rows();
    expect(rows.map((row) => [row.from, row.to, row.missing, row.crashed, row.balanced])).to.deep.equal([
      ['a#1', 'b', 2, true, true],
      ['a#2', 'b', 1, false, false],
      ['b', 'a#2', 0, false, true]
    ]);
  });
});
