/**
 * The pool's queues (src/outbound/fifo.ts): order, and memory that stays bounded by
 * what is held even when the queue never empties (a remote that reads more
 * slowly than gossip is produced, for as long as that lasts).
 */
import { expect } from 'chai';
import { Fifo } from '../../src/outbound/fifo';

describe('Fifo', () => {
  it('hands items out in the order they came in, and undefined when empty', () => {
    const fifo = new Fifo<number>();
    expect(fifo.shift()).to.equal(undefined);
    for (let i = 0; i < 5000; i++) fifo.push(i);
    expect(fifo.length).to.equal(5000);
    expect(fifo.peek()).to.equal(0);
    const out: number[] = [];
    for (let i = 0; i < 2500; i++) out.push(fifo.shift()!);
    for (let i = 5000; i < 6000; i++) fifo.push(i);
    while (fifo.length > 0) out.push(fifo.shift()!);
    expect(out).to.deep.equal(Array.from({ length: 6000 }, (_, i) => i));
    expect(fifo.shift()).to.equal(undefined);
    expect(fifo.capacity).to.equal(0);
  });

  it('keeps at most twice what it holds (plus 1024 slots) when it never empties', () => {
    const fifo = new Fifo<string>();
    for (let i = 0; i < 100; i++) fifo.push(`frame ${i}`);
    let most = 0;
    let outOfOrder = 0;
    // 200,000 frames through a queue that always holds about 100.
    for (let i = 0; i < 200_000; i++) {
      fifo.push(`frame ${i + 100}`);
      if (fifo.shift() !== `frame ${i}`) outOfOrder++;
      if (fifo.capacity > most) most = fifo.capacity;
    }
    expect(outOfOrder).to.equal(0);
    expect(fifo.length).to.equal(100);
    expect(most).to.be.at.most(2 * 101 + 1024);
  });

  it('clear() forgets everything', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 3000; i++) fifo.push(i);
    fifo.shift();
    fifo.clear();
    expect(fifo.length).to.equal(0);
    expect(fifo.capacity).to.equal(0);
    expect(fifo.shift()).to.equal(undefined);
  });
});
