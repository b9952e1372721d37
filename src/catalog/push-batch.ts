// Group commit for the webhook's tag pushes: pushes that arrive while earlier ones are being
// written share one transaction (Store.pushTags), whose manifests go in with a few multi-row
// statements and whose locks, aggregates and commit are taken once. Nothing waits for a batch to
// fill: a push is written at once while fewer than PUSH_WRITES_IN_FLIGHT writes of its kind run;
// otherwise it goes with the pushes queued beside it as soon as one ends. So an idle serve writes
// each push alone, as before, and a busy one writes fewer, larger transactions (batcher.ts).
//
// Two kinds, batched apart: pushes that carry their new manifest, and pushes of a manifest the
// catalog has. Beside other writers (PostgreSQL), a batch locks what its manifests change and
// then every tag in one go, which a batch of both kinds could not do in the lock order.
import { batcher } from './batcher.js';
import type { StoreWriter, TagPush } from './store.js';
import type { EventOutcome } from './types.js';

/**
 * Writes of one kind running at once: as many as PostgreSQL's pool lends writes (postgres.ts),
 * whose round trips then overlap. With two, serve under search load fell seconds behind 100
 * events/s on PostgreSQL, as batches of one image's tags waited on each other's locks
 * (bench/results/serve-load.md). SQLite's one write thread takes them in turn, and commits
 * together those that wait.
 */
export const PUSH_WRITES_IN_FLIGHT = 6;
/** Pushes in one transaction at most: the locks of a batch are held until it commits. */
const MAX_PUSH_BATCH = 16;

type PushResult = { outcome: EventOutcome; inserted: boolean };

/**
 * A pushTag that batches: each call answers for its own push. When a batch fails, each of its
 * pushes is written again alone, so one bad push fails by itself and the others are written (the
 * failed batch wrote nothing: it was one transaction). `onBatch` is told each batch's size.
 */
export function batchedTagPushes(
  store: Pick<StoreWriter, 'pushTag' | 'pushTags'>,
  options: { inFlight?: number; maxBatch?: number; onBatch?: (pushes: number) => void } = {},
): (push: TagPush) => Promise<PushResult> {
  const kind = () =>
    batcher<TagPush, PushResult>(
      { max: options.maxBatch ?? MAX_PUSH_BATCH, inFlight: options.inFlight ?? PUSH_WRITES_IN_FLIGHT, ...(options.onBatch ? { onBatch: options.onBatch } : {}) },
      (pushes) => store.pushTags(pushes),
      (push) => store.pushTag(push),
    );
  const carrying = kind();
  const known = kind();
  return (push) => (push.manifest ? carrying : known)(push);
}
