// A store write gathers its insights increments and repository counters by its Queryable and
// writes them at its end (insight-weeks.ts, repository-counters.ts). Where several writes share
// one transaction, each in a savepoint (a group commit on SQLite's write thread), they share one
// Queryable too: a write that fails half-way is rolled back to its savepoint, and what it had
// gathered must go with it, so that the next write on that Queryable, whatever kind, writes its
// own changes instead of adding them to the failed write's, which no one writes.
// The driver here is the real SQLite driver; each transaction is handed one shared Queryable (as
// a group commit's savepoints are), and one statement can be made to fail once.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { openLocalSqliteStore } from '../../src/catalog/sqlite.js';
import { SQLITE_MIGRATIONS } from '../../src/catalog/migrations/sqlite.js';
import { SqlStore } from '../../src/catalog/sql/store.js';
import type { Driver, Param, QueryOptions, Queryable } from '../../src/catalog/sql/driver.js';
import { insightsWindow, recountInsights } from '../../src/catalog/sql/insights.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';

const AT = new Date('2026-03-04T10:00:00Z');
const QUERY = { from: new Date('2026-01-05T00:00:00Z'), to: new Date('2026-06-01T00:00:00Z') };

function image(revision: string): ManifestRecord {
  const config = sha256Digest(Buffer.from(`config-${revision}`));
  // No build details of its own: a referrer's are its build source.
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config, size: 2 }, layers: [] };
  const raw = Buffer.from(JSON.stringify(doc));
  return { digest: sha256Digest(raw), mediaType: OCI_MANIFEST, raw, configDigest: config, annotations: {} };
}

/** The real driver, every transaction given the same Queryable; `failOnce` makes the next statement matching it fail. */
function groupedDriver(inner: Driver): { driver: Driver; failOnce: (statement: RegExp) => void } {
  let current: Queryable | undefined;
  let failing: RegExp | undefined;
  const check = (sql: string): void => {
    if (failing?.test(sql)) {
      failing = undefined;
      throw new Error('statement failed (injected)');
    }
  };
  const shared: Queryable = {
    dialect: inner.dialect,
    all: (sql: string, params?: readonly Param[], options?: QueryOptions) => {
      check(sql);
      return current!.all(sql, params, options);
    },
    run: (sql: string, params?: readonly Param[]) => {
      check(sql);
      return current!.run(sql, params);
    },
  } as Queryable;
  const driver: Driver = {
    dialect: inner.dialect,
    all: (sql, params, options) => inner.all(sql, params, options),
    run: (sql, params) => inner.run(sql, params),
    write: (fn) =>
      inner.write(async (q) => {
        current = q;
        try {
          return await fn(shared);
        } finally {
          current = undefined;
        }
      }),
    explain: (sql, params, options) => inner.explain(sql, params, options),
    withLock: (name, fn) => inner.withLock(name, fn),
    close: () => inner.close(),
  };
  return { driver, failOnce: (statement) => (failing = statement) };
}

describe('a store write that fails leaves nothing gathered on its Queryable (sqlite)', () => {
  let dir: string;
  let inner: Driver;

  beforeAll(async () => {
    dir = await makeTempDir('deferred');
  });

  afterAll(async () => {
    await inner?.close().catch(() => undefined);
    await removeTempDir(dir);
  });

  it('the write after a failed one on the same Queryable keeps the insights aggregates equal to a recount', async () => {
    const opened = openLocalSqliteStore({ path: join(dir, 'catalog.db'), busyTimeoutMs: 5000, cacheMiB: 8 });
    inner = opened.driver;
    await opened.store.migrate();
    const { driver, failOnce } = groupedDriver(inner);
    const store = new SqlStore(driver, SQLITE_MIGRATIONS);
    const subject = image('a');
    await store.putManifest(subject);
    await store.setTag('team/app', 'v1', subject.digest, AT);
    // A tag push that fails after it has gathered its changes (its tag's row is written after its image is counted).
    failOnce(/UPDATE tags SET digest/);
    await expect(store.setTag('team/app', 'v2', image('b').digest, AT)).rejects.toThrow();
    // Then build details for the tagged image, a write of its own: the image moves to another build source.
    const referrer = sha256Digest(Buffer.from('referrer'));
    await store.putReferrer({ digest: referrer, subjectDigest: subject.digest, artifactType: 'application/vnd.tagtrail.build.v1+json', annotations: { 'com.gitlab.ci.pipeline_id': '1' } });
    await store.setReferrersTag('team/app', subject.digest, sha256Digest(Buffer.from('referrers-tag')), [referrer]);
    const report = await store.insights(QUERY);
    expect(report.totals.buildSources.referrer).toBe(1);
    expect(report).toEqual(await recountInsights(inner, QUERY, insightsWindow(QUERY)));
  });
});
