// The store as a crawl uses it: the many small look-ups and writes of its concurrent tags are
// gathered, so the catalog keeps up with the registry instead of setting its pace.
//
// - hasManifest: the digests asked for while one look-up runs are looked up together next, in
//   one statement (Store.hasManifests).
// - unreadable: the same, for what an earlier read could not read (Store.unreadableAmong).
// - putManifest: the records handed over while one transaction runs are written together in the
//   next (Store.putManifests): one transaction and one rebuild of what they change, instead of
//   one each. Each caller still learns of its own commit, or its own error: when a batch fails,
//   its records are written one by one, so one bad record fails only its own tag.
//
// Everything else goes to the store as it is.
import type { Store } from './store.js';
import type { ManifestRecord } from './types.js';

/**
 * Records per transaction at most: a long transaction keeps SQLite's other statements waiting,
 * and each batch size is a statement text of its own that the drivers keep (prepared, or
 * renumbered for PostgreSQL): few sizes keep that memory small.
 */
const MAX_WRITE_BATCH = 32;
/**
 * How long the first record handed to an idle writer waits for others. SQLite commits so fast
 * that, without it, nearly every transaction would hold one record and pay the fixed cost of a
 * transaction (and of rebuilding what it changes) alone; a tag waiting here holds no request slot.
 */
const WRITE_GATHER_MS = 25;
/** Digests per look-up at most (the same reason). */
const MAX_LOOKUP_BATCH = 64;

interface Pending<K, V> {
  key: K;
  resolve: (value: V) => void;
  reject: (err: unknown) => void;
}

/**
 * Calls made while a batch runs wait for the next one, and each batch takes up to `max` of them:
 * one batch at a time, started as soon as the one before settles. An idle batcher starts the
 * next batch after `gatherMs` (0: on the next microtask, with the calls of the same moment).
 */
function batcher<K, V>(max: number, run: (keys: K[]) => Promise<V[]>, runOne: (key: K) => Promise<V>, gatherMs = 0): (key: K) => Promise<V> {
  const queue: Pending<K, V>[] = [];
  let running = false;
  const drain = async (): Promise<void> => {
    running = true;
    while (queue.length > 0) {
      const batch = queue.splice(0, max);
      try {
        const values = await run(batch.map((p) => p.key));
        batch.forEach((p, i) => p.resolve(values[i] as V));
      } catch (err) {
        if (batch.length === 1) {
          batch[0]!.reject(err);
          continue;
        }
        // Which one failed is not known: each alone, so only that one fails.
        for (const p of batch) await runOne(p.key).then(p.resolve, p.reject);
      }
    }
    running = false;
  };
  return (key) =>
    new Promise<V>((resolve, reject) => {
      queue.push({ key, resolve, reject });
      if (!running) {
        running = true;
        if (gatherMs > 0) setTimeout(() => void drain(), gatherMs);
        else queueMicrotask(() => void drain());
      }
    });
}

/** `store` with its manifest look-ups and writes gathered into batches (see above). */
export function crawlStore(store: Store): Store {
  const hasManifest = batcher<string, boolean>(
    MAX_LOOKUP_BATCH,
    async (digests) => {
      const stored = await store.hasManifests(digests);
      return digests.map((d) => stored.has(d));
    },
    (digest) => store.hasManifest(digest),
  );
  const unreadable = batcher<string, { code: string; reason: string } | undefined>(
    MAX_LOOKUP_BATCH,
    async (digests) => {
      const found = await store.unreadableAmong(digests);
      return digests.map((d) => found.get(d));
    },
    (digest) => store.unreadable(digest),
  );
  const putManifest = batcher<ManifestRecord, { inserted: boolean }>(
    MAX_WRITE_BATCH,
    (records) => store.putManifests(records),
    (record) => store.putManifest(record),
    WRITE_GATHER_MS,
  );
  // The store's own object underneath: every other method (and `this` inside them) is the store's.
  const crawl = Object.create(store) as Store;
  return Object.assign(crawl, { hasManifest, unreadable, putManifest });
}
