// The webhook's tag pushes in batches (push-batch.ts on batcher.ts, whose own test covers how
// calls gather): which store method each batch goes to, and that pushes carrying a new manifest
// and pushes of a stored one never share a batch. The store's pushTags is covered on both
// databases by store-push.contract.test.ts.
import { describe, expect, it } from 'vitest';
import { batchedTagPushes } from '../../src/catalog/push-batch.js';
import type { TagPush } from '../../src/catalog/store.js';
import type { EventOutcome, ManifestRecord } from '../../src/catalog/types.js';

type Result = { outcome: EventOutcome; inserted: boolean };

/** A store whose every write waits until the test lets it go; it logs what it was sent. */
function heldStore() {
  const sent: { method: 'pushTag' | 'pushTags'; tags: string[] }[] = [];
  const waiting: (() => void)[] = [];
  const held = (): Promise<void> => new Promise((resolve) => waiting.push(resolve));
  const answer = (push: TagPush): Result => ({ outcome: 'applied', inserted: push.manifest !== undefined });
  return {
    sent,
    async release(): Promise<void> {
      for (const go of waiting.splice(0)) go();
      await settle();
    },
    store: {
      async pushTag(push: TagPush): Promise<Result> {
        sent.push({ method: 'pushTag', tags: [push.tag] });
        await held();
        return answer(push);
      },
      async pushTags(pushes: readonly TagPush[]): Promise<Result[]> {
        sent.push({ method: 'pushTags', tags: pushes.map((p) => p.tag) });
        await held();
        return pushes.map(answer);
      },
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

const push = (tag: string, carrying = false): TagPush => ({
  repository: 'group/app',
  tag,
  digest: `sha256:${'a'.repeat(64)}`,
  at: new Date(Date.UTC(2026, 0, 1)),
  ...(carrying ? { manifest: { digest: `sha256:${'a'.repeat(64)}` } as ManifestRecord } : {}),
});

describe('webhook tag pushes in batches', () => {
  it('writes a push at once while writes are free, and the pushes that came meanwhile together, each kind apart', async () => {
    const held = heldStore();
    const sizes: number[] = [];
    const write = batchedTagPushes(held.store, { inFlight: 1, onBatch: (n) => sizes.push(n) });
    const first = [write(push('k0')), write(push('n0', true))];
    await settle();
    expect(held.sent).toEqual([
      { method: 'pushTags', tags: ['k0'] },
      { method: 'pushTags', tags: ['n0'] },
    ]);
    const rest = [write(push('k1')), write(push('n1', true)), write(push('k2')), write(push('n2', true))];
    await settle();
    await held.release();
    expect(held.sent.slice(2)).toEqual([
      { method: 'pushTags', tags: ['k1', 'k2'] },
      { method: 'pushTags', tags: ['n1', 'n2'] },
    ]);
    await held.release();
    expect((await Promise.all([...first, ...rest])).map((r) => r.inserted)).toEqual([false, true, false, true, false, true]);
    // What serve's metrics are told (tagtrail_webhook_push_batch_size).
    expect(sizes).toEqual([1, 1, 2, 2]);
  });

  it('writes each push of a failed batch again alone, through pushTag', async () => {
    const held = heldStore();
    const failing = { ...held.store, pushTags: async (): Promise<Result[]> => Promise.reject(new Error('refused')) };
    const write = batchedTagPushes(failing, { inFlight: 1 });
    // Pushed at one moment: one batch, which fails.
    const answers = [write(push('a')), write(push('b'))];
    await settle();
    for (let i = 0; i < 3; i++) await held.release();
    expect(held.sent).toEqual([
      { method: 'pushTag', tags: ['a'] },
      { method: 'pushTag', tags: ['b'] },
    ]);
    expect(await Promise.all(answers)).toEqual([
      { outcome: 'applied', inserted: false },
      { outcome: 'applied', inserted: false },
    ]);
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
    // Pushed at one moment: one batch, which throws; then each alone, one after the other.
    const first = write(push('first'));
    const batch = [write(push('ok1')), write(push('bad')), write(push('ok2'))].map(outcome);
    await settle();
    for (let i = 0; i < 3; i++) await held.release();
    expect(await first).toEqual({ outcome: 'applied', inserted: false });
    expect(await Promise.all(batch)).toEqual([{ outcome: 'applied', inserted: false }, refused, { outcome: 'applied', inserted: false }]);
    // The writes in flight were counted down: the next push is written.
    const next = write(push('next'));
    await settle();
    await held.release();
    expect(await next).toEqual({ outcome: 'applied', inserted: false });
  });
});
