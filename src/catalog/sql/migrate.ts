// Brings a catalog's schema up to date: each pending migration (migrations/sqlite.ts,
// migrations/postgres.ts) in one transaction with the ledger, then the backfills that derive in
// code what older versions did not store.
import { StoreError } from '../../errors.js';
import { isIndexMediaType } from '../../oci/mediatypes.js';
import type { Migration } from '../migrations/types.js';
import { IN_CHUNK, type Driver, type Queryable, type Row, num } from './driver.js';
import { backfillInsightEvidence } from './evidence-weeks.js';
import { backfillInsightWeeks } from './insight-weeks.js';
import { deriveManifests } from './insights.js';
import { rebuildTermsWithKeys } from './terms.js';
import { DOTTED_KEYS } from '../../details/keys.js';

/** What a migration does in code, after its statements and in its transaction: by version. */
const IN_CODE: ReadonlyMap<number, (q: Queryable) => Promise<void>> = new Map([
  // GitLab's dotted keys became searchable (details/keys.ts): the tags that carry one get the terms.
  [9, (q: Queryable) => rebuildTermsWithKeys(q, DOTTED_KEYS.map(([dotted]) => dotted))],
  // The insights report's weekly aggregates (10) and their namespace level (11), counted from
  // what the catalog already holds. Migration 11 refills every aggregate, so a catalog before 10
  // is filled once, by 11, in the same transaction.
  [11, backfillInsightWeeks],
  // Verified images and images by pusher as weekly aggregates (12), counted from the tags,
  // verifications and pushers already stored.
  [12, backfillInsightEvidence],
]);

/** Applies pending migrations; returns the versions applied. */
export async function migrate(db: Driver, migrations: readonly Migration[]): Promise<number[]> {
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const applied = await db.write(async (q) => {
    await q.run(db.dialect.migrationsTable);
    const done = new Set((await q.all<{ version: unknown }>('SELECT version FROM schema_migrations')).map((r) => num(r.version)));
    const newest = Math.max(0, ...done);
    if (newest > known) {
      throw new StoreError(`the catalog database has schema version ${newest}, newer than this tagtrail knows (${known})`, {
        hint: 'upgrade tagtrail, or point it at another database',
      });
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      for (const statement of m.statements) await q.run(statement);
      await IN_CODE.get(m.version)?.(q);
      await q.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
      applied.push(m.version);
    }
    return applied;
  });
  await backfillDerived(db);
  return applied;
}

/** Derives the insight columns of manifests stored before they existed, a batch per transaction. */
async function backfillDerived(db: Driver): Promise<void> {
  // Platform manifests before indexes: an index's builder reads its children's.
  for (const indexes of [false, true]) {
    let after = 0;
    for (;;) {
      const rows = await db.all<Row>(`SELECT id, digest, media_type FROM manifests WHERE builder IS NULL AND id > ? ORDER BY id LIMIT ${IN_CHUNK}`, [after]);
      if (rows.length === 0) break;
      after = num(rows[rows.length - 1]!.id);
      const batch = rows.filter((r) => isIndexMediaType(r.media_type as string) === indexes).map((r) => r.digest as string);
      if (batch.length > 0) await db.write((q) => deriveManifests(q, new Set(batch), new Set()));
    }
  }
}
