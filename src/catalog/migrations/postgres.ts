// PostgreSQL schema: the SQLite schema (see sqlite.ts for the indexing notes) in PostgreSQL
// types. Times are bigint milliseconds since the epoch, flags smallint 0/1. Text that is searched
// or ordered is COLLATE "C": byte order, as in SQLite, so keyset cursors and the commit prefix
// range (value >= p AND value < p_next) behave alike whatever the database's locale.
import { checkMigrations, type Migration } from './types.js';

const ID = 'bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY';
const T = 'text COLLATE "C"';

export const POSTGRES_MIGRATIONS: readonly Migration[] = checkMigrations([
  {
    version: 1,
    name: 'catalog',
    statements: [
      `CREATE TABLE repositories (
        id ${ID},
        name ${T} NOT NULL UNIQUE,
        first_seen bigint NOT NULL,
        last_seen bigint NOT NULL,
        updated_at bigint,
        live_tags bigint NOT NULL DEFAULT 0,
        build_tags bigint NOT NULL DEFAULT 0
      )`,
      `CREATE TABLE manifests (
        id ${ID},
        digest ${T} NOT NULL UNIQUE,
        media_type text NOT NULL,
        size bigint NOT NULL,
        raw bytea NOT NULL,
        artifact_type text,
        config_digest ${T},
        has_build smallint NOT NULL DEFAULT 0,
        stored_at bigint NOT NULL
      )`,
      `CREATE INDEX manifests_config_digest ON manifests (config_digest) WHERE config_digest IS NOT NULL`,
      `CREATE TABLE manifest_children (
        parent_id bigint NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
        position integer NOT NULL,
        child_digest ${T} NOT NULL,
        media_type text,
        size bigint,
        os text,
        architecture text,
        variant text,
        PRIMARY KEY (parent_id, position)
      )`,
      `CREATE INDEX manifest_children_child ON manifest_children (child_digest)`,
      `CREATE TABLE annotations (
        manifest_id bigint NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
        key ${T} NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (manifest_id, key)
      )`,
      `CREATE TABLE configs (
        id ${ID},
        digest ${T} NOT NULL UNIQUE,
        fetched_at bigint NOT NULL
      )`,
      `CREATE TABLE config_labels (
        config_id bigint NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
        key ${T} NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (config_id, key)
      )`,
      `CREATE TABLE tags (
        id ${ID},
        repository_id bigint NOT NULL REFERENCES repositories (id),
        name ${T} NOT NULL,
        digest ${T},
        deleted_at bigint,
        updated_at bigint,
        last_kind smallint NOT NULL DEFAULT 0,
        last_digest ${T} NOT NULL DEFAULT '',
        first_seen bigint,
        last_seen bigint,
        has_build smallint NOT NULL DEFAULT 0,
        UNIQUE (repository_id, name)
      )`,
      `CREATE INDEX tags_digest ON tags (digest)`,
      `CREATE INDEX tags_live_repo_name ON tags (repository_id, updated_at DESC, name) WHERE deleted_at IS NULL`,
      `CREATE INDEX tags_live_repo_id ON tags (repository_id, updated_at DESC, id DESC) WHERE deleted_at IS NULL`,
      `CREATE INDEX tags_live_name ON tags (name, updated_at DESC, id DESC) WHERE deleted_at IS NULL`,
      `CREATE INDEX tags_live_updated ON tags (updated_at DESC, id DESC) WHERE deleted_at IS NULL`,
      `CREATE TABLE tag_events (
        tag_id bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
        at bigint NOT NULL,
        kind smallint NOT NULL,
        digest ${T} NOT NULL,
        PRIMARY KEY (tag_id, at, kind, digest)
      )`,
      `CREATE INDEX tag_events_digest ON tag_events (digest, tag_id)`,
      `CREATE TABLE manifest_deletions (
        repository_id bigint NOT NULL REFERENCES repositories (id),
        digest ${T} NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (repository_id, digest, at)
      )`,
      `CREATE TABLE tag_terms (
        tag_id bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
        repository_id bigint NOT NULL,
        key ${T} NOT NULL,
        value ${T} NOT NULL,
        value_rest text NOT NULL DEFAULT '',
        updated_at bigint NOT NULL
      )`,
      `CREATE INDEX tag_terms_search ON tag_terms (key, value, updated_at DESC, tag_id DESC) INCLUDE (repository_id)`,
      `CREATE INDEX tag_terms_tag ON tag_terms (tag_id, key, value)`,
      `CREATE TABLE sync_checkpoints (
        key ${T} PRIMARY KEY,
        value text NOT NULL,
        updated_at bigint NOT NULL
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
      `ALTER TABLE manifests ADD COLUMN builder text`,
      `ALTER TABLE manifests ADD COLUMN builder_confidence text`,
      `ALTER TABLE manifests ADD COLUMN builder_evidence text`,
      `ALTER TABLE manifests ADD COLUMN build_source text`,
      `ALTER TABLE manifests ADD COLUMN media_family text`,
      `ALTER TABLE manifests ADD COLUMN platform_count integer`,
      `ALTER TABLE configs ADD COLUMN builder text`,
      `ALTER TABLE configs ADD COLUMN builder_confidence text`,
      `ALTER TABLE configs ADD COLUMN builder_evidence text`,
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
        digest ${T} PRIMARY KEY,
        subject_digest ${T} NOT NULL,
        artifact_type text,
        created ${T} NOT NULL DEFAULT '',
        has_build smallint NOT NULL DEFAULT 0,
        annotations text NOT NULL,
        stored_at bigint NOT NULL
      )`,
      `CREATE TABLE referrer_links (
        repository_id bigint NOT NULL REFERENCES repositories (id),
        subject_digest ${T} NOT NULL,
        referrer_digest ${T} NOT NULL,
        PRIMARY KEY (subject_digest, repository_id, referrer_digest)
      )`,
      `CREATE INDEX referrer_links_referrer ON referrer_links (referrer_digest)`,
      `CREATE TABLE referrer_tags (
        repository_id bigint NOT NULL REFERENCES repositories (id),
        subject_digest ${T} NOT NULL,
        index_digest ${T} NOT NULL,
        updated_at bigint NOT NULL,
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
        digest ${T} PRIMARY KEY,
        code text NOT NULL,
        reason text NOT NULL,
        tagtrail_version text NOT NULL,
        seen_at bigint NOT NULL
      )`,
    ],
  },
  {
    // The GitLab project a repository belongs to, when its list came from GitLab's API: the
    // project's id, full path and visibility (null where GitLab did not say).
    version: 5,
    name: 'gitlab projects',
    statements: [
      `ALTER TABLE repositories ADD COLUMN gitlab_project_id bigint`,
      `ALTER TABLE repositories ADD COLUMN gitlab_project_path text`,
      `ALTER TABLE repositories ADD COLUMN gitlab_visibility text`,
    ],
  },
  {
    // A crawl's last observation of a tag ("the registry says this digest now"): a SET event at
    // the crawl's start, kept as one pair per tag rather than logged on every crawl. It outranks
    // every event dated before it (tagstate.ts), so an old or forged event arriving later cannot
    // undo what the registry said.
    version: 6,
    name: 'tag observations',
    statements: [`ALTER TABLE tags ADD COLUMN observed_at bigint`, `ALTER TABLE tags ADD COLUMN observed_digest text`],
  },
  {
    version: 7,
    name: 'verified builds and pushers',
    statements: [
      // A build report checked against a GitLab ID token (src/catalog/sql/verifications.ts): per
      // repository and digest, so a tag moved to another digest does not carry the mark along.
      `CREATE TABLE build_verifications (
        repository text NOT NULL,
        digest text NOT NULL,
        issuer text NOT NULL,
        project_path text NOT NULL,
        pipeline_id text NOT NULL,
        job_id text NOT NULL,
        sha text NOT NULL,
        ref text NOT NULL,
        verified_at bigint NOT NULL,
        PRIMARY KEY (repository, digest)
      )`,
      `CREATE INDEX build_verifications_digest ON build_verifications (digest)`,
      // The user agent of the push that brought a manifest (registry notifications), per digest.
      `CREATE TABLE manifest_pushers (
        digest text PRIMARY KEY,
        user_agent text NOT NULL,
        pusher text NOT NULL,
        seen_at bigint NOT NULL
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
        id text PRIMARY KEY,
        subject text NOT NULL,
        username text NOT NULL,
        token text NOT NULL,
        csrf text NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL
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
        repository_id bigint NOT NULL REFERENCES repositories (id),
        digest text NOT NULL,
        week bigint NOT NULL,
        PRIMARY KEY (repository_id, digest)
      )`,
      `CREATE INDEX insight_images_digest ON insight_images (digest)`,
      `CREATE INDEX insight_images_week ON insight_images (repository_id, week)`,
      `CREATE TABLE insight_counts (
        repository_id bigint NOT NULL REFERENCES repositories (id),
        week bigint NOT NULL,
        builder text NOT NULL,
        build_source text NOT NULL,
        media_family text NOT NULL,
        multi bigint NOT NULL,
        images bigint NOT NULL,
        PRIMARY KEY (repository_id, week, builder, build_source, media_family, multi)
      )`,
      `CREATE INDEX insight_counts_week ON insight_counts (week)`,
      `CREATE TABLE insight_platforms (
        repository_id bigint NOT NULL REFERENCES repositories (id),
        week bigint NOT NULL,
        os text NOT NULL,
        architecture text NOT NULL,
        variant text NOT NULL,
        images bigint NOT NULL,
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
      `ALTER TABLE insight_images ADD COLUMN builder text`,
      `ALTER TABLE insight_images ADD COLUMN build_source text`,
      `ALTER TABLE insight_images ADD COLUMN media_family text`,
      `ALTER TABLE insight_images ADD COLUMN multi bigint`,
      // Keyed by week first: a report reads a range of weeks, every namespace.
      `CREATE TABLE insight_namespace_counts (
        week bigint NOT NULL,
        namespace text NOT NULL,
        builder text NOT NULL,
        build_source text NOT NULL,
        media_family text NOT NULL,
        multi bigint NOT NULL,
        images bigint NOT NULL,
        PRIMARY KEY (week, namespace, builder, build_source, media_family, multi)
      )`,
      `CREATE TABLE insight_namespace_platforms (
        week bigint NOT NULL,
        namespace text NOT NULL,
        os text NOT NULL,
        architecture text NOT NULL,
        variant text NOT NULL,
        images bigint NOT NULL,
        PRIMARY KEY (week, namespace, os, architecture, variant)
      )`,
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
      `ALTER TABLE insight_images ADD COLUMN verified bigint NOT NULL DEFAULT 0`,
      `ALTER TABLE insight_images ADD COLUMN pusher text`,
      `CREATE TABLE insight_evidence (
        repository_id bigint NOT NULL REFERENCES repositories (id),
        week bigint NOT NULL,
        prev_week bigint NOT NULL,
        verified bigint NOT NULL,
        pusher text NOT NULL,
        images bigint NOT NULL,
        PRIMARY KEY (repository_id, week, prev_week, verified, pusher)
      )`,
      // Keyed by week first: a whole-catalog report reads a range of weeks, every namespace.
      `CREATE TABLE insight_namespace_evidence (
        week bigint NOT NULL,
        namespace text NOT NULL,
        prev_week bigint NOT NULL,
        verified bigint NOT NULL,
        pusher text NOT NULL,
        images bigint NOT NULL,
        PRIMARY KEY (week, namespace, prev_week, verified, pusher)
      )`,
    ],
  },
]);
