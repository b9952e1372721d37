// How many small calls become few (batcher.ts, used by a crawl's look-ups and writes and by the
// webhook's tag pushes): against a `run` the test holds and lets go, which calls go together, how
// many batches run at once, how long an idle batcher gathers, and what each caller gets back when
// a batch fails.
import { describe, expect, it } from 'vitest';
import { batcher } from '../../src/catalog/batcher.js';

/** A run whose every batch waits until the test lets it go; it logs the batches it was sent. */
function heldRun(fail: (key: string) => boolean = () => false) {
  const batches: string[][] = [];
  const alone: string[] = [];
  const waiting: (() => void)[] = [];
  const held = (): Promise<void> => new Promise((resolve) => waiting.push(resolve));
  return {
    batches,
    alone,
    /** Lets every batch sent so far finish, then lets what that starts run to where it waits. */
    async release(): Promise<void> {
      for (const go of waiting.splice(0)) go();
      await settle();
    },
    run: async (keys: string[]): Promise<string[]> => {
      batches.push(keys);
      await held();
      if (keys.some(fail)) throw new Error('the batch failed');
      return keys.map((k) => `${k}!`);
    },
    runOne: async (key: string): Promise<string> => {
      alone.push(key);
      await held();
      if (fail(key)) throw new Error(`${key} refused`);
      return `${key}!`;
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

describe('calls gathered into batches', () => {
  it('sends the calls of one moment as one batch, and the calls made while it runs as the next', async () => {
    const h = heldRun();
    const call = batcher({ max: 10 }, h.run, h.runOne);
    const first = [call('a'), call('b')];
    await settle();
    const second = [call('c'), call('d'), call('e')];
    await settle();
    expect(h.batches).toEqual([['a', 'b']]);
    await h.release();
    expect(h.batches).toEqual([['a', 'b'], ['c', 'd', 'e']]);
    await h.release();
    expect(await Promise.all([...first, ...second])).toEqual(['a!', 'b!', 'c!', 'd!', 'e!']);
  });

  it('runs at most inFlight batches at once, at most max calls each, and starts the next as one ends', async () => {
    const h = heldRun();
    const sizes: number[] = [];
    const call = batcher({ max: 2, inFlight: 2, onBatch: (n) => sizes.push(n) }, h.run, h.runOne);
    const a = call('a');
    await settle();
    const b = call('b');
    await settle();
    const rest = ['c', 'd', 'e', 'f', 'g'].map(call);
    await settle();
    // Two slots: a and b each went at once; the rest wait.
    expect(h.batches).toEqual([['a'], ['b']]);
    await h.release();
    expect(h.batches.slice(2)).toEqual([['c', 'd'], ['e', 'f']]);
    await h.release();
    expect(h.batches.slice(4)).toEqual([['g']]);
    await h.release();
    expect(await Promise.all([a, b, ...rest])).toEqual(['a!', 'b!', 'c!', 'd!', 'e!', 'f!', 'g!']);
    expect(sizes).toEqual([1, 1, 2, 2, 1]);
  });

  it('when idle, gathers for gatherMs before the first batch; when busy, does not wait', async () => {
    const h = heldRun();
    const call = batcher({ max: 10, gatherMs: 40 }, h.run, h.runOne);
    const a = call('a');
    await settle();
    expect(h.batches).toEqual([]);
    const b = call('b');
    await new Promise((r) => setTimeout(r, 60));
    expect(h.batches).toEqual([['a', 'b']]);
    const c = call('c');
    await h.release();
    // Busy when c came: it went as soon as the batch ended, with no gathering.
    expect(h.batches).toEqual([['a', 'b'], ['c']]);
    await h.release();
    expect(await Promise.all([a, b, c])).toEqual(['a!', 'b!', 'c!']);
  });

  it('runs each call of a failed batch again alone, one after the other: only the bad one fails, with its own error', async () => {
    const h = heldRun((k) => k === 'bad');
    const call = batcher({ max: 10 }, h.run, h.runOne);
    const answers = ['ok1', 'bad', 'ok2'].map((k) => call(k).catch((err: Error) => err.message));
    await settle();
    await h.release();
    expect(h.alone).toEqual(['ok1']);
    await h.release();
    await h.release();
    await h.release();
    expect(h.alone).toEqual(['ok1', 'bad', 'ok2']);
    expect(await Promise.all(answers)).toEqual(['ok1!', 'bad refused', 'ok2!']);
  });

  it('fails a batch of one with its error, without running it again', async () => {
    const h = heldRun((k) => k === 'bad');
    const call = batcher({ max: 10 }, h.run, h.runOne);
    const answer = call('bad').catch((err: Error) => err.message);
    await settle();
    await h.release();
    expect(await answer).toBe('the batch failed');
    expect(h.alone).toEqual([]);
  });
});

describe('a batch that breaks before it is run', () => {
  it('fails its calls with the error of an onBatch that throws, and the batcher goes on with the next calls', async () => {
    const h = heldRun();
    let broken = true;
    const call = batcher(
      {
        max: 10,
        onBatch: () => {
          if (broken) throw new Error('the observer failed');
        },
      },
      h.run,
      h.runOne,
    );
    const answers = ['a', 'b'].map((k) => call(k).catch((err: Error) => err.message));
    await settle();
    expect(await Promise.all(answers)).toEqual(['the observer failed', 'the observer failed']);
    expect(h.batches).toEqual([]);
    broken = false;
    const next = call('c');
    await settle();
    await h.release();
    expect(await next).toBe('c!');
  });
});
