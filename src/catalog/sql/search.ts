// Search and listings over tag_terms (terms.ts builds them): a query's filters, the plan that
// decides which filter drives (planSearch), and hydrate, which turns tag ids into listed images
// in one round trip.
import { InvalidInputError, UsageError } from '../../errors.js';
import { COMMIT_KEYS, PIPELINE_KEY, REF_KEY } from '../../details/keys.js';
import type { ExplainOptions, ExplainResult, Page, ReferrerInfo, RepositorySummary, SearchQuery, StoreStats, TagItem } from '../types.js';
import { type Dialect, type Driver, type Param, type Queryable, type Row, clean, marks, num } from './driver.js';
import { checkName, cursorNumber, cursorString, decodeCursor, encodeCursor, pageSize } from './checks.js';
import { newestReferrers } from './referrers.js';
import { TERM_PREFIX, hydratedView, manifestViewColumns, splitValue, summarize, summaryKey } from './terms.js';
import * as verified from './verifications.js';
import type { ReadScope } from '../read-scope.js';
import { readableRepositories, readableSql } from './read-scope-sql.js';

const MAX_ANNOTATION_FILTERS = 16;
/** A search filter matching at least this many terms counts as common (see planSearch). */
const PROBE_CAP = 1000;
/** A search with at most this many filters besides the driving one runs as a prepared statement. */
const MAX_PREPARED_LOOKUPS = 2;
/** A repository with at most this many live tags is cheap to walk whole. */
const REPO_SCAN = 5000;


type Filter =
  | { kind: 'eq'; key: string; value: string; rest: string; checkRest: boolean }
  | { kind: 'prefix'; keys: readonly string[]; lo: string; hi: string }
  | { kind: 'exists'; key: string };

function eqFilter(key: string, value: string): Filter {
  const [v, rest] = splitValue(value);
  // A stored value was cut only if longer than TERM_PREFIX, so its prefix is at least TERM_PREFIX-1 long.
  return { kind: 'eq', key, value: v, rest, checkRest: v.length >= TERM_PREFIX - 1 };
}

function filterSql(alias: string, f: Filter): { sql: string; params: Param[] } {
  switch (f.kind) {
    case 'eq':
      return f.checkRest
        ? { sql: `${alias}.key = ? AND ${alias}.value = ? AND ${alias}.value_rest = ?`, params: [f.key, f.value, f.rest] }
        : { sql: `${alias}.key = ? AND ${alias}.value = ?`, params: [f.key, f.value] };
    case 'prefix':
      return {
        sql: `${alias}.key ${f.keys.length === 1 ? '= ?' : `IN (${marks(f.keys.length)})`} AND ${alias}.value >= ? AND ${alias}.value < ?`,
        params: [...f.keys, f.lo, f.hi],
      };
    case 'exists':
      return { sql: `${alias}.key = ?`, params: [f.key] };
  }
}

function searchFilters(query: SearchQuery): Filter[] {
  const filters: Filter[] = [];
  if (query.commit !== undefined) {
    if (typeof query.commit !== 'string' || !/^[0-9a-fA-F]{4,128}$/.test(query.commit)) {
      throw new InvalidInputError('INVALID_ANNOTATION', `commit ${JSON.stringify(String(query.commit).slice(0, 200))} is not a commit SHA or a prefix of at least 4 hex digits`, {
        hint: 'pass the commit SHA, or its first 4 or more hex digits',
      });
    }
    const lo = query.commit.toLowerCase();
    const hi = lo.slice(0, -1) + String.fromCharCode(lo.charCodeAt(lo.length - 1) + 1);
    filters.push({ kind: 'prefix', keys: COMMIT_KEYS, lo, hi });
  }
  if (query.pipeline !== undefined) {
    checkName(query.pipeline, 'pipeline');
    filters.push(eqFilter(PIPELINE_KEY, clean(query.pipeline)));
  }
  const exists: Filter[] = [];
  if (query.annotations !== undefined && (!Array.isArray(query.annotations) || query.annotations.length > MAX_ANNOTATION_FILTERS)) {
    throw new UsageError(`annotation filters are a list of at most ${MAX_ANNOTATION_FILTERS} { key, value? } objects`);
  }
  for (const a of query.annotations ?? []) {
    if (typeof a !== 'object' || a === null) throw new UsageError('annotation filters are { key, value? } objects');
    checkName(a.key, 'annotation key');
    if (a.value === undefined || a.value === null) exists.push({ kind: 'exists', key: clean(a.key) });
    else if (typeof a.value !== 'string') throw new UsageError(`annotation ${JSON.stringify(a.key)}: the value must be a string`);
    else filters.push(eqFilter(clean(a.key), clean(a.value)));
  }
  if (query.ref !== undefined) {
    checkName(query.ref, 'ref');
    filters.push(eqFilter(REF_KEY, clean(query.ref)));
  }
  return [...filters, ...exists];
}

// ---- queries

export async function listRepositories(db: Driver, options: { q?: string; limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<RepositorySummary>> {
  const limit = pageSize(options.limit);
  const cursor = decodeCursor(options.cursor, 'r');
  const where: string[] = [];
  const params: Param[] = [];
  if (options.scope) {
    const readable = readableSql(db.dialect, options.scope, 'repositories');
    where.push(readable.sql);
    params.push(...readable.params);
  }
  if (cursor) {
    where.push('name > ?');
    params.push(cursorString(cursor, 'n'));
  }
  if (options.q !== undefined && options.q !== '') {
    if (typeof options.q !== 'string') throw new UsageError('q must be a string');
    where.push(db.dialect.contains('lower(name)', '?'));
    params.push(clean(options.q.toLowerCase()));
  }
  const rows = await db.all<Row>(
    `SELECT name, live_tags, build_tags, first_seen, updated_at FROM repositories ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY name LIMIT ?`,
    [...params, limit + 1],
  );
  const items = rows.slice(0, limit).map(
    (r): RepositorySummary => ({
      name: r.name as string,
      tagCount: num(r.live_tags),
      buildTagCount: num(r.build_tags),
      firstSeen: new Date(num(r.first_seen)),
      lastUpdated: new Date(num(r.updated_at ?? r.first_seen)),
    }),
  );
  const last = items[items.length - 1];
  return rows.length > limit && last ? { items, nextCursor: encodeCursor('r', { n: last.name }) } : { items };
}

export async function listTags(db: Driver, repository: string, options: { limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<TagItem>> {
  checkName(repository, 'repository');
  if (options.scope && !(await readableRepositories(db, db.dialect, [repository], options.scope)).has(repository)) return { items: [] };
  const limit = pageSize(options.limit);
  const cursor = decodeCursor(options.cursor, 't');
  const repo = await db.all<{ id: unknown }>('SELECT id FROM repositories WHERE name = ?', [repository]);
  if (!repo[0]) return { items: [] };
  const params: Param[] = [num(repo[0].id)];
  let after = '';
  if (cursor) {
    const u = cursorNumber(cursor, 'u');
    // `updated_at <= u` bounds the index range; the OR only sorts out rows at exactly u.
    after = 'AND g.updated_at <= ? AND (g.updated_at < ? OR g.name > ?)';
    params.push(u, u, cursorString(cursor, 'n'));
  }
  const rows = await db.all<Row>(
    `SELECT g.id FROM tags g WHERE g.repository_id = ? AND g.deleted_at IS NULL ${after} ORDER BY g.updated_at DESC, g.name LIMIT ?`,
    [...params, limit + 1],
  );
  const items = await hydrate(db, rows.slice(0, limit).map((r) => num(r.id)));
  const last = items[items.length - 1];
  return rows.length > limit && last ? { items, nextCursor: encodeCursor('t', { u: last.updatedAt.getTime(), n: last.tag }) } : { items };
}

/**
 * The id query of a search. Usually the first filter drives: its terms are read from
 * tag_terms_search already in result order (or, for a prefix or key-exists filter, collected
 * and sorted), and the other filters are lookups on tag_terms_tag. A capped count decides when
 * that is the wrong way round: a filter matching many tags that cannot be read in order (key
 * exists, a short prefix), or a common value inside a small repository, is better served by
 * walking the live tags newest first (by repository, tag name or overall) with every filter
 * as a lookup.
 */
export async function planSearch(db: Driver, query: SearchQuery): Promise<{ sql: string; params: Param[]; limit: number; prepare: boolean } | null> {
  const limit = pageSize(query.limit);
  const cursor = decodeCursor(query.cursor, 's');
  const filters = searchFilters(query);
  let repo: { id: number; liveTags: number } | null = null;
  if (query.repository !== undefined) {
    checkName(query.repository, 'repository');
    const rows = await db.all<Row>('SELECT id, live_tags FROM repositories WHERE name = ?', [query.repository]);
    if (!rows[0]) return null;
    repo = { id: num(rows[0].id), liveTags: num(rows[0].live_tags) };
  }
  if (query.tag !== undefined) checkName(query.tag, 'tag');

  let driver = filters[0];
  // The count can only turn a key-exists or prefix filter, or a value inside a small
  // repository, away from driving: for any other value filter it is not asked.
  if (driver && (driver.kind !== 'eq' || (repo !== null && repo.liveTags <= REPO_SCAN))) {
    const probe = filterSql('t0', driver);
    const counted = await db.all<Row>(`SELECT count(*) AS n FROM (SELECT 1 AS one FROM tag_terms t0 WHERE ${probe.sql} LIMIT ?) s`, [...probe.params, PROBE_CAP], {
      prepare: true,
    });
    if (num(counted[0]?.n) >= PROBE_CAP) driver = undefined;
  }
  const lookups = driver ? filters.slice(1) : filters;
  const a = driver ? 't0' : 'g';
  const idCol = driver ? 't0.tag_id' : 'g.id';
  const where: string[] = [];
  const params: Param[] = [];
  if (driver) {
    const f = filterSql('t0', driver);
    where.push(f.sql);
    params.push(...f.params);
  } else {
    where.push('g.deleted_at IS NULL');
  }
  if (repo !== null) {
    where.push(`${a}.repository_id = ?`);
    params.push(repo.id);
  }
  if (query.scope) {
    const readable = readableSql(db.dialect, query.scope, 'rs');
    where.push(`${a}.repository_id IN (SELECT rs.id FROM repositories rs WHERE ${readable.sql})`);
    params.push(...readable.params);
  }
  if (query.tag !== undefined) {
    where.push(driver ? 'EXISTS (SELECT 1 FROM tags g WHERE g.id = t0.tag_id AND g.name = ?)' : 'g.name = ?');
    params.push(clean(query.tag));
  }
  lookups.forEach((f, i) => {
    const alias = `t${i + 1}`;
    const s = filterSql(alias, f);
    where.push(`EXISTS (SELECT 1 FROM tag_terms ${alias} WHERE ${alias}.tag_id = ${idCol} AND ${s.sql})`);
    params.push(...s.params);
  });
  if (cursor) {
    const u = cursorNumber(cursor, 'u');
    // `updated_at <= u` bounds the index range; the OR only sorts out rows at exactly u.
    where.push(`${a}.updated_at <= ? AND (${a}.updated_at < ? OR ${idCol} < ?)`);
    params.push(u, u, cursorNumber(cursor, 'i'));
  }
  // A key-exists or prefix filter can match several terms of one tag: collapse them.
  const distinct = driver !== undefined && driver.kind !== 'eq' ? 'DISTINCT ' : '';
  const sql =
    `SELECT ${distinct}${idCol} AS tag_id, ${a}.updated_at AS updated_at FROM ${driver ? 'tag_terms t0' : 'tags g'} ` +
    `WHERE ${where.join(' AND ')} ORDER BY ${a}.updated_at DESC, ${idCol} DESC LIMIT ?`;
  params.push(limit + 1);
  // Few filters make few distinct statements: those are worth keeping prepared.
  return { sql, params, limit, prepare: lookups.length <= MAX_PREPARED_LOOKUPS };
}

export async function searchImages(db: Driver, query: SearchQuery): Promise<Page<TagItem>> {
  if (query.verified === true) {
    const found = await verified.searchVerified(db, query, pageSize(query.limit), query.scope ? readableSql(db.dialect, query.scope, 'r') : undefined);
    return { items: await hydrate(db, found.ids), ...(found.next ? { nextCursor: verified.encodeVerifiedCursor(found.next) } : {}) };
  }
  const plan = await planSearch(db, query);
  if (!plan) return { items: [] };
  const rows = await db.all<Row>(plan.sql, plan.params, { prepare: plan.prepare });
  const page = rows.slice(0, plan.limit);
  const items = await hydrate(db, page.map((r) => num(r.tag_id)));
  const last = page[page.length - 1];
  return rows.length > plan.limit && last ? { items, nextCursor: encodeCursor('s', { u: num(last.updated_at), i: num(last.tag_id) }) } : { items };
}

/**
 * The plan of the statement searchImages runs for `query`, in the driver's dialect: for the
 * benchmarks and the plan checks of the contract suite (bench/catalog/explain.ts). Not part of the
 * Store: the product never asks for a plan.
 */
export async function explainSearch(db: Driver, query: SearchQuery, options: ExplainOptions = {}): Promise<ExplainResult> {
  const plan = (await planSearch(db, query)) ?? (await planSearch(db, { ...query, repository: undefined }));
  if (!plan) throw new UsageError('nothing to explain');
  return { sql: plan.sql, plan: await db.explain(plan.sql, plan.params, options) };
}

/**
 * The statement of hydrate: the tags with their repository, manifest, its annotations and
 * config labels, and its children with theirs, in one round trip (the nested parts as JSON).
 */
function hydrateSql(d: Dialect): string {
  return (
    `SELECT g.id, g.repository_id, r.name AS repository, g.name AS tag, g.digest, g.updated_at, m.id AS manifest_id, m.media_type, m.has_build, m.config_digest, ` +
    `${manifestViewColumns(d)} ` +
    `FROM tags g JOIN repositories r ON r.id = g.repository_id LEFT JOIN manifests m ON m.digest = g.digest WHERE ${d.inIdList('g.id')}`
  );
}

/** The item's verification, when its repository and digest are verified (verifications.ts). */
function verifiedOf(found: ReadonlyMap<string, verified.VerifiedBuild>, repository: string, digest: string): { verified?: verified.VerifiedBuild } {
  const v = found.get(verified.verificationKey(repository, digest));
  return v ? { verified: { by: v.by, issuer: v.issuer, projectPath: v.projectPath, pipelineId: v.pipelineId, jobId: v.jobId, sha: v.sha, ref: v.ref, at: v.at } } : {};
}

/** Tag ids → items, in the same order. */
export async function hydrate(db: Driver, ids: number[]): Promise<TagItem[]> {
  if (ids.length === 0) return [];
  const rows = await db.all<Row>(hydrateSql(db.dialect), [db.dialect.idList(ids)], { prepare: true });
  const byId = new Map(rows.map((r) => [num(r.id), r]));
  // Each tag's referrers are those its own repository lists (referrers.ts).
  const byRepository = new Map<number, string[]>();
  for (const r of rows) {
    if (r.digest == null) continue;
    const list = byRepository.get(num(r.repository_id)) ?? [];
    list.push(r.digest as string);
    byRepository.set(num(r.repository_id), list);
  }
  const referrers = new Map<string, ReferrerInfo>();
  for (const [repoId, digests] of byRepository) {
    for (const [digest, referrer] of await newestReferrers(db, repoId, digests)) referrers.set(summaryKey(repoId, digest), referrer);
  }
  const verifications = await verified.verificationsOf(db, rows.filter((r) => r.digest != null).map((r) => r.digest as string));
  const items: TagItem[] = [];
  for (const id of ids) {
    const r = byId.get(id);
    if (!r || r.digest == null) continue;
    const view = hydratedView(r);
    const referrer = referrers.get(summaryKey(num(r.repository_id), r.digest as string));
    if (view && referrer) view.referrer = referrer;
    const s = summarize(view);
    items.push({
      repository: r.repository as string,
      tag: r.tag as string,
      digest: r.digest as string,
      mediaType: view?.top.row.media_type ?? null,
      platforms: s.platforms,
      updatedAt: new Date(num(r.updated_at)),
      annotations: s.annotations,
      labelAnnotations: s.labelAnnotations,
      hasBuildDetails: s.hasBuildDetails,
      ...(s.referrer ? { referrer: s.referrer } : {}),
      ...verifiedOf(verifications, r.repository as string, r.digest as string),
    });
  }
  return items;
}


export async function catalogStats(db: Queryable): Promise<StoreStats> {
  const rows = await db.all<Row>(
    `SELECT (SELECT count(*) FROM repositories) AS repositories,
            (SELECT count(*) FROM tags WHERE deleted_at IS NULL) AS live_tags,
            (SELECT count(*) FROM tags WHERE deleted_at IS NOT NULL) AS deleted_tags,
            (SELECT count(*) FROM manifests) AS manifests,
            (SELECT count(*) FROM configs) AS configs`,
  );
  const r = rows[0]!;
  return { repositories: num(r.repositories), liveTags: num(r.live_tags), deletedTags: num(r.deleted_tags), manifests: num(r.manifests), configs: num(r.configs) };
}
