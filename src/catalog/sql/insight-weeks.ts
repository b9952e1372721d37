// The weekly aggregates the insights report reads (docs/insights.md): per repository, the week
// each image first appeared (insight_images), and per repository and week the images counted by
// builder, build-details source, media family and multi-platform (insight_counts) and the
// platforms of multi-platform images (insight_platforms). Every writer that changes what is
// counted (a tag event, a manifest's derived columns) calls in here in its own transaction; a
// changed repository-week is recounted whole from the base tables, which is cheap because a
// repository-week holds few images, and cannot drift from a recount.
import { REFERENCE_PLATFORM } from '../../oci/manifest.js';
import { SET } from '../tagstate.js';
import { IN_CHUNK, type Param, type Queryable, type Row, chunks, insertMany, marks, num } from './driver.js';

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

/** Tags of this repository were set to these digests: their images' first weeks may have moved. */
export async function imagesTagged(q: Queryable, repoId: number, digests: Iterable<string>): Promise<void> {
  const weeks = new Set<string>();
  for (const part of chunks([...new Set(digests)], IN_CHUNK)) {
    const before = new Map<string, number>();
    for (const r of await q.all<Row>(`SELECT digest, week FROM insight_images WHERE repository_id = ? AND digest IN (${marks(part.length)})`, [repoId, ...part])) {
      before.set(r.digest as string, num(r.week));
    }
    const now = await q.all<Row>(
      `SELECT e.digest, ${weekOf('min(e.at)')} AS week FROM tag_events e JOIN tags g ON g.id = e.tag_id
       WHERE g.repository_id = ? AND e.kind = ${SET} AND e.digest IN (${marks(part.length)}) GROUP BY e.digest`,
      [repoId, ...part],
    );
    const added: Param[][] = [];
    for (const r of now) {
      const digest = r.digest as string;
      const week = num(r.week);
      const old = before.get(digest);
      if (old === week) continue;
      if (old === undefined) added.push([repoId, digest, week]);
      else {
        await q.run('UPDATE insight_images SET week = ? WHERE repository_id = ? AND digest = ?', [week, repoId, digest]);
        weeks.add(`${repoId}:${old}`);
      }
      weeks.add(`${repoId}:${week}`);
    }
    await insertMany(q, 'insight_images', ['repository_id', 'digest', 'week'], added);
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
  for (const key of weeks) {
    const [repoId, week] = key.split(':').map(Number) as [number, number];
    const params: Param[] = [repoId, week];
    await q.run('DELETE FROM insight_counts WHERE repository_id = ? AND week = ?', params);
    await q.run('DELETE FROM insight_platforms WHERE repository_id = ? AND week = ?', params);
    await q.run(`INSERT INTO insight_counts (${COUNTS_COLUMNS}) ${countsSelect('i.repository_id = ? AND i.week = ?')}`, params);
    await q.run(`INSERT INTO insight_platforms (${PLATFORMS_COLUMNS}) ${platformsSelect('i.repository_id = ? AND i.week = ?')}`, params);
  }
}
