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
import { batcher } from './batcher.js';
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

/** `store` with its manifest look-ups and writes gathered into batches (see above). */
export function crawlStore(store: Store): Store {
  const hasManifest = batcher<string, boolean>(
    { max: MAX_LOOKUP_BATCH },
    async (digests) => {
      const stored = await store.hasManifests(digests);
      return digests.map((d) => stored.has(d));
    },
    (digest) => store.hasManifest(digest),
  );
  const unreadable = batcher<string, { code: string; reason: string } | undefined>(
    { max: MAX_LOOKUP_BATCH },
    async (digests) => {
      const found = await store.unreadableAmong(digests);
      return digests.map((d) => found.get(d));
    },
    (digest) => store.unreadable(digest),
  );
  const putManifest = batcher<ManifestRecord, { inserted: boolean }>(
    { max: MAX_WRITE_BATCH, gatherMs: WRITE_GATHER_MS },
    (records) => store.putManifests(records),
    (record) => store.putManifest(record),
  );
  // The store's own object underneath: every other method (and `this` inside them) is the store's.
  const crawl = Object.create(store) as Store;
  return Object.assign(crawl, { hasManifest, unreadable, putManifest });
}
