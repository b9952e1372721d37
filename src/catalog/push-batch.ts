// Group commit for the webhook's tag pushes: pushes that arrive while earlier ones are being
// written share one transaction (Store.pushTags), whose manifests go in with a few multi-row
// statements and whose locks, aggregates and commit are taken once. Nothing waits for a batch to
// fill: a push is written at once while fewer than `inFlight` writes run; otherwise it
// goes with the pushes queued beside it as soon as one ends. So an idle serve writes each push
// alone, as before, and a busy one writes fewer, larger transactions.
//
// Two lanes: pushes that carry their new manifest, and pushes of a manifest the catalog has. A
// batch holds one kind only: beside other writers (PostgreSQL), a batch locks what its manifests
// change and then every tag in one go, which a mixed batch could not do in the lock order.
import type { StoreWriter, TagPush } from './store.js';
import type { EventOutcome } from './types.js';

/**
 * Writes running at once, both lanes together: as many as PostgreSQL's pool lends writes
 * (postgres.ts), whose round trips then overlap. With two, serve under search load fell seconds
 * behind 100 events/s on PostgreSQL, as batches of one image's tags waited on each other's locks
 * (bench/results/serve-load.md). SQLite's one write thread takes them in turn (and commits
 * together those that wait).
 */
export const PUSH_WRITES_IN_FLIGHT = 6;
/** Pushes in one transaction at most: the locks of a batch are held until it commits. */
const MAX_PUSH_BATCH = 16;

type PushResult = { outcome: EventOutcome; inserted: boolean };

interface Waiting {
  push: TagPush;
  /** Order of arrival, across both queues. */
  seq: number;
  resolve: (result: PushResult) => void;
  reject: (err: unknown) => void;
}

interface PushBatchOptions {
  inFlight?: number;
  maxBatch?: number;
}

/**
 * A pushTag that batches: each call answers for its own push. When a batch fails, each of its
 * pushes is written again alone, so one bad push fails by itself and the others are written (the
 * failed batch wrote nothing: it was one transaction).
 */
export function batchedTagPushes(store: Pick<StoreWriter, 'pushTag' | 'pushTags'>, options: PushBatchOptions = {}): (push: TagPush) => Promise<PushResult> {
  const inFlight = options.inFlight ?? PUSH_WRITES_IN_FLIGHT;
  const maxBatch = options.maxBatch ?? MAX_PUSH_BATCH;
  // Never rejects, whatever the store does (a throw before its promise, too): each caller gets its answer.
  const alone = async (w: Waiting): Promise<void> => {
    try {
      w.resolve(await store.pushTag(w.push));
    } catch (err) {
      w.reject(err);
    }
  };
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
  // Two queues, one count of the writes running: the queue whose first push waited longest goes next.
  const carrying: Waiting[] = [];
  const known: Waiting[] = [];
  let running = 0;
  const next = (): void => {
    while (running < inFlight && (carrying.length > 0 || known.length > 0)) {
      const queue = known.length === 0 || (carrying.length > 0 && carrying[0]!.seq < known[0]!.seq) ? carrying : known;
      running++;
      void write(queue.splice(0, maxBatch)).finally(() => {
        running--;
        next();
      });
    }
  };
  let seq = 0;
  return (push) =>
    new Promise<PushResult>((resolve, reject) => {
      (push.manifest ? carrying : known).push({ push, seq: seq++, resolve, reject });
      next();
    });
}
