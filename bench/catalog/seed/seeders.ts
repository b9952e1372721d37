import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore } from '../../../src/catalog/open.js';
import { OCI_MANIFEST } from '../../../src/oci/mediatypes.js';
import { backfillInsightWeeks } from '../../../src/catalog/sql/insight-weeks.js';
import { backfillInsightEvidence } from '../../../src/catalog/sql/evidence-weeks.js';
import type { Param, Queryable } from '../../../src/catalog/sql/driver.js';
import { type Build, type SeedManifest, now, pool, recordOf, seedEvidence, seedManifest } from '../common.js';
import { sqliteQuery } from './check.js';


/** The insight columns putManifest derives for a manifest (builder, build-details source, …). */
export const DERIVED_COLUMNS = ['builder', 'builder_confidence', 'builder_evidence', 'build_source', 'media_family', 'platform_count'] as const;
type SeedDerived = Record<(typeof DERIVED_COLUMNS)[number], string | number | null>;

/**
 * What putManifest derives for a seed manifest. Every seed manifest has one shape (an annotated
 * OCI image manifest whose config is not read), so the Store's own answer for one holds for all;
 * checkSeeder compares the columns row for row. Written by the seeders, the store finds nothing
 * to backfill when it opens the seeded catalog.
 */
export async function seedDerived(work: string): Promise<SeedDerived> {
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

// The seeders write, per manifest, exactly the rows a webhook's pushTag with the manifest and its
// pusher (manifests, annotations, manifest_pushers; tags, tag_events, tag_terms, the repository's
// row and counters, the insights aggregates) and, for every 10th, a build report's
// recordVerifications (build_verifications) write for an annotated image manifest
// (common.ts seedEvidence): checkSeeder() compares them row for row on a sample. Secondary
// indexes (and, on PostgreSQL, keys and foreign keys) are dropped for the load and created again
// from their own saved definitions, so the schema ends up as the migrations made it.

/** The tables a seeder writes. */
export const LOADED_TABLES = ['repositories', 'manifests', 'annotations', 'tags', 'tag_events', 'tag_terms'];

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
export function terms(b: Build): [string, string][] {
  return Object.entries(b.annotations).sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0));
}

export class SqliteSeeder {
  private readonly db: Database.Database;
  private readonly indexes: { name: string; sql: string }[];
  readonly repos = new RepoTable();
  private readonly statements: Record<'manifest' | 'tag' | 'event' | 'pusher' | 'verification', Database.Statement>;
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
      pusher: this.db.prepare('INSERT INTO manifest_pushers (digest, user_agent, pusher, seen_at) VALUES (?, ?, ?, ?)'),
      verification: this.db.prepare(
        'INSERT INTO build_verifications (repository, digest, issuer, project_path, pipeline_id, job_id, sha, ref, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
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
      const { pushedBy, verification: v } = seedEvidence(b);
      s.pusher.run(m.digest, pushedBy.userAgent, pushedBy.pusher, b.at);
      if (v) s.verification.run(b.repository, m.digest, v.issuer, v.projectPath, v.pipelineId, v.jobId, v.sha, v.ref, v.at.getTime());
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

  /** The repositories, then the indexes again, then the insights aggregates. Returns the ms the indexes and aggregates took. */
  async finish(checkKeys = false): Promise<number> {
    const insert = this.db.prepare('INSERT INTO repositories (id, name, first_seen, last_seen, updated_at, live_tags, build_tags) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const [name, r] of this.repos.rows) insert.run(r.id, name, r.first, r.last, r.last, r.count, r.count);
    })();
    const started = now();
    for (const ix of this.indexes) this.db.exec(ix.sql);
    // The insights report's weekly aggregates, both levels, as ingest would have kept them (counted in the index time).
    const db = this.db;
    const q: Queryable = {
      all: async <T,>(sql: string, params: readonly Param[] = []) => db.prepare(sql).all(...params) as T[],
      run: async (sql: string, params: readonly Param[] = []) => db.prepare(sql).run(...params).changes,
    };
    db.exec('BEGIN');
    try {
      await backfillInsightWeeks(q);
      await backfillInsightEvidence(q);
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
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

export class PgSeeder {
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
    const evidence = batch.map((x) => ({ x, e: seedEvidence(x.b) }));
    const verified = evidence.filter(({ e }) => e.verification !== undefined);
    await Promise.all([
      this.pool.query(
        `INSERT INTO manifest_pushers (digest, user_agent, pusher, seen_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])`,
        [digests, evidence.map(({ e }) => e.pushedBy.userAgent), evidence.map(({ e }) => e.pushedBy.pusher), ats].map(arrayLiteral),
      ),
      this.pool.query(
        `INSERT INTO build_verifications (repository, digest, issuer, project_path, pipeline_id, job_id, sha, ref, verified_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[])`,
        [
          verified.map(({ x }) => x.b.repository),
          verified.map(({ x }) => x.digest),
          ...(['issuer', 'projectPath', 'pipelineId', 'jobId', 'sha', 'ref'] as const).map((k) => verified.map(({ e }) => e.verification![k])),
          verified.map(({ e }) => e.verification!.at.getTime()),
        ].map(arrayLiteral),
      ),
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
    // The insights report's weekly aggregates, as ingest would have kept them (counted in the index time).
    const client = await this.pool.connect();
    const numbered = (sql: string): string => {
      let n = 0;
      return sql.replace(/\?/g, () => `$${++n}`);
    };
    const q: Queryable = {
      all: async <T,>(sql: string, params: readonly Param[] = []) => (await client.query(numbered(sql), [...params])).rows as T[],
      run: async (sql: string, params: readonly Param[] = []) => (await client.query(numbered(sql), [...params])).rowCount ?? 0,
    };
    try {
      await client.query('BEGIN');
      await backfillInsightWeeks(q);
      await backfillInsightEvidence(q);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const indexMs = now() - started;
    await this.pool.end();
    return { deriveMs, indexMs };
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

/** Every row of the catalog with ids replaced by what they stand for, and the schema; for comparing two catalogs. */
