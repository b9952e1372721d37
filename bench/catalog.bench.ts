// The catalog: the goals of the catalog issue, measured against same-run baselines.
//
//  1. sync throughput over 10,000 tags in a real registry (CNCF distribution behind the counting
//     proxy), first sync into a fresh catalog and a second sync of the unchanged registry, on
//     SQLite and PostgreSQL; baseline: a plain fetch loop of HEAD (and HEAD+GET) requests with the
//     same concurrency, from a process of its own as sync is.
//  2. resident memory of `tagtrail sync` (the built CLI, a child process) as the registry grows
//     from 2,500 to 5,000 to 10,000 tags: peak RSS per size and its ratio, with the live V8 heap;
//     controls: the same into PostgreSQL, 10,000 tags in small repositories, and the whole
//     registry (20,000 tags).
//  3. search latency at 1,000,000 indexed manifests on SQLite and PostgreSQL (annotation
//     key=value, commit prefix, pipeline id), with the query plans and where the time goes;
//     baseline: SELECT 1 through the same store driver. The catalogs are filled by a bulk seeder
//     writing the stores' own tables, checked row for row against putManifest + setTag first.
//  4. webhook ingest: events/s through createApp(...).request('/api/v1/events'), for tag pushes
//     of manifests the registry holds (each read from it once) and for duplicates (no read).
//
// The registry is filled over its HTTP API (two blobs per repository, then 10,000 small OCI
// manifests PUT by tag, 16 at a time): skopeo would take far longer. Everything listens on
// 127.0.0.1. `npm run bench` builds the CLI first; with `node --import tsx bench/run.ts catalog`,
// run `npm run build` before.
//
// For shorter runs while working on it: BENCH_CATALOG_PARTS=sync,search,webhook (any subset),
// BENCH_CATALOG_MANIFESTS=N (the search size; default 1,000,000), BENCH_CATALOG_TAGS=N (the
// largest sync size; default 10,000). BENCH_CATALOG_PARTS=memory (instead of sync) runs part 2
// alone and short: first syncs at a quarter of the largest size and at the largest, on SQLite and
// PostgreSQL, without the throughput runs, the baseline loops and the controls.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Driver, Param } from '../src/catalog/sql.js';
import type { Store } from '../src/catalog/store.js';
import { explainSearch } from './catalog/explain.js';
import { openStore } from '../src/catalog/open.js';
import type { ManifestRecord, SearchQuery } from '../src/catalog/types.js';
import type { SyncSummary } from '../src/catalog/sync.js';
import { RegistryClient } from '../src/oci/registry.js';
import { createApp } from '../src/server/app.js';
import { makeTempDir, removeTempDir } from '../test/helpers/cleanup.js';
import { BIN } from '../test/helpers/cli.js';
import { type PostgresCluster, createDatabase, startPostgres } from '../test/helpers/postgres.js';
import { type TestRegistry, startRegistry } from '../test/helpers/registry.js';
import { fmt, percentile, writeResults } from './lib.js';

// ------------------------------------------------------------------------------------ settings

const envInt = (name: string, fallback: number): number => {
  const v = process.env[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback;
};
const PARTS = new Set((process.env.BENCH_CATALOG_PARTS ?? 'sync,search,webhook').split(',').map((s) => s.trim()));

/** Part 1 and 2: registry sizes, the last one is the throughput run. */
const MAX_TAGS = envInt('BENCH_CATALOG_TAGS', 10_000);
/** Part 2 alone (BENCH_CATALOG_PARTS=memory): the smallest and the largest size, first syncs only. */
const MEMORY_ONLY = PARTS.has('memory') && !PARTS.has('sync');
const SYNC_SIZES = (MEMORY_ONLY ? [MAX_TAGS / 4, MAX_TAGS] : [MAX_TAGS / 4, MAX_TAGS / 2, MAX_TAGS]).map(Math.round);
const REPOSITORIES = 20;
const PUT_CONCURRENCY = 16;
/** sync's default --concurrency; the raw baseline uses the same. */
const SYNC_CONCURRENCY = 8;
const CHILD_TIMEOUT_MS = 10 * 60_000;
/** Flat: peak RSS at the largest size over the smallest, at most this. */
const RSS_RATIO_GOAL = 1.25;

/** Part 3. */
const SEARCH_TARGET = envInt('BENCH_CATALOG_MANIFESTS', 1_000_000);
/** Manifests per batch: one SQLite transaction, one multi-row INSERT per PostgreSQL table. */
const SEED_BATCH = 50_000;
/** Loading stops (at a whole batch) once it has run this long; indexes come after. */
const SEARCH_LOAD_BUDGET_MS = 6 * 60_000;
const QUERIES = 500;
const WARMUP = 50;
const NO_MATCH_SHARE = 0.1;
const P95_GOAL_MS = 20;
const CHECK_SAMPLE = 300;

/** Part 4. */
const WEBHOOK_EVENTS = 1000;
const WEBHOOK_CONCURRENCY = 8;
const WEBHOOK_SECRET = 'bench-webhook-secret-0123456789';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST,
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

// ------------------------------------------------------------------------------------ helpers

const sha256hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const now = (): number => performance.now();
const load = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);
const log = (line: string): void => {
  process.stdout.write(`[catalog ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};
const passMiss = (ok: boolean): string => (ok ? '**PASS**' : '**MISS**');

interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

function stats(ms: readonly number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) };
}

/** Runs fn over 0..n-1 with at most `width` at once. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

/** Deterministic 32-bit hash (lowbias32) and a uniform number in [0, 1) from (k, salt). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
function unit(k: number, salt: number): number {
  return mix32(mix32(k | 0) ^ Math.imul(salt, 0x9e3779b1)) / 4294967296;
}

/** A seeded PRNG for the query mix (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------------------------ the builds

// Manifest i comes from pipeline floor(i/2) (an amd64 and an arm64 build); pipelines belong to
// one of 3,000 projects (a few busy, most quiet), run on one of ~300 refs (main and develop most
// often, some release tags) and build a commit of their own. Each manifest carries 15 annotations,
// as `tagtrail annotate` writes them in GitLab CI.
const T0 = Date.UTC(2025, 0, 1);
const SERVER = 'https://gitlab.example.com';
const PROJECTS = 3000;
const TOPICS = ['login', 'search', 'billing', 'api', 'cache', 'ui', 'deps', 'perf', 'docs', 'auth'];
const FEATURES = Array.from({ length: 298 }, (_, n) => `feature/${TOPICS[n % TOPICS.length]}-${n}`);

interface Build {
  i: number;
  /** The project path: the repository the image is pushed to. */
  repository: string;
  tag: string;
  /** Push time, ms. */
  at: number;
  pipeline: string;
  commit: string;
  ref: string;
  annotations: Record<string, string>;
}

function build(i: number): Build {
  const k = Math.floor(i / 2);
  const arm = i % 2 === 1;
  const p = Math.floor(PROJECTS * unit(k, 1) ** 2);
  const path = `group-${p % 89}/project-${p}`;
  const projectUrl = `${SERVER}/${path}`;
  const r = unit(k, 2);
  const isTag = r >= 0.95;
  const ref = r < 0.35 ? 'main' : r < 0.45 ? 'develop' : isTag ? `v${1 + (k % 4)}.${k % 23}.${k % 7}` : (FEATURES[Math.floor(unit(k, 3) * FEATURES.length)] as string);
  const commit = createHash('sha1').update(`commit ${k}`).digest('hex');
  const pipeline = String(4_000_000 + k);
  const job = String(70_000_000 + i);
  const at = T0 + i * 30_000;
  return {
    i,
    repository: path,
    tag: `${commit.slice(0, 8)}-${pipeline}${arm ? '-arm64' : ''}`,
    at,
    pipeline,
    commit,
    ref,
    annotations: {
      'com.gitlab.ci.pipeline_id': pipeline,
      'com.gitlab.ci.pipeline_url': `${projectUrl}/-/pipelines/${pipeline}`,
      'com.gitlab.ci.job_id': job,
      'com.gitlab.ci.job_name': arm ? 'build:arm64' : 'build',
      'com.gitlab.ci.job_url': `${projectUrl}/-/jobs/${job}`,
      'com.gitlab.ci.project_id': String(1000 + p),
      'com.gitlab.ci.project_path': path,
      'com.gitlab.ci.project_url': projectUrl,
      'com.gitlab.ci.commit_sha': commit,
      'com.gitlab.ci.commit_ref_name': ref,
      [isTag ? 'com.gitlab.ci.tag' : 'com.gitlab.ci.branch']: ref,
      'com.gitlab.ci.user_login': `dev${mix32(k) % 400}`,
      'org.opencontainers.image.revision': commit,
      'org.opencontainers.image.source': projectUrl,
      'org.opencontainers.image.created': new Date(at - 90_000).toISOString(),
    },
  };
}

interface SeedManifest {
  b: Build;
  raw: Buffer;
  digest: string;
  configDigest: string;
}

/** The image manifest of build i for the search catalog: a config and a layer of its own (blobs that exist nowhere). */
function seedManifest(i: number): SeedManifest {
  const b = build(i);
  const configDigest = `sha256:${sha256hex(`config ${i}`)}`;
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: 1400 + (i % 700) },
    layers: [{ mediaType: OCI_LAYER, digest: `sha256:${sha256hex(`layer ${i}`)}`, size: 20_000_000 + ((i * 7919) % 5_000_000) }],
    annotations: b.annotations,
  };
  const raw = Buffer.from(JSON.stringify(manifest));
  return { b, raw, digest: `sha256:${sha256hex(raw)}`, configDigest };
}

/** What ingest hands putManifest for that manifest. */
function recordOf(m: SeedManifest): ManifestRecord {
  return { digest: m.digest, mediaType: OCI_MANIFEST, raw: m.raw, artifactType: null, configDigest: m.configDigest, annotations: m.b.annotations };
}

// ------------------------------------------------------------------------------------ bulk seeding (part 3)

/** The insight columns putManifest derives for a manifest (builder, build-details source, …). */
const DERIVED_COLUMNS = ['builder', 'builder_confidence', 'builder_evidence', 'build_source', 'media_family', 'platform_count'] as const;
type SeedDerived = Record<(typeof DERIVED_COLUMNS)[number], string | number | null>;

/**
 * What putManifest derives for a seed manifest. Every seed manifest has one shape (an annotated
 * OCI image manifest whose config is not read), so the Store's own answer for one holds for all;
 * checkSeeder compares the columns row for row. Written by the seeders, the store finds nothing
 * to backfill when it opens the seeded catalog.
 */
async function seedDerived(work: string): Promise<SeedDerived> {
  const path = join(work, 'derived.db');
  const store = await openStore(`sqlite:${path}`);
  try {
    await store.putManifest(recordOf(seedManifest(0)));
  } finally {
    await store.close();
  }
  const db = sqliteQuery(path);
  try {
    return (await db.q(`SELECT ${DERIVED_COLUMNS.join(', ')} FROM manifests`))[0] as SeedDerived;
  } finally {
    db.close();
    await rm(path, { force: true });
  }
}

// The seeders write, per manifest, exactly the rows putManifest (manifests, annotations) and a
// first setTag (tags, tag_events, tag_terms, the repository's row and counters) write for an
// annotated image manifest: checkSeeder() compares them row for row on a sample. Secondary
// indexes (and, on PostgreSQL, keys and foreign keys) are dropped for the load and created again
// from their own saved definitions, so the schema ends up as the migrations made it.

/** The tables a seeder writes. */
const LOADED_TABLES = ['repositories', 'manifests', 'annotations', 'tags', 'tag_events', 'tag_terms'];

class RepoTable {
  readonly rows = new Map<string, { id: number; first: number; last: number; count: number }>();

  /** The repository's id (in order of first appearance, as ensureRepository hands them out); counts one tag. */
  add(name: string, at: number): number {
    let r = this.rows.get(name);
    if (!r) {
      r = { id: this.rows.size + 1, first: at, last: at, count: 0 };
      this.rows.set(name, r);
    }
    r.first = Math.min(r.first, at);
    r.last = Math.max(r.last, at);
    r.count++;
    return r.id;
  }
}

/** Terms in the order the store inserts them (annotations come back in key order); every value here is under TERM_PREFIX. */
function terms(b: Build): [string, string][] {
  return Object.entries(b.annotations).sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0));
}

class SqliteSeeder {
  private readonly db: Database.Database;
  private readonly indexes: { name: string; sql: string }[];
  readonly repos = new RepoTable();
  private readonly statements: Record<'manifest' | 'tag' | 'event', Database.Statement>;
  private readonly multi = new Map<string, Database.Statement>();

  constructor(
    path: string,
    private readonly derived: SeedDerived,
  ) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.pragma('cache_size = -1048576');
    // Repositories are written last; the sample check runs foreign_key_check on the result.
    this.db.pragma('foreign_keys = OFF');
    this.indexes = this.db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").all() as { name: string; sql: string }[];
    for (const ix of this.indexes) this.db.exec(`DROP INDEX "${ix.name}"`);
    this.statements = {
      manifest: this.db.prepare(
        `INSERT INTO manifests (id, digest, media_type, size, raw, artifact_type, config_digest, has_build, stored_at, ${DERIVED_COLUMNS.join(', ')}) VALUES (?, ?, ?, ?, ?, NULL, ?, 1, ?, ${DERIVED_COLUMNS.map(() => '?').join(', ')})`,
      ),
      tag: this.db.prepare(
        'INSERT INTO tags (id, repository_id, name, digest, deleted_at, updated_at, last_kind, last_digest, first_seen, last_seen, has_build) VALUES (?, ?, ?, ?, NULL, ?, 0, ?, ?, ?, 1)',
      ),
      event: this.db.prepare('INSERT INTO tag_events (tag_id, at, kind, digest) VALUES (?, ?, 0, ?)'),
    };
  }

  /** A multi-row INSERT of `rows` tuples, prepared once per shape. */
  private many(table: string, columns: string, tuple: string, rows: number): Database.Statement {
    const sql = `INSERT INTO ${table} (${columns}) VALUES ${new Array(rows).fill(tuple).join(', ')}`;
    let st = this.multi.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.multi.set(sql, st);
    }
    return st;
  }

  private rows(batch: readonly SeedManifest[], firstId: number): void {
    const s = this.statements;
    batch.forEach((m, k) => {
      const id = firstId + k;
      const { b } = m;
      const repoId = this.repos.add(b.repository, b.at);
      s.manifest.run(id, m.digest, OCI_MANIFEST, m.raw.byteLength, m.raw, m.configDigest, b.at, ...DERIVED_COLUMNS.map((c) => this.derived[c]));
      const annotations = Object.entries(b.annotations);
      this.many('annotations', 'manifest_id, key, value', '(?, ?, ?)', annotations.length).run(annotations.flatMap(([key, value]) => [id, key, value]));
      s.tag.run(id, repoId, b.tag, m.digest, b.at, m.digest, b.at, b.at);
      s.event.run(id, b.at, m.digest);
      const t = terms(b);
      this.many('tag_terms', 'tag_id, repository_id, key, value, value_rest, updated_at', "(?, ?, ?, ?, '', ?)", t.length).run(t.flatMap(([key, value]) => [id, repoId, key, value, b.at]));
    });
  }

  /**
   * Manifests and their tags in one transaction; the first gets id firstId (manifest and tag ids
   * run together). Gives the event loop a turn every `chunk` manifests, so the PostgreSQL load
   * running beside it keeps its socket busy. Returns the ms spent writing.
   */
  async insert(batch: readonly SeedManifest[], firstId: number, chunk = 2000): Promise<number> {
    let busy = 0;
    this.db.exec('BEGIN');
    try {
      for (let k = 0; k < batch.length; k += chunk) {
        const started = now();
        this.rows(batch.slice(k, k + chunk), firstId + k);
        busy += now() - started;
        await new Promise((resolve) => setImmediate(resolve));
      }
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    return busy;
  }

  /** The repositories, then the indexes again. Returns the ms the indexes took. */
  finish(checkKeys = false): number {
    const insert = this.db.prepare('INSERT INTO repositories (id, name, first_seen, last_seen, updated_at, live_tags, build_tags) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const [name, r] of this.repos.rows) insert.run(r.id, name, r.first, r.last, r.last, r.count, r.count);
    })();
    const started = now();
    for (const ix of this.indexes) this.db.exec(ix.sql);
    const ms = now() - started;
    if (checkKeys) {
      const broken = this.db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new Error(`the seeded catalog breaks foreign keys: ${JSON.stringify(broken.slice(0, 5))}`);
    }
    this.db.pragma('journal_mode = WAL');
    this.db.close();
    return ms;
  }
}

/** A PostgreSQL array literal, several times faster to build than pg's own serialisation of a long array. */
function arrayLiteral(xs: readonly (string | number)[]): string {
  return `{${xs.map((x) => (typeof x === 'number' ? String(x) : `"${x.replace(/[\\"]/g, '\\$&')}"`)).join(',')}}`;
}

class PgSeeder {
  readonly repos = new RepoTable();
  private readonly pool: pg.Pool;
  private saved: { keys: string[]; indexes: string[]; foreign: string[] } = { keys: [], indexes: [], foreign: [] };

  constructor(
    url: string,
    private readonly derived: SeedDerived,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 3 });
    this.pool.on('error', () => undefined);
  }

  async prepare(): Promise<void> {
    const constraints = (
      await this.pool.query<{ conname: string; tbl: string; contype: string; def: string }>(
        `SELECT c.conname, c.conrelid::regclass::text AS tbl, c.contype, pg_get_constraintdef(c.oid) AS def
         FROM pg_constraint c WHERE c.connamespace = current_schema()::regnamespace AND c.contype IN ('p', 'u', 'f') ORDER BY c.conname`,
      )
    ).rows;
    const indexes = (
      await this.pool.query<{ indexname: string; indexdef: string }>(
        `SELECT i.indexname, i.indexdef FROM pg_indexes i
         WHERE i.schemaname = current_schema() AND i.tablename = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass AND c.contype IN ('p', 'u'))
         ORDER BY i.indexname`,
        [LOADED_TABLES],
      )
    ).rows;
    // Every foreign key goes (some point at the keys of loaded tables); keys and indexes of the loaded tables only.
    const foreign = constraints.filter((c) => c.contype === 'f');
    const keys = constraints.filter((c) => c.contype !== 'f' && LOADED_TABLES.includes(c.tbl));
    const ddl = (c: { conname: string; tbl: string; def: string }): string => `ALTER TABLE ${c.tbl} ADD CONSTRAINT "${c.conname}" ${c.def}`;
    this.saved = { keys: keys.map(ddl), indexes: indexes.map((i) => i.indexdef), foreign: foreign.map(ddl) };
    for (const c of foreign) await this.pool.query(`ALTER TABLE ${c.tbl} DROP CONSTRAINT "${c.conname}"`);
    for (const i of indexes) await this.pool.query(`DROP INDEX "${i.indexname}"`);
    for (const c of keys) await this.pool.query(`ALTER TABLE ${c.tbl} DROP CONSTRAINT "${c.conname}"`);
  }

  /**
   * Manifests and their tags; the first gets id firstId (manifest and tag ids run together).
   * Annotations, tag events and search terms are derived from these rows in finish(), inside
   * the database: far less to send than 15 rows of each per manifest.
   */
  async insert(batch: readonly SeedManifest[], firstId: number): Promise<void> {
    const ids: number[] = [];
    const repoIds: number[] = [];
    const ats: number[] = [];
    const digests: string[] = [];
    const names: string[] = [];
    const sizes: number[] = [];
    const raws: string[] = [];
    const configs: string[] = [];
    batch.forEach((x, k) => {
      const { b } = x;
      ids.push(firstId + k);
      repoIds.push(this.repos.add(b.repository, b.at));
      ats.push(b.at);
      digests.push(x.digest);
      names.push(b.tag);
      sizes.push(x.raw.byteLength);
      raws.push(x.raw.toString('utf8'));
      configs.push(x.configDigest);
    });
    await Promise.all([
      this.pool.query(
        `INSERT INTO manifests (id, digest, media_type, size, raw, artifact_type, config_digest, has_build, stored_at, ${DERIVED_COLUMNS.join(', ')}) OVERRIDING SYSTEM VALUE
         SELECT u.id, u.digest, $1, u.size, convert_to(u.raw, 'UTF8'), NULL, u.config, 1, u.at, $8::text, $9::text, $10::text, $11::text, $12::text, $13::integer
         FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[]) AS u (id, digest, size, raw, config, at)`,
        [OCI_MANIFEST, ...[ids, digests, sizes, raws, configs, ats].map(arrayLiteral), ...DERIVED_COLUMNS.map((c) => this.derived[c])],
      ),
      this.pool.query(
        `INSERT INTO tags (id, repository_id, name, digest, deleted_at, updated_at, last_kind, last_digest, first_seen, last_seen, has_build) OVERRIDING SYSTEM VALUE
         SELECT u.id, u.repo, u.name, u.digest, NULL, u.at, 0, u.digest, u.at, u.at, 1
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS u (id, repo, name, digest, at)`,
        [ids, repoIds, names, digests, ats].map(arrayLiteral),
      ),
    ]);
  }

  /** The rows derived from manifests and tags: what putManifest and setTag write besides them. Returns the ms it took. */
  private async derive(): Promise<number> {
    const started = now();
    // An annotated image manifest: its annotations are its terms (every value here is under TERM_PREFIX, so value_rest is '').
    const annotations = "jsonb_each_text(convert_from(m.raw, 'UTF8')::jsonb -> 'annotations')";
    const statements = [
      `INSERT INTO annotations (manifest_id, key, value) SELECT m.id, a.key, a.value FROM manifests m, ${annotations} a`,
      `INSERT INTO tag_terms (tag_id, repository_id, key, value, value_rest, updated_at)
       SELECT g.id, g.repository_id, a.key, a.value, '', g.updated_at FROM tags g JOIN manifests m ON m.digest = g.digest, ${annotations} a`,
      'INSERT INTO tag_events (tag_id, at, kind, digest) SELECT g.id, g.updated_at, 0, g.digest FROM tags g',
    ];
    await pool(statements.length, 2, async (k) => {
      const client = await this.pool.connect();
      try {
        await client.query("SET work_mem = '256MB'");
        await client.query(statements[k] as string);
      } finally {
        client.release();
      }
    });
    return now() - started;
  }

  /** The derived rows, the repositories, the identity sequences, then keys, indexes and foreign keys again. Returns the ms each took. */
  async finish(): Promise<{ deriveMs: number; indexMs: number }> {
    const deriveMs = await this.derive();
    const rows = [...this.repos.rows];
    await this.pool.query(
      `INSERT INTO repositories (id, name, first_seen, last_seen, updated_at, live_tags, build_tags) OVERRIDING SYSTEM VALUE
       SELECT u.id, u.name, u.first, u.last, u.last, u.n, u.n FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u (id, name, first, last, n)`,
      [rows.map(([, r]) => r.id), rows.map(([name]) => name), rows.map(([, r]) => r.first), rows.map(([, r]) => r.last), rows.map(([, r]) => r.count)],
    );
    for (const table of ['repositories', 'manifests', 'tags']) {
      await this.pool.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST(1, (SELECT max(id) FROM ${table})))`);
    }
    const started = now();
    // Two statements at a time (each on its own connection, with room to sort), foreign keys one by one.
    const run = async (statements: string[], width: number): Promise<void> => {
      await pool(statements.length, width, async (k) => {
        const client = await this.pool.connect();
        try {
          await client.query("SET maintenance_work_mem = '512MB'");
          await client.query(statements[k] as string);
        } finally {
          client.release();
        }
      });
    };
    await run(this.saved.keys, 2);
    await run(this.saved.indexes, 2);
    await run(this.saved.foreign, 1);
    const indexMs = now() - started;
    await this.pool.end();
    return { deriveMs, indexMs };
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

/** Every row of the catalog with ids replaced by what they stand for, and the schema; for comparing two catalogs. */
const DUMP_QUERIES: Record<string, string> = {
  repositories: 'SELECT name, first_seen, last_seen, updated_at, live_tags, build_tags FROM repositories ORDER BY name',
  manifests: `SELECT digest, media_type, size, raw, artifact_type, config_digest, has_build, ${DERIVED_COLUMNS.join(', ')} FROM manifests ORDER BY digest`,
  annotations: 'SELECT m.digest, a.key, a.value FROM annotations a JOIN manifests m ON m.id = a.manifest_id ORDER BY m.digest, a.key',
  tags: `SELECT r.name AS repository, g.name, g.digest, g.deleted_at, g.updated_at, g.last_kind, g.last_digest, g.first_seen, g.last_seen, g.has_build
         FROM tags g JOIN repositories r ON r.id = g.repository_id ORDER BY r.name, g.name`,
  tag_events: 'SELECT r.name AS repository, g.name, e.at, e.kind, e.digest FROM tag_events e JOIN tags g ON g.id = e.tag_id JOIN repositories r ON r.id = g.repository_id ORDER BY 1, 2, 3',
  tag_terms: `SELECT r.name AS repository, g.name, tr.name AS term_repository, t.key, t.value, t.value_rest, t.updated_at
              FROM tag_terms t JOIN tags g ON g.id = t.tag_id JOIN repositories r ON r.id = g.repository_id JOIN repositories tr ON tr.id = t.repository_id ORDER BY 1, 2, 4, 5`,
  others: `SELECT (SELECT count(*) FROM manifest_children) AS children, (SELECT count(*) FROM configs) AS configs,
                  (SELECT count(*) FROM config_labels) AS labels, (SELECT count(*) FROM manifest_deletions) AS deletions`,
};
const SCHEMA_QUERIES = {
  sqlite: ['SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name'],
  postgres: [
    'SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname',
    'SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY conname',
  ],
};

type Query = (sql: string) => Promise<unknown[]>;

async function dumpCatalog(dialect: 'sqlite' | 'postgres', q: Query): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [table, sql] of Object.entries(DUMP_QUERIES)) out[table] = JSON.stringify(await q(sql));
  out.schema = JSON.stringify(await Promise.all(SCHEMA_QUERIES[dialect].map((sql) => q(sql))));
  return out;
}

function sqliteQuery(path: string): { q: Query; close: () => void } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  return { q: async (sql) => db.prepare(sql).all(), close: () => db.close() };
}

async function pgQuery(url: string): Promise<{ q: Query; close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return { q: async (sql) => (await client.query(sql)).rows, close: () => client.end() };
}

/** Fills two fresh catalogs with the same sample, one through putManifest + setTag, one through the seeder; compares every row. */
async function checkSeeder(dialect: 'sqlite' | 'postgres', work: string, cluster: PostgresCluster | undefined): Promise<{ sample: number; identical: boolean; differing: string[] }> {
  const sample = Array.from({ length: CHECK_SAMPLE }, (_, i) => seedManifest(i));
  let apiUrl: string;
  let bulkUrl: string;
  if (dialect === 'sqlite') {
    apiUrl = `sqlite:${join(work, 'check-api.db')}`;
    bulkUrl = `sqlite:${join(work, 'check-bulk.db')}`;
  } else {
    apiUrl = await createDatabase(cluster as PostgresCluster, 'check_api');
    bulkUrl = await createDatabase(cluster as PostgresCluster, 'check_bulk');
  }
  const api = await openStore(apiUrl);
  try {
    for (const m of sample) {
      await api.putManifest(recordOf(m));
      await api.setTag(m.b.repository, m.b.tag, m.digest, new Date(m.b.at));
    }
  } finally {
    await api.close();
  }
  await (await openStore(bulkUrl)).close();
  if (dialect === 'sqlite') {
    const seeder = new SqliteSeeder(bulkUrl.slice('sqlite:'.length), await seedDerived(work));
    await seeder.insert(sample, 1);
    seeder.finish(true);
  } else {
    const seeder = new PgSeeder(bulkUrl, await seedDerived(work));
    try {
      await seeder.prepare();
      await seeder.insert(sample, 1);
      await seeder.finish();
    } finally {
      await seeder.close();
    }
  }
  const dumps: Record<string, string>[] = [];
  for (const url of [apiUrl, bulkUrl]) {
    if (dialect === 'sqlite') {
      const db = sqliteQuery(url.slice('sqlite:'.length));
      try {
        dumps.push(await dumpCatalog('sqlite', db.q));
      } finally {
        db.close();
      }
    } else {
      const db = await pgQuery(url);
      try {
        dumps.push(await dumpCatalog('postgres', db.q));
      } finally {
        await db.close();
      }
    }
  }
  const [a, b] = dumps as [Record<string, string>, Record<string, string>];
  const differing = Object.keys(a).filter((k) => a[k] !== b[k]);
  return { sample: CHECK_SAMPLE, identical: differing.length === 0, differing };
}

/** Reads a few seeded manifests back through the Store API. Returns the problems found. */
async function readBack(store: Store, n: number, repositories: number): Promise<string[]> {
  const problems: string[] = [];
  const s = await store.stats();
  if (s.manifests !== n || s.liveTags !== n || s.repositories !== repositories) problems.push(`stats ${JSON.stringify(s)}, expected ${n} manifests and live tags, ${repositories} repositories`);
  const rng = prng(7);
  for (let k = 0; k < 5; k++) {
    const m = seedManifest(Math.floor(rng() * n));
    const image = await store.getImage(m.digest);
    if (!image) {
      problems.push(`getImage(${m.digest}) found nothing`);
      continue;
    }
    if (JSON.stringify({ ...image.annotations }) !== JSON.stringify(Object.fromEntries(terms(m.b)))) problems.push(`getImage(${m.digest}): other annotations`);
    if (!image.tags.some((t) => t.repository === m.b.repository && t.tag === m.b.tag && t.updatedAt.getTime() === m.b.at)) problems.push(`getImage(${m.digest}): tag missing`);
    if (Buffer.compare(image.raw, m.raw) !== 0) problems.push(`getImage(${m.digest}): other bytes`);
    const found = await store.searchImages({ pipeline: m.b.pipeline });
    if (!found.items.some((t) => t.digest === m.digest && t.tag === m.b.tag)) problems.push(`searchImages(pipeline ${m.b.pipeline}) misses ${m.b.tag}`);
  }
  return problems;
}

// ------------------------------------------------------------------------------------ search latency (part 3)

type Kind = 'annotation' | 'commit' | 'pipeline';
const KINDS: Kind[] = ['annotation', 'commit', 'pipeline'];
const KIND_LABEL: Record<Kind, string> = { annotation: 'annotation key=value', commit: 'commit prefix (7-12 hex)', pipeline: 'pipeline id' };

interface Probe {
  query: SearchQuery;
  /** False for the values made up not to match. */
  match: boolean;
}

function makeQueries(kind: Kind, n: number, count: number, seed: number): Probe[] {
  const rng = prng(seed);
  const out: Probe[] = [];
  for (let k = 0; k < count; k++) {
    const b = build(Math.floor(rng() * n));
    const miss = rng() < NO_MATCH_SHARE;
    switch (kind) {
      case 'annotation': {
        const keys = Object.keys(b.annotations);
        const key = keys[Math.floor(rng() * keys.length)] as string;
        out.push({ query: { annotations: [{ key, value: miss ? `no-such-value-${Math.floor(rng() * 1e9)}` : (b.annotations[key] as string) }] }, match: !miss });
        break;
      }
      case 'commit': {
        const length = 7 + Math.floor(rng() * 6);
        const commit = miss ? sha256hex(`no such commit ${k} ${seed}`) : b.commit;
        out.push({ query: { commit: commit.slice(0, length) }, match: !miss });
        break;
      }
      case 'pipeline':
        out.push({ query: { pipeline: miss ? String(90_000_000 + Math.floor(rng() * 1e6)) : b.pipeline }, match: !miss });
        break;
    }
  }
  return out;
}

interface KindTiming {
  kind: Kind;
  stats: Stats;
  /** The queries that filled a whole page (50 results), and the others. */
  fullPage: Stats;
  partPage: Stats;
  /** Matching probes that came back empty, and made-up ones that did not (both should be 0; a made-up commit prefix may match by chance). */
  wrong: number;
  meanItems: number;
}

async function timeKind(store: Store, kind: Kind, n: number, count: number, seed: number): Promise<KindTiming> {
  for (const p of makeQueries(kind, n, WARMUP, seed + 1000)) await store.searchImages(p.query);
  const probes = makeQueries(kind, n, count, seed);
  const ms: number[] = [];
  const full: number[] = [];
  const part: number[] = [];
  let wrong = 0;
  let items = 0;
  for (const p of probes) {
    const started = now();
    const page = await store.searchImages(p.query);
    const t = now() - started;
    ms.push(t);
    (page.items.length >= 50 ? full : part).push(t);
    items += page.items.length;
    if (p.match !== page.items.length > 0) wrong++;
  }
  return { kind, stats: stats(ms), fullPage: stats(full), partPage: stats(part), wrong, meanItems: items / probes.length };
}

const PHASE_QUERIES = 200;

interface PhaseTiming {
  kind: Kind;
  /** planSearch: the repository lookup, if any, and the capped count that picks the driving filter, when it can change the plan. */
  plan: Stats;
  /** The id query. */
  ids: Stats;
  /** Reading the details of the page's tags (hydrate). */
  hydrate: Stats;
  /**
   * The same page's details read as before they took one statement: the tags, then the
   * manifests, their children, annotations and labels a statement each (the store's loadViews,
   * which its writes still use). Timed on the same pages, alternately first and second.
   */
  hydrateSeparate: Stats;
  /** The capped count as planning ran it for every filter before, now only where it can change the plan. */
  probe: Stats;
}

/** searchImages taken apart (its private steps, called as it calls them), to see where the time goes. */
async function timePhases(store: Store, kind: Kind, n: number, count: number, seed: number): Promise<PhaseTiming> {
  const inner = store as unknown as {
    db: Driver;
    planSearch(q: SearchQuery): Promise<{ sql: string; params: Param[]; limit: number; prepare: boolean } | null>;
    hydrate(ids: number[]): Promise<unknown[]>;
    loadViews(q: Driver, digests: readonly string[]): Promise<unknown>;
  };
  const plan: number[] = [];
  const ids: number[] = [];
  const hydrate: number[] = [];
  const hydrateSeparate: number[] = [];
  const probe: number[] = [];
  const separate = async (tagIds: number[]): Promise<number> => {
    const t = now();
    if (tagIds.length > 0) {
      const rows = await inner.db.all<{ digest: string | null }>(
        `SELECT g.id, r.name AS repository, g.name AS tag, g.digest, g.updated_at FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE g.id IN (${tagIds.map(() => '?').join(', ')})`,
        tagIds,
      );
      await inner.loadViews(inner.db, [...new Set(rows.map((r) => r.digest).filter((d): d is string => d !== null))]);
    }
    return now() - t;
  };
  let k = 0;
  for (const p of makeQueries(kind, n, count, seed)) {
    const t0 = now();
    const planned = await inner.planSearch(p.query);
    const t1 = now();
    if (!planned) continue;
    const rows = await inner.db.all<{ tag_id: unknown }>(planned.sql, planned.params, { prepare: planned.prepare });
    const t2 = now();
    const page = rows.slice(0, planned.limit).map((r) => Number(r.tag_id));
    const first = k++ % 2 === 0;
    if (!first) hydrateSeparate.push(await separate(page));
    const t3 = now();
    await inner.hydrate(page);
    const t4 = now();
    if (first) hydrateSeparate.push(await separate(page));
    plan.push(t1 - t0);
    ids.push(t2 - t1);
    hydrate.push(t4 - t3);
    // The count as planning asked it of the first filter before (kind-specific SQL of the plan's driver).
    const t5 = now();
    const where = /FROM tag_terms t0 WHERE (.*?)(?: AND EXISTS| AND t0\.updated_at| ORDER BY)/.exec(planned.sql);
    if (where) {
      const n = (where[1]?.match(/\?/g) ?? []).length;
      await inner.db.all(`SELECT count(*) AS n FROM (SELECT 1 AS one FROM tag_terms t0 WHERE ${where[1]} LIMIT ?) s`, [...planned.params.slice(0, n), 1000]);
      probe.push(now() - t5);
    }
  }
  return { kind, plan: stats(plan), ids: stats(ids), hydrate: stats(hydrate), hydrateSeparate: stats(hydrateSeparate), probe: stats(probe) };
}

async function timeSelectOne(store: Store, count: number): Promise<number[]> {
  // The store's own driver (a private field): the same queue or pool every search goes through.
  const driver = (store as unknown as { db: Driver }).db;
  for (let k = 0; k < WARMUP; k++) await driver.all('SELECT 1 AS one');
  const ms: number[] = [];
  for (let k = 0; k < count; k++) {
    const started = now();
    await driver.all('SELECT 1 AS one');
    ms.push(now() - started);
  }
  return ms;
}

interface PlanRecord {
  name: string;
  query: SearchQuery;
  sql: string;
  plan: string[];
  /** The plan reads tag_terms through one of its indexes. */
  usesIndex: boolean;
  /** The plan reads a whole table (or a whole index) somewhere. */
  fullScan: boolean;
}

async function explainAll(store: Store, n: number): Promise<PlanRecord[]> {
  const b = build(Math.floor(n / 3));
  const cases: { name: string; query: SearchQuery }[] = [
    { name: 'annotation, selective (job_id)', query: { annotations: [{ key: 'com.gitlab.ci.job_id', value: b.annotations['com.gitlab.ci.job_id'] as string }] } },
    { name: 'annotation, common (commit_ref_name=main)', query: { annotations: [{ key: 'com.gitlab.ci.commit_ref_name', value: 'main' }] } },
    { name: 'commit prefix (8 hex)', query: { commit: b.commit.slice(0, 8) } },
    { name: 'pipeline id', query: { pipeline: b.pipeline } },
  ];
  const out: PlanRecord[] = [];
  for (const c of cases) {
    const e = await explainSearch(store, c.query);
    const text = e.plan.join('\n');
    const usesIndex = /tag_terms_search|tag_terms_tag/.test(text);
    // SQLite: SEARCH is a range of an index, SCAN reads all of a table or index; PostgreSQL: Seq Scan.
    const fullScan = store.dialect === 'sqlite' ? /\bSCAN \w/.test(text) : /Seq Scan/.test(text);
    out.push({ name: c.name, query: c.query, sql: e.sql, plan: e.plan, usesIndex, fullScan });
  }
  return out;
}

// ------------------------------------------------------------------------------------ the registry (parts 1, 2 and 4)

interface RegistryImage {
  repository: string;
  tag: string;
  digest: string;
  size: number;
}

/**
 * Deep: the registry grows by growing its ${REPOSITORIES} repositories. Wide (the control): as many tags
 * in four times the repositories, each as small as a deep one at a quarter of the size; its
 * builds are numbered after the deep ones, so every manifest is distinct.
 */
type Layout = 'deep' | 'wide' | 'all';
const LAYOUT_REPOSITORIES: Record<Layout, number> = { deep: REPOSITORIES, wide: REPOSITORIES * 4, all: REPOSITORIES * 5 };
const benchRepository = (i: number, layout: Layout = 'deep'): string =>
  layout === 'deep' ? `bench/app-${String(i % REPOSITORIES).padStart(2, '0')}` : `wide/app-${String(i % LAYOUT_REPOSITORIES.wide).padStart(2, '0')}`;

/** A request that failed on the network (a kept-alive connection the registry closed) is sent again, twice at most. */
async function withRetry(what: string, send: () => Promise<Response>): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (attempt >= 3) throw new Error(`${what}: ${(err as Error).message} (${cause?.code ?? cause?.message ?? 'no cause'})`, { cause: err });
      log(`${what}: ${(err as Error).message} (${cause?.code ?? cause?.message ?? 'no cause'}); sending it again`);
    }
  }
}

/** Monolithic upload: POST /v2/<repo>/blobs/uploads/, then PUT <location>?digest=. */
async function uploadBlob(base: string, repository: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${sha256hex(bytes)}`;
  const started = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
  await started.arrayBuffer();
  const location = started.headers.get('location');
  if (started.status !== 202 || !location) throw new Error(`blob upload to ${repository}: ${started.status}`);
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(bytes), signal: AbortSignal.timeout(30_000) });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`blob upload to ${repository}: PUT ${put.status}`);
  return digest;
}

interface Blobs {
  config: { digest: string; size: number };
  layer: { digest: string; size: number };
}

async function uploadBlobs(base: string, layout: Layout = 'deep'): Promise<Blobs> {
  const tar = Buffer.from('tagtrail benchmark layer\n');
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256hex(tar)}`] }, history: [{ created_by: 'bench' }] }),
  );
  let blobs: Blobs | undefined;
  for (let r = 0; r < LAYOUT_REPOSITORIES[layout]; r++) {
    const repository = benchRepository(r, layout);
    const configDigest = await uploadBlob(base, repository, config);
    const layerDigest = await uploadBlob(base, repository, layer);
    blobs = { config: { digest: configDigest, size: config.byteLength }, layer: { digest: layerDigest, size: layer.byteLength } };
  }
  return blobs as Blobs;
}

/** PUTs the manifests of builds from..to-1 by tag, PUT_CONCURRENCY at a time, straight to the registry. */
async function fillRegistry(base: string, blobs: Blobs, from: number, to: number, into: RegistryImage[], layout: Layout = 'deep'): Promise<void> {
  await pool(to - from, PUT_CONCURRENCY, async (k) => {
    const i = from + k;
    const b = build(layout === 'deep' ? i : MAX_TAGS + i);
    const repository = benchRepository(i, layout);
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, ...blobs.config },
        layers: [{ mediaType: OCI_LAYER, ...blobs.layer }],
        annotations: b.annotations,
      }),
    );
    const digest = `sha256:${sha256hex(bytes)}`;
    const res = await withRetry(`PUT ${repository}:${b.tag}`, () =>
      fetch(`${base}/v2/${repository}/manifests/${b.tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes, signal: AbortSignal.timeout(60_000) }),
    );
    const text = await res.text();
    if (res.status !== 201) throw new Error(`PUT ${repository}:${b.tag}: ${res.status} ${text.slice(0, 200)}`);
    if (res.headers.get('docker-content-digest') !== digest) throw new Error(`PUT ${repository}:${b.tag}: stored as ${res.headers.get('docker-content-digest')}`);
    into[i] = { repository, tag: b.tag, digest, size: bytes.byteLength };
  });
}

// ------------------------------------------------------------------------------------ child processes (parts 1 and 2)

/**
 * Loaded with --import into the sync child: samples the V8 heap and the memory of buffers every
 * 50 ms, and reports them with the process's peak RSS as it exits.
 */
const RSS_HOOK = `import { PerformanceObserver, constants } from 'node:perf_hooks';
let heap = 0;
let live = 0;
let external = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) live = Math.max(live, process.memoryUsage().heapUsed);
}).observe({ entryTypes: ['gc'] });
const timer = setInterval(() => {
  const m = process.memoryUsage();
  heap = Math.max(heap, m.heapUsed);
  external = Math.max(external, m.external);
}, 50);
timer.unref();
process.on('exit', () => {
  process.stderr.write('\\nBENCH_MEMORY=' + JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS, heapUsed: heap, live, external }) + '\\n');
});
`;

/** The raw baseline: HEAD (or HEAD then GET by digest) of every tag, N in flight, with plain fetch. */
const RAW_LOOP = `import { readFileSync } from 'node:fs';
const [base, width, file, mode, accept] = process.argv.slice(2);
const refs = JSON.parse(readFileSync(file, 'utf8'));
let next = 0;
let errors = 0;
const started = performance.now();
async function worker() {
  while (next < refs.length) {
    const [repository, tag] = refs[next++];
    const head = await fetch(base + '/v2/' + repository + '/manifests/' + tag, { method: 'HEAD', headers: { accept } });
    await head.arrayBuffer();
    if (head.status !== 200) errors++;
    if (mode === 'head+get') {
      const get = await fetch(base + '/v2/' + repository + '/manifests/' + head.headers.get('docker-content-digest'), { headers: { accept } });
      await get.arrayBuffer();
      if (get.status !== 200) errors++;
    }
  }
}
await Promise.all(Array.from({ length: Number(width) }, worker));
process.stdout.write(JSON.stringify({ ms: performance.now() - started, n: refs.length, errors }));
`;

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Peak RSS (KiB) as the process reported it at exit, else the highest VmHWM sampled. */
  peakRssKb: number;
  /** Peak V8 heap in use and peak memory of buffers (bytes), when the process reported them. */
  peakHeap?: number;
  liveHeap?: number;
  peakExternal?: number;
  /** [ms since start, VmRSS KiB], every 50 ms. */
  samples: [number, number][];
}

async function runChild(args: string[], timeoutMs = CHILD_TIMEOUT_MS): Promise<ChildResult> {
  const started = now();
  const child: ChildProcess = spawn(process.execPath, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const samples: [number, number][] = [];
  let hwm = 0;
  const poll = setInterval(() => {
    readFile(`/proc/${child.pid}/status`, 'utf8').then(
      (status) => {
        const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
        hwm = Math.max(hwm, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
        if (Number.isFinite(rss)) samples.push([Math.round(now() - started), rss]);
      },
      () => undefined,
    );
  }, 50);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => {
    clearInterval(poll);
    clearTimeout(timer);
  });
  const line = /BENCH_MEMORY=(\{.*\})/.exec(stderr)?.[1];
  const reported = line ? (JSON.parse(line) as { maxRssKb: number; heapUsed: number; live: number; external: number }) : undefined;
  return {
    code,
    stdout,
    stderr,
    wallMs: now() - started,
    peakRssKb: reported?.maxRssKb ?? hwm,
    ...(reported ? { peakHeap: reported.heapUsed, liveHeap: reported.live, peakExternal: reported.external } : {}),
    samples,
  };
}

interface SyncRun {
  store: 'sqlite' | 'postgres';
  layout: Layout;
  repositories: number;
  tags: number;
  pass: 'first' | 'second';
  summary: Pick<SyncSummary, 'complete' | 'repositories' | 'tags' | 'manifestsFetched' | 'configsFetched' | 'manifestsStored' | 'added' | 'unchanged' | 'errorCount' | 'durationMs'>;
  wallMs: number;
  tagsPerSecond: number;
  requests: { manifestGet: number; manifestHead: number; blobGet: number; total: number };
  peakRssMiB: number;
  peakHeapMiB: number;
  /** The largest V8 heap in use right after a major GC: live objects, not garbage yet to collect. */
  liveHeapMiB: number;
  peakExternalMiB: number;
  /** RSS at 25, 50, 75 and 100 % of the run, MiB. */
  rssTimelineMiB: number[];
  catalogMiB?: number;
}

async function runSync(registry: TestRegistry, db: string, hook: string, store: 'sqlite' | 'postgres', tags: number, pass: 'first' | 'second', layout: Layout = 'deep'): Promise<SyncRun> {
  registry.resetRequests();
  const prefix = layout === 'deep' ? ['--repository', 'bench'] : layout === 'wide' ? ['--repository', 'wide'] : [];
  const r = await runChild(['--import', hook, BIN, 'sync', '--registry', registry.url, ...prefix, '--db', db, '--output', 'json', '--concurrency', String(SYNC_CONCURRENCY)]);
  if (r.code !== 0) throw new Error(`tagtrail sync exited ${r.code}: ${r.stderr.slice(-2000)} ${r.stdout.slice(-2000)}`);
  const s = JSON.parse(r.stdout) as SyncSummary;
  const at = (share: number): number => {
    const last = r.samples[r.samples.length - 1]?.[0] ?? 0;
    const found = r.samples.find(([t]) => t >= share * last) ?? r.samples[r.samples.length - 1];
    return Math.round(((found?.[1] ?? NaN) / 1024) * 10) / 10;
  };
  const run: SyncRun = {
    store,
    layout,
    repositories: LAYOUT_REPOSITORIES[layout],
    tags,
    pass,
    summary: {
      complete: s.complete,
      repositories: s.repositories,
      tags: s.tags,
      manifestsFetched: s.manifestsFetched,
      configsFetched: s.configsFetched,
      manifestsStored: s.manifestsStored,
      added: s.added,
      unchanged: s.unchanged,
      errorCount: s.errorCount,
      durationMs: s.durationMs,
    },
    wallMs: Math.round(r.wallMs),
    tagsPerSecond: s.tags / (s.durationMs / 1000),
    requests: {
      manifestGet: registry.count({ method: 'GET', kind: 'manifest' }),
      manifestHead: registry.count({ method: 'HEAD', kind: 'manifest' }),
      blobGet: registry.count({ method: 'GET', kind: 'blob' }),
      total: registry.count(),
    },
    peakRssMiB: Math.round((r.peakRssKb / 1024) * 10) / 10,
    peakHeapMiB: Math.round(((r.peakHeap ?? NaN) / 1048576) * 10) / 10,
    liveHeapMiB: Math.round(((r.liveHeap ?? NaN) / 1048576) * 10) / 10,
    peakExternalMiB: Math.round(((r.peakExternal ?? NaN) / 1048576) * 10) / 10,
    rssTimelineMiB: [0.25, 0.5, 0.75, 1].map(at),
  };
  if (db.startsWith('sqlite:')) {
    const path = db.slice('sqlite:'.length);
    const size = [path, `${path}-wal`].filter(existsSync).reduce((a, f) => a + statSync(f).size, 0);
    run.catalogMiB = Math.round((size / 1048576) * 10) / 10;
  }
  log(
    `sync ${pass} ${store} ${tags} tags (${layout}): ${fmt(run.tagsPerSecond, 0)} tags/s, ${run.requests.manifestGet} manifest GETs, ${run.requests.manifestHead} HEADs, peak RSS ${run.peakRssMiB} MiB, live heap ${run.liveHeapMiB} MiB`,
  );
  return run;
}

interface RawRun {
  mode: 'head' | 'head+get';
  requests: number;
  ms: number;
  /** Tags per second. */
  rate: number;
}

async function rawLoop(script: string, registry: TestRegistry, refsFile: string, mode: 'head' | 'head+get'): Promise<RawRun> {
  registry.resetRequests();
  const r = await runChild([script, registry.url, String(SYNC_CONCURRENCY), refsFile, mode, MANIFEST_ACCEPT]);
  if (r.code !== 0) throw new Error(`raw loop exited ${r.code}: ${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout) as { ms: number; n: number; errors: number };
  if (out.errors > 0) throw new Error(`raw loop: ${out.errors} requests failed`);
  const run: RawRun = { mode, requests: registry.count(), ms: Math.round(out.ms), rate: out.n / (out.ms / 1000) };
  log(`raw ${mode}: ${fmt(run.rate, 0)} tags/s`);
  return run;
}

// ------------------------------------------------------------------------------------ part 1 and 2: sync

interface SyncPart {
  repositories: number;
  sizes: number[];
  fill: { tags: number; ms: number; perSecond: number }[];
  runs: SyncRun[];
  raw: RawRun[];
  rawHeadRate: number;
  rawHeadGetRate: number;
  load: { before: number[]; after: number[] };
}

async function syncPart(work: string, registry: TestRegistry, cluster: PostgresCluster | undefined, images: RegistryImage[]): Promise<SyncPart> {
  const before = load();
  const base = `http://${registry.directHost}`;
  const hook = pathToFileURL(join(work, 'rss-hook.mjs')).href;
  const rawScript = join(work, 'raw-loop.mjs');
  await writeFile(join(work, 'rss-hook.mjs'), RSS_HOOK);
  await writeFile(rawScript, RAW_LOOP);
  const blobs = await uploadBlobs(base);
  const fill: SyncPart['fill'] = [];
  const runs: SyncRun[] = [];
  const raw: RawRun[] = [];
  let filled = 0;
  for (const size of SYNC_SIZES) {
    const started = now();
    await fillRegistry(base, blobs, filled, size, images);
    const ms = now() - started;
    fill.push({ tags: size - filled, ms: Math.round(ms), perSecond: (size - filled) / (ms / 1000) });
    log(`registry filled to ${size} tags (${fmt((size - filled) / (ms / 1000), 0)} PUT/s)`);
    filled = size;
    const db = `sqlite:${join(work, `sync-${size}.db`)}`;
    if (size !== MAX_TAGS || MEMORY_ONLY) {
      runs.push(await runSync(registry, db, hook, 'sqlite', size, 'first'));
      if (cluster) runs.push(await runSync(registry, await createDatabase(cluster, `sync_${size}`), hook, 'postgres', size, 'first'));
      continue;
    }
    // The largest size: the throughput runs, with the raw baseline before, between and after.
    const refsFile = join(work, 'refs.json');
    await writeFile(refsFile, JSON.stringify(images.slice(0, size).map((m) => [m.repository, m.tag])));
    raw.push(await rawLoop(rawScript, registry, refsFile, 'head'));
    raw.push(await rawLoop(rawScript, registry, refsFile, 'head+get'));
    runs.push(await runSync(registry, db, hook, 'sqlite', size, 'first'));
    runs.push(await runSync(registry, db, hook, 'sqlite', size, 'second'));
    raw.push(await rawLoop(rawScript, registry, refsFile, 'head'));
    if (cluster) {
      const url = await createDatabase(cluster, `sync_${size}`);
      runs.push(await runSync(registry, url, hook, 'postgres', size, 'first'));
      runs.push(await runSync(registry, url, hook, 'postgres', size, 'second'));
      raw.push(await rawLoop(rawScript, registry, refsFile, 'head'));
    }
  }
  if (MEMORY_ONLY) return { repositories: REPOSITORIES, sizes: SYNC_SIZES, fill, runs, raw, rawHeadRate: NaN, rawHeadGetRate: NaN, load: { before, after: load() } };
  // The control for memory: as many tags, in repositories as small as the smallest deep run's.
  const wideBlobs = await uploadBlobs(base, 'wide');
  const wide: RegistryImage[] = [];
  const started = now();
  await fillRegistry(base, wideBlobs, 0, MAX_TAGS, wide, 'wide');
  fill.push({ tags: MAX_TAGS, ms: Math.round(now() - started), perSecond: MAX_TAGS / ((now() - started) / 1000) });
  log(`registry filled with ${MAX_TAGS} more tags in ${LAYOUT_REPOSITORIES.wide} repositories`);
  runs.push(await runSync(registry, `sqlite:${join(work, 'sync-wide.db')}`, hook, 'sqlite', MAX_TAGS, 'first', 'wide'));
  // And the whole registry, both layouts: twice the largest size, past the SQLite page cache's limit.
  runs.push(await runSync(registry, `sqlite:${join(work, 'sync-all.db')}`, hook, 'sqlite', 2 * MAX_TAGS, 'first', 'all'));
  const heads = raw.filter((r) => r.mode === 'head').map((r) => r.rate);
  return {
    repositories: REPOSITORIES,
    sizes: SYNC_SIZES,
    fill,
    runs,
    raw,
    rawHeadRate: heads.reduce((a, b) => a + b, 0) / heads.length,
    rawHeadGetRate: raw.find((r) => r.mode === 'head+get')?.rate ?? NaN,
    load: { before, after: load() },
  };
}

// ------------------------------------------------------------------------------------ part 4: webhook

interface WebhookRun {
  store: 'sqlite' | 'postgres';
  scenario: 'new manifest' | 'duplicate';
  inFlight: number;
  events: number;
  ms: number;
  eventsPerSecond: number;
  latency: Stats;
  outcomes: Record<string, number>;
  manifestGets: number;
}

function envelope(img: RegistryImage, host: string, at: number): string {
  return JSON.stringify({
    events: [
      {
        id: randomUUID(),
        timestamp: new Date(at).toISOString().replace('Z', '123456Z'),
        action: 'push',
        target: { mediaType: OCI_MANIFEST, digest: img.digest, size: img.size, length: img.size, repository: img.repository, url: `http://${host}/v2/${img.repository}/manifests/${img.digest}`, tag: img.tag },
        request: { id: randomUUID(), addr: '127.0.0.1:40000', host, method: 'PUT', useragent: 'containers/5.23.1 (github.com/containers/image)' },
        actor: {},
        source: { addr: 'registry:5000', instanceID: randomUUID() },
      },
    ],
  });
}

async function webhookPart(work: string, registry: TestRegistry, cluster: PostgresCluster | undefined, images: RegistryImage[]): Promise<{ runs: WebhookRun[]; load: { before: number[]; after: number[] } }> {
  const before = load();
  const runs: WebhookRun[] = [];
  const stores: ['sqlite' | 'postgres', string][] = [['sqlite', `sqlite:${join(work, 'webhook.db')}`]];
  if (cluster) stores.push(['postgres', await createDatabase(cluster, 'webhook_bench')]);
  const n = Math.min(WEBHOOK_EVENTS, Math.floor(images.length / 2));
  for (const [dialect, url] of stores) {
    const store = await openStore(url);
    try {
      const client = new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
      const app = createApp({ store, webhook: { secret: WEBHOOK_SECRET, client, registry: registry.host, concurrency: WEBHOOK_CONCURRENCY } });
      // Warm-up: a few events of their own (tags n*2 .. n*2+19), so the first timed request does not pay for start-up.
      const post = async (body: string): Promise<Record<string, number>> => {
        const res = await app.request('/api/v1/events', { method: 'POST', headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': EVENTS_MEDIA_TYPE }, body });
        const json = (await res.json()) as Record<string, number>;
        if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(json)}`);
        return json;
      };
      for (const img of images.slice(2 * n, 2 * n + 20)) await post(envelope(img, registry.host, T0));
      for (const [inFlight, slice] of [
        [1, images.slice(0, n)],
        [WEBHOOK_CONCURRENCY, images.slice(n, 2 * n)],
      ] as const) {
        const bodies = slice.map((img, k) => envelope(img, registry.host, T0 + k * 1000));
        for (const scenario of ['new manifest', 'duplicate'] as const) {
          registry.resetRequests();
          const outcomes: Record<string, number> = {};
          const latencies: number[] = [];
          const started = now();
          await pool(bodies.length, inFlight, async (k) => {
            const t = now();
            const result = await post(bodies[k] as string);
            latencies.push(now() - t);
            for (const key of ['applied', 'superseded', 'duplicate', 'unreadable']) outcomes[key] = (outcomes[key] ?? 0) + (result[key] ?? 0);
          });
          const ms = now() - started;
          const run: WebhookRun = {
            store: dialect,
            scenario,
            inFlight,
            events: bodies.length,
            ms: Math.round(ms),
            eventsPerSecond: bodies.length / (ms / 1000),
            latency: stats(latencies),
            outcomes,
            manifestGets: registry.count({ method: 'GET', kind: 'manifest' }),
          };
          runs.push(run);
          log(`webhook ${dialect} ${scenario} ×${inFlight}: ${fmt(run.eventsPerSecond, 0)} events/s, ${run.manifestGets} manifest GETs, ${JSON.stringify(outcomes)}`);
        }
      }
    } finally {
      await store.close();
    }
  }
  return { runs, load: { before, after: load() } };
}

// ------------------------------------------------------------------------------------ part 3: search

interface StoreSearch {
  store: 'sqlite' | 'postgres';
  target: number;
  manifests: number;
  repositories: number;
  seederCheck: { sample: number; identical: boolean; differing: string[] };
  readBackProblems: string[];
  indexMs: number;
  /** SQLite: ANALYZE; PostgreSQL: VACUUM (ANALYZE). */
  analyzeMs: number;
  catalogMiB: number;
  selectOne: Stats;
  kinds: KindTiming[];
  /** Where a search's time goes. */
  phases: PhaseTiming[];
  plans: PlanRecord[];
  /** SQLite only: the same without ANALYZE's statistics (tagtrail itself never runs it). */
  beforeAnalyze?: { kinds: KindTiming[]; plansSame: boolean; plans: PlanRecord[] };
  load: { before: number[]; after: number[] };
}

function generate(from: number, count: number): SeedManifest[] {
  return Array.from({ length: count }, (_, k) => seedManifest(from + k));
}

interface Seeded {
  manifests: number;
  repositories: number;
  /** Both stores loaded side by side from the same generated batches. */
  loadMs: number;
  generateMs: number;
  sqliteWriteMs: number;
  /** Time the loop waited for PostgreSQL after SQLite had written a batch. */
  postgresWaitMs: number;
  sqliteIndexMs: number;
  postgresDeriveMs: number;
  postgresIndexMs: number;
  postgresVacuumMs: number;
}

/**
 * Fills both catalogs with the same manifests, a batch at a time: generated once, sent to
 * PostgreSQL, written to SQLite while PostgreSQL works on it. Stops at SEARCH_TARGET or, at a
 * whole batch, when the load budget is spent. Then the indexes: PostgreSQL's in the database
 * while SQLite builds its own.
 */
async function seedBoth(work: string, sqlitePath: string, pgUrl: string): Promise<Seeded> {
  await (await openStore(`sqlite:${sqlitePath}`)).close();
  await (await openStore(pgUrl)).close();
  const derived = await seedDerived(work);
  const lite = new SqliteSeeder(sqlitePath, derived);
  const pgs = new PgSeeder(pgUrl, derived);
  try {
    await pgs.prepare();
    const started = now();
    let n = 0;
    let generateMs = 0;
    let sqliteWriteMs = 0;
    let postgresWaitMs = 0;
    let lastLog = started;
    while (n < SEARCH_TARGET && now() - started < SEARCH_LOAD_BUDGET_MS) {
      const g = now();
      const batch = generate(n, Math.min(SEED_BATCH, SEARCH_TARGET - n));
      generateMs += now() - g;
      const sent = pgs.insert(batch, n + 1);
      sqliteWriteMs += await lite.insert(batch, n + 1);
      const w = now();
      await sent;
      postgresWaitMs += now() - w;
      n += batch.length;
      if (now() - lastLog > 30_000 || n === SEARCH_TARGET) {
        lastLog = now();
        log(`search: ${n.toLocaleString('en')} manifests loaded into both stores in ${fmt((now() - started) / 1000, 0)} s`);
      }
    }
    const loadMs = now() - started;
    // PostgreSQL derives its rows and builds its indexes in the database; its first statements
    // are on their way before SQLite's index builds hold the event loop.
    const pgFinish = pgs.finish();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const sqliteIndexMs = lite.finish();
    log(`search: SQLite indexes built in ${fmt(sqliteIndexMs / 1000, 0)} s`);
    const { deriveMs, indexMs } = await pgFinish;
    log(`search: PostgreSQL rows derived in ${fmt(deriveMs / 1000, 0)} s, indexes in ${fmt(indexMs / 1000, 0)} s`);
    // As autovacuum would after a load like this; visibility maps make index-only scans index-only.
    const v = now();
    const db = await pgQuery(pgUrl);
    try {
      for (const table of LOADED_TABLES) await db.q(`VACUUM (ANALYZE) ${table}`);
    } finally {
      await db.close();
    }
    const postgresVacuumMs = now() - v;
    return {
      manifests: n,
      repositories: lite.repos.rows.size,
      loadMs: Math.round(loadMs),
      generateMs: Math.round(generateMs),
      sqliteWriteMs: Math.round(sqliteWriteMs),
      postgresWaitMs: Math.round(postgresWaitMs),
      sqliteIndexMs: Math.round(sqliteIndexMs),
      postgresDeriveMs: Math.round(deriveMs),
      postgresIndexMs: Math.round(indexMs),
      postgresVacuumMs: Math.round(postgresVacuumMs),
    };
  } finally {
    await pgs.close();
  }
}

async function measureStore(dialect: 'sqlite' | 'postgres', url: string, seeded: Seeded, seederCheck: StoreSearch['seederCheck']): Promise<StoreSearch> {
  const before = load();
  const n = seeded.manifests;
  let beforeAnalyze: StoreSearch['beforeAnalyze'];
  let analyzeMs = 0;
  let catalogMiB: number;
  if (dialect === 'sqlite') {
    // What a catalog written by tagtrail looks like: no sqlite_stat1. Its plans now; its timings
    // at the end, with the stats dropped again, once the cache is as warm as for the main run.
    const store = await openStore(url);
    try {
      beforeAnalyze = { kinds: [], plans: await explainAll(store, n), plansSame: false };
    } finally {
      await store.close();
    }
    const a = now();
    const db = new Database(url.slice('sqlite:'.length));
    db.pragma('analysis_limit = 1000');
    db.exec('ANALYZE');
    db.close();
    analyzeMs = now() - a;
    const path = url.slice('sqlite:'.length);
    catalogMiB = [path, `${path}-wal`].filter(existsSync).reduce((sum, f) => sum + statSync(f).size, 0) / 1048576;
  } else {
    analyzeMs = seeded.postgresVacuumMs;
    const db = await pgQuery(url);
    try {
      const size = (await db.q('SELECT pg_database_size(current_database()) AS n')) as { n: string }[];
      catalogMiB = Number(size[0]?.n) / 1048576;
    } finally {
      await db.close();
    }
  }
  let store = await openStore(url);
  try {
    const readBackProblems = await readBack(store, n, seeded.repositories);
    const plans = await explainAll(store, n);
    if (beforeAnalyze) beforeAnalyze.plansSame = JSON.stringify(beforeAnalyze.plans.map((p) => p.plan)) === JSON.stringify(plans.map((p) => p.plan));
    const selectOne = await timeSelectOne(store, QUERIES / 2);
    const kinds: KindTiming[] = [];
    for (const kind of KINDS) {
      const t = await timeKind(store, kind, n, QUERIES, 1 + KINDS.indexOf(kind));
      kinds.push(t);
      log(`search ${dialect} ${kind}: p50 ${fmt(t.stats.p50, 2)} ms, p95 ${fmt(t.stats.p95, 2)} ms, p99 ${fmt(t.stats.p99, 2)} ms`);
    }
    // The baseline before and after the searches, pooled.
    selectOne.push(...(await timeSelectOne(store, QUERIES / 2)));
    const phases: PhaseTiming[] = [];
    for (const kind of KINDS) phases.push(await timePhases(store, kind, n, PHASE_QUERIES, 21 + KINDS.indexOf(kind)));
    log(`search ${dialect} phases: ${phases.map((ph) => `${ph.kind} p95 plan ${fmt(ph.plan.p95, 2)} / ids ${fmt(ph.ids.p95, 2)} / hydrate ${fmt(ph.hydrate.p95, 2)} ms`).join('; ')}`);
    if (beforeAnalyze) {
      await store.close();
      const db = new Database(url.slice('sqlite:'.length));
      for (const t of ['sqlite_stat1', 'sqlite_stat4']) db.exec(`DROP TABLE IF EXISTS ${t}`);
      db.close();
      store = await openStore(url);
      for (const kind of KINDS) beforeAnalyze.kinds.push(await timeKind(store, kind, n, Math.round(QUERIES / 5), 11 + KINDS.indexOf(kind)));
      log(`search sqlite without ANALYZE: ${beforeAnalyze.kinds.map((k) => `${k.kind} p95 ${fmt(k.stats.p95, 2)} ms`).join(', ')}`);
    }
    return {
      store: dialect,
      target: SEARCH_TARGET,
      manifests: n,
      repositories: seeded.repositories,
      seederCheck,
      readBackProblems,
      indexMs: dialect === 'sqlite' ? seeded.sqliteIndexMs : seeded.postgresIndexMs,
      analyzeMs: Math.round(analyzeMs),
      catalogMiB: Math.round(catalogMiB),
      selectOne: stats(selectOne),
      kinds,
      phases,
      plans,
      ...(beforeAnalyze ? { beforeAnalyze } : {}),
      load: { before, after: load() },
    };
  } finally {
    await store.close();
  }
}

async function searchPart(work: string, cluster: PostgresCluster): Promise<{ seeded: Seeded; stores: StoreSearch[] }> {
  const checks: Record<string, StoreSearch['seederCheck']> = {};
  for (const dialect of ['sqlite', 'postgres'] as const) {
    log(`search ${dialect}: checking the seeder against putManifest + setTag on ${CHECK_SAMPLE} manifests`);
    const check = await checkSeeder(dialect, work, cluster);
    if (!check.identical) throw new Error(`the ${dialect} seeder writes other rows than the Store: ${check.differing.join(', ')}`);
    checks[dialect] = check;
  }
  const sqlitePath = join(work, 'search.db');
  const pgUrl = await createDatabase(cluster, 'search_bench');
  const seeded = await seedBoth(work, sqlitePath, pgUrl);
  const stores: StoreSearch[] = [];
  stores.push(await measureStore('sqlite', `sqlite:${sqlitePath}`, seeded, checks.sqlite as StoreSearch['seederCheck']));
  // Gigabytes: gone as soon as measured, so PostgreSQL has the page cache to itself.
  for (const f of ['search.db', 'search.db-wal', 'search.db-shm']) await rm(join(work, f), { force: true });
  stores.push(await measureStore('postgres', pgUrl, seeded, checks.postgres as StoreSearch['seederCheck']));
  return { seeded, stores };
}

// ------------------------------------------------------------------------------------ the report

const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en') : 'n/a');
const secs = (ms: number): string => `${fmt(ms / 1000, 0)} s`;

function syncMarkdown(p: SyncPart): string {
  const max = p.runs.filter((r) => r.tags === MAX_TAGS && r.layout === 'deep');
  const row = (r: SyncRun): string => {
    const first = r.pass === 'first';
    const gets = r.requests.manifestGet;
    const goal = first ? `one GET per new manifest (${int(r.tags)})` : '0 manifest GETs';
    const ok = first ? gets === r.tags : gets === 0;
    const rate = first ? `${fmt(r.summary.manifestsFetched / (r.summary.durationMs / 1000), 0)} manifests/s` : `${fmt(r.tagsPerSecond, 0)} tags/s`;
    return `| ${first ? 'first' : 'second (unchanged)'} sync, ${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${rate} | ${fmt(r.tagsPerSecond / p.rawHeadRate, 2)}× | ${first ? `${fmt(r.tagsPerSecond / p.rawHeadGetRate, 2)}×` : '—'} | ${int(gets)} | ${int(r.requests.manifestHead)} | ${int(r.requests.blobGet)} | ${fmt(r.summary.durationMs / 1000, 1)} s | ${goal} | ${passMiss(ok && r.summary.complete && r.summary.errorCount === 0)} |`;
  };
  const heads = p.raw.filter((r) => r.mode === 'head');
  return `## 1. Sync throughput: ${int(MAX_TAGS)} tags in ${p.repositories} repositories

\`tagtrail sync --concurrency ${SYNC_CONCURRENCY}\` (the built CLI, a process of its own) against CNCF distribution 2.8 on loopback,
behind the counting proxy; each tag is a distinct small OCI manifest with 15 GitLab CI annotations. Time is sync's own
(\`durationMs\`: catalog listing, tag lists, a HEAD per tag, a GET per new digest, catalog writes); node start-up is left out.
Baseline, same run, same proxy, same concurrency: a plain \`fetch\` loop in its own process, HEAD of every tag
(${heads.map((r) => `${fmt(r.rate, 0)}`).join(', ')} tags/s; mean **${fmt(p.rawHeadRate, 0)}/s**), and HEAD then GET by digest (${fmt(p.rawHeadGetRate, 0)} tags/s),
the least a first sync has to ask of the registry.

| run | rate | vs raw HEAD | vs raw HEAD+GET | manifest GETs | manifest HEADs | blob GETs | time | goal | result |
|---|---:|---:|---:|---:|---:|---:|---:|---|---|
${max.map(row).join('\n')}

There is no fixed throughput goal; the rate is shown against what the registry itself serves in the same run.
Filling the registry: ${p.fill.map((f) => `${int(f.tags)} manifests at ${fmt(f.perSecond, 0)} PUT/s`).join(', ')}.`;
}

function memoryMarkdown(p: SyncPart): string {
  const series = (store: 'sqlite' | 'postgres'): SyncRun[] => p.runs.filter((r) => r.pass === 'first' && r.store === store && r.layout === 'deep').sort((a, b) => a.tags - b.tags);
  const lite = series('sqlite');
  const pgs = series('postgres');
  const wide = p.runs.find((r) => r.layout === 'wide');
  const all = p.runs.find((r) => r.layout === 'all');
  const big = lite[lite.length - 1];
  const ratio = (runs: SyncRun[], field: 'peakRssMiB' | 'liveHeapMiB'): number => {
    const a = runs[0];
    const b = runs[runs.length - 1];
    return a && b ? b[field] / a[field] : NaN;
  };
  const goal = ratio(lite, 'peakRssMiB');
  const name = (r: SyncRun): string => `${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${int(r.tags)} tags in ${r.repositories} repositories${r.pass === 'second' ? ', second sync' : ''}`;
  const row = (r: SyncRun): string =>
    `| ${name(r)} | ${fmt(r.peakRssMiB, 1)} | ${fmt(r.liveHeapMiB, 1)} | ${fmt(r.peakHeapMiB, 1)} | ${fmt(r.peakExternalMiB, 1)} | ${r.rssTimelineMiB.map((x) => fmt(x, 0)).join(' / ')} | ${r.catalogMiB === undefined ? '—' : fmt(r.catalogMiB, 1)} | ${fmt(r.tagsPerSecond, 0)} |`;
  const seconds = p.runs.filter((r) => r.pass === 'second');
  const smallLite = lite[0];
  return `## 2. Resident memory of sync as the registry grows

Peak RSS of the \`tagtrail sync\` process (\`process.resourceUsage().maxRSS\` at exit), each a first sync into a fresh catalog,
the registry grown between runs by growing its ${p.repositories} repositories (${int((SYNC_SIZES[0] as number) / p.repositories)} to ${int(MAX_TAGS / p.repositories)} tags each). Inside the process,
every 50 ms: the V8 heap in use, and after each major GC the heap still in use (live objects); RSS from /proc.
${
    MEMORY_ONLY
      ? `This run measured memory alone (\`BENCH_CATALOG_PARTS=memory\`): ${p.sizes.map(int).join(' and ')} tags, SQLite and PostgreSQL (its cache lives in the server, not in this process),
without the throughput runs and the controls of a full run.`
      : `Controls: the same runs into PostgreSQL (its cache lives in the server, not in this process); ${int(MAX_TAGS)} tags spread
over ${LAYOUT_REPOSITORIES.wide} repositories of ${int(MAX_TAGS / LAYOUT_REPOSITORIES.wide)} tags (as small as in the smallest deep run); and the whole registry,
both layouts, ${int(2 * MAX_TAGS)} tags in ${LAYOUT_REPOSITORIES.all} repositories.`
  }

| run | peak RSS MiB | live heap MiB | peak heap MiB | peak buffers MiB | RSS at 25 / 50 / 75 / 100 % MiB | catalog file MiB | tags/s |
|---|---:|---:|---:|---:|---|---:|---:|
${[...lite, ...pgs, ...(wide ? [wide] : []), ...(all ? [all] : []), ...seconds].map(row).join('\n')}

| figure | value | goal | result |
|---|---:|---|---|
| peak RSS, SQLite, ${int(lite[lite.length - 1]?.tags ?? NaN)} / ${int(lite[0]?.tags ?? NaN)} tags | ${fmt(goal, 2)}× | flat: at most ${RSS_RATIO_GOAL}× | ${passMiss(goal <= RSS_RATIO_GOAL)}${goal > RSS_RATIO_GOAL ? ` (grew ${fmt((goal - 1) * 100, 0)} %, ${fmt((RSS_RATIO_GOAL - 1) * 100, 0)} % allowed)` : ''} |
| live heap, SQLite, same runs | ${fmt(ratio(lite, 'liveHeapMiB'), 2)}× | — | — |
| peak RSS, PostgreSQL, ${int(pgs[pgs.length - 1]?.tags ?? NaN)} / ${int(pgs[0]?.tags ?? NaN)} tags | ${fmt(ratio(pgs, 'peakRssMiB'), 2)}× | — | — |
| live heap, PostgreSQL, same runs | ${fmt(ratio(pgs, 'liveHeapMiB'), 2)}× | — | — |${
    MEMORY_ONLY
      ? ''
      : `
| peak RSS, SQLite, ${int(MAX_TAGS)} tags in small repositories / ${int(smallLite?.tags ?? NaN)} tags | ${fmt((wide?.peakRssMiB ?? NaN) / (smallLite?.peakRssMiB ?? NaN), 2)}× | — | — |
| live heap, same runs | ${fmt((wide?.liveHeapMiB ?? NaN) / (smallLite?.liveHeapMiB ?? NaN), 2)}× | — | — |
| peak RSS, SQLite, the whole registry (${int(all?.tags ?? NaN)} tags) / ${int(big?.tags ?? NaN)} tags | ${fmt((all?.peakRssMiB ?? NaN) / (big?.peakRssMiB ?? NaN), 2)}× | — | — |`
  }

SQLite's page cache is native memory inside the RSS; sync sets it to 8 MiB (serve keeps 64 MiB, for search), so it is full early in a run of any size and does not grow with the catalog file.`;
}

function searchMarkdown(seeded: Seeded, results: StoreSearch[]): string {
  const sections = results.map((r) => {
    const name = r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    const reached = r.manifests >= r.target ? `${int(r.manifests)} manifests` : `**${int(r.manifests)} manifests: the load stopped at its time budget short of ${int(r.target)}**; the figures are at this size`;
    const rows = r.kinds.map((k) => {
      const ok = k.stats.p95 < P95_GOAL_MS;
      const miss = ok ? '' : ` (${fmt(k.stats.p95 / P95_GOAL_MS, 1)}× the goal)`;
      return `| ${KIND_LABEL[k.kind]} | ${fmt(k.stats.p50, 2)} | ${fmt(k.stats.p95, 2)} | ${fmt(k.stats.p99, 2)} | ${fmt(k.stats.max, 1)} | ${fmt(k.meanItems, 1)} | ${k.fullPage.n ? `${fmt(k.fullPage.p95, 2)} (${k.fullPage.n})` : '—'} | ${k.partPage.n ? `${fmt(k.partPage.p95, 2)} (${k.partPage.n})` : '—'} | ${int(k.stats.p50 / r.selectOne.p50)}× | < ${P95_GOAL_MS} ms | ${passMiss(ok)}${miss} |`;
    });
    const phases = r.phases.map(
      (ph) =>
        `| ${KIND_LABEL[ph.kind]} | ${fmt(ph.plan.p50, 2)} / ${fmt(ph.plan.p95, 2)} | ${fmt(ph.ids.p50, 2)} / ${fmt(ph.ids.p95, 2)} | ${fmt(ph.hydrate.p50, 2)} / ${fmt(ph.hydrate.p95, 2)} | ${fmt(ph.hydrateSeparate.p50, 2)} / ${fmt(ph.hydrateSeparate.p95, 2)} | ${fmt(ph.probe.p50, 2)} / ${fmt(ph.probe.p95, 2)} |`,
    );
    const plans = r.plans
      .map((p) => `- ${p.name}: ${p.usesIndex ? 'reads tag_terms through its index' : '**does not use the tag_terms indexes**'}${p.fullScan ? ', **with a full scan**' : ', no full scan'}\n\n  \`\`\`\n${p.plan.map((l) => `  ${l}`).join('\n')}\n  \`\`\``)
      .join('\n');
    const before = r.beforeAnalyze
      ? `\nWithout ANALYZE's statistics, as tagtrail leaves a catalog (it never runs ANALYZE): the plans ${
          r.beforeAnalyze.plansSame ? 'are the same as with them' : '**differ** from those with them (both in the JSON)'
        }; with the statistics dropped again after the run above (same warm cache), ${Math.round(QUERIES / 5)} queries a kind: ${r.beforeAnalyze.kinds
          .map((k) => `${KIND_LABEL[k.kind]} p95 ${fmt(k.stats.p95, 2)} ms`)
          .join(', ')}.\n`
      : '';
    return `### ${name}: ${reached}

${int(r.repositories)} repositories, one tag per manifest, 15 annotations each (${int(r.manifests * 15)} annotation rows and as many search terms).
Seeder checked against putManifest + setTag on ${r.seederCheck.sample} manifests: ${r.seederCheck.identical ? 'every row identical' : `**differs in ${r.seederCheck.differing.join(', ')}**`}; read back through the Store API: ${r.readBackProblems.length === 0 ? 'as written' : `**${r.readBackProblems.join('; ')}**`}.
Indexes ${secs(r.indexMs)}${r.store === 'postgres' ? ` (after deriving annotations, terms and tag events in SQL: ${secs(seeded.postgresDeriveMs)})` : ''}, ${r.store === 'sqlite' ? 'ANALYZE (analysis_limit 1000)' : 'VACUUM (ANALYZE)'} ${secs(r.analyzeMs)}; catalog ${int(r.catalogMiB)} MiB.

\`searchImages\` end to end (the query, its probe count where it can change the plan, and reading the 50 results' details in one statement), ${QUERIES} queries a kind after ${WARMUP} warm-up, random existing values with ${NO_MATCH_SHARE * 100} % made-up ones.
Baseline \`SELECT 1\` through the same driver: p50 ${fmt(r.selectOne.p50, 3)} ms, p95 ${fmt(r.selectOne.p95, 3)} ms.

| query | p50 ms | p95 ms | p99 ms | max ms | results (mean) | p95 ms, full pages (n) | p95 ms, other queries (n) | p50 / SELECT 1 | goal p95 | result |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|
${rows.join('\n')}

Wrong answers (a matching value not found, or a made-up one found): ${r.kinds.map((k) => `${k.kind} ${k.wrong}`).join(', ')}.

Where the time goes, p50 / p95 ms over ${PHASE_QUERIES} more queries a kind (searchImages' own steps, timed one by one): planning (the
capped count that picks the driving filter, skipped for a value filter without a repository), the id query, and reading the page's details (hydrate,
one statement). For comparison on the same pages: the details read a statement per table as before (the tags, then the store's
loadViews: manifests, children, annotations, labels), and the capped count that planning used to run for every query.

| query | planning | id query | details of the page | details, a statement per table | the capped count |
|---|---:|---:|---:|---:|---:|
${phases.join('\n')}
${before}
Plans (\`explainSearch\`):

${plans}`;
  });
  const reached = seeded.manifests >= SEARCH_TARGET ? '' : ` (reached: ${int(seeded.manifests)})`;
  return `## 3. Search latency at ${int(SEARCH_TARGET)} indexed manifests${reached}

Both catalogs were filled side by side from the same generated manifests, ${int(SEED_BATCH)} a batch, by a bulk seeder writing the
stores' own tables (SQLite: prepared statements, one transaction a batch; PostgreSQL: INSERT … SELECT FROM unnest(…), the
annotations, search terms and tag events then derived from the manifests in SQL), secondary indexes dropped for the load and
created again from their own definitions. Load ${secs(seeded.loadMs)} for both (generating ${secs(seeded.generateMs)}, SQLite writing
${secs(seeded.sqliteWriteMs)}, waiting for PostgreSQL ${secs(seeded.postgresWaitMs)}); load budget ${secs(SEARCH_LOAD_BUDGET_MS)}.

${sections.join('\n\n')}`;
}

function webhookMarkdown(runs: WebhookRun[]): string {
  const rows = runs.map((r) => {
    const goal = r.scenario === 'new manifest' ? `one manifest GET per event (${r.events})` : '0 manifest GETs';
    const expected = r.scenario === 'new manifest' ? r.manifestGets === r.events && r.outcomes.applied === r.events : r.manifestGets === 0 && r.outcomes.duplicate === r.events;
    return `| ${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${r.scenario} | ${r.inFlight} | ${int(r.events)} | **${fmt(r.eventsPerSecond, 0)}** | ${fmt(r.latency.p50, 2)} | ${fmt(r.latency.p95, 2)} | ${int(r.manifestGets)} | ${Object.entries(r.outcomes).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ')} | ${goal} | ${passMiss(expected)} |`;
  });
  return `## 4. Webhook ingest

\`createApp(...).request('/api/v1/events')\` in process, one tag push per envelope (as distribution sends them), the manifest read
from the real registry through the counting proxy. "new manifest": the registry holds the manifest, the catalog does not yet
(a GET, putManifest, setTag); "duplicate": the same envelope again (no registry read). One request at a time (distribution's
queue per endpoint) and ${WEBHOOK_CONCURRENCY} at a time.

| store | scenario | in flight | events | events/s | p50 ms | p95 ms | manifest GETs | outcomes | goal | result |
|---|---|---:|---:|---:|---:|---:|---:|---|---|---|
${rows.join('\n')}

There is no fixed rate goal; the request counts are the checks.`;
}

// ------------------------------------------------------------------------------------ main

export default async function bench(): Promise<void> {
  const startedAll = now();
  if (!existsSync(new URL('../dist/cli.js', import.meta.url))) throw new Error('the CLI is not built: run npm run build (npm run bench does)');
  const work = await makeTempDir('bench-catalog');
  const loadAtStart = load();
  const seconds: Record<string, number> = {};
  let registry: TestRegistry | undefined;
  let cluster: PostgresCluster | undefined;
  let sync: SyncPart | undefined;
  let webhook: Awaited<ReturnType<typeof webhookPart>> | undefined;
  let search: Awaited<ReturnType<typeof searchPart>> | undefined;
  try {
    cluster = await startPostgres();
    if (PARTS.has('sync') || PARTS.has('memory') || PARTS.has('webhook')) {
      registry = await startRegistry({ logLevel: 'warn' });
      const images: RegistryImage[] = [];
      if (PARTS.has('sync') || PARTS.has('memory')) {
        const t = now();
        const running = registry;
        sync = await syncPart(work, running, cluster, images).catch((err: Error) => {
          // A registry that stopped answering says why in its own log.
          throw new Error(`${err.message}\nthe registry's last lines:\n${running.log().slice(-15).join('\n')}`, { cause: err });
        });
        seconds.sync = (now() - t) / 1000;
      } else {
        await fillRegistry(`http://${registry.directHost}`, await uploadBlobs(`http://${registry.directHost}`), 0, 2 * WEBHOOK_EVENTS + 20, images);
      }
      if (PARTS.has('webhook')) {
        const t = now();
        webhook = await webhookPart(work, registry, cluster, images);
        seconds.webhook = (now() - t) / 1000;
      }
      await registry.stop();
      registry = undefined;
    }
    if (PARTS.has('search')) {
      const t = now();
      search = await searchPart(work, cluster);
      seconds.search = (now() - t) / 1000;
    }
  } finally {
    await registry?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await removeTempDir(work);
  }
  seconds.total = (now() - startedAll) / 1000;
  const loadAtEnd = load();

  const partLoads: [string, number][] = [];
  if (sync) partLoads.push(['sync', sync.load.before[0] as number]);
  if (webhook) partLoads.push(['webhook', webhook.load.before[0] as number]);
  for (const st of search?.stores ?? []) partLoads.push([`search (${st.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, st.load.before[0] as number]);
  const parts = [sync && !MEMORY_ONLY ? syncMarkdown(sync) : '', sync ? memoryMarkdown(sync) : '', search ? searchMarkdown(search.seeded, search.stores) : '', webhook ? webhookMarkdown(webhook.runs) : ''].filter((s) => s !== '');
  const md = `# catalog benchmark

The four goals of the catalog issue, each against a baseline measured in the same run (the machine is shared and noisy:
compare the ratios rather than the absolute figures). ${cpus().length} CPUs; load average (1, 5, 15 min) ${loadAtStart.join(', ')} at the start,
${loadAtEnd.join(', ')} at the end${
    partLoads.length ? `, and the 1-minute figure as each part began: ${partLoads.map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ')}` : ''
  }. The bench took ${fmt(seconds.total ?? NaN, 0)} s (${Object.entries(seconds)
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${k} ${fmt(v, 0)} s`)
    .join(', ')}).

${parts.join('\n\n')}
`;
  // A run of some parts only is written beside the full run's results, never over them.
  const full = ['sync', 'search', 'webhook'].every((p) => PARTS.has(p));
  const name = full ? 'catalog' : `catalog-${[...PARTS].sort().join('-')}`;
  await writeResults(name, { cpus: cpus().length, loadAverage: { start: loadAtStart, end: loadAtEnd }, seconds, sync, search, webhook }, md);
}
