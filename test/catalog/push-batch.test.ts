// The webhook's group commit (push-batch.ts) against a store whose writes the test holds and
// lets go: which pushes go alone, which together and in what order, and what each caller gets
// back when a batch fails. The store's own pushTags is covered on both databases by
// store-push.contract.test.ts; here only the batching.
import { describe, expect, it } from 'vitest';
import { batchedTagPushes } from '../../src/catalog/push-batch.js';
import type { TagPush } from '../../src/catalog/store.js';
import type { EventOutcome, ManifestRecord } from '../../src/catalog/types.js';

type Result = { outcome: EventOutcome; inserted: boolean };

/** A store whose every write waits until the test lets it go; it logs what it was sent. */
function heldStore(fail: (push: TagPush) => Error | undefined = () => undefined) {
  const sent: { method: 'pushTag' | 'pushTags'; tags: string[] }[] = [];
  const waiting: (() => void)[] = [];
  const held = (): Promise<void> => new Promise((resolve) => waiting.push(resolve));
  const answer = (push: TagPush): Result => ({ outcome: 'applied', inserted: push.manifest !== undefined });
  return {
    sent,
    /** Lets every write sent so far finish, then lets the writes those start run to where they wait. */
    async release(): Promise<void> {
      for (const go of waiting.splice(0)) go();
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    },
    store: {
      async pushTag(push: TagPush): Promise<Result> {
        sent.push({ method: 'pushTag', tags: [push.tag] });
        await held();
        const err = fail(push);
        if (err) throw err;
        return answer(push);
      },
      async pushTags(pushes: readonly TagPush[]): Promise<Result[]> {
        sent.push({ method: 'pushTags', tags: pushes.map((p) => p.tag) });
        await held();
        // One transaction: one bad push fails them all.
        for (const p of pushes) {
          const err = fail(p);
          if (err) throw err;
        }
        return pushes.map(answer);
      },
    },
  };
}

const manifest = { digest: 'sha256:' + 'a'.repeat(64) } as ManifestRecord;
const push = (tag: string, carrying = false): TagPush => ({
  repository: 'group/app',
  tag,
  digest: 'sha256:' + 'a'.repeat(64),
  at: new Date(Date.UTC(2026, 0, 1)),
  ...(carrying ? { manifest } : {}),
});
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe('webhook tag pushes in batches', () => {
  it('writes a push alone at once while writes are free: nothing waits for a batch to fill', async () => {
    const held = heldStore();
    const write = batchedTagPushes(held.store, { inFlight: 2 });
    const a = write(push('a'));
    const b = write(push('b', true));
    await settle();
    expect(held.sent).toEqual([
      { method: 'pushTag', tags: ['a'] },
      { method: 'pushTag', tags: ['b'] },
    ]);
    await held.release();
    expect(await a).toEqual({ outcome: 'applied', inserted: false });
    expect(await b).toEqual({ outcome: 'applied', inserted: true });
  });

  it('writes the pushes that came while every write ran as one batch each of its kind, oldest first, at most maxBatch to a batch', async () => {
    const held = heldStore();
    const write = batchedTagPushes(held.store, { inFlight: 1, maxBatch: 3 });
    const answers = [write(push('first')), write(push('k1')), write(push('n1', true)), write(push('k2')), write(push('k3')), write(push('k4')), write(push('n2', true))];
    await settle();
    expect(held.sent).toEqual([{ method: 'pushTag', tags: ['first'] }]);
    await held.release();
    // k1 came before n1: the known-manifest queue goes first, three of it at most.
    expect(held.sent.slice(1)).toEqual([{ method: 'pushTags', tags: ['k1', 'k2', 'k3'] }]);
    await held.release();
    expect(held.sent.slice(2)).toEqual([{ method: 'pushTags', tags: ['n1', 'n2'] }]);
    await held.release();
    expect(held.sent.slice(3)).toEqual([{ method: 'pushTag', tags: ['k4'] }]);
    await held.release();
    const results = await Promise.all(answers);
    expect(results.map((r) => r.inserted)).toEqual([false, false, true, false, false, false, true]);
    expect(held.sent).toHaveLength(4);
  });

  it('writes each push of a failed batch again alone: the bad one fails with its own error, the others are written', async () => {
    const refused = new Error('refused');
    const held = heldStore((p) => (p.tag === 'bad' ? refused : undefined));
    const write = batchedTagPushes(held.store, { inFlight: 1 });
    const first = write(push('first'));
    const batch = [write(push('ok1')), write(push('bad')), write(push('ok2'))].map((p) => p.then((r) => r, (err: unknown) => err));
    await settle();
    await held.release();
    expect(held.sent[1]).toEqual({ method: 'pushTags', tags: ['ok1', 'bad', 'ok2'] });
    await held.release();
    expect(held.sent.slice(2)).toEqual([
      { method: 'pushTag', tags: ['ok1'] },
      { method: 'pushTag', tags: ['bad'] },
      { method: 'pushTag', tags: ['ok2'] },
    ]);
    await held.release();
    expect(await first).toEqual({ outcome: 'applied', inserted: false });
    expect(await Promise.all(batch)).toEqual([{ outcome: 'applied', inserted: false }, refused, { outcome: 'applied', inserted: false }]);
  });

  it('keeps at most inFlight writes running, and starts the next as one ends', async () => {
    const held = heldStore();
    const write = batchedTagPushes(held.store, { inFlight: 3 });
    const answers = Array.from({ length: 5 }, (_, i) => write(push(`t${i}`)));
    await settle();
    expect(held.sent.map((s) => s.tags)).toEqual([['t0'], ['t1'], ['t2']]);
    await held.release();
    expect(held.sent.slice(3).map((s) => s.tags)).toEqual([['t3', 't4']]);
    await held.release();
    expect(await Promise.all(answers)).toHaveLength(5);
  });

  it('answers a push whose write throws before it returns a promise with that error, alone or in a failed batch, and goes on', async () => {
    const refused = new Error('refused at once');
    const held = heldStore();
    const store = {
      pushTag: (p: TagPush): Promise<Result> => {
        if (p.tag === 'bad') throw refused;
        return held.store.pushTag(p);
      },
      pushTags: (pushes: readonly TagPush[]): Promise<Result[]> => {
        if (pushes.some((p) => p.tag === 'bad')) throw refused;
        return held.store.pushTags(pushes);
      },
    };
    const write = batchedTagPushes(store, { inFlight: 1 });
    const outcome = (p: Promise<Result>): Promise<unknown> => p.then((r) => r, (err: unknown) => err);
    const alone = outcome(write(push('bad')));
    expect(await alone).toBe(refused);
    const first = write(push('first'));
    const batch = [write(push('ok1')), write(push('bad')), write(push('ok2'))].map(outcome);
    await settle();
    await held.release();
    await held.release();
    expect(await first).toEqual({ outcome: 'applied', inserted: false });
    expect(await Promise.all(batch)).toEqual([{ outcome: 'applied', inserted: false }, refused, { outcome: 'applied', inserted: false }]);
    // The writes in flight were counted down: the next push is written.
    const next = write(push('next'));
    await settle();
    await held.release();
    expect(await next).toEqual({ outcome: 'applied', inserted: false });
  });
});
