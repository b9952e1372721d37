// The weekly aggregates the insights report reads (docs/insights.md): per repository, the week
// each image first appeared (insight_images), and per repository and week the images counted by
// builder, build-details source, media family and multi-platform (insight_counts) and the
// platforms of multi-platform images (insight_platforms). Every writer that changes what is
// counted (a tag event, a manifest's derived columns) calls in here in its own transaction; a
// changed repository-week is recounted whole from the base tables, which is cheap because a
// repository-week holds few images, and cannot drift from a recount.
import { REFERENCE_PLATFORM } from '../../oci/manifest.js';
import { SET } from '../tagstate.js';
import { IN_CHUNK, type Param, type Queryable, type Row, chunks, marks, num } from './driver.js';

/** Weeks start on Monday 00:00 UTC; 1970-01-05 was the first Monday after the epoch. */
export const WEEK_ORIGIN = 4 * 86_400_000;
export const WEEK_MS = 7 * 86_400_000;

/** The week number of a time column, as stored in the aggregates. */
function weekOf(column: string): string {
  return `(${column} - ${WEEK_ORIGIN}) / ${WEEK_MS}`;
}

/** The week number of a week's start (ms). */
export function weekNumber(start: number): number {
  return Math.round((start - WEEK_ORIGIN) / WEEK_MS);
}

const COUNTS_COLUMNS = 'repository_id, week, builder, build_source, media_family, multi, images';
const PLATFORMS_COLUMNS = 'repository_id, week, os, architecture, variant, images';

/** What the aggregates hold for the images of insight_images `i` matching `where`. */
function countsSelect(where: string): string {
  return `SELECT i.repository_id, i.week, COALESCE(m.builder, ''), COALESCE(m.build_source, ''), COALESCE(m.media_family, ''),
            CASE WHEN m.platform_count > 1 THEN 1 ELSE 0 END, count(*)
     FROM insight_images i JOIN manifests m ON m.digest = i.digest WHERE ${where}
     GROUP BY i.repository_id, i.week, COALESCE(m.builder, ''), COALESCE(m.build_source, ''), COALESCE(m.media_family, ''), CASE WHEN m.platform_count > 1 THEN 1 ELSE 0 END`;
}

// Reference manifests (isReferenceDescriptor) are not platforms.
function platformsSelect(where: string): string {
  return `SELECT i.repository_id, i.week, c.os, COALESCE(c.architecture, ''), COALESCE(c.variant, ''), count(*)
     FROM insight_images i JOIN manifests m ON m.digest = i.digest JOIN manifest_children c ON c.parent_id = m.id
     WHERE ${where} AND m.platform_count > 1 AND c.os IS NOT NULL AND NOT (c.os = '${REFERENCE_PLATFORM}' AND c.architecture = '${REFERENCE_PLATFORM}')
     GROUP BY i.repository_id, i.week, c.os, COALESCE(c.architecture, ''), COALESCE(c.variant, '')`;
}

/** The statements that fill the aggregates from the base tables: the migration that added them, and the bench seeders. */
export const INSIGHT_WEEKS_BACKFILL: readonly string[] = [
  'DELETE FROM insight_platforms',
  'DELETE FROM insight_counts',
  'DELETE FROM insight_images',
  `INSERT INTO insight_images (repository_id, digest, week)
   SELECT g.repository_id, e.digest, ${weekOf('min(e.at)')} FROM tag_events e JOIN tags g ON g.id = e.tag_id WHERE e.kind = ${SET} GROUP BY g.repository_id, e.digest`,
  `INSERT INTO insight_counts (${COUNTS_COLUMNS}) ${countsSelect('1 = 1')}`,
  `INSERT INTO insight_platforms (${PLATFORMS_COLUMNS}) ${platformsSelect('1 = 1')}`,
];

export async function backfillInsightWeeks(q: Queryable): Promise<void> {
  for (const statement of INSIGHT_WEEKS_BACKFILL) await q.run(statement);
}

/**
 * Recounts to do at the end of a store transaction (deferRecounts): the repository-weeks are
 * then locked (driver.ts LOCK_LEVELS, last) and recounted just before the commit, so two
 * transactions that change the same week recount it one after the other, the second seeing the
 * first's rows.
 */
const deferred = new WeakMap<Queryable, Set<string>>();

export function deferRecounts(q: Queryable): void {
  deferred.set(q, new Set());
}

/** The recounts deferRecounts gathered, under their week locks. */
export async function recountDeferred(q: Queryable): Promise<void> {
  const weeks = deferred.get(q);
  deferred.delete(q);
  if (!weeks || weeks.size === 0) return;
  if (q.lock) await q.lock([...weeks].map((key) => ({ level: 'week', key, exclusive: true })));
  await recount(q, weeks);
}

/**
 * Tags of this repository were set to these digests at `at`: their images' first weeks may have
 * moved (earlier only: a first week is the minimum over the image's sets in the repository).
 * Beside other writers, each image's row is locked (FOR UPDATE, or inserted) before it is
 * compared, so two transactions tagging one image at once take turns.
 */
export async function imagesTagged(q: Queryable, repoId: number, digests: Iterable<string>, at: number): Promise<void> {
  const weeks = new Set<string>();
  // As weekOf in SQL: integer division truncates.
  const week = Math.trunc((at - WEEK_ORIGIN) / WEEK_MS);
  for (const part of chunks([...new Set(digests)].sort(), IN_CHUNK)) {
    const lockRows = async (list: readonly string[]): Promise<Map<string, number>> => {
      const out = new Map<string, number>();
      const rows = await q.all<Row>(`SELECT digest, week FROM insight_images WHERE repository_id = ? AND digest IN (${marks(list.length)}) ORDER BY digest${q.lock ? ' FOR UPDATE' : ''}`, [repoId, ...list]);
      for (const r of rows) out.set(r.digest as string, num(r.week));
      return out;
    };
    const before = await lockRows(part);
    const missing = part.filter((d) => !before.has(d));
    if (missing.length > 0) {
      const inserted = await q.all<{ digest: string }>(
        `INSERT INTO insight_images (repository_id, digest, week) VALUES ${missing.map(() => '(?, ?, ?)').join(', ')} ON CONFLICT (repository_id, digest) DO NOTHING RETURNING digest`,
        missing.flatMap((digest) => [repoId, digest, week]),
      );
      if (inserted.length > 0) weeks.add(`${repoId}:${week}`);
      // Rows another transaction inserted meanwhile: locked now that it committed, then compared below.
      const mine = new Set(inserted.map((r) => r.digest));
      const theirs = missing.filter((digest) => !mine.has(digest));
      if (theirs.length > 0) for (const [digest, w] of await lockRows(theirs)) before.set(digest, w);
    }
    const earlier = [...before].filter(([, old]) => week < old);
    for (const [, old] of earlier) weeks.add(`${repoId}:${old}`);
    if (earlier.length === 0) continue;
    weeks.add(`${repoId}:${week}`);
    const moved = earlier.map(([digest]) => digest);
    await q.run(`UPDATE insight_images SET week = ? WHERE repository_id = ? AND digest IN (${marks(moved.length)})`, [week, repoId, ...moved]);
  }
  await recount(q, weeks);
}

/** These manifests' derived columns (or the manifests themselves) changed: recount the weeks they are counted in. */
export async function manifestsChanged(q: Queryable, digests: Iterable<string>): Promise<void> {
  const weeks = new Set<string>();
  for (const part of chunks([...new Set(digests)], IN_CHUNK)) {
    for (const r of await q.all<Row>(`SELECT DISTINCT repository_id, week FROM insight_images WHERE digest IN (${marks(part.length)})`, part)) {
      weeks.add(`${num(r.repository_id)}:${num(r.week)}`);
    }
  }
  await recount(q, weeks);
}

async function recount(q: Queryable, weeks: Set<string>): Promise<void> {
  const later = deferred.get(q);
  if (later) {
    for (const key of weeks) later.add(key);
    return;
  }
  for (const key of [...weeks].sort()) {
    const [repoId, week] = key.split(':').map(Number) as [number, number];
    const params: Param[] = [repoId, week];
    await q.run('DELETE FROM insight_counts WHERE repository_id = ? AND week = ?', params);
    await q.run('DELETE FROM insight_platforms WHERE repository_id = ? AND week = ?', params);
    await q.run(`INSERT INTO insight_counts (${COUNTS_COLUMNS}) ${countsSelect('i.repository_id = ? AND i.week = ?')}`, params);
    await q.run(`INSERT INTO insight_platforms (${PLATFORMS_COLUMNS}) ${platformsSelect('i.repository_id = ? AND i.week = ?')}`, params);
  }
}
