// The insights report reads weekly aggregates kept current at ingest (src/catalog/sql/insight-weeks.ts),
// and so do the verified images and images by pusher beside it (evidence-weeks.ts). Whatever the
// writes, on both backends, both must equal a full recount from the base tables, scoped and
// unscoped; and the migrations that added the aggregates must fill them so.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/oci/digest.js';
import { DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { openStore } from '../../src/catalog/open.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { insightsWindow, listedRepositories, recountInsights } from '../../src/catalog/sql/insights.js';
import { weekNumber } from '../../src/catalog/sql/insight-weeks.js';
import { readableSql } from '../../src/catalog/sql/read-scope-sql.js';
import { recountInsightEvidence } from '../../src/catalog/sql/verifications.js';
import { backfillInsightEvidence } from '../../src/catalog/sql/evidence-weeks.js';
import type { InsightsQuery, ManifestRecord } from '../../src/catalog/types.js';
import { BACKENDS, type Backend, type Catalog, startBackend } from './backends.js';

const CI = 'com.gitlab.ci.';
const DAY = 86_400_000;
const BASE = Date.UTC(2026, 0, 1);
const RUNS: Record<(typeof BACKENDS)[number], number> = process.env.TAGTRAIL_PROPERTY_RUNS ? { sqlite: Number(process.env.TAGTRAIL_PROPERTY_RUNS), postgres: Number(process.env.TAGTRAIL_PROPERTY_RUNS) } : { sqlite: 25, postgres: 10 };
const SEED = process.env.TAGTRAIL_PROPERTY_SEED ? { seed: Number(process.env.TAGTRAIL_PROPERTY_SEED) } : {};

let nonce = 0;

function sha(s: string): string {
  return sha256Digest(Buffer.from(s));
}

function image(annotations: Record<string, string>, mediaType: string = OCI_MANIFEST): ManifestRecord {
  const config = sha(`config-${++nonce}`);
  const doc = { schemaVersion: 2, mediaType, config: { mediaType: OCI_CONFIG, digest: config, size: 2 }, layers: [], annotations, nonce: ++nonce };
  const raw = Buffer.from(JSON.stringify(doc));
  return { digest: sha256Digest(raw), mediaType, raw, configDigest: config, annotations };
}

function index(children: ManifestRecord[]): ManifestRecord {
  const platforms = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'unknown', architecture: 'unknown' },
  ];
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: c.raw.byteLength, platform: platforms[i % platforms.length] })),
    nonce: ++nonce,
  };
  const raw = Buffer.from(JSON.stringify(doc));
  return {
    digest: sha256Digest(raw),
    mediaType: OCI_INDEX,
    raw,
    children: children.map((c, i) => ({ digest: c.digest, mediaType: OCI_MANIFEST, size: c.raw.byteLength, platform: platforms[i % platforms.length]!, manifest: c })),
  };
}

/** Five manifests per run: annotated OCI, plain OCI, Docker, and a three-child index (one of them a reference). */
function pool(): ManifestRecord[] {
  const a = image({ [`${CI}pipeline_id`]: String(++nonce) });
  const b = image({});
  const c = image({}, DOCKER_MANIFEST);
  const idx = index([image({}), image({ 'moby.buildkit.x': '1' }), image({})]);
  return [a, b, c, idx, image({ 'org.opencontainers.image.revision': 'abc' })];
}

type Op =
  | { op: 'put'; m: number }
  | { op: 'set'; repo: number; tag: number; m: number; day: number }
  | { op: 'deleteTag'; repo: number; tag: number; day: number }
  | { op: 'deleteManifest'; repo: number; m: number; day: number }
  | { op: 'reconcile'; repo: number; tags: number[]; m: number; day: number }
  | { op: 'labels'; m: number }
  | { op: 'referrer'; repo: number; m: number }
  | { op: 'verify'; repos: number[]; m: number }
  | { op: 'pusher'; m: number; pusher: number }
  | { op: 'push'; repo: number; tag: number; m: number; day: number; pusher: number }
  | { op: 'setPushed'; repo: number; tag: number; m: number; day: number; pusher: number }
  | { op: 'pushBare'; repo: number; tag: number; m: number; day: number; pusher: number }
  | { op: 'putMany'; ms: number[] }
  | { op: 'reconcileMixed'; repo: number; tags: [number, number][]; day: number }
  | { op: 'setAtWeekEdge'; repo: number; tag: number; m: number; week: number; before: boolean };

const PUSHERS = ['buildkit', 'kaniko', 'docker'];
const pusherIx = fc.integer({ min: 0, max: PUSHERS.length - 1 });

const day = fc.integer({ min: 0, max: 70 });
const repoIx = fc.integer({ min: 0, max: 3 });
const mIx = fc.integer({ min: 0, max: 4 });
const tagIx = fc.integer({ min: 0, max: 3 });
const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('put' as const), m: mIx }),
    fc.record({ op: fc.constant('set' as const), repo: repoIx, tag: tagIx, m: mIx, day }),
    fc.record({ op: fc.constant('set' as const), repo: repoIx, tag: tagIx, m: mIx, day }),
    fc.record({ op: fc.constant('deleteTag' as const), repo: repoIx, tag: tagIx, day }),
    fc.record({ op: fc.constant('deleteManifest' as const), repo: repoIx, m: mIx, day }),
    fc.record({ op: fc.constant('reconcile' as const), repo: repoIx, tags: fc.uniqueArray(tagIx, { maxLength: 3 }), m: mIx, day }),
    fc.record({ op: fc.constant('labels' as const), m: mIx }),
    fc.record({ op: fc.constant('referrer' as const), repo: repoIx, m: mIx }),
    fc.record({ op: fc.constant('verify' as const), repos: fc.uniqueArray(repoIx, { minLength: 1, maxLength: 2 }), m: mIx }),
    fc.record({ op: fc.constant('pusher' as const), m: mIx, pusher: pusherIx }),
    fc.record({ op: fc.constant('push' as const), repo: repoIx, tag: tagIx, m: mIx, day, pusher: pusherIx }),
    fc.record({ op: fc.constant('push' as const), repo: repoIx, tag: tagIx, m: mIx, day, pusher: pusherIx }),
    fc.record({ op: fc.constant('setPushed' as const), repo: repoIx, tag: tagIx, m: mIx, day, pusher: pusherIx }),
    fc.record({ op: fc.constant('pushBare' as const), repo: repoIx, tag: tagIx, m: mIx, day, pusher: pusherIx }),
    fc.record({ op: fc.constant('putMany' as const), ms: fc.uniqueArray(mIx, { minLength: 1, maxLength: 3 }) }),
    fc.record({ op: fc.constant('reconcileMixed' as const), repo: repoIx, tags: fc.uniqueArray(fc.tuple(tagIx, mIx), { maxLength: 3, selector: ([t]) => t }), day }),
    fc.record({ op: fc.constant('setAtWeekEdge' as const), repo: repoIx, tag: tagIx, m: mIx, week: fc.integer({ min: 0, max: 10 }), before: fc.boolean() }),
  ),
  { minLength: 1, maxLength: 25 },
);

/** Repositories of one run: two in one namespace (one nested), one in a namespace sharing its prefix, one that is a namespace of its own. */
function repositories(run: number): string[] {
  return [`agg${run}/a`, `agg${run}/b/c`, `agg${run}x/d`, `agg${run}y`];
}

async function apply(store: SqlStore, run: number, manifests: ManifestRecord[], op: Op): Promise<void> {
  const repos = repositories(run);
  const at = (d: number) => new Date(BASE + d * DAY + run);
  switch (op.op) {
    case 'put':
      await store.putManifest(manifests[op.m]!);
      return;
    case 'set':
      await store.setTag(repos[op.repo]!, `t${op.tag}`, manifests[op.m]!.digest, at(op.day));
      return;
    case 'deleteTag':
      await store.deleteTag(repos[op.repo]!, `t${op.tag}`, at(op.day));
      return;
    case 'deleteManifest':
      await store.deleteManifest(repos[op.repo]!, manifests[op.m]!.digest, at(op.day));
      return;
    case 'reconcile':
      await store.reconcileRepository(repos[op.repo]!, new Map(op.tags.map((t) => [`t${t}`, manifests[op.m]!.digest])), at(op.day));
      return;
    case 'labels': {
      const m = manifests[op.m]!;
      if (m.configDigest) await store.putConfigLabels(m.configDigest, { 'io.buildah.version': '1.33', 'org.opencontainers.image.source': 'https://x' });
      return;
    }
    case 'referrer': {
      const subject = manifests[op.m]!.digest;
      const digest = sha(`referrer-${++nonce}`);
      await store.putReferrer({ digest, subjectDigest: subject, artifactType: 'application/vnd.tagtrail.build.v1+json', annotations: { [`${CI}pipeline_id`]: '1' } });
      await store.setReferrersTag(repos[op.repo]!, subject, sha(`referrers-tag-${nonce}`), [digest]);
      return;
    }
    case 'verify': {
      // Also of a repository the image is not (yet) tagged in.
      const v = { by: 'gitlab-id-token' as const, issuer: 'https://gitlab.example.com', projectPath: 'g/p', pipelineId: '1', jobId: '2', sha: 'a'.repeat(40), ref: 'main', at: at(0) };
      await store.recordVerifications(op.repos.map((r) => ({ repository: repos[r]!, digest: manifests[op.m]!.digest })), v);
      return;
    }
    case 'pusher':
      await store.recordPusher(manifests[op.m]!.digest, `${PUSHERS[op.pusher]}/1`, PUSHERS[op.pusher]!, at(0));
      return;
    case 'push': {
      const m = manifests[op.m]!;
      const pushedBy = { userAgent: `${PUSHERS[op.pusher]}/1`, pusher: PUSHERS[op.pusher]! };
      await store.pushTag({ repository: repos[op.repo]!, tag: `t${op.tag}`, digest: m.digest, at: at(op.day), manifest: m, pushedBy });
      return;
    }
    case 'setPushed':
      await store.setTag(repos[op.repo]!, `t${op.tag}`, manifests[op.m]!.digest, at(op.day), { userAgent: `${PUSHERS[op.pusher]}/1`, pusher: PUSHERS[op.pusher]! });
      return;
    case 'pushBare': {
      const pushedBy = { userAgent: `${PUSHERS[op.pusher]}/1`, pusher: PUSHERS[op.pusher]! };
      await store.pushTag({ repository: repos[op.repo]!, tag: `t${op.tag}`, digest: manifests[op.m]!.digest, at: at(op.day), pushedBy });
      return;
    }
    case 'putMany':
      await store.putManifests(op.ms.map((m) => manifests[m]!));
      return;
    case 'reconcileMixed':
      await store.reconcileRepository(repos[op.repo]!, new Map(op.tags.map(([t, m]) => [`t${t}`, manifests[m]!.digest])), at(op.day));
      return;
    case 'setAtWeekEdge': {
      // A Monday 00:00 UTC (BASE is a Thursday), or the millisecond before it.
      const monday = BASE + 4 * DAY + op.week * 7 * DAY;
      await store.setTag(repos[op.repo]!, `t${op.tag}`, manifests[op.m]!.digest, new Date(monday - (op.before ? 1 : 0)));
      return;
    }
  }
}

/** The queries compared: whole catalog, a namespace, a repository, a read scope, and a narrow window. */
function queries(run: number): InsightsQuery[] {
  const window = { from: new Date(BASE - 7 * DAY), to: new Date(BASE + 80 * DAY) };
  const repos = repositories(run);
  return [
    window,
    { ...window, namespace: `agg${run}` },
    { ...window, repository: repos[1]! },
    { ...window, scope: { projects: [repos[0]!, repos[2]!], publicAndInternal: false } },
    // Two repositories of one namespace summed into one group, and a repository with no slash.
    { ...window, scope: { projects: [`agg${run}`, repos[3]!], publicAndInternal: false } },
    { ...window, scope: { projects: [], publicAndInternal: false } },
    { ...window, namespace: `agg${run}`, scope: { projects: [repos[1]!], publicAndInternal: true } },
    { from: new Date(BASE + 14 * DAY), to: new Date(BASE + 30 * DAY) },
    // Window edges: one week, and weeks after the first ones an image may have.
    { from: new Date(BASE + 21 * DAY), to: new Date(BASE + 21 * DAY) },
    { from: new Date(BASE + 35 * DAY), to: new Date(BASE + 63 * DAY), namespace: `agg${run}` },
    { from: new Date(BASE + 28 * DAY), to: new Date(BASE + 70 * DAY), scope: { projects: [repos[0]!, repos[1]!], publicAndInternal: false } },
  ];
}

/** Verified images and images by pusher as the old scan counts them from the tags (the product reads the aggregates). */
async function recountEvidence(store: SqlStore, query: InsightsQuery): Promise<{ verified: number; pushedBy: Record<string, number> }> {
  const window = insightsWindow(query);
  const ids = await listedRepositories(store.driver, query, query.scope ? readableSql(store.driver.dialect, query.scope, 'rs') : undefined);
  if (ids !== null && ids.length === 0) return { verified: 0, pushedBy: {} };
  return recountInsightEvidence(store.driver, window.from, window.to, ids);
}

async function expectMatchesRecount(store: SqlStore, query: InsightsQuery): Promise<void> {
  const window = insightsWindow(query);
  const readable = query.scope ? readableSql(store.driver.dialect, query.scope, 'rs') : undefined;
  const recount = await recountInsights(store.driver, query, window, readable);
  expect(await store.insights(query)).toEqual(recount);
  expect(await store.verifiedInsights(query)).toEqual(await recountEvidence(store, query));
}

/**
 * The evidence aggregates read back with SQL, by the rule they keep (an image's row of its first
 * week in the window: week inside it, prev_week before it), equal the recount of the whole catalog.
 */
async function expectEvidenceRows(catalog: Catalog, store: SqlStore, query: InsightsQuery): Promise<void> {
  const window = insightsWindow(query);
  const [from, to] = [weekNumber(window.from), weekNumber(window.to)];
  const rows = await catalog.sql(`SELECT verified, pusher, sum(images) AS n FROM insight_namespace_evidence WHERE week >= ${from} AND week < ${to} AND prev_week < ${from} GROUP BY verified, pusher`);
  const pushedBy: Record<string, number> = {};
  let verified = 0;
  for (const r of rows) {
    if (Number(r.verified) === 1) verified += Number(r.n);
    if (r.pusher !== '') pushedBy[String(r.pusher)] = (pushedBy[String(r.pusher)] ?? 0) + Number(r.n);
  }
  expect({ verified, pushedBy }).toEqual(await recountEvidence(store, query));
}

/** Rows as sorted JSON, numbers as numbers (PostgreSQL returns bigint as text). */
function rowsOf(rows: Record<string, unknown>[]): string[] {
  return rows.map((r) => JSON.stringify(Object.values(r).map((v) => (typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v)))).sort();
}

/**
 * The namespace level holds the repository level summed by namespace (the first segment of a
 * name), with no row for a key nothing is counted under; and each image row is counted as its
 * manifest is now (nothing while the manifest is not stored).
 */
async function expectLevelsAgree(catalog: Catalog): Promise<void> {
  for (const [level, namespaced, dims] of [
    ['insight_counts', 'insight_namespace_counts', ['builder', 'build_source', 'media_family', 'multi']],
    ['insight_platforms', 'insight_namespace_platforms', ['os', 'architecture', 'variant']],
    ['insight_evidence', 'insight_namespace_evidence', ['prev_week', 'verified', 'pusher']],
  ] as const) {
    const sums = new Map<string, number>();
    for (const r of await catalog.sql(`SELECT r.name, a.week, ${dims.map((d) => `a.${d}`).join(', ')}, a.images FROM ${level} a JOIN repositories r ON r.id = a.repository_id`)) {
      const key = JSON.stringify([Number(r.week), String(r.name).split('/')[0], ...dims.map((d) => (d === 'multi' || d === 'prev_week' || d === 'verified' ? Number(r[d]) : r[d]))]);
      sums.set(key, (sums.get(key) ?? 0) + Number(r.images));
    }
    const expected = [...sums].map(([key, n]) => JSON.stringify([...(JSON.parse(key) as unknown[]), n])).sort();
    expect(rowsOf(await catalog.sql(`SELECT week, namespace, ${dims.join(', ')}, images FROM ${namespaced}`))).toEqual(expected);
  }
  const images = await catalog.sql(
    `SELECT i.digest, i.builder, i.build_source, i.media_family, i.multi,
       CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.builder, '') END AS m_builder, CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.build_source, '') END AS m_source,
       CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.media_family, '') END AS m_family, CASE WHEN m.id IS NULL THEN NULL WHEN m.platform_count > 1 THEN 1 ELSE 0 END AS m_multi
     FROM insight_images i LEFT JOIN manifests m ON m.digest = i.digest`,
  );
  for (const r of images) expect([r.builder, r.build_source, r.media_family, r.multi == null ? null : Number(r.multi)]).toEqual([r.m_builder, r.m_source, r.m_family, r.m_multi == null ? null : Number(r.m_multi)]);
  // And each image row's verified and pusher as the verifications and pushers say now.
  const evidence = await catalog.sql(
    `SELECT i.verified, i.pusher, p.pusher AS p_pusher,
       CASE WHEN EXISTS (SELECT 1 FROM build_verifications v JOIN repositories r ON r.name = v.repository WHERE r.id = i.repository_id AND v.digest = i.digest) THEN 1 ELSE 0 END AS v_verified
     FROM insight_images i LEFT JOIN manifest_pushers p ON p.digest = i.digest`,
  );
  for (const r of evidence) expect([Number(r.verified), r.pusher]).toEqual([Number(r.v_verified), r.p_pusher]);
}

/** Migration 12's backfill, run over what the writes kept, gives the same evidence rows, row for row. */
async function expectBackfillKeeps(catalog: Catalog, store: SqlStore): Promise<void> {
  const read = async () =>
    Promise.all([
      catalog.sql('SELECT repository_id, week, prev_week, verified, pusher, images FROM insight_evidence'),
      catalog.sql('SELECT week, namespace, prev_week, verified, pusher, images FROM insight_namespace_evidence'),
      catalog.sql('SELECT repository_id, digest, verified, pusher FROM insight_images'),
    ]).then((tables) => tables.map(rowsOf));
  const kept = await read();
  await store.driver.write((q) => backfillInsightEvidence(q));
  expect(await read()).toEqual(kept);
}

describe.each(BACKENDS)('insights aggregates (%s)', (name) => {
  let backend: Backend;
  let catalog: Catalog;
  let run = 0;

  beforeAll(async () => {
    backend = await startBackend(name);
    catalog = await backend.fresh();
  }, 120_000);

  afterAll(async () => {
    await backend?.stop();
  });

  it('the report from the aggregates equals a full recount after any writes, scoped and unscoped', async () => {
    const store = catalog.store as SqlStore;
    await fc.assert(
      fc.asyncProperty(ops, async (sequence) => {
        const n = ++run;
        const manifests = pool();
        for (const op of sequence) await apply(store, n, manifests, op);
        for (const query of queries(n)) await expectMatchesRecount(store, query);
        for (const query of queries(n).filter((q) => !q.scope && !q.namespace && !q.repository)) await expectEvidenceRows(catalog, store, query);
        await expectLevelsAgree(catalog);
        await expectBackfillKeeps(catalog, store);
      }),
      { numRuns: RUNS[name], ...SEED },
    );
    // And one run known to count something: an index, an image whose labels arrive later, an earlier event.
    const n = ++run;
    const manifests = pool();
    const known: Op[] = [
      { op: 'put', m: 3 },
      { op: 'set', repo: 0, tag: 0, m: 3, day: 20 },
      { op: 'set', repo: 0, tag: 1, m: 1, day: 30 },
      { op: 'put', m: 1 },
      { op: 'labels', m: 1 },
      { op: 'set', repo: 0, tag: 2, m: 3, day: 3 },
      { op: 'referrer', repo: 2, m: 4 },
      { op: 'put', m: 4 },
      { op: 'reconcile', repo: 2, tags: [0], m: 4, day: 10 },
    ];
    for (const op of known) await apply(store, n, manifests, op);
    for (const query of queries(n)) await expectMatchesRecount(store, query);
    await expectLevelsAgree(catalog);
    const totals = (await store.insights({ ...queries(n)[0]!, namespace: `agg${n}` })).totals;
    expect([totals.images, totals.multiPlatform, totals.builders.buildah]).toEqual([2, 1, 1]);
  }, 300_000);

  it('writers side by side (PostgreSQL runs them alongside) keep the aggregates equal to a full recount', async () => {
    const store = catalog.store as SqlStore;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(ops.map((s) => s[0]!), { minLength: 2, maxLength: 6 }), { minLength: 1, maxLength: 5 }), async (rounds) => {
        const n = ++run;
        const manifests = pool();
        // Each round's writes at once: on PostgreSQL they run side by side (locks, deadlocks retried).
        for (const round of rounds) await Promise.all(round.map((op) => apply(store, n, manifests, op)));
        for (const query of queries(n)) await expectMatchesRecount(store, query);
        await expectLevelsAgree(catalog);
        await expectBackfillKeeps(catalog, store);
      }),
      { numRuns: RUNS[name], ...SEED },
    );
  }, 300_000);

  it('verified images and pushers: an image in two repositories, the first pusher kept, a deleted tag, window edges', async () => {
    const store = catalog.store as SqlStore;
    const n = ++run;
    const manifests = pool();
    const [a, b] = repositories(n);
    const known: Op[] = [
      { op: 'put', m: 0 },
      { op: 'set', repo: 0, tag: 0, m: 0, day: 20 },
      { op: 'set', repo: 1, tag: 0, m: 0, day: 22 },
      // One verification call for the image in both repositories: two verified images.
      { op: 'verify', repos: [0, 1], m: 0 },
      // The first pusher stays.
      { op: 'pusher', m: 0, pusher: 0 },
      { op: 'pusher', m: 0, pusher: 1 },
      // A second tag on the image, weeks later: still one image in a window holding both weeks.
      { op: 'set', repo: 0, tag: 1, m: 0, day: 40 },
      { op: 'push', repo: 0, tag: 2, m: 1, day: 50, pusher: 2 },
      // The deletion moves that tag's update to day 60 (a Monday): the image leaves day 40's week.
      { op: 'deleteTag', repo: 0, tag: 1, day: 60 },
      // Renewed: nothing counts twice.
      { op: 'verify', repos: [0], m: 0 },
    ];
    for (const op of known) await apply(store, n, manifests, op);
    const ofRun = (q: InsightsQuery): InsightsQuery => ({ ...q, namespace: `agg${n}` });
    const whole = ofRun({ from: new Date(BASE - 7 * DAY), to: new Date(BASE + 80 * DAY) });
    expect(await store.verifiedInsights(whole)).toEqual({ verified: 2, pushedBy: { buildkit: 2, docker: 1 } });
    expect(await store.verifiedInsights({ ...whole, repository: a! })).toEqual({ verified: 1, pushedBy: { buildkit: 1, docker: 1 } });
    expect(await store.verifiedInsights({ ...whole, namespace: undefined, scope: { projects: [b!], publicAndInternal: false } })).toEqual({ verified: 1, pushedBy: { buildkit: 1 } });
    expect(await store.verifiedInsights(ofRun({ from: new Date(BASE + 14 * DAY), to: new Date(BASE + 30 * DAY) }))).toEqual({ verified: 2, pushedBy: { buildkit: 2 } });
    expect(await store.verifiedInsights(ofRun({ from: new Date(BASE + 39 * DAY), to: new Date(BASE + 45 * DAY) }))).toEqual({ verified: 0, pushedBy: {} });
    // Day 60 is the first day of its week, day 59 the last of the week before.
    expect(await store.verifiedInsights(ofRun({ from: new Date(BASE + 60 * DAY), to: new Date(BASE + 60 * DAY) }))).toEqual({ verified: 1, pushedBy: { buildkit: 1 } });
    expect(await store.verifiedInsights(ofRun({ from: new Date(BASE + 53 * DAY), to: new Date(BASE + 59 * DAY) }))).toEqual({ verified: 0, pushedBy: {} });
    expect(await store.verifiedInsights(ofRun({ from: new Date(BASE + 46 * DAY), to: new Date(BASE + 66 * DAY) }))).toEqual({ verified: 1, pushedBy: { buildkit: 1, docker: 1 } });
    for (const query of [...queries(n), whole]) await expectMatchesRecount(store, query);
    await expectLevelsAgree(catalog);
  }, 120_000);

  it('a pusher with no name is refused, so every pusher the scan counts is one the aggregates count', async () => {
    const store = catalog.store as SqlStore;
    const n = ++run;
    const manifests = pool();
    const [a] = repositories(n);
    const [m0, m1, m2] = manifests;
    await store.putManifest(m0!);
    await store.setTag(a!, 't0', m0!.digest, new Date(BASE + 20 * DAY));
    const at = new Date(BASE + 21 * DAY);
    const unnamed = { userAgent: 'curl/8', pusher: '' };
    await expect(store.recordPusher(m0!.digest, unnamed.userAgent, unnamed.pusher, at)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(store.setTag(a!, 't1', m1!.digest, at, unnamed)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(store.pushTag({ repository: a!, tag: 't2', digest: m2!.digest, at, manifest: m2!, pushedBy: unnamed })).rejects.toMatchObject({ code: 'USAGE' });
    // Nothing written: no pusher, no tag.
    expect(Number((await catalog.sql(`SELECT count(*) AS n FROM manifest_pushers WHERE digest IN ('${m0!.digest}', '${m1!.digest}', '${m2!.digest}')`))[0]!.n)).toBe(0);
    expect((await catalog.sql(`SELECT g.name FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = '${a!}'`)).map((r) => r.name)).toEqual(['t0']);
    for (const query of queries(n)) await expectMatchesRecount(store, query);
  }, 60_000);

  /** A catalog with images in three repositories of two namespaces, some weeks apart; the reports before and a check after reopening. */
  async function migrated(stage: (catalog: Catalog) => Promise<void>): Promise<void> {
    const fresh = await backend.fresh();
    const store = fresh.store as SqlStore;
    const n = ++run;
    const manifests = pool();
    for (const m of manifests) await store.putManifest(m);
    const repos = repositories(n);
    for (let i = 0; i < 12; i++) await store.setTag(repos[i % 3]!, `t${i % 4}`, manifests[i % 5]!.digest, new Date(BASE + i * 5 * DAY));
    await store.deleteManifest(repos[0]!, manifests[0]!.digest, new Date(BASE + 9 * DAY));
    for (const op of [
      { op: 'verify', repos: [0, 1], m: 1 },
      { op: 'verify', repos: [2], m: 3 },
      { op: 'pusher', m: 1, pusher: 0 },
      { op: 'push', repo: 2, tag: 1, m: 2, day: 33, pusher: 1 },
      { op: 'set', repo: 1, tag: 3, m: 1, day: 48 },
    ] as const satisfies readonly Op[]) {
      await apply(store, n, manifests, op as Op);
    }
    const before = await Promise.all(queries(n).map((q) => store.insights(q)));
    const evidenceBefore = await Promise.all(queries(n).map((q) => store.verifiedInsights(q)));
    expect(before[0]!.totals.images).toBeGreaterThan(0);
    expect(before[0]!.platforms.length).toBeGreaterThan(0);
    expect(evidenceBefore[0]!.verified).toBeGreaterThan(0);
    expect(Object.keys(evidenceBefore[0]!.pushedBy).length).toBe(2);
    await store.close();
    await stage(fresh);
    const reopened = (await openStore(fresh.url)) as SqlStore;
    try {
      expect((await fresh.sql('SELECT count(*) AS n FROM insight_namespace_counts'))[0]!.n).not.toBe(0);
      expect((await fresh.sql('SELECT count(*) AS n FROM insight_namespace_evidence'))[0]!.n).not.toBe(0);
      for (const [i, query] of queries(n).entries()) {
        await expectMatchesRecount(reopened, query);
        expect(await reopened.insights(query)).toEqual(before[i]);
        expect(await reopened.verifiedInsights(query)).toEqual(evidenceBefore[i]);
      }
      for (const query of queries(n).filter((q) => !q.scope && !q.namespace && !q.repository)) await expectEvidenceRows(fresh, reopened, query);
      await expectLevelsAgree(fresh);
    } finally {
      await reopened.close();
    }
  }

  /** What migration 12 added: the evidence aggregates, and what each image row counts as beside the report. */
  const BEFORE_12 = 'DROP TABLE insight_namespace_evidence; DROP TABLE insight_evidence; ';
  const BEFORE_12_COLUMNS = 'ALTER TABLE insight_images DROP COLUMN verified; ALTER TABLE insight_images DROP COLUMN pusher; ';

  it('the migrations fill both levels of aggregates from a catalog written before them', async () => {
    // As a catalog before migration 10: no aggregates.
    await migrated((fresh) =>
      fresh.exec(
        BEFORE_12 +
          'DROP TABLE insight_namespace_platforms; DROP TABLE insight_namespace_counts; DROP TABLE insight_platforms; DROP TABLE insight_counts; DROP TABLE insight_images; DELETE FROM schema_migrations WHERE version IN (10, 11, 12)',
      ),
    );
  }, 120_000);

  it('migration 11 adds the namespace level to a catalog with the repository level', async () => {
    // As a catalog at version 10: repository rows only, and image rows without what they are counted as.
    await migrated((fresh) =>
      fresh.exec(
        BEFORE_12 +
          BEFORE_12_COLUMNS +
          'DROP TABLE insight_namespace_platforms; DROP TABLE insight_namespace_counts; ' +
          ['builder', 'build_source', 'media_family', 'multi'].map((c) => `ALTER TABLE insight_images DROP COLUMN ${c}; `).join('') +
          'DELETE FROM schema_migrations WHERE version IN (11, 12)',
      ),
    );
  }, 120_000);

  it('migration 12 fills the verified and pusher aggregates from the tags, verifications and pushers of a catalog at version 11', async () => {
    await migrated((fresh) => fresh.exec(`${BEFORE_12}${BEFORE_12_COLUMNS}DELETE FROM schema_migrations WHERE version = 12`));
  }, 120_000);
});
