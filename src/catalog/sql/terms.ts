// An image's search terms: the (key, value) pairs a live tag answers to, kept in tag_terms (a table
// denormalised per live tag; see migrations/sqlite.ts for its indexes). This file owns the rule
// that every write which changes what a tag points at, or what that image says (its annotations,
// its children, its config labels, its referrers), rebuilds the tag's terms in the same
// transaction: writers call rebuildTerms (a tag moved) or evidenceChanged (an image changed).
import { type Annotations, emptyAnnotations } from '../../oci/annotations.js';
import { mergeAnnotations, resolveBuild } from '../../details/build.js';
import { dottedTermsRead, labelsAsAnnotations } from '../../details/keys.js';
import type { Platform, ReferrerInfo } from '../types.js';
import { type Dialect, IN_CHUNK, type LockKey, LocksOutdated, type Queryable, type Row, type Statement, chunks, insertStatements, jsonColumn, marks, num, pairsOf } from './driver.js';
import { deriveManifests } from './insights.js';
import { newestReferrers } from './referrers.js';
import { repositoryChanged } from './repository-counters.js';
import { TAG_COLUMNS, type TagRow, tagLockKey, tagRow } from './tags.js';

/** Term values are indexed by this many UTF-16 units (≤ 768 UTF-8 bytes, inside PostgreSQL's btree limit). */
export const TERM_PREFIX = 256;
/** Keys longer than this are stored but not searchable. */
const MAX_TERM_KEY = 1024;

/** Splits a value into its indexed prefix and the rest, never between the halves of a surrogate pair. */
export function splitValue(v: string): [string, string] {
  if (v.length <= TERM_PREFIX) return [v, ''];
  let n = TERM_PREFIX;
  const c = v.charCodeAt(n - 1);
  if (c >= 0xd800 && c <= 0xdbff) n -= 1;
  return [v.slice(0, n), v.slice(n)];
}

interface ManifestRow {
  id: number;
  digest: string;
  media_type: string;
  has_build: number;
  config_digest: string | null;
}

interface ManifestInfo {
  row: ManifestRow;
  annotations: Annotations;
  /** Labels of its config; empty when never read. */
  labels: Annotations;
}

/** A manifest with what search and listings need of it and of its children. */
interface View {
  top: ManifestInfo;
  children: { digest: string; platform: Platform | null; info: ManifestInfo | null }[];
  /** The newest build-details referrer of the top digest listed in the repository the view was loaded for. */
  referrer?: ReferrerInfo;
}

interface Summary {
  annotations: Annotations;
  labelAnnotations: Annotations;
  hasBuildDetails: boolean;
  platforms: Platform[];
  /** Distinct (key, value) pairs the image answers to. */
  terms: [string, string][];
  /** Set when the build details come from a referrer (the manifests carry no build annotations). */
  referrer?: ReferrerInfo;
}

export function platformOf(r: Row): Platform | null {
  if (r.os == null && r.architecture == null) return null;
  const p: Platform = { os: (r.os as string | null) ?? '', architecture: (r.architecture as string | null) ?? '' };
  if (r.variant != null) p.variant = r.variant as string;
  return p;
}

export function summarize(view: View | undefined): Summary {
  const platforms: Platform[] = [];
  const seen = new Set<string>();
  const terms: [string, string][] = [];
  const addTerms = (a: Annotations) => {
    for (const [k, v] of Object.entries(a)) {
      if (k.length > MAX_TERM_KEY) continue;
      const id = `${k}\u0000${v}`;
      if (seen.has(id)) continue;
      seen.add(id);
      terms.push([k, v]);
    }
  };
  if (!view) return { annotations: emptyAnnotations(), labelAnnotations: emptyAnnotations(), hasBuildDetails: false, platforms, terms };
  const infos = [view.top, ...view.children.map((c) => c.info).filter((i): i is ManifestInfo => i !== null)];
  const mappedLabels: Annotations[] = [];
  for (const info of infos) {
    addTerms(info.annotations);
    if (!info.row.has_build) {
      const mapped = labelsAsAnnotations(info.labels);
      mappedLabels.push(mapped);
      addTerms(mapped);
    }
  }
  const annotations = mergeAnnotations(view.top.annotations, infos.slice(1).map((i) => i.annotations));
  const labelAnnotations = mergeAnnotations(emptyAnnotations(), mappedLabels);
  for (const c of view.children) if (c.platform) platforms.push(c.platform);
  // A referrer's annotations stand in for the manifest's own when it has none: before the labels.
  const build = resolveBuild({ annotations, referrers: view.referrer ? [view.referrer] : [], labelAnnotations });
  const referrer = build?.source === 'referrer' ? view.referrer : undefined;
  if (referrer) addTerms(referrer.annotations);
  // GitLab's dotted keys answer a search by pipeline, commit or ref where ours are absent (details/keys.ts).
  for (const [k, v] of dottedTermsRead(terms)) terms.push([k, v]);
  const hasBuildDetails = build !== null;
  return { annotations, labelAnnotations, hasBuildDetails, platforms, terms, ...(referrer ? { referrer } : {}) };
}

export function hydratedView(r: Row): View | undefined {
  if (r.manifest_id === null || r.manifest_id === undefined) return undefined;
  const top: ManifestInfo = {
    row: {
      id: num(r.manifest_id),
      digest: r.digest as string,
      media_type: r.media_type as string,
      has_build: num(r.has_build),
      config_digest: (r.config_digest as string | null) ?? null,
    },
    annotations: pairsOf(r.annotations),
    labels: pairsOf(r.labels),
  };
  const children = jsonColumn(r.children).map((c) => {
    const [digest, os, architecture, variant, id, mediaType, hasBuild, configDigest, annotations, labels] = c as unknown[];
    const info: ManifestInfo | null =
      id === null || id === undefined
        ? null
        : {
            row: { id: num(id), digest: digest as string, media_type: mediaType as string, has_build: num(hasBuild), config_digest: (configDigest as string | null) ?? null },
            annotations: pairsOf(annotations),
            labels: pairsOf(labels),
          };
    return { digest: digest as string, platform: platformOf({ os, architecture, variant }), info };
  });
  return { top, children };
}

export interface WriteContext {
  /** Terms per repository and digest (summaryKey), computed once per transaction. */
  summaries: Map<string, Summary>;
  /** Beside other writers: the digests whose evidence this transaction locked, the only ones it may build terms from. */
  evidenceLocked?: ReadonlySet<string>;
}

// ---------------------------------------------------------------- locks beside other writers

/**
 * The evidence lock keys (driver.ts LOCK_LEVELS) of what the terms of tags on each of these
 * digests are built from: the manifest, its children, their configs. A closure is `complete` when
 * every one of those manifests is in the catalog: then it cannot grow (a manifest's children and
 * config are fixed by its bytes).
 */
async function readClosures(q: Queryable, digests: readonly string[]): Promise<Map<string, { keys: Set<string>; complete: boolean }>> {
  const closures = new Map(digests.map((d) => [d, { keys: new Set([`m:${d}`]), complete: false }]));
  const lacking = new Set<string>();
  for (const part of chunks([...closures.keys()], IN_CHUNK)) {
    const rows = await q.all<Row>(
      `SELECT m.digest, m.config_digest, c.child_digest, cm.id AS child_id, cm.config_digest AS child_config FROM manifests m
       LEFT JOIN manifest_children c ON c.parent_id = m.id LEFT JOIN manifests cm ON cm.digest = c.child_digest WHERE m.digest IN (${marks(part.length)})`,
      part,
      { prepare: part.length === 1 },
    );
    for (const r of rows) {
      const closure = closures.get(r.digest as string)!;
      closure.complete = true;
      if (r.config_digest != null) closure.keys.add(`c:${r.config_digest as string}`);
      if (r.child_digest != null) closure.keys.add(`m:${r.child_digest as string}`);
      if (r.child_digest != null && r.child_id == null) lacking.add(r.digest as string);
      if (r.child_config != null) closure.keys.add(`c:${r.child_config as string}`);
    }
  }
  for (const d of lacking) closures.get(d)!.complete = false;
  return closures;
}

/** The complete closures a transaction has read (readClosures), by digest: they cannot change, so it reads each once. */
const completeClosures = new WeakMap<Queryable, Map<string, ReadonlySet<string>>>();

/**
 * The evidence lock keys of a change to these manifests or configs: them, the manifests with
 * those configs, and the indexes listing any of these (their derived columns and their tags'
 * terms follow, see evidenceChanged).
 */
async function changeClosure(q: Queryable, digests: readonly string[], configs: readonly string[]): Promise<Set<string>> {
  const changed = new Set(digests);
  for (const part of chunks([...new Set(configs)], IN_CHUNK)) {
    for (const r of await q.all<{ digest: string }>(`SELECT digest FROM manifests WHERE config_digest IN (${marks(part.length)})`, part)) changed.add(r.digest);
  }
  const keys = new Set([...configs].map((c) => `c:${c}`));
  for (const d of changed) keys.add(`m:${d}`);
  for (const part of chunks([...changed], IN_CHUNK)) {
    const rows = await q.all<{ digest: string }>(
      `SELECT DISTINCT m.digest FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest IN (${marks(part.length)})`,
      part,
    );
    for (const r of rows) keys.add(`m:${r.digest}`);
  }
  return keys;
}

const evidence = (key: string, exclusive: boolean): LockKey => ({ level: 'evidence', key, exclusive });

/**
 * Beside other writers, before building the terms of tags on these digests: locks their evidence
 * shared (tags on one image go on side by side), with `then` (locks of later levels) in the same
 * go. When a manifest of it was missing, reads it again: keys that appeared meanwhile (a manifest
 * committed while this one waited) are not covered, and the transaction runs again alone
 * (LocksOutdated). A closure this transaction read complete before is not read again (a batch of
 * tag pushes locks all its tags at once, then each tag's event asks again).
 */
export async function lockEvidence(q: Queryable, digests: readonly string[], then: readonly LockKey[] = []): Promise<void> {
  if (!q.lock) return;
  let known = completeClosures.get(q);
  if (!known) completeClosures.set(q, (known = new Map()));
  const keys = new Set<string>();
  const unread: string[] = [];
  for (const d of new Set(digests)) {
    const closure = known.get(d);
    if (closure) closure.forEach((k) => keys.add(k));
    else unread.push(d);
  }
  const first = await readClosures(q, unread);
  for (const c of first.values()) c.keys.forEach((k) => keys.add(k));
  await q.lock([...[...keys].map((k) => evidence(k, false)), ...then]);
  const incomplete = [...first].filter(([, c]) => !c.complete).map(([d]) => d);
  for (const [d, c] of first) if (c.complete) known.set(d, c.keys);
  if (incomplete.length === 0) return;
  for (const c of (await readClosures(q, incomplete)).values()) for (const key of c.keys) if (!keys.has(key)) throw new LocksOutdated();
}

/**
 * Beside other writers, before changing these manifests (and the children they list) or configs:
 * locks what evidenceChanged will touch, exclusively, and `read` (configs read but not changed)
 * shared; then reads the set again, as lockEvidence.
 */
export async function lockEvidenceChange(q: Queryable, digests: readonly string[], configs: readonly string[], read: readonly string[] = []): Promise<void> {
  if (!q.lock) return;
  const keys = await changeClosure(q, digests, configs);
  const shared = read.map((c) => `c:${c}`).filter((k) => !keys.has(k));
  await q.lock([...[...keys].map((k) => evidence(k, true)), ...shared.map((k) => evidence(k, false))]);
  for (const key of await changeClosure(q, digests, configs)) if (!keys.has(key)) throw new LocksOutdated();
}

/** A summary depends on the repository too: only its own referrers lend build details (referrers.ts). */
export function summaryKey(repoId: number, digest: string): string {
  return `${repoId}\u0000${digest}`;
}

/**
 * What an image's build details are decided from changed (these manifests, or the manifests with
 * these configs, or their referrers): its derived columns and the terms of the tags on it and on
 * the indexes listing it, in the caller's transaction.
 */
export async function evidenceChanged(q: Queryable, digests: Set<string>, configs: Set<string>): Promise<void> {
  if (digests.size === 0 && configs.size === 0) return;
  await deriveManifests(q, digests, configs);
  await refresh(q, digests, configs);
}

/** Rebuilds the terms of live tags whose image changed: tags on these digests, on manifests with these configs, or on their parent indexes. */
async function refresh(q: Queryable, digests: Set<string>, configs: Set<string>): Promise<void> {
  const changed = new Set(digests);
  for (const part of chunks([...configs], IN_CHUNK)) {
    for (const r of await q.all<{ digest: string }>(`SELECT digest FROM manifests WHERE config_digest IN (${marks(part.length)})`, part)) changed.add(r.digest);
  }
  if (changed.size === 0) return;
  const ctx: WriteContext = { summaries: new Map() };
  const live = `SELECT ${TAG_COLUMNS}, r.name AS repository FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE g.deleted_at IS NULL AND g.updated_at IS NOT NULL`;
  // The tags on the changed manifests and on the indexes listing them, in one statement per chunk.
  let rows: Row[] = [];
  for (const part of chunks([...changed], IN_CHUNK)) {
    const list = marks(part.length);
    rows.push(
      ...(await q.all(
        `${live} AND g.digest IN (SELECT v.column1 FROM (VALUES ${part.map(() => '(?)').join(', ')}) AS v
           UNION SELECT m.digest FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest IN (${list}))`,
        [...part, ...part],
      )),
    );
  }
  const seen = new Set<number>();
  rows = rows.filter((r) => !seen.has(num(r.id)) && seen.add(num(r.id)));
  if (q.lock) {
    // The evidence lock keeps tags from moving onto these images meanwhile; tags may still move
    // away from them: lock those found, then read them as they are now.
    const targets = new Set(rows.map((r) => r.digest as string));
    ctx.evidenceLocked = targets;
    await q.lock(rows.map((r) => ({ level: 'tag', key: tagLockKey(r.repository as string, r.name as string), exclusive: true })));
    const ids = rows.map((r) => num(r.id));
    rows = [];
    for (const part of chunks(ids, IN_CHUNK)) rows.push(...(await q.all(`${live} AND g.id IN (${marks(part.length)})`, part)));
    rows = rows.filter((r) => targets.has(r.digest as string));
  }
  for (const part of chunks(rows, IN_CHUNK)) await rebuildLiveTags(q, part.map(tagRow), ctx);
}

/** Rebuilds the terms of these live tags at their digests, and their repositories' build counters. */
async function rebuildLiveTags(q: Queryable, rows: readonly TagRow[], ctx: WriteContext): Promise<void> {
  for (const row of rows) {
    const hasBuild = await rebuildTerms(q, row, row.digest as string, row.updated_at as number, ctx);
    const delta = (hasBuild ? 1 : 0) - (row.has_build ? 1 : 0);
    if (delta !== 0) await repositoryChanged(q, undefined, row.repository_id, { build: delta });
  }
}

/**
 * Rebuilds the terms of every live tag that has a term under one of these keys: for a catalog
 * whose rule of terms changed for those keys (a migration's backfill, sql/migrate.ts).
 */
export async function rebuildTermsWithKeys(q: Queryable, keys: readonly string[]): Promise<void> {
  const ctx: WriteContext = { summaries: new Map() };
  let after = 0;
  for (;;) {
    const rows = await q.all(
      `SELECT ${TAG_COLUMNS} FROM tags g WHERE g.id > ? AND g.deleted_at IS NULL AND g.updated_at IS NOT NULL
       AND EXISTS (SELECT 1 FROM tag_terms t WHERE t.tag_id = g.id AND t.key IN (${marks(keys.length)})) ORDER BY g.id LIMIT ${IN_CHUNK}`,
      [after, ...keys],
    );
    if (rows.length === 0) return;
    const tags = rows.map(tagRow);
    await rebuildLiveTags(q, tags, ctx);
    after = tags[tags.length - 1]!.id;
    ctx.summaries.clear();
  }
}

/** Fills the context's summaries for these digests, loading the missing ones together. */
export async function loadSummaries(q: Queryable, repoId: number, digests: readonly string[], ctx: WriteContext): Promise<void> {
  const missing = digests.filter((d) => !ctx.summaries.has(summaryKey(repoId, d)));
  if (missing.length === 0) return;
  const views = await loadViews(q, repoId, missing);
  for (const d of missing) ctx.summaries.set(summaryKey(repoId, d), summarize(views.get(d)));
}

async function summary(q: Queryable, repoId: number, digest: string, ctx: WriteContext): Promise<Summary> {
  const key = summaryKey(repoId, digest);
  let s = ctx.summaries.get(key);
  if (!s) {
    s = summarize((await loadViews(q, repoId, [digest])).get(digest));
    ctx.summaries.set(key, s);
  }
  return s;
}

/** Replaces a live tag's terms with those of `digest`; records and returns its build flag. */
async function rebuildTerms(q: Queryable, row: TagRow, digest: string, updatedAt: number, ctx: WriteContext): Promise<boolean> {
  const { hasBuild, writes } = await termWrites(q, row, digest, updatedAt, ctx, true);
  for (const w of writes) await q.run(w.sql, w.params);
  if ((row.has_build ? 1 : 0) !== (hasBuild ? 1 : 0)) await q.run('UPDATE tags SET has_build = ? WHERE id = ?', [hasBuild ? 1 : 0, row.id]);
  return hasBuild;
}

/**
 * What rebuildTerms writes to the tag's terms, as statements for the caller to run (with the
 * tag's own update: runTogether), and the tag's build flag, which the caller records.
 * `hadTerms`: false only for a tag that never had a state, so no terms to delete.
 */
export async function termWrites(q: Queryable, row: TagRow, digest: string, updatedAt: number, ctx: WriteContext, hadTerms: boolean): Promise<{ hasBuild: boolean; writes: Statement[] }> {
  if (ctx.evidenceLocked && !ctx.evidenceLocked.has(digest)) throw new LocksOutdated();
  const s = await summary(q, row.repository_id, digest, ctx);
  const insert = insertStatements(
    'tag_terms',
    ['tag_id', 'repository_id', 'key', 'value', 'value_rest', 'updated_at'],
    s.terms.map(([k, v]) => {
      const [prefix, rest] = splitValue(v);
      return [row.id, row.repository_id, k, prefix, rest, updatedAt];
    }),
  );
  return { hasBuild: s.hasBuildDetails, writes: [...(hadTerms ? [{ sql: 'DELETE FROM tag_terms WHERE tag_id = ?', params: [row.id] }] : []), ...insert] };
}

/**
 * The columns hydratedView reads of the manifest `m`: its annotations, its config's labels and its
 * children with theirs, each as JSON (one owner for the image view's read, search's and ours).
 */
export function manifestViewColumns(d: Dialect): string {
  const pairs = (a: string): string => d.jsonAgg(d.jsonArray([`${a}.key`, `${a}.value`]), `${a}.key`);
  const annotations = (m: string): string => `(SELECT ${pairs('a')} FROM annotations a WHERE a.manifest_id = ${m}.id)`;
  const labels = (m: string): string =>
    `(SELECT ${pairs('l')} FROM configs cf JOIN config_labels l ON l.config_id = cf.id WHERE cf.digest = ${m}.config_digest AND ${m}.has_build = 0)`;
  const child = d.jsonArray([
    'c.child_digest',
    'c.os',
    'c.architecture',
    'c.variant',
    'cm.id',
    'cm.media_type',
    'cm.has_build',
    'cm.config_digest',
    d.jsonNested(annotations('cm')),
    d.jsonNested(labels('cm')),
  ]);
  const children = `(SELECT ${d.jsonAgg(child, 'c.position')} FROM manifest_children c LEFT JOIN manifests cm ON cm.digest = c.child_digest WHERE c.parent_id = m.id)`;
  return `${annotations('m')} AS annotations, ${labels('m')} AS labels, ${children} AS children`;
}

/** The manifests of `n` digests as hydratedView reads them, in one statement. */
function viewsSql(d: Dialect, n: number): string {
  return `SELECT m.id AS manifest_id, m.digest, m.media_type, m.has_build, m.config_digest, ${manifestViewColumns(d)} FROM manifests m WHERE m.digest IN (${marks(n)})`;
}

/** Loads manifests by digest with their annotations, labels and children (one level), and the referrers repository `repoId` lists. */
export async function loadViews(q: Queryable, repoId: number, digests: readonly string[]): Promise<Map<string, View>> {
  const d = q.dialect;
  if (d) {
    const views = new Map<string, View>();
    for (const part of chunks([...new Set(digests)], IN_CHUNK)) {
      for (const r of await q.all<Row>(viewsSql(d, part.length), part, { prepare: part.length === 1 })) {
        const view = hydratedView(r);
        if (view) views.set(view.top.row.digest, view);
      }
    }
    const referrers = await newestReferrers(q, repoId, [...views.keys()]);
    for (const [digest, view] of views) {
      const referrer = referrers.get(digest);
      if (referrer) view.referrer = referrer;
    }
    return views;
  }
  const infos = new Map<number, ManifestInfo>();
  const byDigest = new Map<string, ManifestInfo>();
  const loadManifests = async (list: readonly string[]) => {
    for (const part of chunks(list, IN_CHUNK)) {
      const rows = await q.all<Row>(`SELECT id, digest, media_type, has_build, config_digest FROM manifests WHERE digest IN (${marks(part.length)})`, part);
      for (const r of rows) {
        const info: ManifestInfo = {
          row: { id: num(r.id), digest: r.digest as string, media_type: r.media_type as string, has_build: num(r.has_build), config_digest: (r.config_digest as string | null) ?? null },
          annotations: emptyAnnotations(),
          labels: emptyAnnotations(),
        };
        infos.set(info.row.id, info);
        byDigest.set(info.row.digest, info);
      }
    }
  };
  await loadManifests([...new Set(digests)]);
  const tops = [...byDigest.values()];
  const childRows = new Map<number, Row[]>();
  for (const part of chunks(tops.map((t) => t.row.id), IN_CHUNK)) {
    const rows = await q.all<Row>(
      `SELECT parent_id, child_digest, os, architecture, variant FROM manifest_children WHERE parent_id IN (${marks(part.length)}) ORDER BY parent_id, position`,
      part,
    );
    for (const r of rows) {
      const list = childRows.get(num(r.parent_id)) ?? [];
      list.push(r);
      childRows.set(num(r.parent_id), list);
    }
  }
  const missing = new Set<string>();
  for (const rows of childRows.values()) for (const r of rows) if (!byDigest.has(r.child_digest as string)) missing.add(r.child_digest as string);
  await loadManifests([...missing]);

  const ids = [...infos.keys()];
  for (const part of chunks(ids, IN_CHUNK)) {
    for (const r of await q.all<Row>(`SELECT manifest_id, key, value FROM annotations WHERE manifest_id IN (${marks(part.length)})`, part)) {
      infos.get(num(r.manifest_id))!.annotations[r.key as string] = r.value as string;
    }
  }
  const byConfig = new Map<string, ManifestInfo[]>();
  for (const info of infos.values()) {
    if (info.row.has_build || info.row.config_digest === null) continue;
    const list = byConfig.get(info.row.config_digest) ?? [];
    list.push(info);
    byConfig.set(info.row.config_digest, list);
  }
  for (const part of chunks([...byConfig.keys()], IN_CHUNK)) {
    const rows = await q.all<Row>(
      `SELECT c.digest, l.key, l.value FROM configs c JOIN config_labels l ON l.config_id = c.id WHERE c.digest IN (${marks(part.length)})`,
      part,
    );
    for (const r of rows) for (const info of byConfig.get(r.digest as string) ?? []) info.labels[r.key as string] = r.value as string;
  }

  const referrers = await newestReferrers(q, repoId, tops.map((t) => t.row.digest));
  const views = new Map<string, View>();
  for (const top of tops) {
    const referrer = referrers.get(top.row.digest);
    views.set(top.row.digest, {
      top,
      children: (childRows.get(top.row.id) ?? []).map((r) => ({
        digest: r.child_digest as string,
        platform: platformOf(r),
        info: byDigest.get(r.child_digest as string) ?? null,
      })),
      ...(referrer ? { referrer } : {}),
    });
  }
  return views;
}
