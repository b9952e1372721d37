// SQLite schema. Times are integer milliseconds since the epoch; flags are 0/1.
// Indexing, in short (the same on PostgreSQL, see postgres.ts):
// - tag_terms holds, per live tag, every (key, value) its image answers to: the manifest's own
//   annotations, each child's (for an index), and the config labels mapped by labelsAsAnnotations
//   for manifests without build annotations. Index (key, value, updated_at, tag_id, repository_id)
//   serves key=value search already in result order (newest first), so a page reads `limit` index
//   entries however common the value; a commit prefix is the range value >= p AND value < p_next
//   on the same index (no LIKE); repository_id rides along so a repository filter needs no lookup.
//   (tag_id, key, value) serves the other ANDed filters as lookups, and rebuilds.
//   Values are indexed by their first 256 UTF-16 units; the rest sits in value_rest, compared
//   only for long values.
// - partial indexes on live tags (deleted_at IS NULL) serve listTags, repository/tag-only search
//   and the unfiltered newest-first listing; repositories keep live/build tag counters.
import { checkMigrations, type Migration } from './types.js';

export const SQLITE_MIGRATIONS: readonly Migration[] = checkMigrations([
  {
    version: 1,
    name: 'catalog',
    statements: [
      `CREATE TABLE repositories (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        updated_at INTEGER,
        live_tags INTEGER NOT NULL DEFAULT 0,
        build_tags INTEGER NOT NULL DEFAULT 0
      )`,
      `CREATE TABLE manifests (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        raw BLOB NOT NULL,
        artifact_type TEXT,
        config_digest TEXT,
        has_build INTEGER NOT NULL DEFAULT 0,
        stored_at INTEGER NOT NULL
      )`,
      `CREATE INDEX manifests_config_digest ON manifests (config_digest) WHERE config_digest IS NOT NULL`,
      `CREATE TABLE manifest_children (
        parent_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        child_digest TEXT NOT NULL,
        media_type TEXT,
        size INTEGER,
        os TEXT,
        architecture TEXT,
        variant TEXT,
        PRIMARY KEY (parent_id, position)
      )`,
      `CREATE INDEX manifest_children_child ON manifest_children (child_digest)`,
      `CREATE TABLE annotations (
        manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (manifest_id, key)
      )`,
      `CREATE TABLE configs (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        fetched_at INTEGER NOT NULL
      )`,
      `CREATE TABLE config_labels (
        config_id INTEGER NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (config_id, key)
      )`,
      `CREATE TABLE tags (
        id INTEGER PRIMARY KEY,
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        name TEXT NOT NULL,
        digest TEXT,
        deleted_at INTEGER,
        updated_at INTEGER,
        last_kind INTEGER NOT NULL DEFAULT 0,
        last_digest TEXT NOT NULL DEFAULT '',
        first_seen INTEGER,
        last_seen INTEGER,
        has_build INTEGER NOT NULL DEFAULT 0,
        UNIQUE (repository_id, name)
      )`,
      `CREATE INDEX tags_digest ON tags (digest)`,
      `CREATE INDEX tags_live_repo_name ON tags (repository_id, updated_at DESC, name) WHERE deleted_at IS NULL`,
      `CREATE INDEX tags_live_repo_id ON tags (repository_id, updated_at DESC, id DESC) WHERE deleted_at IS NULL`,
      `CREATE INDEX tags_live_name ON tags (name, updated_at DESC, id DESC) WHERE deleted_at IS NULL`,
      `CREATE INDEX tags_live_updated ON tags (updated_at DESC, id DESC) WHERE deleted_at IS NULL`,
      `CREATE TABLE tag_events (
        tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (tag_id, at, kind, digest)
      )`,
      `CREATE INDEX tag_events_digest ON tag_events (digest, tag_id)`,
      `CREATE TABLE manifest_deletions (
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        digest TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (repository_id, digest, at)
      )`,
      `CREATE TABLE tag_terms (
        tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
        repository_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        value_rest TEXT NOT NULL DEFAULT '',
        updated_at INTEGER NOT NULL
      )`,
      `CREATE INDEX tag_terms_search ON tag_terms (key, value, updated_at DESC, tag_id DESC, repository_id)`,
      `CREATE INDEX tag_terms_tag ON tag_terms (tag_id, key, value)`,
      `CREATE TABLE sync_checkpoints (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      )`,
      `CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
    ],
  },
  {
    // Insights: how each manifest was built, decided at ingest (see src/catalog/builder.ts and
    // derived.ts). NULL builder = not derived yet: the store fills those rows in right after
    // migrating (a backfill in code, since it parses the stored manifest bytes). configs.builder
    // is what the whole config blob said, when it was read for builder evidence; NULL when only
    // its labels are known.
    version: 2,
    name: 'insights',
    statements: [
      `ALTER TABLE manifests ADD COLUMN builder TEXT`,
      `ALTER TABLE manifests ADD COLUMN builder_confidence TEXT`,
      `ALTER TABLE manifests ADD COLUMN builder_evidence TEXT`,
      `ALTER TABLE manifests ADD COLUMN build_source TEXT`,
      `ALTER TABLE manifests ADD COLUMN media_family TEXT`,
      `ALTER TABLE manifests ADD COLUMN platform_count INTEGER`,
      `ALTER TABLE configs ADD COLUMN builder TEXT`,
      `ALTER TABLE configs ADD COLUMN builder_confidence TEXT`,
      `ALTER TABLE configs ADD COLUMN builder_evidence TEXT`,
      `CREATE INDEX manifests_underived ON manifests (id) WHERE builder IS NULL`,
      `CREATE INDEX tag_events_set ON tag_events (kind, at)`,
    ],
  },
  {
    // Build-details referrers (tagtrail attach), followed through the sha256-<hex> referrers tag.
    // referrers: one row per referrer manifest (content-addressed, read once), its annotations as
    // JSON pairs. referrer_links: which repository's referrers tag lists it for which subject;
    // search and build details read the newest linked referrer of a digest. referrer_tags: the
    // digest of each referrers tag last read, so a sync reads a tag again only when it changed.
    version: 3,
    name: 'referrers',
    statements: [
      `CREATE TABLE referrers (
        digest TEXT PRIMARY KEY,
        subject_digest TEXT NOT NULL,
        artifact_type TEXT,
        created TEXT NOT NULL DEFAULT '',
        has_build INTEGER NOT NULL DEFAULT 0,
        annotations TEXT NOT NULL,
        stored_at INTEGER NOT NULL
      )`,
      `CREATE TABLE referrer_links (
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        subject_digest TEXT NOT NULL,
        referrer_digest TEXT NOT NULL,
        PRIMARY KEY (subject_digest, repository_id, referrer_digest)
      )`,
      `CREATE INDEX referrer_links_referrer ON referrer_links (referrer_digest)`,
      `CREATE TABLE referrer_tags (
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        subject_digest TEXT NOT NULL,
        index_digest TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (repository_id, subject_digest)
      )`,
    ],
  },
  {
    // Digests whose manifest tagtrail cannot read (schema 1, too large, not a manifest). Content
    // under a digest never changes, so ingest fetches such a digest once, not on every crawl; a
    // row counts only for the tagtrail version that wrote it, which a newer one may read better.
    version: 4,
    name: 'unreadable manifests',
    statements: [
      `CREATE TABLE unreadable_manifests (
        digest TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        tagtrail_version TEXT NOT NULL,
        seen_at INTEGER NOT NULL
      )`,
    ],
  },
  {
    // The GitLab project a repository belongs to, when its list came from GitLab's API: the
    // project's id, full path and visibility (null where GitLab did not say).
    version: 5,
    name: 'gitlab projects',
    statements: [
      `ALTER TABLE repositories ADD COLUMN gitlab_project_id INTEGER`,
      `ALTER TABLE repositories ADD COLUMN gitlab_project_path TEXT`,
      `ALTER TABLE repositories ADD COLUMN gitlab_visibility TEXT`,
    ],
  },
  {
    // A crawl's last observation of a tag ("the registry says this digest now"): a SET event at
    // the crawl's start, kept as one pair per tag rather than logged on every crawl. It outranks
    // every event dated before it (tagstate.ts), so an old or forged event arriving later cannot
    // undo what the registry said.
    version: 6,
    name: 'tag observations',
    statements: [`ALTER TABLE tags ADD COLUMN observed_at INTEGER`, `ALTER TABLE tags ADD COLUMN observed_digest TEXT`],
  },
  {
    version: 7,
    name: 'verified builds and pushers',
    statements: [
      // A build report checked against a GitLab ID token (src/catalog/sql/verifications.ts): per
      // repository and digest, so a tag moved to another digest does not carry the mark along.
      `CREATE TABLE build_verifications (
        repository TEXT NOT NULL,
        digest TEXT NOT NULL,
        issuer TEXT NOT NULL,
        project_path TEXT NOT NULL,
        pipeline_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        sha TEXT NOT NULL,
        ref TEXT NOT NULL,
        verified_at INTEGER NOT NULL,
        PRIMARY KEY (repository, digest)
      )`,
      `CREATE INDEX build_verifications_digest ON build_verifications (digest)`,
      // The user agent of the push that brought a manifest (registry notifications), per digest.
      `CREATE TABLE manifest_pushers (
        digest TEXT PRIMARY KEY,
        user_agent TEXT NOT NULL,
        pusher TEXT NOT NULL,
        seen_at INTEGER NOT NULL
      )`,
    ],
  },
  {
    // Signed-in sessions (--auth gitlab), shared by every serve process of the catalog. The id
    // is the SHA-256 of the cookie's secret; the GitLab token is stored encrypted (server/auth/).
    version: 8,
    name: 'sessions',
    statements: [
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        username TEXT NOT NULL,
        token TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX sessions_expires ON sessions (expires_at)`,
    ],
  },
  {
    // GitLab's dotted keys (com.gitlab.ci.pipeline.id, …) answer searches by pipeline, commit and
    // ref where ours are absent (details/keys.ts). Terms are built at ingest, so the tags of
    // images already stored are given them in code, in this migration's transaction (sql/migrate.ts).
    version: 9,
    name: 'gitlab dotted keys',
    statements: [],
  },
  {
    // The insights report reads weekly aggregates kept current at ingest (sql/insight-weeks.ts)
    // instead of recounting every tag event: per repository, each image's first week, and per
    // repository and week the counts. Filled from the base tables in this migration's
    // transaction (sql/migrate.ts).
    version: 10,
    name: 'insight weeks',
    statements: [
      `CREATE TABLE insight_images (
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        digest TEXT NOT NULL,
        week INTEGER NOT NULL,
        PRIMARY KEY (repository_id, digest)
      )`,
      `CREATE INDEX insight_images_digest ON insight_images (digest)`,
      `CREATE INDEX insight_images_week ON insight_images (repository_id, week)`,
      `CREATE TABLE insight_counts (
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        week INTEGER NOT NULL,
        builder TEXT NOT NULL,
        build_source TEXT NOT NULL,
        media_family TEXT NOT NULL,
        multi INTEGER NOT NULL,
        images INTEGER NOT NULL,
        PRIMARY KEY (repository_id, week, builder, build_source, media_family, multi)
      )`,
      `CREATE INDEX insight_counts_week ON insight_counts (week)`,
      `CREATE TABLE insight_platforms (
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        week INTEGER NOT NULL,
        os TEXT NOT NULL,
        architecture TEXT NOT NULL,
        variant TEXT NOT NULL,
        images INTEGER NOT NULL,
        PRIMARY KEY (repository_id, week, os, architecture, variant)
      )`,
      `CREATE INDEX insight_platforms_week ON insight_platforms (week)`,
    ],
  },
  {
    // The whole-catalog insights report read one aggregate row per repository and week; this
    // adds a level per namespace and week (sql/insight-weeks.ts), kept current with the first,
    // and what each image is counted as on its insight_images row, so that a writer takes an
    // image off its old key by increments. Every aggregate is refilled from the base tables in
    // this migration's transaction (sql/migrate.ts).
    version: 11,
    name: 'insight namespace weeks',
    statements: [
      `ALTER TABLE insight_images ADD COLUMN builder TEXT`,
      `ALTER TABLE insight_images ADD COLUMN build_source TEXT`,
      `ALTER TABLE insight_images ADD COLUMN media_family TEXT`,
      `ALTER TABLE insight_images ADD COLUMN multi INTEGER`,
      // Keyed by week first: a report reads a range of weeks, every namespace.
      `CREATE TABLE insight_namespace_counts (
        week INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        builder TEXT NOT NULL,
        build_source TEXT NOT NULL,
        media_family TEXT NOT NULL,
        multi INTEGER NOT NULL,
        images INTEGER NOT NULL,
        PRIMARY KEY (week, namespace, builder, build_source, media_family, multi)
      ) WITHOUT ROWID`,
      `CREATE TABLE insight_namespace_platforms (
        week INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        os TEXT NOT NULL,
        architecture TEXT NOT NULL,
        variant TEXT NOT NULL,
        images INTEGER NOT NULL,
        PRIMARY KEY (week, namespace, os, architecture, variant)
      ) WITHOUT ROWID`,
    ],
  },
  {
    // What the insights page and API show beside the report (verified images, images by pusher)
    // was counted from every tag in the window; this keeps it as weekly aggregates too
    // (sql/evidence-weeks.ts): per image, whether it is verified and its pusher, on its
    // insight_images row, and per repository and per namespace the images by week of a tag's
    // update, with the week of the image's tag update before it (prev_week). Filled from the base
    // tables in this migration's transaction (sql/migrate.ts).
    version: 12,
    name: 'insight evidence weeks',
    statements: [
      `ALTER TABLE insight_images ADD COLUMN verified INTEGER NOT NULL DEFAULT 0`,
      `ALTER TABLE insight_images ADD COLUMN pusher TEXT`,
      `CREATE TABLE insight_evidence (
        repository_id INTEGER NOT NULL REFERENCES repositories (id),
        week INTEGER NOT NULL,
        prev_week INTEGER NOT NULL,
        verified INTEGER NOT NULL,
        pusher TEXT NOT NULL,
        images INTEGER NOT NULL,
        PRIMARY KEY (repository_id, week, prev_week, verified, pusher)
      ) WITHOUT ROWID`,
      // Keyed by week first: a whole-catalog report reads a range of weeks, every namespace.
      `CREATE TABLE insight_namespace_evidence (
        week INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        prev_week INTEGER NOT NULL,
        verified INTEGER NOT NULL,
        pusher TEXT NOT NULL,
        images INTEGER NOT NULL,
        PRIMARY KEY (week, namespace, prev_week, verified, pusher)
      ) WITHOUT ROWID`,
    ],
  },
]);
