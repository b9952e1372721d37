// The catalog Store: one interface, two dialects behind it (SQLite, the embedded default, and
// PostgreSQL), after kysely's dialect idea. The SQL lives in sql.ts and is shared; each dialect
// supplies a driver (connection, transactions, locks, EXPLAIN) and its own migrations.
import { UsageError } from '../errors.js';
import type { Annotations } from '../oci/annotations.js';
import type { Builder, Confidence } from './builder.js';
import type { BuildSource, MediaFamily } from './derived.js';
import { openPostgresStore, redactUrl } from './postgres.js';
import { openSqliteStore } from './sqlite.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A child of an index, as the index lists it. `manifest` is the child's own record, when fetched. */
export interface ChildRecord {
  digest: string;
  mediaType?: string;
  size?: number;
  platform?: Platform;
  manifest?: ManifestRecord;
}

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  /** The exact manifest bytes as the registry served them; must hash to `digest`. */
  raw: Uint8Array;
  artifactType?: string | null;
  configDigest?: string | null;
  annotations?: Annotations;
  /** The config's labels, when the caller already read the config blob (see putConfigLabels). */
  labels?: Annotations;
  /**
   * The config blob's JSON, parsed, when the caller read it for builder evidence: the store keeps
   * what it says about the builder (per config digest), not the blob.
   */
  config?: unknown;
  /** For an index: its children, in the index's order. */
  children?: ChildRecord[];
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

export interface RepositorySummary {
  name: string;
  /** Live (not deleted) tags. */
  tagCount: number;
  /** Live tags whose image carries build details (annotations, or labels as a fallback). */
  buildTagCount: number;
  firstSeen: Date;
  /** The newest update of any of its tags (first seen, before any). */
  lastUpdated: Date;
}

/** A live tag and the image it points at. listTags and searchImages both return these. */
export interface TagItem {
  repository: string;
  tag: string;
  digest: string;
  /** null while the manifest is not in the catalog yet. */
  mediaType: string | null;
  /** For an index: its children's platforms. */
  platforms: Platform[];
  updatedAt: Date;
  /** Merged: the manifest's own annotations, then each child's (the first value of a key wins). */
  annotations: Annotations;
  /** Config labels mapped with labelsAsAnnotations, from the manifests that carry no build annotations. */
  labelAnnotations: Annotations;
  /** True when the annotations, or failing them the labels, carry build details. */
  hasBuildDetails: boolean;
  /** The newest build-details referrer of the digest, when the manifests carry no build annotations. */
  referrer?: ReferrerInfo;
}

/** A build-details referrer manifest (tagtrail attach), read from the registry and checked. */
export interface ReferrerRecord {
  digest: string;
  /** The manifest the referrer's `subject` names. */
  subjectDigest: string;
  artifactType: string | null;
  annotations: Annotations;
}

export interface ReferrerInfo {
  digest: string;
  annotations: Annotations;
  /** org.opencontainers.image.created of the referrer, '' when absent. */
  created: string;
}

export interface AnnotationFilter {
  key: string;
  /** Absent: the key must exist, with any value. */
  value?: string;
}

export interface SearchQuery {
  repository?: string;
  tag?: string;
  /** ANDed. */
  annotations?: AnnotationFilter[];
  /** A commit SHA or a prefix of one (at least 4 hex digits); matches com.gitlab.ci.commit_sha or org.opencontainers.image.revision. */
  commit?: string;
  /** com.gitlab.ci.pipeline_id */
  pipeline?: string;
  /** com.gitlab.ci.commit_ref_name: a branch or tag name. */
  ref?: string;
  limit?: number;
  cursor?: string;
}

export interface ImageChild {
  digest: string;
  mediaType: string | null;
  size: number | null;
  platform: Platform | null;
  /** null when the child manifest is not in the catalog. */
  annotations: Annotations | null;
}

export interface ImageDetail {
  digest: string;
  mediaType: string;
  size: number;
  /** The exact bytes stored. */
  raw: Buffer;
  artifactType: string | null;
  configDigest: string | null;
  annotations: Annotations;
  /** The config's labels; null when they were never read. */
  labels: Annotations | null;
  hasBuildAnnotations: boolean;
  children: ImageChild[];
  /** Digests of the indexes that list this manifest. */
  parents: string[];
  /** Live tags pointing at this digest. */
  tags: { repository: string; tag: string; updatedAt: Date }[];
  storedAt: Date;
  /** Build-details referrers linked to this digest, newest first. */
  referrers?: ReferrerInfo[];
}

export interface TagHistoryEntry {
  digest: string;
  since: Date;
  /** When the tag moved on, or null for the current digest. */
  until: Date | null;
  end: 'replaced' | 'deleted' | null;
}

export interface TagHistory {
  repository: string;
  tag: string;
  /** The current digest; null when the tag is deleted. */
  digest: string | null;
  deletedAt: Date | null;
  /** The time of the newest event that took effect. */
  updatedAt: Date;
  firstSeen: Date | null;
  /**
   * Newest first, one page (HISTORY_PAGE_SIZE by default); on the first page the first entry is
   * the current digest (or the last one, for a deleted tag).
   */
  entries: TagHistoryEntry[];
  /** Set when older entries follow: pass it back as `cursor` for the next page. */
  nextCursor?: string;
}

export { HISTORY_PAGE_SIZE } from './sql.js';

export interface ReconcileResult {
  added: number;
  updated: number;
  deleted: number;
  unchanged: number;
  /** Tags changed after `at` by newer events: left alone. */
  skipped: number;
}

/** What a tag event did: applied, recorded but superseded by a newer event, or seen before. */
export type EventOutcome = 'applied' | 'superseded' | 'duplicate';

export type LockResult<T> = { ran: true; value: T } | { ran: false };

export interface StoreStats {
  repositories: number;
  liveTags: number;
  deletedTags: number;
  manifests: number;
  configs: number;
}

export interface ExplainResult {
  sql: string;
  /** The dialect's plan, one line per row. */
  plan: string[];
}

export interface ExplainOptions {
  /** PostgreSQL only: plan with enable_seqscan off, to show an index is usable on a small table. */
  disableSeqScan?: boolean;
}

/** How images were built, by week; see docs/insights.md. */
export interface InsightsQuery {
  /** Only repositories whose first path segment is this. */
  namespace?: string;
  /** Only this repository. */
  repository?: string;
  /** Weeks starting on or after the week of `from` (default: 52 weeks before `to`). */
  from?: Date;
  /** Weeks up to and including the week of `to` (default: now). */
  to?: Date;
}

export interface InsightsCounts {
  /** Images: distinct (repository, manifest digest) pairs a tag pointed at. */
  images: number;
  builders: Record<Builder, number>;
  buildSources: Record<BuildSource, number>;
  mediaTypes: Record<MediaFamily, number>;
  /** Images that are an index of more than one platform. */
  multiPlatform: number;
}

export interface InsightsWeek {
  /** Monday 00:00 UTC. */
  start: Date;
  counts: InsightsCounts;
}

export interface InsightsGroup {
  /** A namespace (first path segment) or a repository path. */
  name: string;
  totals: InsightsCounts;
  weeks: InsightsWeek[];
}

export interface InsightsReport {
  interval: 'week';
  /** Monday of the first week and the Monday after the last. */
  from: Date;
  to: Date;
  namespace: string | null;
  repository: string | null;
  /** What `groups` are: namespaces overall, the repositories of a namespace, or the one repository. */
  groupBy: 'namespace' | 'repository';
  totals: InsightsCounts;
  weeks: InsightsWeek[];
  groups: InsightsGroup[];
  /** Platforms of multi-platform images (attestations left out), by images carrying them. */
  platforms: { platform: string; images: number }[];
}

/** One manifest's derived insight columns. */
export interface ManifestInsight {
  builder: Builder;
  confidence: Confidence;
  evidence: string[];
  buildSource: BuildSource;
  mediaFamily: MediaFamily;
  platformCount: number;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';

  /** Applies pending migrations; returns the versions applied (empty when up to date). */
  migrate(): Promise<number[]>;
  close(): Promise<void>;

  // ---- writes: idempotent, safe under duplicate and out-of-order events ----
  hasManifest(digest: string): Promise<boolean>;
  /** Upserts a manifest with its annotations and children (and their records) in one transaction. */
  putManifest(record: ManifestRecord): Promise<{ inserted: boolean }>;
  /** Points a tag at a digest as of `at`. An event older than the tag's newest is recorded for history only. */
  setTag(repository: string, tag: string, digest: string, at: Date): Promise<EventOutcome>;
  deleteTag(repository: string, tag: string, at: Date): Promise<EventOutcome>;
  /** A manifest deleted from a repository: tags there pointing at it (as of `at`) become deleted. */
  deleteManifest(repository: string, digest: string, at: Date): Promise<{ tagsDeleted: number }>;
  /** For a crawler: makes the repository's live tags equal `liveTags` as of `at`. */
  reconcileRepository(repository: string, liveTags: ReadonlyMap<string, string>, at: Date): Promise<ReconcileResult>;
  /**
   * Records the labels of a config blob, by the config's digest; an empty record means "read,
   * none". With `config` (the blob's JSON), also what it says about the builder.
   */
  putConfigLabels(configDigest: string, labels: Annotations, config?: unknown): Promise<void>;
  /** True once labels were recorded for this config digest: ingest reads each config blob once. */
  hasConfigLabels(configDigest: string): Promise<boolean>;
  /**
   * Records that the manifest under this digest cannot be read by this version of tagtrail
   * (`code` is the error code, e.g. UNSUPPORTED for schema 1): ingest then does not fetch it again.
   */
  markUnreadable(digest: string, code: string, reason: string, at: Date): Promise<void>;
  /** Why the manifest under this digest could not be read, if this version of tagtrail recorded so. */
  unreadable(digest: string): Promise<{ code: string; reason: string } | undefined>;

  // ---- build-details referrers, followed through the sha256-<hex> referrers tag (referrers.ts)
  /** True when the referrer manifest is in the catalog: each is read once. */
  hasReferrer(digest: string): Promise<boolean>;
  /** The subject a stored referrer names, or null when the referrer is not in the catalog. */
  referrerSubject(digest: string): Promise<string | null>;
  /** Stores a referrer manifest (its subject checked by the caller); links come with setReferrersTag. */
  putReferrer(record: ReferrerRecord): Promise<void>;
  /** The digest of the referrers tag of `subjectDigest` last read in `repository`, or null. */
  referrersTagDigest(repository: string, subjectDigest: string): Promise<string | null>;
  /** Subjects whose referrers tag in `repository` the catalog follows. */
  referrersTagSubjects(repository: string): Promise<string[]>;
  /**
   * What the referrers tag of `subjectDigest` lists now: its digest (null: the tag is gone) and the
   * stored referrers it lists. Replaces the repository's links for that subject and refreshes the
   * search terms and build details of the tags on the subject.
   */
  setReferrersTag(repository: string, subjectDigest: string, indexDigest: string | null, referrerDigests: readonly string[]): Promise<void>;
  /** A referrer manifest deleted from `repository`: its links there go. */
  removeReferrer(repository: string, referrerDigest: string): Promise<void>;

  getCheckpoint<T = unknown>(key: string): Promise<T | undefined>;
  setCheckpoint(key: string, value: unknown): Promise<void>;
  deleteCheckpoint(key: string): Promise<void>;

  /** Runs fn only if no other process holds the named lock; never waits for it. */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>>;

  // ---- queries: keyset pagination with opaque cursors ----
  listRepositories(options: { q?: string; limit?: number; cursor?: string }): Promise<Page<RepositorySummary>>;
  /** Live tags, newest first (by update time, then tag name). */
  listTags(repository: string, options: { limit?: number; cursor?: string }): Promise<Page<TagItem>>;
  /** Live tags matching every filter, newest first. */
  searchImages(query: SearchQuery): Promise<Page<TagItem>>;
  /** The plan of the query searchImages runs for `query`, for checks and benchmarks. */
  explainSearch(query: SearchQuery, options?: ExplainOptions): Promise<ExplainResult>;
  /**
   * One manifest. Its `referrers` are those `repository` lists; without a repository, those listed
   * by a repository that tags the digest (a referrer listed elsewhere never counts: referrer-store.ts).
   */
  getImage(digest: string, options?: { repository?: string }): Promise<ImageDetail | null>;
  /** A tag's history, newest first, a page at a time (`limit`, default HISTORY_PAGE_SIZE; `cursor` from the page before). */
  tagHistory(repository: string, tag: string, page?: { limit?: number; cursor?: string }): Promise<TagHistory | null>;
  stats(): Promise<StoreStats>;
  /** Counts and shares of builders, build-detail sources, media types and multi-platform images, by week. */
  insights(query: InsightsQuery): Promise<InsightsReport>;
  /** The derived insight columns of one manifest; null when it is not in the catalog. */
  manifestInsight(digest: string): Promise<ManifestInsight | null>;
}

export const DEFAULT_STORE_URL = 'sqlite:./tagtrail.db';
const DEFAULT_SQLITE_PATH = './tagtrail.db';

export { redactUrl };

export type StoreLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    return { kind: 'sqlite', path: path === '' ? DEFAULT_SQLITE_PATH : path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { kind: 'postgres', url };
  throw new UsageError(`unsupported catalog database URL ${JSON.stringify(redactUrl(url))}`, {
    hint: 'use sqlite:PATH (default sqlite:./tagtrail.db), sqlite::memory:, or postgres://user:password@host:port/database (postgresql:// also works)',
  });
}

export interface OpenStoreOptions {
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** SQLite only: the page cache, MiB (default 64, for search; see SqliteStoreOptions). */
  sqliteCacheMiB?: number;
}

/** Opens the catalog at `url`: sqlite:PATH, sqlite::memory: or postgres://…; migrates it unless told not to. */
export async function openStore(url: string = DEFAULT_STORE_URL, options: OpenStoreOptions = {}): Promise<Store> {
  const location = parseStoreUrl(url);
  const store =
    location.kind === 'sqlite'
      ? openSqliteStore(location.path, options.sqliteCacheMiB === undefined ? {} : { cacheMiB: options.sqliteCacheMiB })
      : openPostgresStore(location.url);
  if (options.migrate !== false) {
    try {
      await store.migrate();
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }
  return store;
}
