// The Store over SQL, shared by both dialects. Statements use `?` placeholders (the PostgreSQL
// driver numbers them) and only SQL that SQLite and PostgreSQL both accept; what differs (a
// function name, transactions, locks, EXPLAIN) sits behind Dialect and Driver.
//
// Search reads tag_terms, a table denormalised per live tag (see migrations/sqlite.ts for the
// indexing notes): every write that changes what a tag points at, or what that image says,
// rebuilds the tag's terms in the same transaction.
import { InvalidCursorError, InvalidInputError, StoreError, UsageError } from '../errors.js';
import { type Annotations, emptyAnnotations } from '../oci/annotations.js';
import { verifyDigest } from '../oci/digest.js';
import { isValidDigest } from '../oci/reference.js';
import { CI, OCI } from '../gitlab/ci.js';
import { hasBuildAnnotations, labelsAsAnnotations } from '../gitlab/build.js';
import type { Migration } from './migrations/types.js';
import { BUILDERS, type Builder, type BuilderResult, type Confidence, detectBuilder } from './builder.js';
import { BUILD_SOURCES, type BuildSource, MEDIA_FAMILIES, type MediaFamily, buildDetailsSource, isRealPlatform, mediaFamily } from './derived.js';
import { DOCKER_CONFIG, OCI_CONFIG, isIndexMediaType } from '../oci/mediatypes.js';
import type {
  EventOutcome,
  ExplainOptions,
  ExplainResult,
  ImageChild,
  ImageDetail,
  InsightsCounts,
  InsightsQuery,
  InsightsReport,
  InsightsWeek,
  LockResult,
  ManifestInsight,
  ManifestRecord,
  Page,
  Platform,
  ReconcileResult,
  RepositorySummary,
  SearchQuery,
  StoreStats,
  TagHistory,
  TagItem,
} from './types.js';
import type { Store } from './store.js';
import { MANIFEST_DELETE, SET, TAG_DELETE, type Segment, type TagEvent, type TagState, compareEvents, fold, isLive, lastEvent, step } from './tagstate.js';
import type { ReferrerInfo, ReferrerRecord } from './types.js';
import { type GitlabProjectColumns, setGitlabProject } from './gitlab-projects.js';
import { type SessionRecord, deleteSession, findSession, putSession, setSessionToken } from './sessions.js';
import type { ReadScope } from './read-scope.js';
import { readableRepositories, readableSql, scopedImage, scopedImages } from './read-scope-sql.js';
import * as verified from './verifications.js';
import { getImages } from './image-batch.js';
import * as refs from './referrer-store.js';
import { VERSION } from '../version.js';
import { DEFAULT_PAGE_SIZE, HISTORY_PAGE_SIZE, MAX_INSIGHT_WEEKS, STORE_MAX_PAGE_SIZE } from './paging.js';
import { labelsOfConfig } from '../oci/config.js';

export type Param = string | number | null | Buffer;
export type Row = Record<string, unknown>;

export interface QueryOptions {
  /**
   * A statement run often with the same text: PostgreSQL keeps it prepared on each connection
   * (planned once, then executed by name). SQLite prepares and keeps every statement anyway.
   */
  prepare?: boolean;
}

export interface Queryable {
  all<T = Row>(sql: string, params?: readonly Param[], options?: QueryOptions): Promise<T[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly Param[]): Promise<number>;
}

export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** The two-argument max and min: max/min in SQLite, GREATEST/LEAST in PostgreSQL. */
  readonly greatest: string;
  /** SQL true when text expression `haystack` contains `needle`, with no pattern characters. */
  contains(haystack: string, needle: string): string;
  /** The DDL of the migrations ledger. */
  readonly migrationsTable: string;
  /** A JSON array of the SQL expressions. */
  jsonArray(items: readonly string[]): string;
  /** The aggregate: a JSON array of expr over the rows, in this order; NULL or [] when there are none. */
  jsonAgg(expr: string, orderBy?: string): string;
  /** A JSON value from a subquery, to nest inside jsonArray. */
  jsonNested(subquery: string): string;
  /** SQL true when `column` is one of the ids of a list bound as one parameter, encoded by idList. */
  inIdList(column: string): string;
  idList(ids: readonly number[]): string;
}

export interface Driver extends Queryable {
  readonly dialect: Dialect;
  /** A write transaction, serialised with every other writer of the database (see each driver). */
  write<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  explain(sql: string, params: readonly Param[], options: ExplainOptions): Promise<string[]>;
  withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>>;
  close(): Promise<void>;
}

/** Term values are indexed by this many UTF-16 units (≤ 768 UTF-8 bytes, inside PostgreSQL's btree limit). */
export const TERM_PREFIX = 256;
/** Keys longer than this are stored but not searchable. */
const MAX_TERM_KEY = 1024;
const IN_CHUNK = 500;
/**
 * New tags written per step of a first crawl: what one step holds (the images' views, their
 * terms, the statements' parameters) stays small whatever the repository's size.
 */
const NEW_TAGS_CHUNK = 100;
const MAX_ANNOTATION_FILTERS = 16;
/** A search filter matching at least this many terms counts as common (see planSearch). */
const PROBE_CAP = 1000;
/** A search with at most this many filters besides the driving one runs as a prepared statement. */
const MAX_PREPARED_LOOKUPS = 2;
/** A repository with at most this many live tags is cheap to walk whole. */
const REPO_SCAN = 5000;
/** Bound parameters per statement: well inside SQLite's 32766 and PostgreSQL's 65535. */
const MAX_PARAMS = 4000;

const COMMIT_KEYS = [`${CI}commit_sha`, `${OCI}revision`];
const PIPELINE_KEY = `${CI}pipeline_id`;
const REF_KEY = `${CI}commit_ref_name`;

// ---------------------------------------------------------------- small helpers

function ms(at: Date, what: string): number {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new UsageError(`${what}: not a valid time`);
  return at.getTime();
}

function marks(n: number): string {
  return new Array(n).fill('?').join(', ');
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Text as both databases can store it: NUL and lone surrogates become U+FFFD. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** Splits a value into its indexed prefix and the rest, never between the halves of a surrogate pair. */
export function splitValue(v: string): [string, string] {
  if (v.length <= TERM_PREFIX) return [v, ''];
  let n = TERM_PREFIX;
  const c = v.charCodeAt(n - 1);
  if (c >= 0xd800 && c <= 0xdbff) n -= 1;
  return [v.slice(0, n), v.slice(n)];
}

function checkDigest(digest: unknown, what = 'digest'): asserts digest is string {
  if (typeof digest !== 'string' || !isValidDigest(digest)) {
    throw new InvalidInputError('INVALID_REFERENCE', `invalid ${what} ${JSON.stringify(String(digest).slice(0, 200))}`, {
      hint: 'a digest is sha256:<64 hex> or sha512:<128 hex>',
    });
  }
}

function checkName(v: unknown, what: string): asserts v is string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 512) throw new UsageError(`${what} must be a non-empty string of at most 512 characters`);
}

function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > STORE_MAX_PAGE_SIZE) throw new UsageError(`limit must be an integer from 1 to ${STORE_MAX_PAGE_SIZE}`);
  return limit;
}

function encodeCursor(kind: string, value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ k: kind, ...value }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string | undefined, kind: string): Record<string, unknown> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  if (typeof v !== 'object' || v === null || (v as { k?: unknown }).k !== kind) {
    throw new InvalidCursorError('invalid cursor', { hint: 'pass back the nextCursor of the previous page, with the same query' });
  }
  return v as Record<string, unknown>;
}

function cursorNumber(c: Record<string, unknown>, field: string): number {
  const v = c[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new InvalidCursorError('invalid cursor');
  return v;
}

function cursorString(c: Record<string, unknown>, field: string): string {
  const v = c[field];
  if (typeof v !== 'string') throw new InvalidCursorError('invalid cursor');
  return v;
}

/** The item's verification, when its repository and digest are verified (verifications.ts). */
function verifiedOf(found: ReadonlyMap<string, verified.VerifiedBuild>, repository: string, digest: string): { verified?: verified.VerifiedBuild } {
  const v = found.get(verified.verificationKey(repository, digest));
  return v ? { verified: { by: v.by, issuer: v.issuer, projectPath: v.projectPath, pipelineId: v.pipelineId, jobId: v.jobId, sha: v.sha, ref: v.ref, at: v.at } } : {};
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function dateOrNull(v: unknown): Date | null {
  return v === null || v === undefined ? null : new Date(num(v));
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function sameRecord(a: Annotations, b: Annotations): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

function mergeFirstWins(into: Annotations, from: Annotations): void {
  for (const [k, v] of Object.entries(from)) if (!Object.prototype.hasOwnProperty.call(into, k)) into[k] = v;
}

// ---------------------------------------------------------------- rows and views

interface TagRow {
  id: number;
  repository_id: number;
  name: string;
  digest: string | null;
  deleted_at: number | null;
  updated_at: number | null;
  last_kind: number;
  last_digest: string;
  first_seen: number | null;
  has_build: number;
  /** The newest crawl that found the tag at observed_digest (migration 5). */
  observed_at: number | null;
  observed_digest: string | null;
}

const TAG_COLUMNS =
  'g.id, g.repository_id, g.name, g.digest, g.deleted_at, g.updated_at, g.last_kind, g.last_digest, g.first_seen, g.has_build, g.observed_at, g.observed_digest';

function tagRow(r: Row): TagRow {
  return {
    id: num(r.id),
    repository_id: num(r.repository_id),
    name: r.name as string,
    digest: (r.digest as string | null) ?? null,
    deleted_at: numOrNull(r.deleted_at),
    updated_at: numOrNull(r.updated_at),
    last_kind: num(r.last_kind),
    last_digest: r.last_digest as string,
    first_seen: numOrNull(r.first_seen),
    has_build: num(r.has_build),
    observed_at: numOrNull(r.observed_at),
    observed_digest: (r.observed_digest as string | null) ?? null,
  };
}

/** A crawl's observation of the tag as the event it stands for (see tagstate.ts). */
function observation(row: TagRow): TagEvent | null {
  return row.observed_at === null || row.observed_digest === null ? null : { at: row.observed_at, kind: SET, digest: row.observed_digest };
}

/** Whether `event` can be applied as one step after `before`: it is newer than the last event and than the crawl's observation. */
function stepsForward(row: TagRow, before: TagState | null, event: TagEvent): boolean {
  const seen = observation(row);
  if (seen !== null && compareEvents(event, seen) <= 0) return false;
  return before === null || compareEvents(event, lastEvent(before)) > 0;
}

function stateOf(row: TagRow): TagState | null {
  if (row.updated_at === null) return null;
  return {
    digest: row.digest,
    deletedAt: row.deleted_at,
    updatedAt: row.updated_at,
    lastKind: row.last_kind as TagState['lastKind'],
    lastDigest: row.last_digest,
    firstSeen: row.first_seen,
  };
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

function platformOf(r: Row): Platform | null {
  if (r.os == null && r.architecture == null) return null;
  const p: Platform = { os: (r.os as string | null) ?? '', architecture: (r.architecture as string | null) ?? '' };
  if (r.variant != null) p.variant = r.variant as string;
  return p;
}

function summarize(view: View | undefined): Summary {
  const annotations = emptyAnnotations();
  const labelAnnotations = emptyAnnotations();
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
  if (!view) return { annotations, labelAnnotations, hasBuildDetails: false, platforms, terms };
  const infos = [view.top, ...view.children.map((c) => c.info).filter((i): i is ManifestInfo => i !== null)];
  for (const info of infos) {
    mergeFirstWins(annotations, info.annotations);
    addTerms(info.annotations);
    if (!info.row.has_build) {
      const mapped = labelsAsAnnotations(info.labels);
      mergeFirstWins(labelAnnotations, mapped);
      addTerms(mapped);
    }
  }
  for (const c of view.children) if (c.platform) platforms.push(c.platform);
  // A referrer's annotations stand in for the manifest's own when it has none: before the labels.
  const referrer = !hasBuildAnnotations(annotations) && view.referrer ? view.referrer : undefined;
  if (referrer) addTerms(referrer.annotations);
  const hasBuildDetails = hasBuildAnnotations(annotations) || referrer !== undefined || hasBuildAnnotations(labelAnnotations);
  return { annotations, labelAnnotations, hasBuildDetails, platforms, terms, ...(referrer ? { referrer } : {}) };
}

/** A JSON column as read back: PostgreSQL's driver parses json, SQLite returns the text. */
function jsonColumn(v: unknown): unknown[] {
  if (v === null || v === undefined) return [];
  const parsed: unknown = typeof v === 'string' ? JSON.parse(v) : v;
  return Array.isArray(parsed) ? parsed : [];
}

function pairsOf(v: unknown): Annotations {
  const out = emptyAnnotations();
  for (const p of jsonColumn(v)) {
    const [k, val] = p as [unknown, unknown];
    if (typeof k === 'string' && typeof val === 'string') out[k] = val;
  }
  return out;
}

/** The view of a row of hydrate's statement; undefined when the catalog lacks the tag's manifest. */
function hydratedView(r: Row): View | undefined {
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

// ---------------------------------------------------------------- search planning

type Filter =
  | { kind: 'eq'; key: string; value: string; rest: string; checkRest: boolean }
  | { kind: 'prefix'; keys: string[]; lo: string; hi: string }
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

/** One page of a tag's segments, newest first: those that started before `before`, at most `limit`. */
function historyPage(segments: readonly Segment[], before: number | undefined, limit: number): { entries: TagHistory['entries']; nextCursor?: string } {
  const older = segments.filter((s) => before === undefined || s.since < before).reverse();
  const shown = older.slice(0, limit);
  const entries = shown.map((s) => ({ digest: s.digest, since: new Date(s.since), until: dateOrNull(s.until), end: s.end }));
  const last = shown[shown.length - 1];
  return older.length > limit && last ? { entries, nextCursor: String(last.since) } : { entries };
}

// ---------------------------------------------------------------- the store

interface WriteContext {
  /** Terms per repository and digest (summaryKey), computed once per transaction. */
  summaries: Map<string, Summary>;
}

/** A summary depends on the repository too: only its own referrers lend build details (referrer-store.ts). */
function summaryKey(repoId: number, digest: string): string {
  return `${repoId}\u0000${digest}`;
}

export class SqlStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';

  constructor(
    private readonly db: Driver,
    private readonly migrations: readonly Migration[],
  ) {
    this.dialect = db.dialect.name;
  }

  private get d(): Dialect {
    return this.db.dialect;
  }

  // ---- lifecycle

  async migrate(): Promise<number[]> {
    const applied = await this.db.write(async (q) => {
      await q.run(this.d.migrationsTable);
      const done = new Set((await q.all<{ version: unknown }>('SELECT version FROM schema_migrations')).map((r) => num(r.version)));
      const newest = Math.max(0, ...done);
      if (newest > this.migrations.length) {
        throw new StoreError(
          `the catalog database has schema version ${newest}, newer than this tagtrail knows (${this.migrations.length})`,
          { hint: 'upgrade tagtrail, or point it at another database' },
        );
      }
      const applied: number[] = [];
      for (const m of this.migrations) {
        if (done.has(m.version)) continue;
        for (const statement of m.statements) await q.run(statement);
        await q.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
        applied.push(m.version);
      }
      return applied;
    });
    await this.backfillDerived();
    return applied;
  }

  /** Derives the insight columns of manifests stored before they existed, a batch per transaction. */
  private async backfillDerived(): Promise<void> {
    // Platform manifests before indexes: an index's builder reads its children's.
    for (const indexes of [false, true]) {
      let after = 0;
      for (;;) {
        const rows = await this.db.all<Row>(`SELECT id, digest, media_type FROM manifests WHERE builder IS NULL AND id > ? ORDER BY id LIMIT ${IN_CHUNK}`, [after]);
        if (rows.length === 0) break;
        after = num(rows[rows.length - 1]!.id);
        const batch = rows.filter((r) => isIndexMediaType(r.media_type as string) === indexes).map((r) => r.digest as string);
        if (batch.length > 0) await this.db.write((q) => this.deriveManifests(q, new Set(batch), new Set()));
      }
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- manifests

  async hasManifest(digest: string): Promise<boolean> {
    checkDigest(digest);
    return (await this.db.all('SELECT 1 AS one FROM manifests WHERE digest = ?', [digest])).length > 0;
  }

  async putManifest(record: ManifestRecord): Promise<{ inserted: boolean }> {
    validateRecord(record);
    return this.db.write(async (q) => {
      const digests = new Set<string>();
      const configs = new Set<string>();
      const inserted = await this.putOne(q, record, digests, configs);
      await this.deriveManifests(q, digests, configs);
      await this.refresh(q, digests, configs);
      return { inserted };
    });
  }

  private async putOne(q: Queryable, rec: ManifestRecord, digests: Set<string>, configs: Set<string>): Promise<boolean> {
    for (const child of rec.children ?? []) if (child.manifest) await this.putOne(q, child.manifest, digests, configs);
    const configDigest = rec.configDigest ?? null;
    const labels = rec.labels ?? (rec.config !== undefined ? (labelsOfConfig(rec.config) ?? emptyAnnotations()) : undefined);
    if (configDigest !== null && labels && (await this.putLabels(q, configDigest, labels, rec.config))) configs.add(configDigest);
    const annotations = cleanRecord(rec.annotations ?? {});
    const raw = toBuffer(rec.raw);
    const rows = await q.all<{ id: unknown }>(
      `INSERT INTO manifests (digest, media_type, size, raw, artifact_type, config_digest, has_build, stored_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING RETURNING id`,
      [rec.digest, rec.mediaType, raw.byteLength, raw, rec.artifactType ?? null, configDigest, hasBuildAnnotations(annotations) ? 1 : 0, Date.now()],
    );
    const first = rows[0];
    if (!first) return false;
    const id = num(first.id);
    await insertMany(q, 'annotations', ['manifest_id', 'key', 'value'], Object.entries(annotations).map(([k, v]) => [id, k, v]));
    await insertMany(
      q,
      'manifest_children',
      ['parent_id', 'position', 'child_digest', 'media_type', 'size', 'os', 'architecture', 'variant'],
      (rec.children ?? []).map((c, i) => [
        id,
        i,
        c.digest,
        c.mediaType ?? c.manifest?.mediaType ?? null,
        c.size ?? (c.manifest ? c.manifest.raw.byteLength : null),
        c.platform?.os ?? null,
        c.platform?.architecture ?? null,
        c.platform?.variant ?? null,
      ]),
    );
    digests.add(rec.digest);
    return true;
  }

  /**
   * Records a config's labels and, when the whole config was read, what it says about the builder;
   * returns whether anything changed.
   */
  private async putLabels(q: Queryable, configDigest: string, labels: Annotations, config?: unknown): Promise<boolean> {
    const cleaned = cleanRecord(labels);
    const said = config === undefined ? null : detectBuilder({ manifest: {}, config, configRead: true });
    const existing = await q.all<Row>('SELECT id, builder FROM configs WHERE digest = ?', [configDigest]);
    let id: number;
    if (existing[0]) {
      id = num(existing[0].id);
      const current = emptyAnnotations();
      for (const r of await q.all<{ key: string; value: string }>('SELECT key, value FROM config_labels WHERE config_id = ?', [id])) current[r.key] = r.value;
      const newBuilder = said !== null && existing[0].builder == null;
      if (newBuilder) await q.run('UPDATE configs SET builder = ?, builder_confidence = ?, builder_evidence = ? WHERE id = ?', [said.builder, said.confidence, JSON.stringify(said.evidence.map(clean)), id]);
      if (sameRecord(current, cleaned)) return newBuilder;
      await q.run('DELETE FROM config_labels WHERE config_id = ?', [id]);
      await q.run('UPDATE configs SET fetched_at = ? WHERE id = ?', [Date.now(), id]);
    } else {
      const rows = await q.all<{ id: unknown }>('INSERT INTO configs (digest, fetched_at, builder, builder_confidence, builder_evidence) VALUES (?, ?, ?, ?, ?) RETURNING id', [
        configDigest,
        Date.now(),
        said?.builder ?? null,
        said?.confidence ?? null,
        said ? JSON.stringify(said.evidence.map(clean)) : null,
      ]);
      id = num(rows[0]!.id);
    }
    await insertMany(q, 'config_labels', ['config_id', 'key', 'value'], Object.entries(cleaned).map(([k, v]) => [id, k, v]));
    return true;
  }

  async putConfigLabels(configDigest: string, labels: Annotations, config?: unknown): Promise<void> {
    checkDigest(configDigest, 'config digest');
    if (typeof labels !== 'object' || labels === null) throw new UsageError('labels must be a record of strings');
    await this.db.write(async (q) => {
      if (await this.putLabels(q, configDigest, labels, config)) {
        await this.deriveManifests(q, new Set(), new Set([configDigest]));
        await this.refresh(q, new Set(), new Set([configDigest]));
      }
    });
  }

  async hasConfigLabels(configDigest: string): Promise<boolean> {
    checkDigest(configDigest, 'config digest');
    return (await this.db.all('SELECT 1 AS one FROM configs WHERE digest = ?', [configDigest])).length > 0;
  }

  async markUnreadable(digest: string, code: string, reason: string, at: Date): Promise<void> {
    checkDigest(digest);
    await this.db.write((q) =>
      q.run(
        `INSERT INTO unreadable_manifests (digest, code, reason, tagtrail_version, seen_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET code = excluded.code, reason = excluded.reason, tagtrail_version = excluded.tagtrail_version, seen_at = excluded.seen_at`,
        [digest, code.slice(0, 64), reason.slice(0, 1000), VERSION, at.getTime()],
      ),
    );
  }

  async unreadable(digest: string): Promise<{ code: string; reason: string } | undefined> {
    checkDigest(digest);
    const rows = await this.db.all<Row>('SELECT code, reason FROM unreadable_manifests WHERE digest = ? AND tagtrail_version = ?', [digest, VERSION]);
    return rows[0] ? { code: String(rows[0].code), reason: String(rows[0].reason) } : undefined;
  }

  async setGitlabProject(repository: string, project: GitlabProjectColumns): Promise<void> {
    await this.db.write((q) => setGitlabProject(q, repository, project));
  }

  // ---- signed-in sessions (sessions.ts)

  putSession(session: SessionRecord): Promise<void> {
    return this.db.write((q) => putSession(q, session));
  }

  findSession(id: string, now: Date): Promise<SessionRecord | undefined> {
    return findSession(this.db, id, now);
  }

  setSessionToken(id: string, token: string): Promise<void> {
    return this.db.write((q) => setSessionToken(q, id, token));
  }

  deleteSession(id: string, now: Date): Promise<void> {
    return this.db.write((q) => deleteSession(q, id, now));
  }

  // ---- verified builds and pushers (verifications.ts)

  async recordVerification(repository: string, digest: string, v: verified.VerifiedBuild): Promise<void> {
    await this.db.write((q) => verified.recordVerification(q, repository, digest, v));
  }
  async recordPusher(digest: string, userAgent: string, pusher: string, at: Date): Promise<void> {
    await this.db.write((q) => verified.recordPusher(q, digest, userAgent, pusher, at));
  }
  async pusherOf(digest: string): Promise<verified.PusherRecord | undefined> {
    return verified.pusherOf(this.db, digest);
  }
  async verifiedInsights(query: InsightsQuery): Promise<{ verified: number; pushedBy: Record<string, number> }> {
    const window = insightsWindow(query);
    const filter = { ...(query.namespace !== undefined ? { namespace: query.namespace } : {}), ...(query.repository !== undefined ? { repository: query.repository } : {}) };
    // A signed-in person counts readable repositories only, as in insights().
    const readable = query.scope ? readableSql(this.d, query.scope, 'r') : undefined;
    return {
      verified: await verified.countVerified(this.db, window.from, window.to, filter, readable),
      pushedBy: await verified.pusherCounts(this.db, window.from, window.to, filter, readable),
    };
  }

  // ---- build-details referrers (referrer-store.ts)

  async hasReferrer(digest: string): Promise<boolean> {
    checkDigest(digest);
    return refs.hasReferrerRow(this.db, digest);
  }

  async referrerSubject(digest: string): Promise<string | null> {
    checkDigest(digest);
    return refs.storedSubject(this.db, digest);
  }

  async putReferrer(record: ReferrerRecord): Promise<void> {
    checkDigest(record.digest);
    checkDigest(record.subjectDigest, 'subject digest');
    await this.db.write((q) => refs.insertReferrer(q, record, cleanRecord(record.annotations)));
  }

  async referrersTagDigest(repository: string, subjectDigest: string): Promise<string | null> {
    checkName(repository, 'repository');
    checkDigest(subjectDigest, 'subject digest');
    const repoId = await refs.repositoryId(this.db, repository);
    return repoId === null ? null : refs.tagDigest(this.db, repoId, subjectDigest);
  }

  async referrersTagSubjects(repository: string): Promise<string[]> {
    checkName(repository, 'repository');
    const repoId = await refs.repositoryId(this.db, repository);
    return repoId === null ? [] : refs.tagSubjects(this.db, repoId);
  }

  async setReferrersTag(repository: string, subjectDigest: string, indexDigest: string | null, referrerDigests: readonly string[]): Promise<void> {
    checkName(repository, 'repository');
    checkDigest(subjectDigest, 'subject digest');
    if (indexDigest !== null) checkDigest(indexDigest, 'referrers tag digest');
    await this.db.write(async (q) => {
      const now = Date.now();
      const repoId = indexDigest === null ? await refs.repositoryId(q, repository) : await this.ensureRepository(q, repository, now);
      if (repoId === null) return;
      if (await refs.replaceLinks(q, repoId, subjectDigest, indexDigest, referrerDigests, now)) await this.referrersChanged(q, [subjectDigest]);
    });
  }

  async removeReferrer(repository: string, referrerDigest: string): Promise<void> {
    checkName(repository, 'repository');
    checkDigest(referrerDigest);
    await this.db.write(async (q) => {
      const repoId = await refs.repositoryId(q, repository);
      if (repoId === null) return;
      await this.referrersChanged(q, await refs.dropReferrer(q, repoId, referrerDigest));
    });
  }

  /** The build details of these subjects changed: their derived columns, and the terms of the tags on them (and on indexes listing them). */
  private async referrersChanged(q: Queryable, subjects: readonly string[]): Promise<void> {
    if (subjects.length === 0) return;
    await this.deriveManifests(q, new Set(subjects), new Set());
    await this.refresh(q, new Set(subjects), new Set());
  }

  /** Rebuilds the terms of live tags whose image changed: tags on these digests, on manifests with these configs, or on their parent indexes. */
  private async refresh(q: Queryable, digests: Set<string>, configs: Set<string>): Promise<void> {
    const changed = new Set(digests);
    for (const part of chunks([...configs], IN_CHUNK)) {
      for (const r of await q.all<{ digest: string }>(`SELECT digest FROM manifests WHERE config_digest IN (${marks(part.length)})`, part)) changed.add(r.digest);
    }
    if (changed.size === 0) return;
    const targets = new Set(changed);
    for (const part of chunks([...changed], IN_CHUNK)) {
      const rows = await q.all<{ digest: string }>(
        `SELECT DISTINCT m.digest FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest IN (${marks(part.length)})`,
        part,
      );
      for (const r of rows) targets.add(r.digest);
    }
    const ctx: WriteContext = { summaries: new Map() };
    for (const part of chunks([...targets], IN_CHUNK)) {
      const rows = await q.all(`SELECT ${TAG_COLUMNS} FROM tags g WHERE g.digest IN (${marks(part.length)}) AND g.deleted_at IS NULL AND g.updated_at IS NOT NULL`, part);
      for (const row of rows.map(tagRow)) {
        const hasBuild = await this.rebuildTerms(q, row, row.digest as string, row.updated_at as number, ctx);
        const delta = (hasBuild ? 1 : 0) - (row.has_build ? 1 : 0);
        if (delta !== 0) await q.run('UPDATE repositories SET build_tags = build_tags + ? WHERE id = ?', [delta, row.repository_id]);
      }
    }
  }

  /** Fills the context's summaries for these digests, loading the missing ones together. */
  private async summaries(q: Queryable, repoId: number, digests: readonly string[], ctx: WriteContext): Promise<void> {
    const missing = digests.filter((d) => !ctx.summaries.has(summaryKey(repoId, d)));
    if (missing.length === 0) return;
    const views = await this.loadViews(q, repoId, missing);
    for (const d of missing) ctx.summaries.set(summaryKey(repoId, d), summarize(views.get(d)));
  }

  private async summary(q: Queryable, repoId: number, digest: string, ctx: WriteContext): Promise<Summary> {
    const key = summaryKey(repoId, digest);
    let s = ctx.summaries.get(key);
    if (!s) {
      s = summarize((await this.loadViews(q, repoId, [digest])).get(digest));
      ctx.summaries.set(key, s);
    }
    return s;
  }

  /** Replaces a live tag's terms with those of `digest`; records and returns its build flag. */
  private async rebuildTerms(q: Queryable, row: TagRow, digest: string, updatedAt: number, ctx: WriteContext): Promise<boolean> {
    const s = await this.summary(q, row.repository_id, digest, ctx);
    await q.run('DELETE FROM tag_terms WHERE tag_id = ?', [row.id]);
    await insertMany(
      q,
      'tag_terms',
      ['tag_id', 'repository_id', 'key', 'value', 'value_rest', 'updated_at'],
      s.terms.map(([k, v]) => {
        const [prefix, rest] = splitValue(v);
        return [row.id, row.repository_id, k, prefix, rest, updatedAt];
      }),
    );
    if ((row.has_build ? 1 : 0) !== (s.hasBuildDetails ? 1 : 0)) await q.run('UPDATE tags SET has_build = ? WHERE id = ?', [s.hasBuildDetails ? 1 : 0, row.id]);
    return s.hasBuildDetails;
  }

  /** Loads manifests by digest with their annotations, labels and children (one level), and the referrers repository `repoId` lists. */
  private async loadViews(q: Queryable, repoId: number, digests: readonly string[]): Promise<Map<string, View>> {
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

    const referrers = await refs.newestReferrers(q, repoId, tops.map((t) => t.row.digest));
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

  // ---- insights: derived columns per manifest

  /**
   * Recomputes the insight columns of these manifests, of the manifests with these configs, and
   * of the indexes listing any of them (after their children). See builder.ts and derived.ts.
   */
  private async deriveManifests(q: Queryable, digests: Set<string>, configs: Set<string>): Promise<void> {
    const images = new Set<string>();
    const indexes = new Set<string>();
    const sort = (rows: Row[]) => {
      for (const r of rows) (isIndexMediaType(r.media_type as string) ? indexes : images).add(r.digest as string);
    };
    for (const part of chunks([...digests], IN_CHUNK)) sort(await q.all<Row>(`SELECT digest, media_type FROM manifests WHERE digest IN (${marks(part.length)})`, part));
    for (const part of chunks([...configs], IN_CHUNK)) sort(await q.all<Row>(`SELECT digest, media_type FROM manifests WHERE config_digest IN (${marks(part.length)})`, part));
    for (const part of chunks([...images], IN_CHUNK)) {
      sort(await q.all<Row>(`SELECT DISTINCT m.digest, m.media_type FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest IN (${marks(part.length)})`, part));
    }
    for (const d of images) await this.deriveOne(q, d);
    for (const d of indexes) await this.deriveOne(q, d);
  }

  private async deriveOne(q: Queryable, digest: string): Promise<void> {
    const m = (await q.all<Row>('SELECT id, media_type, raw, config_digest FROM manifests WHERE digest = ?', [digest]))[0];
    if (!m) return;
    const id = num(m.id);
    const mediaType = m.media_type as string;
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(m.raw as Uint8Array).toString('utf8'));
    } catch {
      json = null;
    }
    const annotations = emptyAnnotations();
    for (const r of await q.all<Row>('SELECT key, value FROM annotations WHERE manifest_id = ?', [id])) annotations[r.key as string] = r.value as string;
    let result: BuilderResult;
    let source: BuildSource;
    let platforms = 1;
    // Build details recorded as referrers against this manifest (referrer-store.ts).
    const referrer = await refs.hasBuildReferrer(q, digest);
    if (isIndexMediaType(mediaType)) {
      const rows = await q.all<Row>(
        `SELECT c.os, c.architecture, c.variant, cm.builder, cm.builder_confidence, cm.builder_evidence, cm.build_source
         FROM manifest_children c LEFT JOIN manifests cm ON cm.digest = c.child_digest WHERE c.parent_id = ? ORDER BY c.position`,
        [id],
      );
      const real = rows.filter((r) => isRealPlatform(r.os as string | null, r.architecture as string | null));
      platforms = new Set(real.map((r) => `${String(r.os)}/${String(r.architecture)}/${String(r.variant ?? '')}`)).size;
      const children = real.filter((r) => r.builder != null).map((r) => storedResult(r.builder, r.builder_confidence, r.builder_evidence));
      result = detectBuilder({ manifest: json, mediaType, annotations, children });
      source = buildDetailsSource({ annotations, referrer, children: real.filter((r) => r.build_source != null).map((r) => r.build_source as BuildSource) });
    } else {
      const own = detectBuilder({ manifest: json, mediaType, annotations, configRead: false });
      result = own;
      let labels: Annotations | undefined;
      const cfgType = (json as { config?: { mediaType?: unknown } } | null)?.config?.mediaType;
      const imageConfig = cfgType === OCI_CONFIG || cfgType === DOCKER_CONFIG;
      if (m.config_digest != null && imageConfig) {
        const cfg = (await q.all<Row>('SELECT id, builder, builder_confidence, builder_evidence FROM configs WHERE digest = ?', [m.config_digest as string]))[0];
        if (cfg) {
          labels = emptyAnnotations();
          for (const r of await q.all<Row>('SELECT key, value FROM config_labels WHERE config_id = ?', [num(cfg.id)])) labels[r.key as string] = r.value as string;
          const said = cfg.builder != null ? storedResult(cfg.builder, cfg.builder_confidence, cfg.builder_evidence) : detectBuilder({ manifest: {}, labels, configRead: true });
          if (own.builder === 'unread' || rank(said.confidence) > rank(own.confidence)) result = said;
        }
      } else if (own.builder === 'unread') {
        // An artifact, or a manifest without a config: there is no config to read.
        result = { builder: 'unknown', confidence: 'none', evidence: [] };
      }
      source = buildDetailsSource({ annotations, referrer, ...(labels ? { labels } : {}) });
    }
    await q.run('UPDATE manifests SET builder = ?, builder_confidence = ?, builder_evidence = ?, build_source = ?, media_family = ?, platform_count = ? WHERE id = ?', [
      result.builder,
      result.confidence,
      JSON.stringify(result.evidence.map(clean)),
      source,
      mediaFamily(mediaType),
      platforms,
      id,
    ]);
  }

  async manifestInsight(digest: string): Promise<ManifestInsight | null> {
    checkDigest(digest);
    const r = (await this.db.all<Row>('SELECT builder, builder_confidence, builder_evidence, build_source, media_family, platform_count FROM manifests WHERE digest = ?', [digest]))[0];
    if (!r || r.builder == null) return null;
    const b = storedResult(r.builder, r.builder_confidence, r.builder_evidence);
    return {
      builder: b.builder,
      confidence: b.confidence,
      evidence: b.evidence,
      buildSource: (r.build_source as BuildSource | null) ?? 'none',
      mediaFamily: (r.media_family as MediaFamily | null) ?? 'other',
      platformCount: num(r.platform_count ?? 1),
    };
  }

  async insights(query: InsightsQuery): Promise<InsightsReport> {
    const window = insightsWindow(query);
    // Events at or after the window's end cannot make an image's first week fall inside it, and
    // cannot change an earlier minimum: leave them out (tag_events_set serves the range).
    const where: string[] = [`e.kind = ${SET}`, 'e.at < ?'];
    const params: Param[] = [window.to];
    if (query.scope) {
      // Decided once per repository, not once per event.
      const readable = readableSql(this.d, query.scope, 'rs');
      where.push(`r.id IN (SELECT rs.id FROM repositories rs WHERE ${readable.sql})`);
      params.push(...readable.params);
    }
    if (query.repository !== undefined) {
      checkName(query.repository, 'repository');
      where.push('r.name = ?');
      params.push(query.repository);
    } else if (query.namespace !== undefined) {
      checkName(query.namespace, 'namespace');
      if (query.namespace.includes('/')) throw new UsageError(`namespace ${JSON.stringify(query.namespace.slice(0, 100))} has a slash`, { hint: 'a namespace is the first path segment of a repository; pass a whole path as repository' });
      // Repositories named NS or under NS/: a range on the name, no LIKE ('0' follows '/').
      where.push('(r.name = ? OR (r.name >= ? AND r.name < ?))');
      params.push(query.namespace, `${query.namespace}/`, `${query.namespace}0`);
    }
    // An image is a (repository, manifest) pair; it appeared when a tag there first pointed at it.
    const images =
      `SELECT r.name AS repository, m.id AS manifest_id, m.builder, m.build_source, m.media_family, m.platform_count, min(e.at) AS first_at
       FROM tag_events e JOIN tags g ON g.id = e.tag_id JOIN repositories r ON r.id = g.repository_id JOIN manifests m ON m.digest = e.digest
       WHERE ${where.join(' AND ')}
       GROUP BY r.name, m.id, m.builder, m.build_source, m.media_family, m.platform_count
       HAVING min(e.at) >= ? AND min(e.at) < ?`;
    const windowParams: Param[] = [...params, window.from, window.to];
    const rows = await this.db.all<Row>(
      `SELECT repository, (first_at - ${WEEK_ORIGIN}) / ${WEEK_MS} AS wk, builder, build_source, media_family,
              CASE WHEN platform_count > 1 THEN 1 ELSE 0 END AS multi, count(*) AS n
       FROM (${images}) s GROUP BY repository, (first_at - ${WEEK_ORIGIN}) / ${WEEK_MS}, builder, build_source, media_family, CASE WHEN platform_count > 1 THEN 1 ELSE 0 END`,
      windowParams,
    );
    const platformRows = await this.db.all<Row>(
      `SELECT c.os, c.architecture, c.variant, count(*) AS n
       FROM (${images}) s JOIN manifest_children c ON c.parent_id = s.manifest_id
       WHERE s.platform_count > 1 AND c.os IS NOT NULL AND NOT (c.os = 'unknown' AND c.architecture = 'unknown')
       GROUP BY c.os, c.architecture, c.variant`,
      windowParams,
    );
    const groupBy: 'namespace' | 'repository' = query.repository !== undefined || query.namespace !== undefined ? 'repository' : 'namespace';
    const weekStarts: number[] = [];
    for (let t = window.from; t < window.to; t += WEEK_MS) weekStarts.push(t);
    const totals = emptyCounts();
    const weeks = new Map<number, InsightsCounts>(weekStarts.map((t) => [t, emptyCounts()]));
    const groups = new Map<string, { totals: InsightsCounts; weeks: Map<number, InsightsCounts> }>();
    for (const r of rows) {
      const start = num(r.wk) * WEEK_MS + WEEK_ORIGIN;
      const repository = r.repository as string;
      const name = groupBy === 'namespace' ? repository.split('/')[0]! : repository;
      let g = groups.get(name);
      if (!g) {
        g = { totals: emptyCounts(), weeks: new Map(weekStarts.map((t) => [t, emptyCounts()])) };
        groups.set(name, g);
      }
      for (const c of [totals, weeks.get(start), g.totals, g.weeks.get(start)]) if (c) addCounts(c, r);
    }
    const weekList = (m: Map<number, InsightsCounts>): InsightsWeek[] => weekStarts.map((t) => ({ start: new Date(t), counts: m.get(t)! }));
    return {
      interval: 'week',
      from: new Date(window.from),
      to: new Date(window.to),
      namespace: query.repository === undefined ? (query.namespace ?? null) : null,
      repository: query.repository ?? null,
      groupBy,
      totals,
      weeks: weekList(weeks),
      groups: [...groups.entries()]
        .sort((a, b) => b[1].totals.images - a[1].totals.images || (a[0] < b[0] ? -1 : 1))
        .map(([name, g]) => ({ name, totals: g.totals, weeks: weekList(g.weeks) })),
      platforms: platformRows
        .map((r) => ({ platform: [r.os, r.architecture, r.variant].filter((v) => v != null && v !== '').join('/'), images: num(r.n) }))
        .sort((a, b) => b.images - a.images || (a.platform < b.platform ? -1 : 1)),
    };
  }

  // ---- tags

  async setTag(repository: string, tag: string, digest: string, at: Date): Promise<EventOutcome> {
    checkName(repository, 'repository');
    checkName(tag, 'tag');
    checkDigest(digest);
    const event: TagEvent = { at: ms(at, 'setTag'), kind: SET, digest };
    return this.db.write(async (q) => {
      const repoId = await this.ensureRepository(q, repository, event.at);
      return this.applyTagEvent(q, repoId, tag, event, { summaries: new Map() });
    });
  }

  async deleteTag(repository: string, tag: string, at: Date): Promise<EventOutcome> {
    checkName(repository, 'repository');
    checkName(tag, 'tag');
    const event: TagEvent = { at: ms(at, 'deleteTag'), kind: TAG_DELETE, digest: '' };
    return this.db.write(async (q) => {
      const repoId = await this.ensureRepository(q, repository, event.at);
      return this.applyTagEvent(q, repoId, tag, event, { summaries: new Map() });
    });
  }

  async deleteManifest(repository: string, digest: string, at: Date): Promise<{ tagsDeleted: number }> {
    checkName(repository, 'repository');
    checkDigest(digest);
    const event: TagEvent = { at: ms(at, 'deleteManifest'), kind: MANIFEST_DELETE, digest };
    return this.db.write(async (q) => {
      const repoId = await this.ensureRepository(q, repository, event.at);
      const fresh = await q.run('INSERT INTO manifest_deletions (repository_id, digest, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [repoId, digest, event.at]);
      if (fresh === 0) return { tagsDeleted: 0 };
      // Only tags that were ever set to this digest can be affected.
      const rows = await q.all(
        `SELECT ${TAG_COLUMNS} FROM tags g WHERE g.repository_id = ? AND g.id IN (SELECT e.tag_id FROM tag_events e WHERE e.digest = ? AND e.kind = ${SET})`,
        [repoId, digest],
      );
      const ctx: WriteContext = { summaries: new Map() };
      let tagsDeleted = 0;
      for (const row of rows.map(tagRow)) {
        const before = stateOf(row);
        const after = before !== null && stepsForward(row, before, event) ? step(before, event) : await this.replay(q, row);
        if (after === before) continue;
        await this.writeTagState(q, row, before, after, null, ctx);
        if (isLive(before) && !isLive(after)) tagsDeleted++;
      }
      return { tagsDeleted };
    });
  }

  async reconcileRepository(repository: string, liveTags: ReadonlyMap<string, string>, at: Date): Promise<ReconcileResult> {
    checkName(repository, 'repository');
    for (const [tag, digest] of liveTags) {
      checkName(tag, 'tag');
      checkDigest(digest);
    }
    const when = ms(at, 'reconcileRepository');
    return this.db.write(async (q) => {
      const result: ReconcileResult = { added: 0, updated: 0, deleted: 0, unchanged: 0, skipped: 0 };
      const repoId = await this.ensureRepository(q, repository, when);
      const ctx: WriteContext = { summaries: new Map() };
      const rows = (await q.all(`SELECT ${TAG_COLUMNS} FROM tags g WHERE g.repository_id = ?`, [repoId])).map(tagRow);
      const known = new Set<string>();
      const unchanged: number[] = [];
      for (const row of rows) {
        known.add(row.name);
        const state = stateOf(row);
        const digest = liveTags.get(row.name);
        if (state === null) continue;
        if (digest !== undefined && isLive(state) && state.digest === digest) {
          result.unchanged++;
          unchanged.push(row.id);
          continue;
        }
        if (digest === undefined && !isLive(state)) continue;
        // A newer event already decided this tag: the crawl's view is older, leave it.
        if (state.updatedAt > when) {
          result.skipped++;
          continue;
        }
        const event: TagEvent = digest === undefined ? { at: when, kind: TAG_DELETE, digest: '' } : { at: when, kind: SET, digest };
        await this.applyTagEvent(q, repoId, row.name, event, ctx);
        if (digest === undefined) result.deleted++;
        else if (isLive(state)) result.updated++;
        else result.added++;
      }
      // What the registry says now is an observation at the crawl's start: an event dated before it
      // that arrives later cannot move the tag away from it (tagstate.ts).
      for (const part of chunks(unchanged, IN_CHUNK)) {
        await q.run(
          `UPDATE tags SET last_seen = ${this.d.greatest}(COALESCE(last_seen, ?), ?),
             observed_digest = CASE WHEN observed_at IS NULL OR observed_at < ? THEN digest ELSE observed_digest END,
             observed_at = ${this.d.greatest}(COALESCE(observed_at, ?), ?) WHERE id IN (${marks(part.length)})`,
          [when, when, when, when, when, ...part],
        );
      }
      const fresh = [...liveTags].filter(([tag]) => !known.has(tag));
      await this.insertNewTags(q, repoId, fresh, when, ctx);
      result.added += fresh.length;
      return result;
    });
  }

  /**
   * Tags the repository has never had, set at `at`: what applyTagEvent would do for each, in
   * bulk (a first crawl brings thousands). A manifest deletion logged earlier but dated at or
   * after `at` applies after the set, as in applyTagEvent.
   */
  private async insertNewTags(q: Queryable, repoId: number, fresh: readonly (readonly [string, string])[], at: number, ctx: WriteContext): Promise<void> {
    let live = 0;
    let build = 0;
    let newest: number | null = null;
    for (const part of chunks(fresh, NEW_TAGS_CHUNK)) {
      const digests = [...new Set(part.map(([, d]) => d))];
      const deletedAt = new Map<string, number>();
      const rows = await q.all<Row>(
        `SELECT digest, min(at) AS at FROM manifest_deletions WHERE repository_id = ? AND at >= ? AND digest IN (${marks(digests.length)}) GROUP BY digest`,
        [repoId, at, ...digests],
      );
      for (const r of rows) deletedAt.set(r.digest as string, num(r.at));
      await this.summaries(q, repoId, digests, ctx);
      const states = part.map(([name, digest]) => {
        let state = step(null, { at, kind: SET, digest }) as TagState;
        const md = deletedAt.get(digest);
        if (md !== undefined) state = step(state, { at: md, kind: MANIFEST_DELETE, digest }) as TagState;
        const summary = ctx.summaries.get(summaryKey(repoId, digest))!;
        return { name, digest, state, summary, live: isLive(state) };
      });
      const ids = new Map<string, number>();
      for (const rowsPart of chunks(states, Math.floor(MAX_PARAMS / 10))) {
        const inserted = await q.all<Row>(
          `INSERT INTO tags (repository_id, name, digest, deleted_at, updated_at, last_kind, last_digest, first_seen, last_seen, has_build)
           VALUES ${rowsPart.map(() => `(${marks(10)})`).join(', ')} RETURNING id, name`,
          rowsPart.flatMap((x) => [
            repoId,
            x.name,
            x.digest,
            x.state.deletedAt,
            x.state.updatedAt,
            x.state.lastKind,
            x.state.lastDigest,
            x.state.firstSeen,
            at,
            x.summary.hasBuildDetails ? 1 : 0,
          ]),
        );
        for (const r of inserted) ids.set(r.name as string, num(r.id));
      }
      await insertMany(q, 'tag_events', ['tag_id', 'at', 'kind', 'digest'], states.map((x) => [ids.get(x.name)!, at, SET, x.digest]));
      const terms: Param[][] = [];
      for (const x of states) {
        newest = Math.max(newest ?? x.state.updatedAt, x.state.updatedAt);
        if (!x.live) continue;
        live++;
        if (x.summary.hasBuildDetails) build++;
        const id = ids.get(x.name)!;
        for (const [k, v] of x.summary.terms) {
          const [prefix, rest] = splitValue(v);
          terms.push([id, repoId, k, prefix, rest, x.state.updatedAt]);
        }
      }
      await insertMany(q, 'tag_terms', ['tag_id', 'repository_id', 'key', 'value', 'value_rest', 'updated_at'], terms);
      // Done with these images: a repository of many tags does not keep them all (one further use
      // in this transaction only reads one again).
      for (const d of digests) ctx.summaries.delete(summaryKey(repoId, d));
    }
    if (newest === null) return;
    await q.run(`UPDATE repositories SET live_tags = live_tags + ?, build_tags = build_tags + ?, updated_at = ${this.d.greatest}(COALESCE(updated_at, ?), ?) WHERE id = ?`, [
      live,
      build,
      newest,
      newest,
      repoId,
    ]);
  }

  private async ensureRepository(q: Queryable, name: string, at: number): Promise<number> {
    const g = this.d.greatest;
    const rows = await q.all<{ id: unknown }>(
      `INSERT INTO repositories (name, first_seen, last_seen) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET last_seen = ${g}(repositories.last_seen, excluded.last_seen),
         first_seen = ${g === 'max' ? 'min' : 'LEAST'}(repositories.first_seen, excluded.first_seen)
       RETURNING id`,
      [name, at, at],
    );
    return num(rows[0]!.id);
  }

  /** Logs one event of a tag and brings the tag's state up to date: one step if it is the newest, else a replay. */
  private async applyTagEvent(q: Queryable, repoId: number, tag: string, event: TagEvent, ctx: WriteContext): Promise<EventOutcome> {
    await q.run('INSERT INTO tags (repository_id, name) VALUES (?, ?) ON CONFLICT (repository_id, name) DO NOTHING', [repoId, tag]);
    const row = tagRow((await q.all(`SELECT ${TAG_COLUMNS} FROM tags g WHERE g.repository_id = ? AND g.name = ?`, [repoId, tag]))[0]!);
    const fresh = await q.run('INSERT INTO tag_events (tag_id, at, kind, digest) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [row.id, event.at, event.kind, event.digest]);
    if (fresh === 0) return 'duplicate';
    const before = stateOf(row);
    let after: TagState | null;
    if (stepsForward(row, before, event)) {
      after = step(before, event);
      if (event.kind === SET) {
        // A deletion of this manifest logged earlier but dated later applies after this set.
        const later = await q.all<{ at: unknown }>('SELECT at FROM manifest_deletions WHERE repository_id = ? AND digest = ? AND at >= ? ORDER BY at LIMIT 1', [
          repoId,
          event.digest,
          event.at,
        ]);
        if (later[0]) after = step(after, { at: num(later[0].at), kind: MANIFEST_DELETE, digest: event.digest });
      }
    } else {
      after = await this.replay(q, row);
    }
    await this.writeTagState(q, row, before, after, event.at, ctx);
    return after !== null && compareEvents(lastEvent(after), event) === 0 ? 'applied' : 'superseded';
  }

  private async tagEvents(q: Queryable, row: TagRow): Promise<TagEvent[]> {
    const own = (await q.all<Row>('SELECT at, kind, digest FROM tag_events WHERE tag_id = ?', [row.id])).map(
      (r): TagEvent => ({ at: num(r.at), kind: num(r.kind) as TagEvent['kind'], digest: r.digest as string }),
    );
    const seen = observation(row);
    if (seen !== null) own.push(seen);
    const set = [...new Set(own.filter((e) => e.kind === SET).map((e) => e.digest))];
    const events = [...own];
    for (const part of chunks(set, IN_CHUNK)) {
      const rows = await q.all<Row>(`SELECT digest, at FROM manifest_deletions WHERE repository_id = ? AND digest IN (${marks(part.length)})`, [row.repository_id, ...part]);
      for (const r of rows) events.push({ at: num(r.at), kind: MANIFEST_DELETE, digest: r.digest as string });
    }
    return events;
  }

  private async replay(q: Queryable, row: TagRow): Promise<TagState | null> {
    return fold(await this.tagEvents(q, row)).state;
  }

  /** Stores a tag's new state and keeps its terms and its repository's counters in step. */
  private async writeTagState(q: Queryable, row: TagRow, before: TagState | null, after: TagState | null, seenAt: number | null, ctx: WriteContext): Promise<void> {
    if (after === null) return;
    const g = this.d.greatest;
    await q.run(
      `UPDATE tags SET digest = ?, deleted_at = ?, updated_at = ?, last_kind = ?, last_digest = ?, first_seen = ?,
         last_seen = ${seenAt === null ? 'last_seen' : `${g}(COALESCE(last_seen, ?), ?)`} WHERE id = ?`,
      [after.digest, after.deletedAt, after.updatedAt, after.lastKind, after.lastDigest, after.firstSeen, ...(seenAt === null ? [] : [seenAt, seenAt]), row.id],
    );
    const wasLive = isLive(before);
    const nowLive = isLive(after);
    let hasBuild = row.has_build === 1;
    if (nowLive) {
      if (!wasLive || before?.digest !== after.digest) hasBuild = await this.rebuildTerms(q, row, after.digest as string, after.updatedAt, ctx);
      else if (before?.updatedAt !== after.updatedAt) await q.run('UPDATE tag_terms SET updated_at = ? WHERE tag_id = ?', [after.updatedAt, row.id]);
    } else if (wasLive) {
      await q.run('DELETE FROM tag_terms WHERE tag_id = ?', [row.id]);
    }
    const liveDelta = (nowLive ? 1 : 0) - (wasLive ? 1 : 0);
    const buildDelta = (nowLive && hasBuild ? 1 : 0) - (wasLive && row.has_build ? 1 : 0);
    // The repository's update time is its tags' newest. A replay can move a tag's time back
    // (an older event turned out to decide it): then take the maximum afresh.
    const movedBack = before !== null && after.updatedAt < before.updatedAt;
    await q.run(
      `UPDATE repositories SET live_tags = live_tags + ?, build_tags = build_tags + ?, updated_at = ${
        movedBack ? '(SELECT max(t.updated_at) FROM tags t WHERE t.repository_id = repositories.id)' : `${g}(COALESCE(updated_at, ?), ?)`
      } WHERE id = ?`,
      [liveDelta, buildDelta, ...(movedBack ? [] : [after.updatedAt, after.updatedAt]), row.repository_id],
    );
  }

  async ping(): Promise<void> {
    await this.db.all('SELECT 1');
  }

  // ---- checkpoints and locks

  async getCheckpoint<T = unknown>(key: string): Promise<T | undefined> {
    checkName(key, 'checkpoint key');
    const rows = await this.db.all<{ value: string }>('SELECT value FROM sync_checkpoints WHERE key = ?', [key]);
    return rows[0] ? (JSON.parse(rows[0].value) as T) : undefined;
  }

  async setCheckpoint(key: string, value: unknown): Promise<void> {
    checkName(key, 'checkpoint key');
    const json = JSON.stringify(value);
    if (json === undefined) throw new UsageError('a checkpoint value must be JSON');
    await this.db.write((q) =>
      q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at', [
        key,
        clean(json),
        Date.now(),
      ]),
    );
  }

  async deleteCheckpoint(key: string): Promise<void> {
    checkName(key, 'checkpoint key');
    await this.db.write((q) => q.run('DELETE FROM sync_checkpoints WHERE key = ?', [key]));
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>> {
    checkName(name, 'lock name');
    return this.db.withLock(name, fn);
  }

  // ---- queries

  async listRepositories(options: { q?: string; limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<RepositorySummary>> {
    const limit = pageSize(options.limit);
    const cursor = decodeCursor(options.cursor, 'r');
    const where: string[] = [];
    const params: Param[] = [];
    if (options.scope) {
      const readable = readableSql(this.d, options.scope, 'repositories');
      where.push(readable.sql);
      params.push(...readable.params);
    }
    if (cursor) {
      where.push('name > ?');
      params.push(cursorString(cursor, 'n'));
    }
    if (options.q !== undefined && options.q !== '') {
      if (typeof options.q !== 'string') throw new UsageError('q must be a string');
      where.push(this.d.contains('lower(name)', '?'));
      params.push(clean(options.q.toLowerCase()));
    }
    const rows = await this.db.all<Row>(
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

  async listTags(repository: string, options: { limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<TagItem>> {
    checkName(repository, 'repository');
    if (options.scope && !(await readableRepositories(this.db, this.d, [repository], options.scope)).has(repository)) return { items: [] };
    const limit = pageSize(options.limit);
    const cursor = decodeCursor(options.cursor, 't');
    const repo = await this.db.all<{ id: unknown }>('SELECT id FROM repositories WHERE name = ?', [repository]);
    if (!repo[0]) return { items: [] };
    const params: Param[] = [num(repo[0].id)];
    let after = '';
    if (cursor) {
      const u = cursorNumber(cursor, 'u');
      // `updated_at <= u` bounds the index range; the OR only sorts out rows at exactly u.
      after = 'AND g.updated_at <= ? AND (g.updated_at < ? OR g.name > ?)';
      params.push(u, u, cursorString(cursor, 'n'));
    }
    const rows = await this.db.all<Row>(
      `SELECT g.id FROM tags g WHERE g.repository_id = ? AND g.deleted_at IS NULL ${after} ORDER BY g.updated_at DESC, g.name LIMIT ?`,
      [...params, limit + 1],
    );
    const items = await this.hydrate(rows.slice(0, limit).map((r) => num(r.id)));
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
  private async planSearch(query: SearchQuery): Promise<{ sql: string; params: Param[]; limit: number; prepare: boolean } | null> {
    const limit = pageSize(query.limit);
    const cursor = decodeCursor(query.cursor, 's');
    const filters = searchFilters(query);
    let repo: { id: number; liveTags: number } | null = null;
    if (query.repository !== undefined) {
      checkName(query.repository, 'repository');
      const rows = await this.db.all<Row>('SELECT id, live_tags FROM repositories WHERE name = ?', [query.repository]);
      if (!rows[0]) return null;
      repo = { id: num(rows[0].id), liveTags: num(rows[0].live_tags) };
    }
    if (query.tag !== undefined) checkName(query.tag, 'tag');

    let driver = filters[0];
    // The count can only turn a key-exists or prefix filter, or a value inside a small
    // repository, away from driving: for any other value filter it is not asked.
    if (driver && (driver.kind !== 'eq' || (repo !== null && repo.liveTags <= REPO_SCAN))) {
      const probe = filterSql('t0', driver);
      const counted = await this.db.all<Row>(`SELECT count(*) AS n FROM (SELECT 1 AS one FROM tag_terms t0 WHERE ${probe.sql} LIMIT ?) s`, [...probe.params, PROBE_CAP], {
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
      const readable = readableSql(this.d, query.scope, 'rs');
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

  async searchImages(query: SearchQuery): Promise<Page<TagItem>> {
    if (query.verified === true) {
      const found = await verified.searchVerified(this.db, query, pageSize(query.limit), query.scope ? readableSql(this.d, query.scope, 'r') : undefined);
      return { items: await this.hydrate(found.ids), ...(found.next ? { nextCursor: verified.encodeVerifiedCursor(found.next) } : {}) };
    }
    const plan = await this.planSearch(query);
    if (!plan) return { items: [] };
    const rows = await this.db.all<Row>(plan.sql, plan.params, { prepare: plan.prepare });
    const page = rows.slice(0, plan.limit);
    const items = await this.hydrate(page.map((r) => num(r.tag_id)));
    const last = page[page.length - 1];
    return rows.length > plan.limit && last ? { items, nextCursor: encodeCursor('s', { u: num(last.updated_at), i: num(last.tag_id) }) } : { items };
  }

  async explainSearch(query: SearchQuery, options: ExplainOptions = {}): Promise<ExplainResult> {
    const plan = (await this.planSearch(query)) ?? (await this.planSearch({ ...query, repository: undefined }));
    if (!plan) throw new UsageError('nothing to explain');
    return { sql: plan.sql, plan: await this.db.explain(plan.sql, plan.params, options) };
  }

  /**
   * The statement of hydrate: the tags with their repository, manifest, its annotations and
   * config labels, and its children with theirs, in one round trip (the nested parts as JSON).
   */
  private get hydrateSql(): string {
    const d = this.d;
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
    return (
      `SELECT g.id, g.repository_id, r.name AS repository, g.name AS tag, g.digest, g.updated_at, m.id AS manifest_id, m.media_type, m.has_build, m.config_digest, ` +
      `${annotations('m')} AS annotations, ${labels('m')} AS labels, ${children} AS children ` +
      `FROM tags g JOIN repositories r ON r.id = g.repository_id LEFT JOIN manifests m ON m.digest = g.digest WHERE ${d.inIdList('g.id')}`
    );
  }

  /** Tag ids → items, in the same order. */
  private async hydrate(ids: number[]): Promise<TagItem[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.all<Row>(this.hydrateSql, [this.d.idList(ids)], { prepare: true });
    const byId = new Map(rows.map((r) => [num(r.id), r]));
    // Each tag's referrers are those its own repository lists (referrer-store.ts).
    const byRepository = new Map<number, string[]>();
    for (const r of rows) {
      if (r.digest == null) continue;
      const list = byRepository.get(num(r.repository_id)) ?? [];
      list.push(r.digest as string);
      byRepository.set(num(r.repository_id), list);
    }
    const referrers = new Map<string, ReferrerInfo>();
    for (const [repoId, digests] of byRepository) {
      for (const [digest, referrer] of await refs.newestReferrers(this.db, repoId, digests)) referrers.set(summaryKey(repoId, digest), referrer);
    }
    const verifications = await verified.verificationsOf(this.db, rows.filter((r) => r.digest != null).map((r) => r.digest as string));
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

  async getImage(digest: string, options: { repository?: string; scope?: ReadScope } = {}): Promise<ImageDetail | null> {
    const detail = await this.readImage(digest, options);
    return detail && options.scope ? scopedImage(this.db, this.d, detail, options.scope, options.repository) : detail;
  }

  private async readImage(digest: string, options: { repository?: string }): Promise<ImageDetail | null> {
    checkDigest(digest);
    if (options.repository !== undefined) checkName(options.repository, 'repository');
    const rows = await this.db.all<Row>(
      'SELECT id, digest, media_type, size, raw, artifact_type, config_digest, has_build, stored_at FROM manifests WHERE digest = ?',
      [digest],
    );
    const m = rows[0];
    if (!m) return null;
    const id = num(m.id);
    const annotationsOf = async (ids: number[]): Promise<Map<number, Annotations>> => {
      const out = new Map<number, Annotations>(ids.map((i) => [i, emptyAnnotations()]));
      for (const part of chunks(ids, IN_CHUNK)) {
        for (const r of await this.db.all<Row>(`SELECT manifest_id, key, value FROM annotations WHERE manifest_id IN (${marks(part.length)})`, part)) {
          out.get(num(r.manifest_id))![r.key as string] = r.value as string;
        }
      }
      return out;
    };
    let labels: Annotations | null = null;
    if (m.config_digest != null) {
      const config = await this.db.all<{ id: unknown }>('SELECT id FROM configs WHERE digest = ?', [m.config_digest as string]);
      if (config[0]) {
        labels = emptyAnnotations();
        for (const r of await this.db.all<Row>('SELECT key, value FROM config_labels WHERE config_id = ?', [num(config[0].id)])) labels[r.key as string] = r.value as string;
      }
    }
    const childRows = await this.db.all<Row>(
      `SELECT c.child_digest, c.media_type, c.size, c.os, c.architecture, c.variant, cm.id AS child_id
       FROM manifest_children c LEFT JOIN manifests cm ON cm.digest = c.child_digest WHERE c.parent_id = ? ORDER BY c.position`,
      [id],
    );
    const childIds = childRows.map((r) => r.child_id).filter((v) => v !== null && v !== undefined).map(num);
    const annotations = await annotationsOf([id, ...childIds]);
    const children: ImageChild[] = childRows.map((r) => ({
      digest: r.child_digest as string,
      mediaType: (r.media_type as string | null) ?? null,
      size: numOrNull(r.size),
      platform: platformOf(r),
      annotations: r.child_id == null ? null : (annotations.get(num(r.child_id)) ?? null),
    }));
    const parents = await this.db.all<{ digest: string }>(
      'SELECT DISTINCT m.digest FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest = ? ORDER BY m.digest',
      [digest],
    );
    const tags = await this.db.all<Row>(
      `SELECT r.name AS repository, g.name AS tag, g.updated_at FROM tags g JOIN repositories r ON r.id = g.repository_id
       WHERE g.digest = ? AND g.deleted_at IS NULL ORDER BY r.name, g.name LIMIT ${STORE_MAX_PAGE_SIZE}`,
      [digest],
    );
    const own = annotations.get(id)!;
    return {
      digest,
      mediaType: m.media_type as string,
      size: num(m.size),
      raw: Buffer.from(m.raw as Uint8Array),
      artifactType: (m.artifact_type as string | null) ?? null,
      configDigest: (m.config_digest as string | null) ?? null,
      annotations: own,
      labels,
      hasBuildAnnotations: num(m.has_build) === 1,
      children,
      parents: parents.map((p) => p.digest),
      tags: tags.map((t) => ({ repository: t.repository as string, tag: t.tag as string, updatedAt: new Date(num(t.updated_at)) })),
      storedAt: new Date(num(m.stored_at)),
      referrers:
        options.repository === undefined
          ? await refs.referrersOf(this.db, digest, null)
          : await refs.referrersOf(this.db, digest, (await refs.repositoryId(this.db, options.repository)) ?? -1),
      verifications: [...(await verified.verificationsOf(this.db, [digest])).values()],
      ...(await verified.pusherOf(this.db, digest).then((p) => (p ? { pusher: p } : {}))),
    };
  }

  async getImages(digests: readonly string[], options: { repository?: string; scope?: ReadScope } = {}): Promise<Map<string, ImageDetail>> {
    for (const d of digests) checkDigest(d);
    if (options.repository !== undefined) checkName(options.repository, 'repository');
    const details = await getImages(this.db, digests, options);
    return options.scope ? scopedImages(this.db, this.d, details, options.scope, options.repository) : details;
  }

  async tagHistory(repository: string, tag: string, page: { limit?: number; cursor?: string; scope?: ReadScope } = {}): Promise<TagHistory | null> {
    checkName(repository, 'repository');
    checkName(tag, 'tag');
    if (page.scope && !(await readableRepositories(this.db, this.d, [repository], page.scope)).has(repository)) return null;
    // The cursor is the start (ms) of the last entry shown: segments start at distinct, increasing times.
    const before = page.cursor === undefined ? undefined : /^[0-9]{1,15}$/.test(page.cursor) ? Number(page.cursor) : NaN;
    if (Number.isNaN(before)) throw new UsageError('the history cursor is not one this catalog handed out', { hint: 'pass back the nextCursor of the previous page' });
    const limit = Math.max(1, Math.min(page.limit ?? HISTORY_PAGE_SIZE, STORE_MAX_PAGE_SIZE));
    const rows = await this.db.all(`SELECT ${TAG_COLUMNS} FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = ? AND g.name = ?`, [repository, tag]);
    if (!rows[0]) return null;
    const row = tagRow(rows[0]);
    const { state, segments } = fold(await this.tagEvents(this.db, row));
    if (!state) return null;
    return {
      repository,
      tag,
      digest: isLive(state) ? state.digest : null,
      deletedAt: dateOrNull(state.deletedAt),
      updatedAt: new Date(state.updatedAt),
      firstSeen: dateOrNull(state.firstSeen),
      ...historyPage(segments, before, limit),
    };
  }

  async stats(): Promise<StoreStats> {
    const rows = await this.db.all<Row>(
      `SELECT (SELECT count(*) FROM repositories) AS repositories,
              (SELECT count(*) FROM tags WHERE deleted_at IS NULL) AS live_tags,
              (SELECT count(*) FROM tags WHERE deleted_at IS NOT NULL) AS deleted_tags,
              (SELECT count(*) FROM manifests) AS manifests,
              (SELECT count(*) FROM configs) AS configs`,
    );
    const r = rows[0]!;
    return { repositories: num(r.repositories), liveTags: num(r.live_tags), deletedTags: num(r.deleted_tags), manifests: num(r.manifests), configs: num(r.configs) };
  }
}

// ---------------------------------------------------------------- writing helpers

function cleanRecord(a: Annotations): Annotations {
  const out = emptyAnnotations();
  for (const [k, v] of Object.entries(a)) if (typeof v === 'string') out[clean(k)] = clean(v);
  return out;
}

async function insertMany(q: Queryable, table: string, columns: readonly string[], rows: readonly Param[][]): Promise<void> {
  if (rows.length === 0) return;
  const tuple = `(${marks(columns.length)})`;
  for (const part of chunks(rows, Math.max(1, Math.floor(MAX_PARAMS / columns.length)))) {
    await q.run(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${part.map(() => tuple).join(', ')}`, part.flat());
  }
}

function validateRecord(rec: ManifestRecord, depth = 0): void {
  if (typeof rec !== 'object' || rec === null) throw new InvalidInputError('INVALID_MANIFEST', 'a manifest record is an object');
  checkDigest(rec.digest, 'manifest digest');
  if (typeof rec.mediaType !== 'string' || rec.mediaType === '') throw new InvalidInputError('INVALID_MANIFEST', `manifest ${rec.digest} has no media type`);
  if (!(rec.raw instanceof Uint8Array)) throw new InvalidInputError('INVALID_MANIFEST', `manifest ${rec.digest}: raw must be the manifest bytes`);
  verifyDigest(rec.raw, rec.digest, `manifest ${rec.digest}`);
  if (rec.configDigest != null) checkDigest(rec.configDigest, 'config digest');
  if (depth > 2) throw new InvalidInputError('INVALID_MANIFEST', `manifest ${rec.digest}: indexes nested too deep`);
  for (const c of rec.children ?? []) {
    checkDigest(c.digest, 'child digest');
    if (c.manifest) {
      if (c.manifest.digest !== c.digest) throw new InvalidInputError('INVALID_MANIFEST', `child ${c.digest} came with the record of ${c.manifest.digest}`);
      validateRecord(c.manifest, depth + 1);
    }
  }
}

// ---------------------------------------------------------------- insights helpers

/** Weeks start on Monday 00:00 UTC; 1970-01-05 was the first Monday after the epoch. */
export const WEEK_ORIGIN = 4 * 86_400_000;
export const WEEK_MS = 7 * 86_400_000;
/** The longest window one insights query covers. */
const DEFAULT_INSIGHT_WEEKS = 52;

export function weekStart(t: number): number {
  return Math.floor((t - WEEK_ORIGIN) / WEEK_MS) * WEEK_MS + WEEK_ORIGIN;
}

/** [from, to) in ms, whole weeks: from the Monday of `from` to the Monday after `to`. */
function insightsWindow(query: InsightsQuery): { from: number; to: number } {
  const to = weekStart(query.to === undefined ? Date.now() : ms(query.to, 'insights: to')) + WEEK_MS;
  const from = query.from === undefined ? to - DEFAULT_INSIGHT_WEEKS * WEEK_MS : weekStart(ms(query.from, 'insights: from'));
  if (from >= to) throw new UsageError('insights: from must be before to');
  if ((to - from) / WEEK_MS > MAX_INSIGHT_WEEKS) throw new UsageError(`insights: from and to are more than ${MAX_INSIGHT_WEEKS} weeks apart`, { hint: 'ask for a shorter window' });
  return { from, to };
}

function emptyCounts(): InsightsCounts {
  const zero = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  return { images: 0, builders: zero(BUILDERS), buildSources: zero(BUILD_SOURCES), mediaTypes: zero(MEDIA_FAMILIES), multiPlatform: 0 };
}

function addCounts(c: InsightsCounts, r: Row): void {
  const n = num(r.n);
  const builder = (BUILDERS as readonly string[]).includes(r.builder as string) ? (r.builder as Builder) : 'unknown';
  const source = (BUILD_SOURCES as readonly string[]).includes(r.build_source as string) ? (r.build_source as BuildSource) : 'none';
  const family = (MEDIA_FAMILIES as readonly string[]).includes(r.media_family as string) ? (r.media_family as MediaFamily) : 'other';
  c.images += n;
  c.builders[builder] += n;
  c.buildSources[source] += n;
  c.mediaTypes[family] += n;
  if (num(r.multi) === 1) c.multiPlatform += n;
}

const CONFIDENCE_RANK: Record<Confidence, number> = { none: 0, low: 1, medium: 2, high: 3 };

function rank(c: Confidence): number {
  return CONFIDENCE_RANK[c] ?? 0;
}

function storedResult(builder: unknown, confidence: unknown, evidence: unknown): BuilderResult {
  let list: string[] = [];
  try {
    const parsed: unknown = JSON.parse(String(evidence ?? '[]'));
    if (Array.isArray(parsed)) list = parsed.filter((e): e is string => typeof e === 'string');
  } catch {
    list = [];
  }
  const b = (BUILDERS as readonly string[]).includes(builder as string) ? (builder as Builder) : 'unknown';
  const c = confidence === 'high' || confidence === 'medium' || confidence === 'low' ? confidence : 'none';
  return { builder: b, confidence: c, evidence: list };
}

