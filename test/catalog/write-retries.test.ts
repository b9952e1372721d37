// A store transaction that fails or runs again must not carry what its first attempt gathered
// (insights increments, repository counters) into the next transaction: after failures and
// retries, the aggregates equal a full recount and the repository counters a count of the tags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { insightsWindow, recountInsights } from '../../src/catalog/sql/insights.js';
import type { InsightsQuery, ManifestRecord } from '../../src/catalog/types.js';
import { crawlStore } from '../../src/catalog/crawl-store.js';
import { BACKENDS, type Backend, type Catalog, startBackend } from './backends.js';

const CI = 'com.gitlab.ci.';
const DAY = 86_400_000;
const BASE = Date.UTC(2026, 0, 1);
let nonce = 0;

function sha(s: string): string {
  return sha256Digest(Buffer.from(s));
}

function image(annotations: Record<string, string>): ManifestRecord {
  const config = sha(`config-${++nonce}`);
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config, size: 2 }, layers: [], annotations, nonce: ++nonce };
  const raw = Buffer.from(JSON.stringify(doc));
  return { digest: sha256Digest(raw), mediaType: OCI_MANIFEST, raw, configDigest: config, annotations };
}

function index(children: ManifestRecord[]): ManifestRecord {
  const platforms = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  const doc = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: c.raw.byteLength, platform: platforms[i]! })), nonce: ++nonce };
  const raw = Buffer.from(JSON.stringify(doc));
  return {
    digest: sha256Digest(raw),
    mediaType: OCI_INDEX,
    raw,
    children: children.map((c, i) => ({ digest: c.digest, mediaType: OCI_MANIFEST, size: c.raw.byteLength, platform: platforms[i]!, manifest: c })),
  };
}

const at = (day: number): Date => new Date(BASE + day * DAY);

function queries(namespace: string): InsightsQuery[] {
  const window = { from: new Date(BASE - 7 * DAY), to: new Date(BASE + 80 * DAY) };
  return [window, { ...window, namespace }, { ...window, repository: `${namespace}/a` }];
}

/** The insights report equals a full recount, and each repository's counters a count of its tags. */
async function expectCountsRight(store: SqlStore, catalog: Catalog, namespace: string): Promise<void> {
  for (const query of queries(namespace)) expect(await store.insights(query)).toEqual(await recountInsights(store.driver, query, insightsWindow(query)));
  const rows = await catalog.sql(
    `SELECT r.name, r.live_tags, r.build_tags,
       (SELECT count(*) FROM tags t WHERE t.repository_id = r.id AND t.deleted_at IS NULL) AS live,
       (SELECT count(*) FROM tags t WHERE t.repository_id = r.id AND t.deleted_at IS NULL AND t.has_build = 1) AS build
     FROM repositories r`,
  );
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) expect([r.name, Number(r.live_tags), Number(r.build_tags)]).toEqual([r.name, Number(r.live), Number(r.build)]);
}

/** A subject with a build-details referrer in `repository` (its live tags count as builds). */
async function attachBuildDetails(store: SqlStore, repository: string, subject: string): Promise<string> {
  const digest = sha(`referrer-${++nonce}`);
  await store.putReferrer({ digest, subjectDigest: subject, artifactType: 'application/vnd.tagtrail.build.v1+json', annotations: { [`${CI}pipeline_id`]: '1' } });
  await store.setReferrersTag(repository, subject, sha(`referrers-tag-${nonce}`), [digest]);
  return digest;
}

describe('a failed store transaction (sqlite)', () => {
  let backend: Backend;
  let catalog: Catalog;

  beforeAll(async () => {
    backend = await startBackend('sqlite');
    catalog = await backend.fresh();
    // A tag named `boom` cannot be written: the transaction that tries fails half-way.
    await catalog.exec(`CREATE TRIGGER refuse_boom BEFORE INSERT ON tags WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
  }, 120_000);

  afterAll(async () => {
    await backend?.stop();
  });

  it('leaves nothing gathered behind for the next transaction of the same connection', async () => {
    const store = catalog.store as SqlStore;
    const repo = 'fail/a';
    const built = image({});
    const multi = index([image({}), image({})]);
    await store.putManifest(built);
    await store.putManifest(multi);
    await store.setTag(repo, 'one', built.digest, at(2));
    await store.setTag(repo, 'two', multi.digest, at(3));

    // A reconciliation (a transaction of the main thread) fails after gathering its changes ...
    await expect(store.reconcileRepository(repo, new Map([['one', built.digest], ['boom', multi.digest]]), at(5))).rejects.toThrow(/refused/);
    // ... then a referrer makes `one` a build: its repository's build counter must follow.
    const referrer = await attachBuildDetails(store, repo, built.digest);
    await expectCountsRight(store, catalog, 'fail');

    // A tag event (a transaction of the write thread) fails the same way ...
    await expect(store.setTag(repo, 'boom', built.digest, at(6))).rejects.toThrow(/refused/);
    // ... then the referrer goes: `one` is no longer a build.
    await store.removeReferrer(repo, referrer);
    await expectCountsRight(store, catalog, 'fail');
    expect(Number((await catalog.sql(`SELECT build_tags FROM repositories WHERE name = '${repo}'`))[0]?.build_tags)).toBe(0);
  }, 60_000);
});

describe('a store transaction run again after a serialization failure (postgres)', () => {
  let backend: Backend;
  let catalog: Catalog;

  beforeAll(async () => {
    backend = await startBackend('postgres');
    catalog = await backend.fresh();
    // Armed, the next update of a repository row (a transaction's last writes: its counters)
    // fails once with a serialization failure; a sequence counts the tries whatever rolls back.
    await catalog.exec(`
      CREATE SEQUENCE serialization_tries;
      CREATE FUNCTION fail_first_try() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('serialization_tries') = 1 THEN RAISE EXCEPTION 'provoked' USING ERRCODE = '40001'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_first_try BEFORE UPDATE ON repositories FOR EACH ROW EXECUTE FUNCTION fail_first_try();`);
  }, 120_000);

  afterAll(async () => {
    await backend?.stop();
  });

  /** Runs a write with the failure armed, and checks it was indeed tried twice. */
  async function retried(write: () => Promise<unknown>): Promise<void> {
    await catalog.exec(`SELECT setval('serialization_tries', 1, false)`);
    await write();
    expect(Number((await catalog.sql('SELECT last_value FROM serialization_tries'))[0]?.last_value)).toBeGreaterThanOrEqual(2);
  }

  it('applies the insights increments and repository counters of the last attempt only', async () => {
    const store = catalog.store as SqlStore;
    const labelled = image({});
    const built = image({ [`${CI}pipeline_id`]: '7' });
    const multi = index([image({}), image({ 'moby.buildkit.x': '1' })]);
    await store.putManifests([labelled, built, multi]);
    await store.putManifest(image({}));
    await retried(() => store.setTag('retry/a', 'one', multi.digest, at(20)));
    await retried(() => store.setTag('retry/a', 'two', built.digest, at(30)));
    await retried(() => store.setTag('retry/b/c', 'one', labelled.digest, at(10)));
    await retried(() => store.putConfigLabels(labelled.configDigest!, { 'io.buildah.version': '1.33', 'org.opencontainers.image.source': 'https://x' }));
    await retried(() => store.setTag('retry/a', 'one', built.digest, at(3)));
    await retried(() => store.reconcileRepository('retry/b/c', new Map([['one', labelled.digest], ['new', multi.digest]]), at(40)));
    await retried(() => attachBuildDetails(store, 'retry/b/c', multi.digest));
    await retried(() => store.deleteTag('retry/a', 'two', at(50)));
    await expectCountsRight(store, catalog, 'retry');
    const totals = (await store.insights({ ...queries('retry')[0]!, namespace: 'retry' })).totals;
    expect([totals.images, totals.multiPlatform, totals.builders.buildah]).toEqual([4, 2, 1]);
  }, 120_000);
});

describe.each(BACKENDS)('a batch of manifests failing half-way (%s)', (name) => {
  let backend: Backend;
  let catalog: Catalog;

  beforeAll(async () => {
    backend = await startBackend(name);
    catalog = await backend.fresh();
  }, 120_000);

  afterAll(async () => {
    await backend?.stop();
  });

  it('is written again one by one: nothing of the batch is left, and nothing is counted twice', async () => {
    const store = catalog.store as SqlStore;
    const list = [image({ [`${CI}pipeline_id`]: '1' }), image({}), index([image({}), image({})]), image({}), image({ 'moby.buildkit.x': '1' })];
    const refused = list[3]!;
    // Tagged before their manifests arrive (a push's events come first): the manifests change the counts.
    for (const [i, rec] of list.entries()) await store.setTag(i % 2 ? 'batch/a' : 'batch/b/c', `t${i}`, rec.digest, at(i * 9));
    await catalog.exec(
      name === 'sqlite'
        ? `CREATE TRIGGER refuse_one BEFORE INSERT ON manifests WHEN NEW.digest = '${refused.digest}' BEGIN SELECT RAISE(ABORT, 'refused'); END`
        : `CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
           CREATE TRIGGER refuse_one BEFORE INSERT ON manifests FOR EACH ROW WHEN (NEW.digest = '${refused.digest}') EXECUTE FUNCTION refuse_one();`,
    );
    const crawl = crawlStore(store);
    const outcomes = await Promise.allSettled(list.map((rec) => crawl.putManifest(rec)));
    expect(outcomes.map((o) => o.status)).toEqual(list.map((rec) => (rec === refused ? 'rejected' : 'fulfilled')));
    const stored = (await catalog.sql('SELECT digest FROM manifests')).map((r) => r.digest as string);
    expect(stored).not.toContain(refused.digest);
    for (const rec of list) if (rec !== refused) expect(stored).toContain(rec.digest);
    // A write after the failure (a main-thread transaction on SQLite) counts too.
    await attachBuildDetails(store, 'batch/a', list[1]!.digest);
    await expectCountsRight(store, catalog, 'batch');
    await expectLevelsMatchImages(catalog);
  }, 120_000);
});

/** Each image row of the insights is counted as its manifest is now. */
async function expectLevelsMatchImages(catalog: Catalog): Promise<void> {
  const rows = await catalog.sql(
    `SELECT i.builder, i.media_family, CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.builder, '') END AS m_builder,
       CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.media_family, '') END AS m_family
     FROM insight_images i LEFT JOIN manifests m ON m.digest = i.digest`,
  );
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) expect([r.builder, r.media_family]).toEqual([r.m_builder, r.m_family]);
}
