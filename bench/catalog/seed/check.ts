import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Store } from '../../../src/catalog/store.js';
import { openStore } from '../../../src/catalog/open.js';
import { type PostgresCluster, createDatabase } from '../../../test/helpers/postgres.js';
import { prng, recordOf, seedEvidence, seedManifest } from '../common.js';
import { DERIVED_COLUMNS, PgSeeder, SqliteSeeder, seedDerived, terms } from './seeders.js';
import { CHECK_SAMPLE } from '../settings.js';

const DUMP_QUERIES: Record<string, string> = {
  repositories: 'SELECT name, first_seen, last_seen, updated_at, live_tags, build_tags FROM repositories ORDER BY name',
  manifests: `SELECT digest, media_type, size, raw, artifact_type, config_digest, has_build, ${DERIVED_COLUMNS.join(', ')} FROM manifests ORDER BY digest`,
  annotations: 'SELECT m.digest, a.key, a.value FROM annotations a JOIN manifests m ON m.id = a.manifest_id ORDER BY m.digest, a.key',
  tags: `SELECT r.name AS repository, g.name, g.digest, g.deleted_at, g.updated_at, g.last_kind, g.last_digest, g.first_seen, g.last_seen, g.has_build
         FROM tags g JOIN repositories r ON r.id = g.repository_id ORDER BY r.name, g.name`,
  tag_events: 'SELECT r.name AS repository, g.name, e.at, e.kind, e.digest FROM tag_events e JOIN tags g ON g.id = e.tag_id JOIN repositories r ON r.id = g.repository_id ORDER BY 1, 2, 3',
  tag_terms: `SELECT r.name AS repository, g.name, tr.name AS term_repository, t.key, t.value, t.value_rest, t.updated_at
              FROM tag_terms t JOIN tags g ON g.id = t.tag_id JOIN repositories r ON r.id = g.repository_id JOIN repositories tr ON tr.id = t.repository_id ORDER BY 1, 2, 4, 5`,
  insight_images: `SELECT r.name AS repository, i.digest, i.week, i.builder, i.build_source, i.media_family, i.multi, i.verified, i.pusher
                   FROM insight_images i JOIN repositories r ON r.id = i.repository_id ORDER BY 1, 2`,
  manifest_pushers: 'SELECT digest, user_agent, pusher, seen_at FROM manifest_pushers ORDER BY digest',
  build_verifications: 'SELECT repository, digest, issuer, project_path, pipeline_id, job_id, sha, ref, verified_at FROM build_verifications ORDER BY repository, digest',
  insight_evidence: `SELECT r.name AS repository, a.week, a.prev_week, a.verified, a.pusher, a.images
                     FROM insight_evidence a JOIN repositories r ON r.id = a.repository_id ORDER BY 1, 2, 3, 4, 5`,
  insight_namespace_evidence: 'SELECT week, namespace, prev_week, verified, pusher, images FROM insight_namespace_evidence ORDER BY 1, 2, 3, 4, 5',
  insight_counts: `SELECT r.name AS repository, a.week, a.builder, a.build_source, a.media_family, a.multi, a.images
                   FROM insight_counts a JOIN repositories r ON r.id = a.repository_id ORDER BY 1, 2, 3, 4, 5, 6`,
  insight_platforms: `SELECT r.name AS repository, a.week, a.os, a.architecture, a.variant, a.images
                      FROM insight_platforms a JOIN repositories r ON r.id = a.repository_id ORDER BY 1, 2, 3, 4, 5`,
  insight_namespace_counts: 'SELECT week, namespace, builder, build_source, media_family, multi, images FROM insight_namespace_counts ORDER BY 1, 2, 3, 4, 5, 6',
  insight_namespace_platforms: 'SELECT week, namespace, os, architecture, variant, images FROM insight_namespace_platforms ORDER BY 1, 2, 3, 4, 5',
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

export function sqliteQuery(path: string): { q: Query; close: () => void } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  return { q: async (sql) => db.prepare(sql).all(), close: () => db.close() };
}

export async function pgQuery(url: string): Promise<{ q: Query; close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return { q: async (sql) => (await client.query(sql)).rows, close: () => client.end() };
}

/** Fills two fresh catalogs with the same sample, one through pushTag (with the pusher) and recordVerifications, one through the seeder; compares every row. */
export async function checkSeeder(dialect: 'sqlite' | 'postgres', work: string, cluster: PostgresCluster | undefined): Promise<{ sample: number; identical: boolean; differing: string[] }> {
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
      const { pushedBy, verification } = seedEvidence(m.b);
      await api.pushTag({ repository: m.b.repository, tag: m.b.tag, digest: m.digest, at: new Date(m.b.at), manifest: recordOf(m), pushedBy });
      if (verification) await api.recordVerifications([{ repository: m.b.repository, digest: m.digest }], verification);
    }
  } finally {
    await api.close();
  }
  await (await openStore(bulkUrl)).close();
  if (dialect === 'sqlite') {
    const seeder = new SqliteSeeder(bulkUrl.slice('sqlite:'.length), await seedDerived(work));
    await seeder.insert(sample, 1);
    await seeder.finish(true);
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
export async function readBack(store: Store, n: number, repositories: number): Promise<string[]> {
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

