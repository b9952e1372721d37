// Tag events beside each other on PostgreSQL: a write of one tag does not wait for a write of
// another tag that is still open, and two writes of one tag take turns. Each case holds a store
// transaction open at a known point (a row lock the test holds on its repository, which the
// transaction needs only at its end, after its tag lock) and reads pg_locks and
// pg_stat_activity to see who waits on what: no timing. SQLite has one writer by design and is
// not part of this file.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { sha256Digest } from '../../src/oci/digest.js';
import type { Driver, Queryable } from '../../src/catalog/sql/driver.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import type { Store } from '../../src/catalog/store.js';
import { SET } from '../../src/catalog/tagstate.js';
import type { EventOutcome } from '../../src/catalog/types.js';
import { type Catalog, useBackend } from './backends.js';

function manifest(revision: string): { digest: string; raw: Buffer } {
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, annotations: { 'org.opencontainers.image.revision': revision } }));
  return { digest: sha256Digest(raw), raw };
}

async function putImage(store: Store, revision: string): Promise<string> {
  const m = manifest(revision);
  await store.putManifest({ digest: m.digest, mediaType: OCI_MANIFEST, raw: m.raw, annotations: { 'org.opencontainers.image.revision': revision } });
  return m.digest;
}

/** What the store's connections wait on now: one entry per waiting backend. */
async function waiters(client: pg.Client): Promise<{ pid: number; lock: string }[]> {
  const rows = await client.query<{ pid: number; locktype: string }>(
    `SELECT l.pid, l.locktype FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE NOT l.granted AND a.application_name = 'tagtrail' AND a.datname = current_database()`,
  );
  return rows.rows.map((r) => ({ pid: r.pid, lock: r.locktype }));
}

type Waiter = { pid: number; lock: string };

/** Counts the attempts of the store's transactions beside other writers (a deadlock runs one again); stop() ends the count of new calls. */
function countAttempts(store: SqlStore): { n: number; stop: () => void } {
  const driver = store.driver as { -readonly [K in keyof Driver]: Driver[K] };
  const alongside = driver.writeAlongside;
  const bound = alongside!.bind(store.driver);
  const count = {
    n: 0,
    stop: () => {
      driver.writeAlongside = alongside;
    },
  };
  driver.writeAlongside = (fn) =>
    bound((q: Queryable) => {
      count.n++;
      return fn(q);
    });
  return count;
}

/** Polls until `until` picks a waiter, or `settled` resolves first (then undefined). */
async function waitFor(client: pg.Client, until: (w: Waiter) => boolean, settled: Promise<unknown>): Promise<Waiter | undefined> {
  let done = false;
  void settled.then(
    () => (done = true),
    () => (done = true),
  );
  for (;;) {
    const found = (await waiters(client)).find(until);
    if (found) return found;
    if (done) return undefined;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('tag events beside each other, on postgres', () => {
  const backend = useBackend('postgres');
  let catalog: Catalog;
  let holder: pg.Client;
  let observer: pg.Client;

  beforeAll(async () => {
    catalog = await backend().fresh();
    holder = new pg.Client({ connectionString: catalog.url, application_name: 'test-holder' });
    observer = new pg.Client({ connectionString: catalog.url, application_name: 'test-observer' });
    await holder.connect();
    await observer.connect();
  });

  afterAll(async () => {
    await holder?.end().catch(() => undefined);
    await observer?.end().catch(() => undefined);
  });

  /** Holds the row of `repository` (FOR UPDATE) until the returned function commits. */
  async function holdRepository(repository: string): Promise<() => Promise<void>> {
    await holder.query('BEGIN');
    const locked = await holder.query('SELECT id FROM repositories WHERE name = $1 FOR UPDATE', [repository]);
    expect(locked.rowCount).toBe(1);
    return async () => {
      await holder.query('COMMIT');
    };
  }

  it('a write of another tag commits while one tag write is held open', async () => {
    const { store } = catalog;
    const d1 = await putImage(store, 'one');
    const d2 = await putImage(store, 'two');
    await store.setTag('held/app', 'seed', d1, new Date(1_000));
    await store.setTag('free/app', 'seed', d1, new Date(1_000));

    const release = await holdRepository('held/app');
    let a: Promise<EventOutcome> | undefined;
    try {
      a = store.setTag('held/app', 'v1', d2, new Date(2_000));
      // A has its tag lock and waits at the repository row the test holds.
      const heldA = await waitFor(observer, (w) => w.lock !== 'advisory', a);
      expect(heldA).toBeDefined();
      const b = store.setTag('free/app', 'v1', d2, new Date(2_000));
      // B must finish while A is still open. Had it to wait for A (one lock for all writers), it
      // would show up waiting.
      const blocked = await waitFor(observer, (w) => w.pid !== heldA!.pid, b);
      expect(blocked).toBeUndefined();
      expect(await b).toBe('applied');
      const rows = await catalog.sql(`SELECT g.digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = 'held/app' AND g.name = 'v1'`);
      expect(rows).toEqual([]);
    } finally {
      await release();
    }
    expect(await a).toBe('applied');
    const both = await catalog.sql(`SELECT r.name, g.digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE g.name = 'v1' ORDER BY r.name`);
    expect(both).toEqual([
      { name: 'free/app', digest: d2 },
      { name: 'held/app', digest: d2 },
    ]);
  });

  it('two writes of one tag take turns: the older event, sent second, waits and then sees the newer', async () => {
    const { store } = catalog;
    const older = await putImage(store, 'older');
    const newer = await putImage(store, 'newer');
    await store.setTag('turns/app', 'seed', older, new Date(1_000));

    const release = await holdRepository('turns/app');
    let a: Promise<EventOutcome> | undefined;
    let b: Promise<EventOutcome> | undefined;
    try {
      a = store.setTag('turns/app', 'latest', newer, new Date(3_000));
      const heldA = await waitFor(observer, (w) => w.lock !== 'advisory', a);
      expect(heldA).toBeDefined();
      b = store.setTag('turns/app', 'latest', older, new Date(2_000));
      // B waits on the tag's lock, before it reads the tag (not further on, at the repository row).
      const waitingB = await waitFor(observer, (w) => w.pid !== heldA!.pid, b);
      expect(waitingB?.lock).toBe('advisory');
    } finally {
      await release();
    }
    expect(await a).toBe('applied');
    expect(await b).toBe('superseded');
    const state = await catalog.sql(
      `SELECT g.digest, g.updated_at, g.last_digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = 'turns/app' AND g.name = 'latest'`,
    );
    expect(state).toEqual([{ digest: newer, updated_at: '3000', last_digest: newer }]);
    const terms = await catalog.sql(
      `SELECT t.value FROM tag_terms t JOIN tags g ON g.id = t.tag_id JOIN repositories r ON r.id = g.repository_id
       WHERE r.name = 'turns/app' AND g.name = 'latest' AND t.key = 'org.opencontainers.image.revision'`,
    );
    expect(terms).toEqual([{ value: 'newer' }]);
    const history = await store.tagHistory('turns/app', 'latest');
    expect(history?.entries.map((e) => [e.digest, e.since.getTime()])).toEqual([
      [newer, 3_000],
      [older, 2_000],
    ]);
  });

  /**
   * Two batches beside each other with the images of two repositories in opposite orders: A sets
   * app:x to `a`, then lib:`held` to `b`; B sets lib:z to `b`, then app:w to `a`. The event A logs
   * for its second tag is logged by the test first, uncommitted: A waits there, after its first
   * tag's event, while B runs. Their answers, and the transactions the store ran.
   */
  async function crossedBatches(store: SqlStore, [app, lib]: readonly [string, string], held: string, a: string, b: string): Promise<{ answers: unknown[]; attempts: number }> {
    const attempts = countAttempts(store);
    const tagId = (await catalog.sql(`SELECT g.id FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = '${lib}' AND g.name = '${held}'`))[0]!.id;
    await holder.query('BEGIN');
    await holder.query('INSERT INTO tag_events (tag_id, at, kind, digest) VALUES ($1, $2, $3, $4)', [tagId, 2_000, SET, b]);
    let batchA: Promise<unknown> | undefined;
    let batchB: Promise<unknown> | undefined;
    try {
      batchA = store.pushTags([
        { repository: app, tag: 'x', digest: a, at: new Date(2_000) },
        { repository: lib, tag: held, digest: b, at: new Date(2_000) },
      ]);
      const heldA = await waitFor(observer, () => true, batchA);
      expect(heldA).toBeDefined();
      batchB = store.pushTags([
        { repository: lib, tag: 'z', digest: b, at: new Date(2_000) },
        { repository: app, tag: 'w', digest: a, at: new Date(2_000) },
      ]);
      expect(await waitFor(observer, (w) => w.pid !== heldA!.pid, batchB)).toBeDefined();
    } finally {
      await holder.query('ROLLBACK');
      attempts.stop();
    }
    return { answers: [await batchA, await batchB], attempts: attempts.n };
  }

  const applied = [
    { outcome: 'applied', inserted: false },
    { outcome: 'applied', inserted: false },
  ];

  it('two batches of tag pushes with the images of two repositories in opposite orders take turns, without a deadlock run again', async () => {
    const store = catalog.store as SqlStore;
    const a = await putImage(store, 'crossed a');
    const b = await putImage(store, 'crossed b');
    // Both images already counted in both repositories: their rows there are locked by the tag events.
    for (const r of ['cross/app', 'cross/lib']) for (const [tag, digest] of [['seed-a', a], ['seed-b', b]] as const) await store.setTag(r, tag, digest, new Date(1_000));
    const { answers, attempts } = await crossedBatches(store, ['cross/app', 'cross/lib'], 'seed-a', a, b);
    expect(answers).toEqual([applied, applied]);
    // Each batch ran once: had B taken a row A waited for (PostgreSQL ends one of them as a deadlock), one would have run twice.
    expect(attempts).toBe(2);
    const rows = await catalog.sql(`SELECT r.name, g.name AS tag, g.digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name LIKE 'cross/%' AND g.name IN ('x', 'z', 'w', 'seed-a') ORDER BY r.name, g.name`);
    expect(rows.map((r) => [r.name, r.tag, r.digest])).toEqual([
      ['cross/app', 'seed-a', a],
      ['cross/app', 'w', a],
      ['cross/app', 'x', a],
      ['cross/lib', 'seed-a', b],
      ['cross/lib', 'z', b],
    ]);
  });

  it('two batches of tag pushes of images new to two repositories, in opposite orders, take turns, without a deadlock run again', async () => {
    const store = catalog.store as SqlStore;
    const a = await putImage(store, 'new here a');
    const b = await putImage(store, 'new here b');
    const c = await putImage(store, 'new here c');
    // Neither a nor b is in either repository yet: the tag events insert their rows there.
    for (const r of ['fresh/app', 'fresh/lib']) await store.setTag(r, 'seed', c, new Date(1_000));
    const { answers, attempts } = await crossedBatches(store, ['fresh/app', 'fresh/lib'], 'seed', a, b);
    expect(answers).toEqual([applied, applied]);
    expect(attempts).toBe(2);
    const rows = await catalog.sql(`SELECT r.name, g.name AS tag, g.digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name LIKE 'fresh/%' ORDER BY r.name, g.name`);
    expect(rows.map((r) => [r.name, r.tag, r.digest])).toEqual([
      ['fresh/app', 'seed', c],
      ['fresh/app', 'w', a],
      ['fresh/app', 'x', a],
      ['fresh/lib', 'seed', b],
      ['fresh/lib', 'z', b],
    ]);
  });
});
