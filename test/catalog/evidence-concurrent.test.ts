// The verified images and pushers beside the insights report are weekly aggregates kept by every
// writer (src/catalog/sql/evidence-weeks.ts). On PostgreSQL writers run side by side, so two
// writers of one image must take turns, or one counts the image from what the other has not
// committed yet. Each case holds a store transaction open at its end (a row lock the test holds
// on its repository, which the transaction needs only for its counters), runs the other writer,
// then lets both finish and compares the aggregates with the scan of the tags they replaced,
// read back with SQL. No timing: the held transaction waits until the test commits.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { sha256Digest } from '../../src/oci/digest.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { recountInsightEvidence } from '../../src/catalog/sql/verifications.js';
import { insightsWindow } from '../../src/catalog/sql/insights.js';
import { type Catalog, useBackend } from './backends.js';

const AT = new Date('2026-03-04T10:00:00Z');
const WINDOW = { from: new Date('2026-01-05T00:00:00Z'), to: new Date('2026-06-01T00:00:00Z') };

function manifest(revision: string): { digest: string; raw: Buffer } {
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, annotations: { 'org.opencontainers.image.revision': revision } }));
  return { digest: sha256Digest(raw), raw };
}

async function putImage(store: SqlStore, revision: string): Promise<string> {
  const m = manifest(revision);
  await store.putManifest({ digest: m.digest, mediaType: OCI_MANIFEST, raw: m.raw, annotations: { 'org.opencontainers.image.revision': revision } });
  return m.digest;
}

/** Windows from each of these Mondays to WINDOW's end: an image counts once in each, whichever of its weeks the window holds. */
const FROM = ['2026-01-05', '2026-02-02', '2026-02-09', '2026-03-02', '2026-03-09', '2026-05-04'];

/** The aggregates (whole catalog and per repository, in every window of FROM) equal the scan; the scan's answer in WINDOW. */
async function expectAggregatesMatchScan(store: SqlStore, catalog: Catalog): Promise<{ verified: number; pushedBy: Record<string, number> }> {
  const repositories = (await catalog.sql('SELECT id, name FROM repositories ORDER BY id')).map((r) => ({ id: Number(r.id), name: String(r.name) }));
  for (const from of FROM) {
    const query = { ...WINDOW, from: new Date(`${from}T00:00:00Z`) };
    const window = insightsWindow(query);
    expect(await store.verifiedInsights(query)).toEqual(await recountInsightEvidence(store.driver, window.from, window.to, null));
    for (const r of repositories) {
      expect(await store.verifiedInsights({ ...query, repository: r.name })).toEqual(await recountInsightEvidence(store.driver, window.from, window.to, [r.id]));
    }
  }
  const window = insightsWindow(WINDOW);
  return recountInsightEvidence(store.driver, window.from, window.to, null);
}

describe('writers of one image beside each other keep the verified and pusher aggregates (postgres)', () => {
  const backend = useBackend('postgres');
  let holder: pg.Client;
  // Outside the holder's transaction, which would see one snapshot of pg_stat_activity.
  let observer: pg.Client;
  let catalog: Catalog;

  beforeAll(async () => {
    catalog = await backend().fresh();
    holder = new pg.Client({ connectionString: catalog.url, application_name: 'test-holder' });
    observer = new pg.Client({ connectionString: catalog.url, application_name: 'test-observer' });
    await holder.connect();
    await observer.connect();
  });

  afterAll(async () => {
    await holder?.query('ROLLBACK').catch(() => undefined);
    await holder?.end().catch(() => undefined);
    await observer?.end().catch(() => undefined);
  });

  /**
   * Holds the row of `repository` until the returned function commits: FOR NO KEY UPDATE, so that
   * a store transaction inserting rows that refer to it (a new tag, an image's row) goes on, and
   * waits only at its end, for its counters.
   */
  async function holdRepository(repository: string): Promise<() => Promise<void>> {
    await holder.query('BEGIN');
    const locked = await holder.query('SELECT id FROM repositories WHERE name = $1 FOR NO KEY UPDATE', [repository]);
    expect(locked.rowCount).toBe(1);
    return async () => {
      await holder.query('COMMIT');
    };
  }

  /** Polls until this many of the store's connections wait on a lock (each waits until the test commits). */
  async function waiting(n: number): Promise<void> {
    for (;;) {
      const rows = await observer.query(
        "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.application_name = 'tagtrail' AND a.datname = current_database()",
      );
      if ((rows.rows[0] as { n: number }).n >= n) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("a manifest's first pusher recorded while another repository's tag on it is being set counts that image under it", async () => {
    const store = catalog.store as SqlStore;
    const digest = await putImage(store, 'pusher-race');
    await store.setTag('alpha/app', 'base', await putImage(store, 'other-a'), AT);
    await store.setTag('beta/app', 'base', await putImage(store, 'other-b'), AT);
    // Tagged in alpha/app first, without a pusher.
    await store.setTag('alpha/app', 'v1', digest, AT);
    const release = await holdRepository('beta/app');
    // beta/app's tag on the manifest: its image row is inserted without a pusher, then it waits for beta/app's row.
    const tagging = store.setTag('beta/app', 'v1', digest, AT);
    let taggingDone = false;
    void tagging.then(() => (taggingDone = true));
    // Wait until the tag's transaction holds its locks (it waits on the held row).
    await waiting(1);
    expect(taggingDone).toBe(false);
    const pushing = store.recordPusher(digest, 'buildkit/v0.20', 'buildkit', AT);
    let pushingDone = false;
    void pushing.then(() => (pushingDone = true));
    // The pusher waits for the tag's transaction: an advisory (evidence) lock, not granted.
    for (;;) {
      const waiting = await observer.query(
        "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND l.locktype = 'advisory' AND a.application_name = 'tagtrail' AND a.datname = current_database()",
      );
      if (waiting.rowCount || pushingDone) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await release();
    await Promise.all([tagging, pushing]);
    const counted = await expectAggregatesMatchScan(store, catalog);
    expect(counted.pushedBy).toEqual({ buildkit: 2 });
    expect((await catalog.sql(`SELECT pusher FROM insight_images WHERE digest = '${digest}' ORDER BY repository_id`)).map((r) => r.pusher)).toEqual(['buildkit', 'buildkit']);
  }, 60_000);

  it("a tag of an image set while another tag of it is being deleted counts the image from the deletion's committed tag", async () => {
    const store = catalog.store as SqlStore;
    const digest = await putImage(store, 'delete-race');
    await store.recordPusher(digest, 'kaniko/1.23', 'kaniko', AT);
    await store.setTag('gamma/app', 'old', digest, new Date('2026-02-02T10:00:00Z'));
    const release = await holdRepository('gamma/app');
    // The deletion moves tag old's update into March; it locks the image's row, then waits for gamma/app's row.
    const deleting = store.deleteTag('gamma/app', 'old', AT);
    await waiting(1);
    // A second tag of the image, in May: it must read the image's tag weeks after the deletion commits.
    const setting = store.setTag('gamma/app', 'new', digest, new Date('2026-05-04T10:00:00Z'));
    // Both wait (the deletion on the held row; the set on the image's row, or without it on the held row).
    await waiting(2);
    await release();
    await Promise.all([deleting, setting]);
    await expectAggregatesMatchScan(store, catalog);
    // Tag old's week is March now, tag new's May: one image in a window of both, none in February.
    expect(await store.verifiedInsights({ ...WINDOW, repository: 'gamma/app' })).toEqual({ verified: 0, pushedBy: { kaniko: 1 } });
    expect(await store.verifiedInsights({ from: new Date('2026-02-02T00:00:00Z'), to: new Date('2026-02-08T00:00:00Z'), repository: 'gamma/app' })).toEqual({ verified: 0, pushedBy: {} });
  }, 60_000);
});
