// The catalog's records, queries and results: what the Store takes and gives back.
import type { ReadScope } from './read-scope.js';
import type { Annotations } from '../oci/annotations.js';
import type { Builder, Confidence } from './builder.js';
import type { MediaFamily } from './derived.js';
import type { BuildSource } from '../details/build.js';
import type { PusherRecord, VerifiedBuild } from './sql/verifications.js';

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
  /** A build report for this repository and digest, checked against a GitLab ID token. */
  verified?: VerifiedBuild;
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
  /** The repositories whose referrers tag lists it (as an image's referrers: a read scope keeps the readable ones). */
  repositories?: string[];
}

export interface AnnotationFilter {
  key: string;
  /** Absent: the key must exist, with any value. */
  value?: string;
}

export interface SearchQuery {
  /** Only repositories this person may read (read-scope.ts); undefined: all. */
  scope?: ReadScope;
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
  /** Only images whose build report was verified (verifications.ts). */
  verified?: boolean;
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
  /** Verified build reports of this digest, one per repository, newest first. */
  verifications?: (VerifiedBuild & { repository: string })[];
  /** The tool that pushed it, from the registry notification's user agent. */
  pusher?: PusherRecord;
}

interface TagHistoryEntry {
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
  /** Only repositories this person may read (read-scope.ts); undefined: all. */
  scope?: ReadScope;
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

interface InsightsGroup {
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
