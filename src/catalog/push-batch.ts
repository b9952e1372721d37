// Group commit for the webhook's tag pushes of new manifests: pushes that arrive while earlier
// ones are being written share one transaction (Store.pushTags), whose manifests go in with a few
// multi-row statements. Nothing waits for a batch to fill: a push is written at once while fewer
// than `inFlight` writes run; otherwise it goes with the pushes queued beside it as soon as a
// write ends. So an idle serve writes each push alone, as before, and a busy one writes fewer,
// larger transactions (bench/results/catalog-webhook.md measures both).
import type { StoreWriter, TagPush } from './store.js';
import type { EventOutcome } from './types.js';

/** Writes running at once. Two keep the database busy while the next batch gathers. */
export const PUSH_WRITES_IN_FLIGHT = 2;
/** Pushes in one transaction at most: the locks of a batch are held until it commits. */
export const MAX_PUSH_BATCH = 16;

type PushResult = { outcome: EventOutcome; inserted: boolean };

interface Waiting {
  push: TagPush;
  resolve: (result: PushResult) => void;
  reject: (err: unknown) => void;
}

export interface PushBatchOptions {
  inFlight?: number;
  maxBatch?: number;
}

/**
 * A pushTag that batches: each call answers for its own push. When a batch fails, each of its
 * pushes is written again alone, so one bad push (or one that loses a race) fails by itself and
 * the others are written; the failed batch wrote nothing (one transaction).
 */
export function batchedTagPushes(store: Pick<StoreWriter, 'pushTag' | 'pushTags'>, options: PushBatchOptions = {}): (push: TagPush) => Promise<PushResult> {
  const inFlight = options.inFlight ?? PUSH_WRITES_IN_FLIGHT;
  const maxBatch = options.maxBatch ?? MAX_PUSH_BATCH;
  const queue: Waiting[] = [];
  let running = 0;

  const alone = (w: Waiting): Promise<void> => store.pushTag(w.push).then(w.resolve, w.reject);
  const write = async (batch: Waiting[]): Promise<void> => {
    if (batch.length === 1) return alone(batch[0]!);
    let results: PushResult[];
    try {
      results = await store.pushTags(batch.map((w) => w.push));
    } catch {
      await Promise.all(batch.map(alone));
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  };
  const next = (): void => {
    while (running < inFlight && queue.length > 0) {
      running++;
      void write(queue.splice(0, maxBatch)).finally(() => {
        running--;
        next();
      });
    }
  };
  return (push) =>
    new Promise<PushResult>((resolve, reject) => {
      queue.push({ push, resolve, reject });
      next();
    });
}
