// One contract, two backends: every Store behaviour is checked on SQLite (a file in a temp dir)
// and on PostgreSQL (a throw-away cluster, started once for this file).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigestMismatchError, InvalidInputError, StoreError, UsageError } from '../../src/errors.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Store } from '../../src/catalog/store.js';
import { openStore, parseStoreUrl } from '../../src/catalog/open.js';
import { explainSearch } from '../../bench/catalog/explain.js';
import type { ManifestRecord, Page, Platform, TagItem } from '../../src/catalog/types.js';
import { MANIFEST_DELETE, SET, TAG_DELETE, type TagEvent, compareEvents } from '../../src/catalog/tagstate.js';
import { createDatabase, startPostgres } from '../helpers/postgres.js';
import { SQLITE_MIGRATIONS } from '../../src/catalog/migrations/sqlite.js';
import { POSTGRES_MIGRATIONS } from '../../src/catalog/migrations/postgres.js';
import Database from 'better-sqlite3';
import pg from 'pg';

const ALL_VERSIONS = SQLITE_MIGRATIONS.map((m) => m.version);
if (POSTGRES_MIGRATIONS.map((m) => m.version).join() !== ALL_VERSIONS.join()) throw new Error('the two dialects have different migration versions');

/** Runs one statement on the catalog behind the store's back (to stage a pre-migration state). */
async function rawSql(url: string, sql: string): Promise<void> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'sqlite') {
    const db = new Database(loc.path);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: loc.url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

interface Backend {
  url: string;
  /** A URL of a new, empty database. */
  fresh(): Promise<string>;
  stop(): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'tagtrail-catalog-'));
  let n = 0;
  return {
    url: `sqlite:${join(dir, 'catalog.db')}`,
    fresh: async () => `sqlite:${join(dir, `fresh-${++n}.db`)}`,
    stop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresBackend(): Promise<Backend> {
  const cluster = await startPostgres();
  let n = 0;
  return {
    url: cluster.url,
    fresh: async () => {
      return createDatabase(cluster, `fresh_${++n}`);
    },
    stop: cluster.stop,
  };
}

// ---------------------------------------------------------------- fixtures

const CI = 'com.gitlab.ci.';
const OCI = 'org.opencontainers.image.';
let nonce = 0;

function sha(s: string): string {
  return sha256Digest(Buffer.from(s));
}

function image(annotations: Record<string, string> = {}, options: { config?: string; labels?: Record<string, string> } = {}): ManifestRecord {
  const config = options.config ?? sha(`config-${++nonce}`);
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config, size: 2 }, layers: [], annotations, nonce: ++nonce };
  const raw = Buffer.from(`${JSON.stringify(doc, null, 3)}\n`);
  return { digest: sha256Digest(raw), mediaType: OCI_MANIFEST, raw, configDigest: config, annotations, ...(options.labels ? { labels: options.labels } : {}) };
}

function index(children: { record: ManifestRecord; platform: Platform }[], annotations: Record<string, string> = {}): ManifestRecord {
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c) => ({ mediaType: OCI_MANIFEST, digest: c.record.digest, size: c.record.raw.byteLength, platform: c.platform })),
    annotations,
  };
  const raw = Buffer.from(JSON.stringify(doc));
  return {
    digest: sha256Digest(raw),
    mediaType: OCI_INDEX,
    raw,
    annotations,
    children: children.map((c) => ({ digest: c.record.digest, mediaType: OCI_MANIFEST, size: c.record.raw.byteLength, platform: c.platform, manifest: c.record })),
  };
}

function t(seconds: number): Date {
  return new Date(Date.UTC(2026, 0, 1) + seconds * 1000);
}

function hex(n: number): string {
  return sha(`commit-${n}`).slice('sha256:'.length, 'sha256:'.length + 40);
}

async function allPages<T>(fetch: (cursor?: string) => Promise<Page<T>>): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await fetch(cursor);
    pages++;
    items.push(...page.items);
    cursor = page.nextCursor;
    if (pages > 100) throw new Error('pagination does not end');
  } while (cursor);
  return { items, pages };
}

// ---------------------------------------------------------------- the contract

describe.each([
  { name: 'sqlite', start: sqliteBackend },
  { name: 'postgres', start: postgresBackend },
])('catalog store contract: $name', ({ name, start }) => {
  let backend: Backend;
  let store: Store;
  const opened: Store[] = [];
  let prefix = 0;
  /** A repository name of this test's own. */
  const repo = (s = 'app') => `group${++prefix}/${s}`;
  const open = async (url = backend.url) => {
    const s = await openStore(url);
    opened.push(s);
    return s;
  };

  beforeAll(async () => {
    backend = await start();
    store = await open();
  });

  afterAll(async () => {
    for (const s of opened) await s.close().catch(() => undefined);
    await backend?.stop();
  });

  it('reports its dialect', () => {
    expect(store.dialect).toBe(name);
  });

  it('applies migrations once: a second run, and a second process, are no-ops', async () => {
    const url = await backend.fresh();
    const first = await openStore(url, { migrate: false });
    opened.push(first);
    expect(await first.migrate()).toEqual(ALL_VERSIONS);
    expect(await first.migrate()).toEqual([]);
    const second = await open(url);
    expect(await second.migrate()).toEqual([]);
    expect(await second.stats()).toEqual({ repositories: 0, liveTags: 0, deletedTags: 0, manifests: 0, configs: 0 });
  });

  it('migrates a fresh database once when several processes start together', async () => {
    const url = await backend.fresh();
    const stores = await Promise.all([0, 1, 2].map(() => openStore(url, { migrate: false })));
    opened.push(...stores);
    const applied = await Promise.all(stores.map((s) => s.migrate()));
    expect(applied.flat()).toEqual(ALL_VERSIONS);
  });

  it('round-trips a manifest: the raw bytes exactly, annotations, labels', async () => {
    const raw = Buffer.from('{\n  "schemaVersion" : 2,\t"mediaType":"application/vnd.oci.image.manifest.v1+json",\n  "annotations": {"a.b": "\\u00e9\\u0000\u00e9 \ud83d\ude00"}\n}\r\n');
    const digest = sha256Digest(raw);
    const config = sha('round-trip-config');
    expect(await store.hasManifest(digest)).toBe(false);
    expect(await store.putManifest({ digest, mediaType: OCI_MANIFEST, raw, configDigest: config, annotations: { 'a.b': 'é\u0000é 😀' }, artifactType: 'application/x.test', labels: { 'x.y': '1' } })).toEqual({ inserted: true });
    expect(await store.putManifest({ digest, mediaType: OCI_MANIFEST, raw })).toEqual({ inserted: false });
    expect(await store.hasManifest(digest)).toBe(true);
    const got = await store.getImage(digest);
    expect(got).not.toBeNull();
    expect(Buffer.compare(got!.raw, raw)).toBe(0);
    expect(got!.size).toBe(raw.byteLength);
    expect(got!.mediaType).toBe(OCI_MANIFEST);
    expect(got!.artifactType).toBe('application/x.test');
    expect(got!.configDigest).toBe(config);
    expect({ ...got!.annotations }).toEqual({ 'a.b': 'é\ufffdé 😀' });
    expect({ ...got!.labels }).toEqual({ 'x.y': '1' });
    expect(await store.hasConfigLabels(config)).toBe(true);
    expect(await store.getImage(sha('nothing'))).toBeNull();
  });

  it('refuses bytes that do not hash to the digest, and malformed digests', async () => {
    const rec = image();
    await expect(store.putManifest({ ...rec, raw: Buffer.from('other bytes') })).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.setTag(repo(), 'x', 'sha256:1234', t(1))).rejects.toBeInstanceOf(InvalidInputError);
    await expect(store.hasManifest("sha256:' OR 1=1 --")).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('stores an index with its children, and finds the index by a child annotation', async () => {
    const r = repo();
    const amd = image({ [`${CI}commit_sha`]: hex(1), [`${CI}pipeline_id`]: '1001' });
    const arm = image({ [`${CI}commit_sha`]: hex(1), [`${CI}job_name`]: 'build-arm' });
    const idx = index(
      [
        { record: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { record: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
      { [`${OCI}title`]: 'multi' },
    );
    await store.putManifest(idx);
    expect(await store.hasManifest(amd.digest)).toBe(true);
    expect(await store.setTag(r, '1.0', idx.digest, t(10))).toBe('applied');

    const found = await store.searchImages({ pipeline: '1001' });
    expect(found.items.map((i) => [i.repository, i.tag, i.digest])).toEqual([[r, '1.0', idx.digest]]);
    const item = found.items[0]!;
    expect(item.mediaType).toBe(OCI_INDEX);
    expect(item.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    expect({ ...item.annotations }).toEqual({ [`${OCI}title`]: 'multi', [`${CI}commit_sha`]: hex(1), [`${CI}pipeline_id`]: '1001', [`${CI}job_name`]: 'build-arm' });
    expect(item.hasBuildDetails).toBe(true);
    expect((await store.searchImages({ annotations: [{ key: `${CI}job_name`, value: 'build-arm' }], repository: r })).items).toHaveLength(1);

    const detail = await store.getImage(idx.digest);
    expect(detail!.children.map((c) => [c.digest, c.platform, c.annotations?.[`${CI}commit_sha`]])).toEqual([
      [amd.digest, { os: 'linux', architecture: 'amd64' }, hex(1)],
      [arm.digest, { os: 'linux', architecture: 'arm64', variant: 'v8' }, hex(1)],
    ]);
    expect(detail!.tags.map((x) => [x.repository, x.tag])).toEqual([[r, '1.0']]);
    const child = await store.getImage(arm.digest);
    expect(child!.parents).toEqual([idx.digest]);
    expect(child!.tags).toEqual([]);

    // A child in a second index: both parents, both tags found by its annotation.
    const idx2 = index([{ record: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }]);
    await store.putManifest(idx2);
    await store.setTag(r, 'arm-only', idx2.digest, t(11));
    expect((await store.getImage(arm.digest))!.parents.sort()).toEqual([idx.digest, idx2.digest].sort());
    const both = await store.searchImages({ annotations: [{ key: `${CI}job_name`, value: 'build-arm' }], repository: r });
    expect(both.items.map((i) => i.tag)).toEqual(['arm-only', '1.0']);
  });

  it('indexes a tag set before its manifest arrived, once the manifest does', async () => {
    const r = repo();
    const rec = image({ [`${CI}pipeline_id`]: '2002' });
    await store.setTag(r, 'early', rec.digest, t(5));
    const before = await store.listTags(r, {});
    expect(before.items.map((i) => [i.tag, i.mediaType])).toEqual([['early', null]]);
    expect((await store.searchImages({ pipeline: '2002' })).items).toEqual([]);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 1, buildTagCount: 0 });
    await store.putManifest(rec);
    expect((await store.searchImages({ pipeline: '2002' })).items.map((i) => i.tag)).toEqual(['early']);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 1, buildTagCount: 1 });
  });

  it('keeps tag history: each digest with when it was replaced', async () => {
    const r = repo();
    const [a, b, c] = [image(), image(), image()];
    for (const rec of [a, b, c]) await store.putManifest(rec);
    await store.setTag(r, 'latest', a.digest, t(1));
    await store.setTag(r, 'latest', b.digest, t(2));
    await store.setTag(r, 'latest', b.digest, t(3)); // pushed again: same digest, no new entry
    await store.setTag(r, 'latest', c.digest, t(4));
    const h = await store.tagHistory(r, 'latest');
    expect(h).toMatchObject({ repository: r, tag: 'latest', digest: c.digest, deletedAt: null, updatedAt: t(4), firstSeen: t(1) });
    expect(h!.entries).toEqual([
      { digest: c.digest, since: t(4), until: null, end: null },
      { digest: b.digest, since: t(2), until: t(4), end: 'replaced' },
      { digest: a.digest, since: t(1), until: t(2), end: 'replaced' },
    ]);
    expect(await store.tagHistory(r, 'nope')).toBeNull();
    expect(await store.tagHistory('no/such', 'latest')).toBeNull();
  });

  it('ignores out-of-order and duplicate events', async () => {
    const r = repo();
    const [a, b] = [image(), image()];
    await store.putManifest(a);
    await store.putManifest(b);

    // set, then an older set: the newer state stays; the older digest goes into history.
    expect(await store.setTag(r, 's', b.digest, t(20))).toBe('applied');
    expect(await store.setTag(r, 's', a.digest, t(10))).toBe('superseded');
    expect(await store.setTag(r, 's', b.digest, t(20))).toBe('duplicate');
    let h = await store.tagHistory(r, 's');
    expect(h!.digest).toBe(b.digest);
    expect(h!.entries.map((e) => [e.digest, e.since, e.until])).toEqual([
      [b.digest, t(20), null],
      [a.digest, t(10), t(20)],
    ]);

    // delete, then an older set: stays deleted.
    expect(await store.deleteTag(r, 'd', t(50))).toBe('applied');
    expect(await store.setTag(r, 'd', a.digest, t(40))).toBe('superseded');
    h = await store.tagHistory(r, 'd');
    expect(h).toMatchObject({ digest: null, deletedAt: t(50) });
    expect((await store.listTags(r, {})).items.map((i) => i.tag)).toEqual(['s']);
    // ... and a newer set brings it back.
    expect(await store.setTag(r, 'd', b.digest, t(60))).toBe('applied');
    expect((await store.tagHistory(r, 'd'))!.digest).toBe(b.digest);

    // set, then an older delete: stays live.
    await store.setTag(r, 'k', a.digest, t(100));
    expect(await store.deleteTag(r, 'k', t(90))).toBe('superseded');
    expect((await store.tagHistory(r, 'k'))!.digest).toBe(a.digest);
    expect(await store.deleteTag(r, 'k', t(90))).toBe('duplicate');

    // equal times are idempotent.
    expect(await store.setTag(r, 'k', a.digest, t(100))).toBe('duplicate');

    // a manifest deletion seen before the (older) push of that manifest still deletes the tag.
    const c = image();
    expect(await store.deleteManifest(r, c.digest, t(205))).toEqual({ tagsDeleted: 0 });
    expect(await store.setTag(r, 'm', c.digest, t(200))).toBe('superseded');
    expect(await store.tagHistory(r, 'm')).toMatchObject({ digest: null, deletedAt: t(205) });
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 3 });
  });

  it('drops a deleted tag from search and listings but keeps its history', async () => {
    const r = repo();
    const rec = image({ [`${CI}pipeline_id`]: '3003', [`${CI}commit_sha`]: hex(3) });
    await store.putManifest(rec);
    await store.setTag(r, 'v1', rec.digest, t(1));
    expect((await store.searchImages({ pipeline: '3003' })).items).toHaveLength(1);
    expect(await store.deleteTag(r, 'v1', t(2))).toBe('applied');
    expect((await store.searchImages({ pipeline: '3003' })).items).toEqual([]);
    expect((await store.searchImages({ commit: hex(3) })).items).toEqual([]);
    expect((await store.searchImages({ repository: r })).items).toEqual([]);
    expect((await store.listTags(r, {})).items).toEqual([]);
    expect((await store.getImage(rec.digest))!.tags).toEqual([]);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ name: r, tagCount: 0, buildTagCount: 0 });
    const h = await store.tagHistory(r, 'v1');
    expect(h).toMatchObject({ digest: null, deletedAt: t(2), updatedAt: t(2) });
    expect(h!.entries).toEqual([{ digest: rec.digest, since: t(1), until: t(2), end: 'deleted' }]);
  });

  it('deletes the tags of a deleted manifest, in that repository only', async () => {
    const [r1, r2] = [repo('one'), repo('two')];
    const [a, b] = [image(), image()];
    await store.putManifest(a);
    await store.putManifest(b);
    await store.setTag(r1, 'x', a.digest, t(1));
    await store.setTag(r1, 'y', a.digest, t(1));
    await store.setTag(r1, 'z', b.digest, t(1));
    await store.setTag(r2, 'x', a.digest, t(1));
    expect(await store.deleteManifest(r1, a.digest, t(2))).toEqual({ tagsDeleted: 2 });
    expect(await store.deleteManifest(r1, a.digest, t(2))).toEqual({ tagsDeleted: 0 });
    expect((await store.listTags(r1, {})).items.map((i) => i.tag)).toEqual(['z']);
    expect((await store.listTags(r2, {})).items.map((i) => i.tag)).toEqual(['x']);
    // A manifest deletion older than the tag's move to it does nothing.
    await store.setTag(r2, 'x', b.digest, t(10));
    expect(await store.deleteManifest(r2, b.digest, t(5))).toEqual({ tagsDeleted: 0 });
    expect((await store.listTags(r2, {})).items.map((i) => i.digest)).toEqual([b.digest]);
  });

  it('reconciles a repository with a crawl', async () => {
    const r = repo();
    const d = [image(), image(), image(), image(), image(), image()];
    for (const rec of d) await store.putManifest(rec);
    await store.setTag(r, 'a', d[0]!.digest, t(10));
    await store.setTag(r, 'b', d[1]!.digest, t(10));
    await store.setTag(r, 'c', d[2]!.digest, t(10));
    await store.setTag(r, 'e', d[5]!.digest, t(30)); // pushed after the crawl began
    const live = new Map([
      ['a', d[0]!.digest],
      ['b', d[3]!.digest],
      ['new', d[4]!.digest],
    ]);
    expect(await store.reconcileRepository(r, live, t(20))).toEqual({ added: 1, updated: 1, deleted: 1, unchanged: 1, skipped: 1 });
    const tags = await store.listTags(r, {});
    expect(tags.items.map((i) => [i.tag, i.digest])).toEqual([
      ['e', d[5]!.digest],
      ['b', d[3]!.digest],
      ['new', d[4]!.digest],
      ['a', d[0]!.digest],
    ]);
    expect(await store.tagHistory(r, 'c')).toMatchObject({ digest: null, deletedAt: t(20) });
    expect(await store.reconcileRepository(r, live, t(21))).toEqual({ added: 0, updated: 0, deleted: 0, unchanged: 3, skipped: 1 });
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 4 });
    // An empty crawl deletes everything older than it.
    expect(await store.reconcileRepository(r, new Map(), t(40))).toMatchObject({ deleted: 4 });
    expect((await store.listTags(r, {})).items).toEqual([]);

    // A new tag on a manifest whose deletion (dated after the crawl) arrived first ends deleted,
    // as setTag would leave it.
    const r2 = repo();
    await store.deleteManifest(r2, d[0]!.digest, t(25));
    expect(await store.reconcileRepository(r2, new Map([['gone', d[0]!.digest], ['kept', d[1]!.digest]]), t(20))).toMatchObject({ added: 2 });
    expect((await store.listTags(r2, {})).items.map((i) => i.tag)).toEqual(['kept']);
    expect(await store.tagHistory(r2, 'gone')).toMatchObject({ digest: null, deletedAt: t(25), updatedAt: t(25), firstSeen: t(20) });
    expect((await store.listRepositories({ q: r2 })).items[0]).toMatchObject({ tagCount: 1, lastUpdated: t(25) });
  });

  it('searches by annotations (AND, key exists), commit prefix, pipeline and ref', async () => {
    const r = repo();
    const team = 'com.example.team';
    const x = image({ [`${CI}commit_sha`]: hex(10), [`${CI}pipeline_id`]: '501', [`${CI}commit_ref_name`]: 'main', [team]: 'payments' });
    const y = image({ [`${OCI}revision`]: hex(11), [`${CI}pipeline_id`]: '502', [`${CI}commit_ref_name`]: 'v1.2.0', [team]: 'payments' });
    const z = image({ [`${CI}commit_sha`]: hex(12), [`${CI}pipeline_id`]: '503', [`${CI}commit_ref_name`]: 'main' });
    for (const rec of [x, y, z]) await store.putManifest(rec);
    await store.setTag(r, 'x', x.digest, t(1));
    await store.setTag(r, 'y', y.digest, t(2));
    await store.setTag(r, 'z', z.digest, t(3));
    const tagsOf = async (q: Parameters<Store['searchImages']>[0]) => (await store.searchImages({ repository: r, ...q })).items.map((i) => i.tag);

    expect(await tagsOf({ annotations: [{ key: team, value: 'payments' }] })).toEqual(['y', 'x']);
    expect(await tagsOf({ annotations: [{ key: team, value: 'payments' }, { key: `${CI}commit_ref_name`, value: 'main' }] })).toEqual(['x']);
    expect(await tagsOf({ annotations: [{ key: team }] })).toEqual(['y', 'x']);
    expect(await tagsOf({ annotations: [{ key: team }, { key: `${OCI}revision` }] })).toEqual(['y']);
    expect(await tagsOf({ annotations: [{ key: team, value: 'pay' }] })).toEqual([]);
    expect(await tagsOf({ commit: hex(10) })).toEqual(['x']);
    expect(await tagsOf({ commit: hex(11).slice(0, 4) })).toEqual(['y']); // via org.opencontainers.image.revision
    expect(await tagsOf({ commit: hex(12).slice(0, 9).toUpperCase() })).toEqual(['z']);
    expect(await tagsOf({ pipeline: '502' })).toEqual(['y']);
    expect(await tagsOf({ pipeline: '50' })).toEqual([]);
    expect(await tagsOf({ ref: 'main' })).toEqual(['z', 'x']);
    expect(await tagsOf({ ref: 'main', pipeline: '503' })).toEqual(['z']);
    expect(await tagsOf({ ref: 'main', commit: hex(10).slice(0, 6), annotations: [{ key: team }] })).toEqual(['x']);
    expect(await tagsOf({ tag: 'y' })).toEqual(['y']);
    expect(await tagsOf({ tag: 'y', ref: 'main' })).toEqual([]);
    expect(await tagsOf({})).toEqual(['z', 'y', 'x']);
    expect((await store.searchImages({ repository: 'no/such/repo', ref: 'main' })).items).toEqual([]);

    for (const bad of ['abc', '', 'xyz123', 'abcd-']) {
      await expect(store.searchImages({ commit: bad })).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(store.searchImages({ limit: 0 })).rejects.toBeInstanceOf(UsageError);
    await expect(store.searchImages({ annotations: Array.from({ length: 17 }, (_, i) => ({ key: `com.example.k${i}` })) })).rejects.toBeInstanceOf(UsageError);
    await expect(store.searchImages({ cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(UsageError);
  });

  it('searches long annotation values exactly', async () => {
    const r = repo();
    const long = `${'x'.repeat(300)}-tail`;
    const a = image({ 'com.example.long': long });
    const b = image({ 'com.example.long': `${'x'.repeat(300)}-other` });
    const c = image({ 'com.example.long': 'y'.repeat(256) });
    for (const [i, rec] of [a, b, c].entries()) {
      await store.putManifest(rec);
      await store.setTag(r, `t${i}`, rec.digest, t(i));
    }
    const tagsOf = async (value: string) => (await store.searchImages({ repository: r, annotations: [{ key: 'com.example.long', value }] })).items.map((i) => i.tag);
    expect(await tagsOf(long)).toEqual(['t0']);
    expect(await tagsOf('x'.repeat(300))).toEqual([]);
    expect(await tagsOf('y'.repeat(256))).toEqual(['t2']);
    expect((await store.getImage(a.digest))!.annotations['com.example.long']).toBe(long);
  });

  it('pages with keyset cursors: no duplicates, no gaps, stable order', async () => {
    const r = repo();
    const rec = image({ 'com.example.paging': 'yes', [`${CI}commit_ref_name`]: 'paging' });
    await store.putManifest(rec);
    // 25 tags over 10 distinct times, so many share an update time.
    for (let i = 0; i < 25; i++) await store.setTag(r, `tag-${String(i).padStart(2, '0')}`, rec.digest, t(i % 10));

    const tags = await allPages((cursor) => store.listTags(r, { limit: 7, ...(cursor ? { cursor } : {}) }));
    expect(tags.pages).toBe(4);
    expect(tags.items).toHaveLength(25);
    expect(new Set(tags.items.map((i) => i.tag)).size).toBe(25);
    const expected = tags.items.map((i) => i.tag).slice();
    const sorted = [...tags.items].sort((p, q) => q.updatedAt.getTime() - p.updatedAt.getTime() || (p.tag < q.tag ? -1 : 1)).map((i) => i.tag);
    expect(expected).toEqual(sorted);

    for (const query of [{ annotations: [{ key: 'com.example.paging', value: 'yes' }] }, { annotations: [{ key: 'com.example.paging' }] }, { ref: 'paging' }, {}]) {
      const found = await allPages((cursor) => store.searchImages({ repository: r, ...query, limit: 6, ...(cursor ? { cursor } : {}) }));
      expect(found.pages).toBe(5);
      expect(found.items).toHaveLength(25);
      expect(new Set(found.items.map((i) => i.tag)).size).toBe(25);
      const times = found.items.map((i) => i.updatedAt.getTime());
      expect(times).toEqual([...times].sort((p, q) => q - p));
    }

    const base = `pages${prefix}-`;
    for (let i = 0; i < 12; i++) await store.setTag(`${base}${String(i).padStart(2, '0')}/x`, 'latest', rec.digest, t(1));
    const repos = await allPages((cursor) => store.listRepositories({ q: base, limit: 5, ...(cursor ? { cursor } : {}) }));
    expect(repos.pages).toBe(3);
    expect(repos.items.map((x) => x.name)).toEqual(Array.from({ length: 12 }, (_, i) => `${base}${String(i).padStart(2, '0')}/x`));
  });

  it('treats SQL-looking and pattern characters literally', async () => {
    const evil = ["' OR 1=1 --", '%', '_', '\\', "'; DROP TABLE tags; --", '50%_off\\'];
    const r = repo("'; DROP TABLE tags; --");
    const recs = evil.map((v) => image({ 'com.example.v': v, [`${CI}commit_ref_name`]: v }));
    for (const [i, rec] of recs.entries()) {
      await store.putManifest(rec);
      await store.setTag(r, evil[i]!, rec.digest, t(i));
    }
    for (const [i, v] of evil.entries()) {
      const byValue = await store.searchImages({ annotations: [{ key: 'com.example.v', value: v }] });
      expect(byValue.items.map((x) => x.digest)).toEqual([recs[i]!.digest]);
      expect((await store.searchImages({ ref: v, repository: r })).items.map((x) => x.tag)).toEqual([v]);
      expect((await store.searchImages({ tag: v })).items.map((x) => x.tag)).toEqual([v]);
      expect((await store.searchImages({ pipeline: v })).items).toEqual([]);
    }
    expect((await store.searchImages({ annotations: [{ key: "' OR 1=1 --" }] })).items).toEqual([]);
    expect((await store.searchImages({ annotations: [{ key: '%' }] })).items).toEqual([]);
    expect((await store.listTags(r, {})).items).toHaveLength(evil.length);
    expect((await store.listRepositories({ q: "'; drop" })).items.map((x) => x.name)).toEqual([r]);
    expect((await store.listRepositories({ q: '%' })).items.map((x) => x.name)).toEqual([]);
    expect((await store.listRepositories({ q: '_' })).items.map((x) => x.name)).toEqual([]);
    await expect(store.searchImages({ commit: "' OR 1=1 --" })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(store.searchImages({ commit: 'abcd%' })).rejects.toBeInstanceOf(InvalidInputError);
    expect((await store.stats()).liveTags).toBeGreaterThan(0);
  });

  it('falls back to config labels when a manifest carries no build annotations', async () => {
    const r = repo();
    const config = sha(`labels-${prefix}`);
    const plain = image({ 'com.example.other': 'x' }, { config });
    await store.putManifest(plain);
    await store.setTag(r, 'plain', plain.digest, t(1));
    expect(await store.hasConfigLabels(config)).toBe(false);
    expect((await store.searchImages({ commit: hex(20) })).items).toEqual([]);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 0 });

    await store.putConfigLabels(config, { 'org.label-schema.vcs-ref': hex(20), [`${OCI}source`]: 'https://gitlab.example.com/g/p', maintainer: 'someone' });
    expect(await store.hasConfigLabels(config)).toBe(true);
    const found = await store.searchImages({ commit: hex(20).slice(0, 8) });
    expect(found.items.map((i) => i.tag)).toEqual(['plain']);
    expect({ ...found.items[0]!.labelAnnotations }).toEqual({ [`${OCI}revision`]: hex(20), [`${OCI}source`]: 'https://gitlab.example.com/g/p' });
    expect({ ...found.items[0]!.annotations }).toEqual({ 'com.example.other': 'x' });
    expect(found.items[0]!.hasBuildDetails).toBe(true);
    expect((await store.searchImages({ annotations: [{ key: `${OCI}source`, value: 'https://gitlab.example.com/g/p' }], repository: r })).items).toHaveLength(1);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 1 });
    expect({ ...(await store.getImage(plain.digest))!.labels }).toMatchObject({ maintainer: 'someone' });

    // A manifest with build annotations is not searchable by its labels.
    const annotated = image({ [`${CI}commit_sha`]: hex(21) }, { labels: { [`${OCI}revision`]: hex(22) } });
    await store.putManifest(annotated);
    await store.setTag(r, 'annotated', annotated.digest, t(2));
    expect((await store.searchImages({ commit: hex(21) })).items.map((i) => i.tag)).toEqual(['annotated']);
    expect((await store.searchImages({ commit: hex(22) })).items).toEqual([]);
  });

  it('reads a page of tags whole: an index with its platforms, its children\'s labels, and a child or a manifest the catalog lacks', async () => {
    const r = repo();
    const amd = image({ 'com.example.kind': 'amd' }, { labels: { [`${OCI}revision`]: hex(30), maintainer: 'someone' } });
    const arm = image({ 'com.example.kind': 'arm' }, { labels: { [`${OCI}source`]: 'https://gitlab.example.com/g/q' } });
    const idx = index(
      [
        { record: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { record: arm, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      ],
      { [`${OCI}title`]: 'two' },
    );
    // The catalog gets the index with its first platform manifest only.
    await store.putManifest({ ...idx, children: idx.children!.map((c, i) => (i === 0 ? c : { digest: c.digest, mediaType: OCI_MANIFEST, size: c.size!, platform: c.platform! })) });
    await store.setTag(r, 'multi', idx.digest, t(1));
    const single = image({ [`${CI}commit_sha`]: hex(31) });
    await store.putManifest(single);
    await store.setTag(r, 'single', single.digest, t(2));
    await store.setTag(r, 'unread', sha(`never stored ${prefix}`), t(3));

    const page = await store.listTags(r, {});
    expect(page.items.map((i) => i.tag)).toEqual(['unread', 'single', 'multi']);
    const [unread, one, multi] = page.items as [TagItem, TagItem, TagItem];
    expect(unread).toMatchObject({ mediaType: null, platforms: [], hasBuildDetails: false });
    expect({ ...unread.annotations, ...unread.labelAnnotations }).toEqual({});
    expect(one.mediaType).toBe(OCI_MANIFEST);
    expect({ ...one.annotations }).toEqual({ [`${CI}commit_sha`]: hex(31) });
    expect(one.platforms).toEqual([]);
    expect(multi.mediaType).toBe(OCI_INDEX);
    expect(multi.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    expect({ ...multi.annotations }).toEqual({ [`${OCI}title`]: 'two', 'com.example.kind': 'amd' });
    expect({ ...multi.labelAnnotations }).toEqual({ [`${OCI}revision`]: hex(30) });
    expect(multi.hasBuildDetails).toBe(true);
    const found = await store.searchImages({ commit: hex(30) });
    expect(found.items).toEqual([multi]);
  });

  it('keeps sync checkpoints', async () => {
    const key = `crawl:${repo()}`;
    expect(await store.getCheckpoint(key)).toBeUndefined();
    await store.setCheckpoint(key, { last: 'group/app', n: 3 });
    await store.setCheckpoint(key, { last: 'group/zzz', n: 4 });
    expect(await store.getCheckpoint(key)).toEqual({ last: 'group/zzz', n: 4 });
    await store.deleteCheckpoint(key);
    expect(await store.getCheckpoint(key)).toBeUndefined();
  });

  it('lets one holder at a time run under a lock, across store instances', async () => {
    const other = await open();
    const lock = `reconcile-${prefix++}`;
    let inner: unknown;
    const outer = await store.withLock(lock, async () => {
      inner = await other.withLock(lock, async () => 'should not run');
      return 'ran';
    });
    expect(outer).toEqual({ ran: true, value: 'ran' });
    expect(inner).toEqual({ ran: false });
    expect(await other.withLock(lock, async () => 2)).toEqual({ ran: true, value: 2 });
    // Released when fn throws.
    await expect(store.withLock(lock, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await other.withLock(lock, async () => 3)).toEqual({ ran: true, value: 3 });
    // Other names are independent.
    const nested = await store.withLock(lock, () => other.withLock(`${lock}-b`, async () => 'b'));
    expect(nested).toEqual({ ran: true, value: { ran: true, value: 'b' } });
  });

  it('uses an index for key=value and commit prefix search', async () => {
    const options = { disableSeqScan: true };
    const indexed = name === 'sqlite' ? /USING (COVERING )?INDEX tag_terms_search/ : /(Index Only Scan|Index Scan|Bitmap Index Scan) (using|on) tag_terms_search/;
    const eq = await explainSearch(store, { annotations: [{ key: 'com.example.team', value: 'payments' }] }, options);
    expect(eq.plan.join('\n')).toMatch(indexed);
    const commit = await explainSearch(store, { commit: 'abcd12' }, options);
    expect(commit.plan.join('\n')).toMatch(indexed);
    expect(commit.sql).not.toMatch(/LIKE/i);
    const both = await explainSearch(store, { pipeline: '1', ref: 'main', repository: 'no/such' }, options);
    expect(both.plan.join('\n')).toMatch(indexed);
  });

  it('answers alike whichever side drives a search with common filters', async () => {
    // 1,200 tags over two images: every filter here matches more terms than the planner's probe
    // cap, so key-exists and small-repository searches walk the live tags instead of the terms.
    const r = repo();
    const main = image({ 'com.example.common': 'a', [`${CI}commit_ref_name`]: 'main' });
    const other = image({ 'com.example.common': 'b', [`${CI}commit_ref_name`]: 'dev' });
    await store.putManifest(main);
    await store.putManifest(other);
    const live = new Map(Array.from({ length: 1200 }, (_, i) => [`t${String(i).padStart(4, '0')}`, (i % 3 === 0 ? other : main).digest] as const));
    expect(await store.reconcileRepository(r, live, t(1))).toMatchObject({ added: 1200 });
    await store.setTag(r, 't0001', main.digest, t(2)); // one newer tag, to check the order
    const all = async (query: Parameters<Store['searchImages']>[0]) =>
      (await allPages((cursor) => store.searchImages({ ...query, limit: 250, ...(cursor ? { cursor } : {}) }))).items.map((i) => i.tag);

    const exists = await all({ repository: r, annotations: [{ key: 'com.example.common' }] });
    expect(exists).toHaveLength(1200);
    expect(new Set(exists).size).toBe(1200);
    expect(exists[0]).toBe('t0001');
    const mainTags = await all({ repository: r, ref: 'main' });
    expect(mainTags).toHaveLength(800);
    expect(new Set(mainTags).size).toBe(800);
    expect(mainTags[0]).toBe('t0001');
    expect(await all({ ref: 'main', annotations: [{ key: 'com.example.common', value: 'a' }] })).toEqual(mainTags);
    expect((await all({ repository: r, annotations: [{ key: 'com.example.common' }, { key: 'com.example.common', value: 'b' }] })).sort()).toEqual(
      [...live].filter(([, d]) => d === other.digest).map(([tag]) => tag),
    );
    expect(await all({ tag: 't0003', annotations: [{ key: 'com.example.common' }] })).toEqual(['t0003']);
    const walk = await explainSearch(store, { repository: r, annotations: [{ key: 'com.example.common' }] }, { disableSeqScan: true });
    expect(walk.sql).toMatch(/FROM tags g/);
    expect(walk.plan.join('\n')).toMatch(/tags_live_repo_id/);
  });

  it('converges: events applied in any order end as if applied in time order', async () => {
    // Three images, two with build details; search and counts must follow the tags too.
    const images = [image({ 'com.example.prop': 'v0', [`${CI}pipeline_id`]: '9000' }), image({ 'com.example.prop': 'v1' }), image({ 'com.example.prop': 'v2', [`${CI}pipeline_id`]: '9002' })];
    for (const rec of images) await store.putManifest(rec);
    const digests = images.map((m) => m.digest);
    const tags = ['a', 'b', 'c'];
    type Ev = { kind: 'set'; tag: string; digest: string; at: number } | { kind: 'delete'; tag: string; at: number } | { kind: 'deleteManifest'; digest: string; at: number };
    const ev: fc.Arbitrary<Ev> = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), tag: fc.constantFrom(...tags), digest: fc.constantFrom(...digests), at: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('delete' as const), tag: fc.constantFrom(...tags), at: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('deleteManifest' as const), digest: fc.constantFrom(...digests), at: fc.integer({ min: 1, max: 12 }) }),
    );
    const key = (e: Ev): TagEvent => ({ at: e.at, kind: e.kind === 'set' ? SET : e.kind === 'delete' ? TAG_DELETE : MANIFEST_DELETE, digest: e.kind === 'delete' ? '' : e.digest });
    const apply = async (r: string, e: Ev) => {
      if (e.kind === 'set') await store.setTag(r, e.tag, e.digest, t(e.at));
      else if (e.kind === 'delete') await store.deleteTag(r, e.tag, t(e.at));
      else await store.deleteManifest(r, e.digest, t(e.at));
    };
    const snapshot = async (r: string) => ({
      history: await Promise.all(tags.map(async (tag) => {
        const h = await store.tagHistory(r, tag);
        return h && { ...h, repository: undefined };
      })),
      live: (await store.listTags(r, {})).items.map((i) => [i.tag, i.digest, i.updatedAt.getTime()]),
      counts: (await store.listRepositories({ q: r })).items.map((x) => [x.tagCount, x.buildTagCount, x.lastUpdated.getTime()]),
      // Search orders newest first and breaks ties by row id, which records when a tag was first
      // seen, not event time; so the order within one instant is compared by name.
      found: await Promise.all(
        ['v0', 'v1', 'v2'].map(async (v) => {
          const items = (await store.searchImages({ repository: r, annotations: [{ key: 'com.example.prop', value: v }] })).items.map((i) => [i.tag, i.updatedAt.getTime()] as const);
          for (let k = 1; k < items.length; k++) expect(items[k - 1]![1]).toBeGreaterThanOrEqual(items[k]![1]);
          return [...items].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
        }),
      ),
    });
    const scenario = fc
      .array(ev, { minLength: 1, maxLength: 14 })
      .chain((events) => fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }), fc.subarray(events)));
    await fc.assert(
      fc.asyncProperty(scenario, async ([events, shuffled, duplicates]) => {
        const n = prefix++;
        const inOrder = `prop${n}/sorted`;
        const anyOrder = `prop${n}/shuffled`;
        for (const e of [...events].sort((p, q) => compareEvents(key(p), key(q)))) await apply(inOrder, e);
        for (const e of [...shuffled, ...duplicates]) await apply(anyOrder, e);
        expect(await snapshot(anyOrder)).toEqual(await snapshot(inOrder));
      }),
      { numRuns: Number(process.env.TAGTRAIL_PROPERTY_RUNS ?? 40), ...(process.env.TAGTRAIL_PROPERTY_SEED ? { seed: Number(process.env.TAGTRAIL_PROPERTY_SEED) } : {}) },
    );
  });

  // ---- insights (how images were built): see docs/insights.md

  describe('insights', () => {
    const week = 7 * 86400;
    const ATTESTATION = { 'vnd.docker.reference.type': 'attestation-manifest' };

    /** A buildx-style index: two platforms and an attestation manifest per platform. */
    function buildxIndex(): ManifestRecord {
      const amd = image();
      const arm = image();
      const att = image({}, {});
      const doc = {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.raw.byteLength, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.raw.byteLength, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
          { mediaType: OCI_MANIFEST, digest: att.digest, size: att.raw.byteLength, annotations: { ...ATTESTATION, 'vnd.docker.reference.digest': amd.digest }, platform: { architecture: 'unknown', os: 'unknown' } },
        ],
      };
      const raw = Buffer.from(JSON.stringify(doc));
      return {
        digest: sha256Digest(raw),
        mediaType: OCI_INDEX,
        raw,
        children: [
          { digest: amd.digest, mediaType: OCI_MANIFEST, platform: { os: 'linux', architecture: 'amd64' }, manifest: amd },
          { digest: arm.digest, mediaType: OCI_MANIFEST, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, manifest: arm },
          { digest: att.digest, mediaType: OCI_MANIFEST, platform: { os: 'unknown', architecture: 'unknown' } },
        ],
      };
    }

    const kanikoConfig = {
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/app'] },
      history: [{ created: '2026-01-01T00:00:00Z', author: 'kaniko', created_by: 'COPY app /app', comment: '' }],
      rootfs: { type: 'layers', diff_ids: [] },
    };

    it('derives builder, build-details source, media family and platforms per manifest', async () => {
      const idx = buildxIndex();
      await store.putManifest(idx);
      expect(await store.manifestInsight(idx.digest)).toEqual({
        builder: 'buildkit',
        confidence: 'high',
        evidence: ['manifests[2] is an attestation manifest (vnd.docker.reference.type=attestation-manifest)'],
        buildSource: 'none',
        mediaFamily: 'oci',
        platformCount: 2,
      });
      // Labels only: buildah's label names the builder, the revision label makes labels the source.
      const buildah = image({}, { labels: { 'io.buildah.version': '1.28.2', [`${OCI}revision`]: hex(1) } });
      await store.putManifest(buildah);
      expect(await store.manifestInsight(buildah.digest)).toMatchObject({ builder: 'buildah', buildSource: 'labels', platformCount: 1 });
      // Annotated, config never read: honest "unread".
      const annotated = image({ [`${CI}pipeline_id`]: '77' });
      await store.putManifest(annotated);
      expect(await store.manifestInsight(annotated.digest)).toMatchObject({ builder: 'unread', confidence: 'none', buildSource: 'annotations' });
      // The whole config, read for builder evidence.
      const kaniko = { ...image(), config: kanikoConfig };
      await store.putManifest(kaniko);
      expect(await store.manifestInsight(kaniko.digest)).toMatchObject({ builder: 'kaniko', evidence: ['history[0].author=kaniko'] });
      // A later manifest with the same config (an annotated copy) learns it from the stored config.
      const copy = image({ [`${CI}pipeline_id`]: '78' }, { config: kaniko.configDigest! });
      await store.putManifest(copy);
      expect(await store.manifestInsight(copy.digest)).toMatchObject({ builder: 'kaniko', buildSource: 'annotations' });
      // Labels recorded after the manifest: the manifest is derived again.
      const late = image();
      await store.putManifest(late);
      expect(await store.manifestInsight(late.digest)).toMatchObject({ builder: 'unread' });
      await store.putConfigLabels(late.configDigest!, { 'io.buildah.version': '1.33.7' });
      expect(await store.manifestInsight(late.digest)).toMatchObject({ builder: 'buildah', evidence: ['config label io.buildah.version=1.33.7'] });
      expect(await store.manifestInsight(sha('never stored'))).toBeNull();
    });

    it('counts images by week, overall, per namespace and per repository', async () => {
      const ns1 = `ins${++prefix}`;
      const ns2 = `ins${++prefix}`;
      const idx = buildxIndex();
      const buildah = image({}, { labels: { 'io.buildah.version': '1.28.2', [`${OCI}source`]: 'https://gitlab.example.com/g/p' } });
      const dockerDoc = { schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha('docker-config'), size: 2 }, layers: [], nonce: ++nonce };
      const dockerRaw = Buffer.from(JSON.stringify(dockerDoc));
      const docker: ManifestRecord = { digest: sha256Digest(dockerRaw), mediaType: dockerDoc.mediaType, raw: dockerRaw, configDigest: sha('docker-config'), annotations: { [`${CI}pipeline_id`]: '1' } };
      for (const r of [idx, buildah, docker]) await store.putManifest(r);
      // Week 0 (the week of 2026-01-01): the index in ns1/app. Week 1: buildah in ns1/lib, the
      // index again under another tag and repository ns1/app2, docker in ns2/svc. A tag moving back
      // to an image it already pointed at does not count it twice.
      await store.setTag(`${ns1}/app`, 'v1', idx.digest, t(0));
      await store.setTag(`${ns1}/app`, 'latest', idx.digest, t(week + 10));
      await store.setTag(`${ns1}/lib`, 'v1', buildah.digest, t(week));
      await store.setTag(`${ns1}/app2`, 'v1', idx.digest, t(week + 20));
      await store.setTag(`${ns2}/svc`, 'v1', docker.digest, t(week + 30));
      await store.setTag(`${ns2}/svc`, 'v1', buildah.digest, t(week + 40));
      await store.setTag(`${ns2}/svc`, 'v1', docker.digest, t(week + 50));

      const from = t(0);
      const to = t(week + 60);
      const all = await store.insights({ from, to });
      const mine = (g: { name: string }) => g.name === ns1 || g.name === ns2;
      const groups = all.groups.filter(mine);
      expect(all.groupBy).toBe('namespace');
      expect(all.weeks.map((w) => w.start.toISOString())).toEqual(['2025-12-29T00:00:00.000Z', '2026-01-05T00:00:00.000Z']);
      expect(groups.map((g) => g.name)).toEqual([ns1, ns2]);
      const g1 = groups[0]!;
      expect(g1.totals).toMatchObject({ images: 3, multiPlatform: 2, builders: { buildkit: 2, buildah: 1 }, buildSources: { none: 2, labels: 1 }, mediaTypes: { oci: 3 } });
      expect(g1.weeks.map((w) => w.counts.images)).toEqual([1, 2]);
      const g2 = groups[1]!;
      expect(g2.totals).toMatchObject({ images: 2, multiPlatform: 0, builders: { unread: 1, buildah: 1 }, buildSources: { annotations: 1, labels: 1 }, mediaTypes: { docker: 1, oci: 1 } });
      expect(g2.weeks.map((w) => w.counts.images)).toEqual([0, 2]);

      const byRepo = await store.insights({ namespace: ns1, from, to });
      expect(byRepo.groupBy).toBe('repository');
      expect(byRepo.namespace).toBe(ns1);
      expect(byRepo.groups.map((g) => [g.name, g.totals.images])).toEqual([
        [`${ns1}/app`, 1],
        [`${ns1}/app2`, 1],
        [`${ns1}/lib`, 1],
      ]);
      expect(byRepo.totals.images).toBe(3);
      expect(byRepo.platforms).toEqual([
        { platform: 'linux/amd64', images: 2 },
        { platform: 'linux/arm64/v8', images: 2 },
      ]);
      const one = await store.insights({ repository: `${ns2}/svc`, from, to });
      expect(one.totals).toMatchObject({ images: 2, builders: { unread: 1, buildah: 1 } });
      expect(one.groups.map((g) => g.name)).toEqual([`${ns2}/svc`]);
      // A namespace is matched by whole path segments.
      expect((await store.insights({ namespace: `${ns1.slice(0, -1)}`, from, to })).groups.filter(mine)).toEqual([]);
      // A window after everything counts nothing.
      expect((await store.insights({ namespace: ns1, from: t(week * 3), to: t(week * 4) })).totals.images).toBe(0);
    });

    it('refuses bad windows and namespaces with a usage error', async () => {
      await expect(store.insights({ from: t(week), to: t(0) })).rejects.toBeInstanceOf(UsageError);
      await expect(store.insights({ from: t(0), to: t(week * 600) })).rejects.toBeInstanceOf(UsageError);
      await expect(store.insights({ namespace: 'a/b' })).rejects.toBeInstanceOf(UsageError);
    });

    it('backfills the derived columns of manifests stored before they existed', async () => {
      const url = await backend.fresh();
      const s1 = await open(url);
      const idx = buildxIndex();
      const buildah = image({}, { labels: { 'io.buildah.version': '1.28.2' } });
      await s1.putManifest(idx);
      await s1.putManifest(buildah);
      await s1.close();
      // As a version-1 catalog would have them: nothing derived.
      await rawSql(url, 'UPDATE manifests SET builder = NULL, builder_confidence = NULL, builder_evidence = NULL, build_source = NULL, media_family = NULL, platform_count = NULL');
      const s2 = await open(url);
      expect(await s2.manifestInsight(idx.digest)).toMatchObject({ builder: 'buildkit', platformCount: 2, mediaFamily: 'oci' });
      expect(await s2.manifestInsight(buildah.digest)).toMatchObject({ builder: 'buildah', buildSource: 'none' });
    });
  });

  describe('build-details referrers', () => {
    const BUILD = 'application/vnd.tagtrail.build.v1+json';
    const referrer = (subject: string, annotations: Record<string, string>) => ({ digest: sha(`referrer-${++nonce}`), subjectDigest: subject, artifactType: BUILD, annotations });

    it('a referrer makes its subject\'s tags searchable by pipeline and commit, with build source referrer; the newest wins', async () => {
      const r = repo();
      const plain = image({ 'com.example.other': 'x' });
      await store.putManifest(plain);
      await store.setTag(r, 'v1', plain.digest, t(1));
      expect((await store.searchImages({ pipeline: '7001' })).items).toEqual([]);
      expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'none' });

      const first = referrer(plain.digest, { [`${CI}pipeline_id`]: '7001', [`${CI}commit_sha`]: hex(40), [`${OCI}created`]: '2026-01-01T10:00:00Z' });
      expect(await store.hasReferrer(first.digest)).toBe(false);
      await store.putReferrer(first);
      expect(await store.hasReferrer(first.digest)).toBe(true);
      expect(await store.referrerSubject(first.digest)).toBe(plain.digest);
      expect(await store.referrerSubject(sha(`never-stored-${nonce}`))).toBeNull();
      await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [first.digest]);
      expect(await store.referrersTagDigest(r, plain.digest)).toBe(sha(`tag-${nonce}`));
      expect(await store.referrersTagSubjects(r)).toEqual([plain.digest]);

      const byPipeline = (await store.searchImages({ pipeline: '7001' })).items;
      expect(byPipeline.map((i) => [i.repository, i.tag, i.digest])).toEqual([[r, 'v1', plain.digest]]);
      expect(byPipeline[0]!.referrer?.digest).toBe(first.digest);
      expect(byPipeline[0]!.hasBuildDetails).toBe(true);
      expect((await store.searchImages({ commit: hex(40).slice(0, 10) })).items.map((i) => i.tag)).toEqual(['v1']);
      expect((await store.listTags(r, {})).items[0]!.referrer?.digest).toBe(first.digest);
      expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'referrer' });
      expect((await store.getImage(plain.digest))!.referrers?.map((x) => x.digest)).toEqual([first.digest]);
      expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 1 });

      // A newer referrer: its annotations are the ones searched.
      const second = referrer(plain.digest, { [`${CI}pipeline_id`]: '7002', [`${OCI}created`]: '2026-01-02T10:00:00Z' });
      await store.putReferrer(second);
      await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [first.digest, second.digest]);
      expect((await store.searchImages({ pipeline: '7002' })).items.map((i) => i.referrer?.digest)).toEqual([second.digest]);
      expect((await store.searchImages({ pipeline: '7001' })).items).toEqual([]);
      expect((await store.getImage(plain.digest))!.referrers?.map((x) => x.digest)).toEqual([second.digest, first.digest]);

      // A referrer stored for another subject is not linked to this one.
      const other = referrer(sha(`someone-else-${nonce}`), { [`${CI}pipeline_id`]: '7009' });
      await store.putReferrer(other);
      await store.setReferrersTag(r, plain.digest, sha(`tag2-${nonce}`), [first.digest, second.digest, other.digest]);
      expect((await store.searchImages({ pipeline: '7009' })).items).toEqual([]);
    });

    it('the manifest\'s own build annotations win over a referrer', async () => {
      const r = repo();
      const annotated = image({ [`${CI}commit_sha`]: hex(41), [`${CI}pipeline_id`]: '7100' });
      await store.putManifest(annotated);
      await store.setTag(r, 'v1', annotated.digest, t(1));
      const ref = referrer(annotated.digest, { [`${CI}pipeline_id`]: '7101', [`${CI}commit_sha`]: hex(42) });
      await store.putReferrer(ref);
      await store.setReferrersTag(r, annotated.digest, sha(`tag-${nonce}`), [ref.digest]);
      expect((await store.searchImages({ pipeline: '7101' })).items).toEqual([]);
      expect((await store.searchImages({ commit: hex(42) })).items).toEqual([]);
      const found = (await store.searchImages({ pipeline: '7100' })).items;
      expect(found.map((i) => i.tag)).toEqual(['v1']);
      expect(found[0]!.referrer).toBeUndefined();
      expect(await store.manifestInsight(annotated.digest)).toMatchObject({ buildSource: 'annotations' });
    });

    it('a referrers tag deleted, or a referrer manifest deleted, takes the details away', async () => {
      const r = repo();
      const plain = image({});
      await store.putManifest(plain);
      await store.setTag(r, 'v1', plain.digest, t(1));
      const ref = referrer(plain.digest, { [`${CI}pipeline_id`]: '7200' });
      await store.putReferrer(ref);
      await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [ref.digest]);
      expect((await store.searchImages({ pipeline: '7200' })).items).toHaveLength(1);

      await store.setReferrersTag(r, plain.digest, null, []);
      expect((await store.searchImages({ pipeline: '7200' })).items).toEqual([]);
      expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'none' });
      expect(await store.referrersTagDigest(r, plain.digest)).toBeNull();
      expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 0 });

      await store.setReferrersTag(r, plain.digest, sha(`tag-again-${nonce}`), [ref.digest]);
      expect((await store.searchImages({ pipeline: '7200' })).items).toHaveLength(1);
      await store.removeReferrer(r, ref.digest);
      expect((await store.searchImages({ pipeline: '7200' })).items).toEqual([]);
      expect((await store.getImage(plain.digest))!.referrers).toEqual([]);
      // Linked nowhere: forgotten, so a referrers tag still listing it reads it again.
      expect(await store.hasReferrer(ref.digest)).toBe(false);
    });

    it('converges when the referrer arrives before the subject\'s manifest and tag', async () => {
      const r = repo();
      const plain = image({});
      const ref = referrer(plain.digest, { [`${CI}pipeline_id`]: '7300', [`${CI}commit_ref_name`]: 'feature/early' });
      await store.putReferrer(ref);
      await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [ref.digest]);
      expect((await store.searchImages({ pipeline: '7300' })).items).toEqual([]);
      // The tag before its manifest, then the manifest.
      await store.setTag(r, 'early', plain.digest, t(1));
      await store.putManifest(plain);
      const found = (await store.searchImages({ ref: 'feature/early' })).items;
      expect(found.map((i) => [i.tag, i.referrer?.digest])).toEqual([['early', ref.digest]]);
      expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'referrer' });
      // A second tag on the same digest later gets the same terms.
      await store.setTag(r, 'later', plain.digest, t(2));
      expect((await store.searchImages({ pipeline: '7300' })).items.map((i) => i.tag)).toEqual(['later', 'early']);
    });

    it('reads several manifests at once, each as getImage reads it', async () => {
      const r = repo();
      const other = repo('other');
      const labelled = image({ 'com.example.other': 'x' }, { config: sha(`batch-config-${++nonce}`) });
      await store.putConfigLabels(labelled.configDigest!, { maintainer: 'someone' });
      const unread = image({});
      const emptyLabels = image({}, { config: sha(`batch-empty-${++nonce}`) });
      await store.putConfigLabels(emptyLabels.configDigest!, {});
      const amd = image({ [`${CI}commit_sha`]: hex(60) });
      const idx = index([{ record: amd, platform: { os: 'linux', architecture: 'amd64' } }, { record: labelled, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }], { [`${OCI}title`]: 'batch' });
      for (const m of [labelled, unread, emptyLabels, idx]) await store.putManifest(m);
      await store.setTag(r, 'b', labelled.digest, t(2));
      await store.setTag(r, 'a', labelled.digest, t(3));
      await store.setTag(other, 'z', labelled.digest, t(4));
      await store.setTag(r, 'idx', idx.digest, t(5));
      await store.setTag(r, 'gone', unread.digest, t(6));
      await store.deleteTag(r, 'gone', t(7));
      // A referrer listed in `other` only: it counts there, and (without a repository) since `other` tags the digest.
      const ref = referrer(labelled.digest, { [`${CI}pipeline_id`]: '7400', [`${OCI}created`]: '2026-01-03T10:00:00Z' });
      await store.putReferrer(ref);
      await store.setReferrersTag(other, labelled.digest, sha(`batch-tag-${nonce}`), [ref.digest]);

      const missing = sha(`batch-missing-${nonce}`);
      const digests = [labelled.digest, unread.digest, emptyLabels.digest, idx.digest, amd.digest, missing, labelled.digest];
      for (const options of [{}, { repository: r }, { repository: other }, { repository: repo('never') }]) {
        const batch = await store.getImages(digests, options);
        expect([...batch.keys()].sort(), JSON.stringify(options)).toEqual([labelled.digest, unread.digest, emptyLabels.digest, idx.digest, amd.digest].sort());
        for (const d of batch.keys()) expect(batch.get(d), `${d} ${JSON.stringify(options)}`).toEqual(await store.getImage(d, options));
      }
      const all = await store.getImages(digests);
      expect(all.get(labelled.digest)!.labels).toEqual({ maintainer: 'someone' });
      expect(all.get(emptyLabels.digest)!.labels).toEqual({});
      expect(all.get(unread.digest)!.labels).toBeNull();
      expect(all.get(labelled.digest)!.tags.map((x) => `${x.repository}:${x.tag}`)).toEqual([`${r}:a`, `${r}:b`, `${other}:z`]);
      expect(all.get(labelled.digest)!.parents).toEqual([idx.digest]);
      expect(all.get(labelled.digest)!.referrers?.map((x) => x.digest)).toEqual([ref.digest]);
      expect((await store.getImages([labelled.digest], { repository: r })).get(labelled.digest)!.referrers).toEqual([]);
      expect(all.get(idx.digest)!.children.map((c) => c.digest)).toEqual([amd.digest, labelled.digest]);
      expect(await store.getImages([])).toEqual(new Map());
      await expect(store.getImages([labelled.digest, 'sha256:nope'])).rejects.toBeInstanceOf(InvalidInputError);
    });
  });

  it('remembers manifests it cannot read, by digest, and updates the reason', async () => {
    const digest = `sha256:${'e'.repeat(63)}1`;
    expect(await store.unreadable(digest)).toBeUndefined();
    await store.markUnreadable(digest, 'UNSUPPORTED', 'schema 1 manifest', t(1));
    expect(await store.unreadable(digest)).toEqual({ code: 'UNSUPPORTED', reason: 'schema 1 manifest' });
    await store.markUnreadable(digest, 'INVALID_MANIFEST', 'nests too deep', t(2));
    expect(await store.unreadable(digest)).toEqual({ code: 'INVALID_MANIFEST', reason: 'nests too deep' });
    expect(await store.unreadable(`sha256:${'e'.repeat(63)}2`)).toBeUndefined();
    await expect(store.markUnreadable('sha256:nothex', 'UNSUPPORTED', 'x', t(1))).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('counts what it holds', async () => {
    const s = await store.stats();
    expect(s.repositories).toBeGreaterThan(5);
    expect(s.manifests).toBeGreaterThan(10);
    expect(s.liveTags).toBeGreaterThan(0);
    expect(s.deletedTags).toBeGreaterThan(0);
  });
});

describe('openStore URLs', () => {
  it('accepts sqlite: and postgres URLs', () => {
    expect(parseStoreUrl('sqlite:')).toEqual({ kind: 'sqlite', path: './tagtrail.db' });
    expect(parseStoreUrl('sqlite:./x.db')).toEqual({ kind: 'sqlite', path: './x.db' });
    expect(parseStoreUrl('sqlite::memory:')).toEqual({ kind: 'sqlite', path: ':memory:' });
    expect(parseStoreUrl('sqlite:///var/lib/tagtrail.db')).toEqual({ kind: 'sqlite', path: '/var/lib/tagtrail.db' });
    expect(parseStoreUrl('postgres://u:p@h/db')).toEqual({ kind: 'postgres', url: 'postgres://u:p@h/db' });
    expect(parseStoreUrl('postgresql://h/db')).toEqual({ kind: 'postgres', url: 'postgresql://h/db' });
  });

  it('refuses other forms with a usage error naming the accepted ones, without the password', async () => {
    for (const url of ['mysql://user:hunter2secret@db/x', 'tagtrail.db', 'sqlite3:x.db', '']) {
      const err = await openStore(url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      const text = `${(err as UsageError).message} ${(err as UsageError).hint}`;
      expect(text).toContain('sqlite:');
      expect(text).toContain('postgres://');
      expect(text).not.toContain('hunter2secret');
    }
  });

  it('never shows the PostgreSQL password in an error', async () => {
    const err = await openStore('postgres://tagtrail:hunter2secret@127.0.0.1:1/catalog').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    const e = err as StoreError;
    expect(e.message).toContain('postgres://tagtrail:***@127.0.0.1:1/catalog');
    expect(`${e.message} ${e.hint ?? ''} ${e.stack ?? ''} ${String(e.cause)}`).not.toContain('hunter2secret');
  });

  it('opens an in-memory SQLite catalog', async () => {
    const s = await openStore('sqlite::memory:');
    expect(s.dialect).toBe('sqlite');
    expect(await s.stats()).toMatchObject({ manifests: 0 });
    await s.close();
  });
});
