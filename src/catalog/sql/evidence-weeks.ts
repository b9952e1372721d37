// The weekly aggregates of what the insights page and API show beside the report: verified images
// and images by pusher (Store.verifiedInsights). They count what recountInsightEvidence
// (verifications.ts) counts from the base tables: an image (a repository and digest) whose tags
// there include one, pointing at it now or last, updated in the window (tags.updated_at), once,
// as verified when its repository holds a verification of the digest and under its manifest's
// pusher (the first recorded).
//
// An image whose tags were updated in several weeks of a window counts once, so a weekly count
// per image would count it too often. Each image is kept instead once per distinct week W of its
// tags' updates, with the week P before W among them (NO_EARLIER_WEEK for the first): the image
// falls in a window [from, to) exactly when one of its weeks does, and then exactly one of its
// rows has from <= W < to and P < from (that of its first week in the window). So a report sums
// the rows with W in the window and P before it (insight_evidence per repository,
// insight_namespace_evidence per namespace; both kept with the report's own aggregates,
// insight-weeks.ts, as increments applied at the end of the writer's transaction, in key order).
//
// What an image counts as is kept on its insight_images row (verified, pusher), and that row
// is the image's lock: every writer that changes the image's tags, verification or pusher locks
// it (FOR UPDATE, or by inserting or updating it) before it reads the image's tag weeks from the
// tags, so two writers of one image take turns and each reads the other's committed tags. A new
// row reads its verification and pusher as it is inserted; a pusher recorded beside other writers
// holds its manifest's evidence lock exclusively (store.ts), so no new row can be inserted
// meanwhile without it.
import { IN_CHUNK, MAX_PARAMS, type Driver, type Param, type Queryable, type Row, chunks, marks, num } from './driver.js';
import { type Changes, type EvidenceAs, type LockedImage, NO_EARLIER_WEEK, WEEK_MS, WEEK_ORIGIN, changesOf, namespaceOf, weekNumber } from './insight-weeks.js';

/** The week of a time (ms), as weekOf computes it in SQL: integer division truncates. */
export function weekOfTime(at: number): number {
  return Math.trunc((at - WEEK_ORIGIN) / WEEK_MS);
}

const TAG_WEEK = `(g.updated_at - ${WEEK_ORIGIN}) / ${WEEK_MS}`;

/** A tag that now points (or last pointed) at `digest`, updated in `week`: n = 1 added, n = -1 taken away. */
export interface TagWeekMove {
  digest: string;
  week: number;
  n: 1 | -1;
}

function counts(as: EvidenceAs | undefined): as is EvidenceAs {
  return as !== undefined && (as.verified === 1 || as.pusher !== null);
}

/** The tag weeks of these images as the tags are now (this transaction's writes included), with each repository's name. */
async function tagWeeksOf(q: Queryable, repoIds: readonly number[], digests: readonly string[]): Promise<{ names: Map<number, string>; weeks: Map<string, Map<number, number>> }> {
  const names = new Map<number, string>();
  const weeks = new Map<string, Map<number, number>>();
  for (const ids of chunks(repoIds, IN_CHUNK)) {
    for (const part of chunks(digests, IN_CHUNK)) {
      const rows = await q.all<Row>(
        `SELECT g.repository_id, r.name, g.digest, ${TAG_WEEK} AS week, count(*) AS n FROM tags g JOIN repositories r ON r.id = g.repository_id
         WHERE g.repository_id IN (${marks(ids.length)}) AND g.digest IN (${marks(part.length)}) AND g.updated_at IS NOT NULL
         GROUP BY g.repository_id, r.name, g.digest, ${TAG_WEEK}`,
        [...ids, ...part],
      );
      for (const r of rows) {
        names.set(num(r.repository_id), r.name as string);
        const key = imageKey(num(r.repository_id), r.digest as string);
        const of = weeks.get(key) ?? new Map<number, number>();
        of.set(num(r.week), num(r.n));
        weeks.set(key, of);
      }
    }
  }
  return { names, weeks };
}

function imageKey(repoId: number, digest: string): string {
  return `${repoId}\u0000${digest}`;
}

function weekList(of: ReadonlyMap<number, number>): number[] {
  return [...of].filter(([, n]) => n > 0).map(([w]) => w).sort((a, b) => a - b);
}

async function repositoryName(q: Queryable, repoId: number): Promise<string> {
  return (await q.all<Row>('SELECT name FROM repositories WHERE id = ?', [repoId]))[0]!.name as string;
}

/**
 * Tags of this repository were written (tags rows inserted or updated, in this transaction, just
 * before): the images they left and joined move in the evidence aggregates. `known`: what images
 * whose rows this transaction has locked already count as (imagesTagged); the others' rows are
 * locked here. Statements only for images that count, and no read of the tag weeks of an image
 * whose row was inserted in this step: no tag of the repository pointed at it before, so its
 * weeks are those of the moves. `repository`: the repository's name, when the caller knows it.
 */
export async function tagWeeksMoved(q: Queryable, repoId: number, moves: readonly TagWeekMove[], known?: ReadonlyMap<string, LockedImage>, repository?: string): Promise<void> {
  const net = new Map<string, Map<number, number>>();
  for (const m of moves) {
    const of = net.get(m.digest) ?? new Map<number, number>();
    of.set(m.week, (of.get(m.week) ?? 0) + m.n);
    net.set(m.digest, of);
  }
  for (const [digest, of] of net) {
    for (const [week, n] of of) if (n === 0) of.delete(week);
    if (of.size === 0) net.delete(digest);
  }
  if (net.size === 0) return;
  const as = new Map<string, EvidenceAs>();
  const fresh = new Set<string>();
  const unknown: string[] = [];
  for (const digest of [...net.keys()].sort()) {
    const was = known?.get(digest);
    if (was) as.set(digest, { verified: was.verified, pusher: was.pusher });
    else unknown.push(digest);
    if (was?.fresh) fresh.add(digest);
  }
  for (const part of chunks(unknown, IN_CHUNK)) {
    const rows = await q.all<Row>(
      `SELECT digest, verified, pusher FROM insight_images WHERE repository_id = ? AND digest IN (${marks(part.length)}) ORDER BY digest${q.lock ? ' FOR UPDATE' : ''}`,
      [repoId, ...part],
    );
    for (const r of rows) as.set(r.digest as string, { verified: num(r.verified), pusher: (r.pusher as string | null) ?? null });
  }
  const counted = [...net.keys()].filter((d) => counts(as.get(d)));
  if (counted.length === 0) return;
  const { changes, later } = changesOf(q);
  const read = counted.filter((d) => !fresh.has(d));
  const now = read.length > 0 ? await tagWeeksOf(q, [repoId], read) : { names: new Map<number, string>(), weeks: new Map<string, Map<number, number>>() };
  const namespace = namespaceOf(repository ?? now.names.get(repoId) ?? (await repositoryName(q, repoId)));
  for (const digest of counted) {
    const after = fresh.has(digest) ? new Map(net.get(digest)!) : (now.weeks.get(imageKey(repoId, digest)) ?? new Map<number, number>());
    const before = new Map(after);
    for (const [week, n] of net.get(digest)!) before.set(week, (before.get(week) ?? 0) - n);
    moveImage(changes, repoId, namespace, weekList(before), weekList(after), as.get(digest)!, as.get(digest)!);
  }
  if (!later) await changes.apply(q);
}

/** An image's weeks or what it counts as changed: off its old rows, onto its new ones. */
function moveImage(changes: Changes, repoId: number, namespace: string, weeksBefore: readonly number[], weeksAfter: readonly number[], before: EvidenceAs, after: EvidenceAs): void {
  if (before.verified === after.verified && before.pusher === after.pusher && weeksBefore.join() === weeksAfter.join()) return;
  changes.evidence(repoId, namespace, weeksBefore, before, -1);
  changes.evidence(repoId, namespace, weeksAfter, after, 1);
}

/** The images whose rows an update just changed (returning repository_id, verified, pusher as they are now) now count so. */
async function imagesRecounted(q: Queryable, digest: string, updated: readonly Row[], was: (now: EvidenceAs) => EvidenceAs): Promise<void> {
  if (updated.length === 0) return;
  const { changes, later } = changesOf(q);
  const repoIds = [...new Set(updated.map((r) => num(r.repository_id)))].sort((a, b) => a - b);
  const now = await tagWeeksOf(q, repoIds, [digest]);
  for (const r of updated) {
    const repoId = num(r.repository_id);
    const weeks = weekList(now.weeks.get(imageKey(repoId, digest)) ?? new Map());
    if (weeks.length === 0) continue;
    const as: EvidenceAs = { verified: num(r.verified), pusher: (r.pusher as string | null) ?? null };
    moveImage(changes, repoId, namespaceOf(now.names.get(repoId)!), weeks, weeks, was(as), as);
  }
  if (!later) await changes.apply(q);
}

const PUSHER_INSERT = 'INSERT INTO manifest_pushers (digest, user_agent, pusher, seen_at) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING';
const PUSHER_UPDATE = 'UPDATE insight_images SET pusher = ? WHERE digest = ? AND pusher IS NULL RETURNING repository_id, verified, pusher';

/**
 * Records the first pusher of a manifest (a later one changes nothing), and counts the images of
 * the manifest in every repository under it. Where the dialect has writable CTEs, the record and
 * the images' rows go in one statement.
 */
export async function recordFirstPusher(q: Queryable, digest: string, userAgent: string, pusher: string, at: number): Promise<void> {
  const record = [digest, userAgent, pusher, at];
  let updated: Row[];
  if (q.dialect?.writableCtes) {
    updated = await q.all<Row>(
      `WITH p AS (${PUSHER_INSERT} RETURNING pusher)
       UPDATE insight_images SET pusher = p.pusher FROM p WHERE insight_images.digest = ? AND insight_images.pusher IS NULL
       RETURNING insight_images.repository_id, insight_images.verified, insight_images.pusher`,
      [...record, digest],
      { prepare: true },
    );
  } else {
    if ((await q.run(PUSHER_INSERT, record)) === 0) return;
    updated = await q.all<Row>(PUSHER_UPDATE, [pusher, digest]);
  }
  await imagesRecounted(q, digest, updated, (now) => ({ ...now, pusher: null }));
}

/** A verification of this digest in this repository was just recorded: the image there counts as verified. */
export async function verificationRecorded(q: Queryable, repository: string, digest: string): Promise<void> {
  const updated = await q.all<Row>(
    'UPDATE insight_images SET verified = 1 WHERE repository_id IN (SELECT id FROM repositories WHERE name = ?) AND digest = ? AND verified = 0 RETURNING repository_id, verified, pusher',
    [repository, digest],
  );
  await imagesRecounted(q, digest, updated, (now) => ({ ...now, verified: 0 }));
}

/**
 * Verified images, and images by pusher, of the insights report from the aggregates: `window`
 * from insightsWindow (whole weeks), of these repositories (listedRepositories in insights.ts;
 * null: every one, read from the namespace level), in one statement summed in SQL.
 */
export async function insightEvidence(db: Driver, window: { from: number; to: number }, repositoryIds: readonly number[] | null): Promise<{ verified: number; pushedBy: Record<string, number> }> {
  const d = db.dialect;
  const from = weekNumber(window.from);
  const rows = (table: string, where: string) => `FROM ${table} a WHERE ${where}a.week >= ? AND a.week < ? AND a.prev_week < ?`;
  const [table, listed, list]: [string, string, Param[]] =
    repositoryIds === null ? ['insight_namespace_evidence', '', []] : ['insight_evidence', `${d.inIdList('a.repository_id')} AND `, [d.idList(repositoryIds)]];
  const weeks: Param[] = [...list, from, weekNumber(window.to), from];
  const row = (
    await db.all<Row>(
      `SELECT (SELECT sum(a.images) ${rows(table, listed)} AND a.verified = 1) AS verified,
         (SELECT ${d.jsonAgg(d.jsonArray(['y.pusher', 'y.n']))} FROM (SELECT a.pusher, sum(a.images) AS n ${rows(table, listed)} AND a.pusher <> '' GROUP BY a.pusher) y) AS pushers`,
      [...weeks, ...weeks],
    )
  )[0];
  const pushers = row?.pushers;
  const pairs = (pushers == null ? [] : typeof pushers === 'string' ? JSON.parse(pushers) : pushers) as [unknown, unknown][];
  const pushedBy: Record<string, number> = {};
  for (const [pusher, n] of pairs) pushedBy[String(pusher)] = num(n);
  return { verified: num(row?.verified ?? 0), pushedBy };
}

/**
 * Fills the evidence aggregates, and what each image counts as, from the base tables: migration
 * 12, and the bench seeders (after backfillInsightWeeks). The namespace level is summed in code
 * (as backfillInsightWeeks does).
 */
export async function backfillInsightEvidence(q: Queryable): Promise<void> {
  await q.run('DELETE FROM insight_namespace_evidence');
  await q.run('DELETE FROM insight_evidence');
  await q.run(
    `UPDATE insight_images SET pusher = (SELECT p.pusher FROM manifest_pushers p WHERE p.digest = insight_images.digest),
       verified = CASE WHEN EXISTS (SELECT 1 FROM build_verifications v JOIN repositories r ON r.name = v.repository
         WHERE r.id = insight_images.repository_id AND v.digest = insight_images.digest) THEN 1 ELSE 0 END`,
  );
  // Each image's distinct tag weeks, each with the one before it (LAG), counted by what the image counts as.
  await q.run(
    `INSERT INTO insight_evidence (repository_id, week, prev_week, verified, pusher, images)
     SELECT w.repository_id, w.week, w.prev_week, i.verified, COALESCE(i.pusher, ''), count(*)
     FROM (SELECT s.repository_id, s.digest, s.week, COALESCE(LAG(s.week) OVER (PARTITION BY s.repository_id, s.digest ORDER BY s.week), ${NO_EARLIER_WEEK}) AS prev_week
           FROM (SELECT DISTINCT g.repository_id, g.digest, ${TAG_WEEK} AS week FROM tags g WHERE g.digest IS NOT NULL AND g.updated_at IS NOT NULL) s) w
     JOIN insight_images i ON i.repository_id = w.repository_id AND i.digest = w.digest
     WHERE i.verified = 1 OR i.pusher IS NOT NULL
     GROUP BY w.repository_id, w.week, w.prev_week, i.verified, COALESCE(i.pusher, '')`,
  );
  const sums = new Map<string, Param[]>();
  for (const r of await q.all<Row>('SELECT r.name, a.week, a.prev_week, a.verified, a.pusher, a.images FROM insight_evidence a JOIN repositories r ON r.id = a.repository_id')) {
    const key: Param[] = [num(r.week), namespaceOf(r.name as string), num(r.prev_week), num(r.verified), r.pusher as string];
    const id = JSON.stringify(key);
    const sum = sums.get(id);
    if (sum) sum[5] = num(sum[5]) + num(r.images);
    else sums.set(id, [...key, num(r.images)]);
  }
  for (const part of chunks([...sums.values()], Math.floor(MAX_PARAMS / 6))) {
    await q.run(`INSERT INTO insight_namespace_evidence (week, namespace, prev_week, verified, pusher, images) VALUES ${part.map(() => `(${marks(6)})`).join(', ')}`, part.flat());
  }
}
