// The catalog Store: one interface, two dialects behind it (SQLite, the embedded default, and
// PostgreSQL), after kysely's dialect idea. The SQL lives in sql/ (store.ts the façade, a file per concern) and is shared; each dialect
// supplies a driver (connection, transactions, locks, EXPLAIN) and its own migrations. open.ts
// picks the dialect from a URL and loads only that driver.
//
// The Store is the intersection of what its callers need: the read side (the API and the UI), the
// write side (ingest, events, the crawler), the referrer links and the crawler's checkpoints. A
// caller takes the narrowest part it uses.
import type { Annotations } from '../oci/annotations.js';
import type {
  EventOutcome,
  ImageDetail,
  InsightsQuery,
  InsightsReport,
  LockResult,
  ManifestInsight,
  ManifestRecord,
  Page,
  ReconcileResult,
  ReferrerRecord,
  RepositorySummary,
  SearchQuery,
  StoreStats,
  TagHistory,
  TagItem,
} from './types.js';
import type { SessionRecord } from './sql/sessions.js';
import type { ReadScope } from './read-scope.js';
import type { PusherRecord, VerifiedBuild } from './sql/verifications.js';

/** Opening, migrating, probing and closing the catalog; the crawl lock. */
interface StoreLifecycle {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies pending migrations; returns the versions applied (empty when up to date). */
  migrate(): Promise<number[]>;
  /** Resolves when the database answers a trivial query (for /readyz); rejects when it cannot. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Runs fn only if no other process holds the named lock; never waits for it. */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>>;
}

/** Queries: keyset pagination with opaque cursors. */
export interface StoreReader {
  // A `scope` keeps to what one person may read (read-scope.ts): anything else is as if it
  // were not in the catalog. Without it, everything.
  listRepositories(options: { q?: string; limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<RepositorySummary>>;
  /** Live tags, newest first (by update time, then tag name). */
  listTags(repository: string, options: { limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<TagItem>>;
  /** Live tags matching every filter, newest first. */
  searchImages(query: SearchQuery): Promise<Page<TagItem>>;
  /**
   * One manifest. Its `referrers` are those `repository` lists; without a repository, those listed
   * by a repository that tags the digest (a referrer listed elsewhere never counts: sql/referrers.ts).
   * With a scope: null unless a readable repository tags (or once tagged) it or an index holding
   * it, or when `repository` is not readable; only readable repositories' tags and indexes.
   */
  getImage(digest: string, options?: { repository?: string; scope?: ReadScope }): Promise<ImageDetail | null>;
  /**
   * The stored manifests among `digests`, by digest, each as getImage gives it, in a fixed number
   * of queries: for pages that show one row per digest. Digests not in the catalog (or, with a
   * scope, not readable) are left out.
   */
  getImages(digests: readonly string[], options?: { repository?: string; scope?: ReadScope }): Promise<Map<string, ImageDetail>>;
  /**
   * A tag's history, newest first, a page at a time (`limit`, default HISTORY_PAGE_SIZE; `cursor`
   * from the page before). With a scope: null when the repository is not readable.
   */
  tagHistory(repository: string, tag: string, page?: { limit?: number; cursor?: string; scope?: ReadScope }): Promise<TagHistory | null>;
  stats(): Promise<StoreStats>;
  /** Counts and shares of builders, build-detail sources, media types and multi-platform images, by week. */
  insights(query: InsightsQuery): Promise<InsightsReport>;
  /** The derived insight columns of one manifest; null when it is not in the catalog. */
  manifestInsight(digest: string): Promise<ManifestInsight | null>;
}

/**
 * A tag push whose manifest was read with it (the webhook's path, ingest.ts): `manifest`, when
 * given, is the record of `digest` that putManifest would store.
 */
export interface TagPush {
  repository: string;
  tag: string;
  digest: string;
  at: Date;
  manifest?: ManifestRecord;
  pushedBy?: { userAgent: string; pusher: string };
}

/** Writes: idempotent, safe under duplicate and out-of-order events. */
export interface StoreWriter {
  hasManifest(digest: string): Promise<boolean>;
  /**
   * What ingest asks before reading a manifest, in one call: whether the catalog holds it and, when
   * it does not, why this version of tagtrail could not read it before (as unreadable() says).
   */
  lookupManifest(digest: string): Promise<{ stored: boolean; unreadable?: { code: string; reason: string } }>;
  /** The digests among these that the catalog holds. */
  hasManifests(digests: readonly string[]): Promise<Set<string>>;
  /** Upserts a manifest with its annotations and children (and their records) in one transaction. */
  putManifest(record: ManifestRecord): Promise<{ inserted: boolean }>;
  /** putManifest of each record, all in one transaction: all are written or none (a bad record fails the whole call before anything is written). */
  putManifests(records: readonly ManifestRecord[]): Promise<{ inserted: boolean }[]>;
  /** Points a tag at a digest as of `at`. An event older than the tag's newest is recorded for history only. */
  /** `pushedBy`: the push's user agent and the pusher it names, recorded as recordPusher would, in the same transaction. */
  setTag(repository: string, tag: string, digest: string, at: Date, pushedBy?: { userAgent: string; pusher: string }): Promise<EventOutcome>;
  /**
   * putManifest of `push.manifest` (when given) and setTag, in one transaction: a tag push whose
   * manifest is new costs one write. `inserted`: putManifest's answer (false without a manifest).
   */
  pushTag(push: TagPush): Promise<{ outcome: EventOutcome; inserted: boolean }>;
  /**
   * pushTag of each, in order, all in one transaction: all are written or none (a bad push fails
   * the call before anything is written). The manifests go in with a few multi-row statements.
   * A manifest carried by several pushes is `inserted` for the first of them only. For pushes of
   * one kind: all carrying their new manifests, or none (the webhook's two lanes, push-batch.ts);
   * a mix is correct too, but beside other writers on PostgreSQL it runs again alone.
   */
  pushTags(pushes: readonly TagPush[]): Promise<{ outcome: EventOutcome; inserted: boolean }[]>;
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
  /** True once the config blob of this digest was read (its labels recorded, maybe none): ingest reads each once. */
  hasReadConfig(configDigest: string): Promise<boolean>;
  /**
   * Records that the manifest under this digest cannot be read by this version of tagtrail
   * (`code` is the error code, e.g. UNSUPPORTED for schema 1): ingest then does not fetch it again.
   */
  markUnreadable(digest: string, code: string, reason: string, at: Date): Promise<void>;
  /** Why the manifest under this digest could not be read, if this version of tagtrail recorded so. */
  unreadable(digest: string): Promise<{ code: string; reason: string } | undefined>;
  /** unreadable() of each of these digests: those recorded, by digest. */
  unreadableAmong(digests: readonly string[]): Promise<Map<string, { code: string; reason: string }>>;
  /**
   * Records the GitLab project a repository belongs to (discovery through GitLab's API). Only a
   * repository the catalog already holds is updated; fields GitLab did not give are stored as null.
   */
  setGitlabProject(repository: string, project: { id: number; path?: string; visibility?: string }): Promise<void>;
}

/** Build-details referrers, followed through the sha256-<hex> referrers tag (follow-referrers.ts). */
export interface ReferrerLinks {
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
}

/** Where a crawl got to, by key, so an interrupted one resumes. */
interface Checkpoints {
  getCheckpoint<T = unknown>(key: string): Promise<T | undefined>;
  setCheckpoint(key: string, value: unknown): Promise<void>;
  deleteCheckpoint(key: string): Promise<void>;
}

/** Signed-in sessions (sql/sessions.ts), shared by every serve process of the catalog. */
export interface Sessions {
  putSession(session: SessionRecord): Promise<void>;
  /** The session while it lasts at `now`. */
  findSession(id: string, now: Date): Promise<SessionRecord | undefined>;
  /** Replaces the session's encrypted GitLab token, after a refresh. */
  setSessionToken(id: string, token: string): Promise<void>;
  /** Ends the session, and drops expired ones. */
  deleteSession(id: string, now: Date): Promise<void>;
}

/** Build reports verified against GitLab ID tokens, and who pushed a manifest (verifications.ts). */
export interface BuildEvidence {
  /**
   * Records (or renews) that a GitLab job of the token's project pushed each digest to its
   * repository: all of them in one transaction, or none (a build report is recorded whole).
   */
  recordVerifications(images: readonly { repository: string; digest: string }[], verified: VerifiedBuild): Promise<void>;
  /** Records the User-Agent of a manifest's first push, and the tool it names. */
  recordPusher(digest: string, userAgent: string, pusher: string, at: Date): Promise<void>;
  pusherOf(digest: string): Promise<PusherRecord | undefined>;
  /** Verified images and images by pusher, over the insights window and filters. */
  verifiedInsights(query: InsightsQuery): Promise<{ verified: number; pushedBy: Record<string, number> }>;
}

export type Store = StoreLifecycle & StoreReader & StoreWriter & ReferrerLinks & Checkpoints & Sessions & BuildEvidence;
