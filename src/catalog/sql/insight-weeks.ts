// The weekly aggregates the insights report reads (docs/insights.md), at two levels:
// - per repository: the week each image first appeared and what it is counted as (insight_images),
//   and per repository and week the images by builder, build-details source, media family and
//   multi-platform (insight_counts) and the platforms of multi-platform images (insight_platforms);
// - per namespace (a repository name's first segment): the same counts summed over its
//   repositories (insight_namespace_counts, insight_namespace_platforms), so that a whole-catalog
//   report reads one row per namespace and week, however many repositories there are.
// Every writer that changes what is counted (a tag event, a manifest's derived columns) calls in
// here in its own transaction. An image that moves (another first week, other derived columns)
// is taken off its old key and added to its new one at both levels, as increments
// (INSERT … ON CONFLICT DO UPDATE SET images = images + excluded.images), each statement's rows in
// key order: increments commute, so writers of different repositories need no common lock (a
// deadlock between the statements of two transactions, whose order is not set on PostgreSQL,
// is retried: driver.ts, LOCK_LEVELS). The image's row
// in insight_images holds what it was counted as, so the old key is read from the row the writer
// updates. Inside a store transaction (deferAggregateChanges) the increments are gathered and
// applied just before the commit, so the shared aggregate rows are held only that long; beside
// other writers (PostgreSQL) an image's row is locked (FOR UPDATE, or inserted) before it is
// compared, so two transactions tagging one image take turns.
import { REFERENCE_PLATFORM } from '../../oci/manifest.js';
import { SET } from '../tagstate.js';
import { IN_CHUNK, MAX_PARAMS, type Param, type Queryable, type Row, type Statement, chunks, marks, num } from './driver.js';
import { repositoryCountersDeferred, writeWithRepositoryCounters } from './repository-counters.js';

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

/** The namespace a repository is counted under: the first segment of its name. */
export function namespaceOf(repository: string): string {
  return repository.split('/')[0]!;
}

/** What an image is counted as: its manifest's derived columns; null while the manifest is not stored. */
interface Counted {
  builder: string;
  build_source: string;
  media_family: string;
  multi: number;
}

/** The aggregate tables, their key columns (in primary-key order) and the key's parts. */
const TABLES = {
  insight_counts: ['repository_id', 'week', 'builder', 'build_source', 'media_family', 'multi'],
  insight_platforms: ['repository_id', 'week', 'os', 'architecture', 'variant'],
  insight_namespace_counts: ['week', 'namespace', 'builder', 'build_source', 'media_family', 'multi'],
  insight_namespace_platforms: ['week', 'namespace', 'os', 'architecture', 'variant'],
  // Verified images and images by pusher (evidence-weeks.ts).
  insight_evidence: ['repository_id', 'week', 'prev_week', 'verified', 'pusher'],
  insight_namespace_evidence: ['week', 'namespace', 'prev_week', 'verified', 'pusher'],
} as const;
/** The report's own aggregates (migrations 10 and 11), refilled by backfillInsightWeeks. */
const COUNT_TABLES = ['insight_counts', 'insight_platforms', 'insight_namespace_counts', 'insight_namespace_platforms'] as const;
type Table = keyof typeof TABLES;

/** A manifest's derived columns as counted: absent derivations count as ''. */
const COUNTED_SQL = `COALESCE(m.builder, '') AS builder, COALESCE(m.build_source, '') AS build_source, COALESCE(m.media_family, '') AS media_family,
  CASE WHEN m.platform_count > 1 THEN 1 ELSE 0 END AS multi`;
// Reference manifests (isReferenceDescriptor) are not platforms.
const PLATFORM_SQL = `c.os, COALESCE(c.architecture, '') AS architecture, COALESCE(c.variant, '') AS variant`;
const PLATFORM_WHERE = `c.os IS NOT NULL AND NOT (c.os = '${REFERENCE_PLATFORM}' AND c.architecture = '${REFERENCE_PLATFORM}')`;

function counted(r: Row | undefined): Counted | null {
  if (!r || r.builder == null) return null;
  return { builder: r.builder as string, build_source: r.build_source as string, media_family: r.media_family as string, multi: num(r.multi) };
}

function sameCounted(a: Counted | null, b: Counted | null): boolean {
  return a === b || (a !== null && b !== null && a.builder === b.builder && a.build_source === b.build_source && a.media_family === b.media_family && a.multi === b.multi);
}

type Platform = [os: string, architecture: string, variant: string];

/** What an image counts as beside the report (evidence-weeks.ts): verified in its repository, and its manifest's pusher. */
export interface EvidenceAs {
  verified: number;
  pusher: string | null;
}

/** What an image counts as beside the report, its row locked by this transaction; `fresh`: the row was inserted just now. */
export interface LockedImage extends EvidenceAs {
  fresh: boolean;
}

/** prev_week of an image's earliest tag week: below every week. */
export const NO_EARLIER_WEEK = -2_147_483_648;

/** Net changes to the aggregates of one transaction, applied at the end, each statement's rows in key order. */
export class Changes {
  private readonly byKey = new Map<string, { table: Table; key: Param[]; n: number }>();

  private add(table: Table, key: Param[], n: number): void {
    const id = `${table}\u0000${JSON.stringify(key)}`;
    const entry = this.byKey.get(id);
    if (entry) entry.n += n;
    else this.byKey.set(id, { table, key, n });
  }

  /** Counts (n = 1) or uncounts (n = -1) one image of a repository at both levels. */
  image(repoId: number, namespace: string, platforms: readonly Platform[] | undefined, week: number, as: Counted | null, n: 1 | -1): void {
    if (!as) return;
    const dims = [as.builder, as.build_source, as.media_family, as.multi];
    this.add('insight_counts', [repoId, week, ...dims], n);
    this.add('insight_namespace_counts', [week, namespace, ...dims], n);
    if (as.multi !== 1) return;
    for (const p of platforms ?? []) {
      this.add('insight_platforms', [repoId, week, ...p], n);
      this.add('insight_namespace_platforms', [week, namespace, ...p], n);
    }
  }

  /**
   * Counts (n = 1) or uncounts (n = -1) an image of a repository in the evidence aggregates, at
   * both levels: once per distinct week its tags were last updated in (`weeks`, ascending), each
   * with the week before it (evidence-weeks.ts says why). Nothing for an image neither verified
   * nor pushed by a known pusher.
   */
  evidence(repoId: number, namespace: string, weeks: readonly number[], as: EvidenceAs, n: 1 | -1): void {
    if (as.verified !== 1 && as.pusher === null) return;
    let prev = NO_EARLIER_WEEK;
    for (const week of weeks) {
      const dims = [prev, as.verified, as.pusher ?? ''];
      this.add('insight_evidence', [repoId, week, ...dims], n);
      this.add('insight_namespace_evidence', [week, namespace, ...dims], n);
      prev = week;
    }
  }

  async apply(q: Queryable): Promise<void> {
    const { increments, emptied } = this.statements();
    for (const w of [...increments, ...emptied]) await q.run(w.sql, w.params);
  }

  /**
   * The writes of apply: the increments (an upsert per table and chunk), then the deletions of
   * keys no image is counted under any more (which must see the increments).
   */
  statements(): { increments: Statement[]; emptied: Statement[] } {
    const increments: Statement[] = [];
    const emptied: Statement[] = [];
    const compare = (a: Param[], b: Param[]): number => {
      for (let i = 0; i < a.length; i++) {
        const x = a[i]!;
        const y = b[i]!;
        if (x !== y) return x < y ? -1 : 1;
      }
      return 0;
    };
    for (const table of Object.keys(TABLES) as Table[]) {
      const columns = TABLES[table];
      // Key order, so that two writers touching the same rows in one statement take their locks
      // in one order (the statements' own order is not set on PostgreSQL: runTogether).
      const rows = [...this.byKey.values()].filter((e) => e.table === table && e.n !== 0).sort((a, b) => compare(a.key, b.key));
      const width = columns.length + 1;
      for (const part of chunks(rows, Math.floor(MAX_PARAMS / width))) {
        increments.push({
          sql: `INSERT INTO ${table} (${columns.join(', ')}, images) VALUES ${part.map(() => `(${marks(width)})`).join(', ')}
           ON CONFLICT (${columns.join(', ')}) DO UPDATE SET images = ${table}.images + excluded.images`,
          params: part.flatMap((e) => [...e.key, e.n]),
        });
      }
      // A key no image is counted under any more has no row (as a recount would give).
      for (const e of rows) if (e.n < 0) emptied.push({ sql: `DELETE FROM ${table} WHERE ${columns.map((c) => `${c} = ?`).join(' AND ')} AND images = 0`, params: e.key });
    }
    return { increments, emptied };
  }
}

/** The counted columns of these manifests (stored ones only), by digest. */
async function countedManifests(q: Queryable, digests: readonly string[]): Promise<Map<string, Counted>> {
  const out = new Map<string, Counted>();
  for (const part of chunks(digests, IN_CHUNK)) {
    for (const r of await q.all<Row>(`SELECT m.digest, ${COUNTED_SQL} FROM manifests m WHERE m.digest IN (${marks(part.length)})`, part)) out.set(r.digest as string, counted(r)!);
  }
  return out;
}

/** The platforms of these manifests' children (one per child), by digest. */
async function platformsOf(q: Queryable, digests: readonly string[]): Promise<Map<string, Platform[]>> {
  const out = new Map<string, Platform[]>();
  for (const part of chunks(digests, IN_CHUNK)) {
    const rows = await q.all<Row>(
      `SELECT m.digest, ${PLATFORM_SQL} FROM manifests m JOIN manifest_children c ON c.parent_id = m.id WHERE m.digest IN (${marks(part.length)}) AND ${PLATFORM_WHERE}`,
      part,
    );
    for (const r of rows) {
      const list = out.get(r.digest as string) ?? [];
      list.push([r.os as string, r.architecture as string, r.variant as string]);
      out.set(r.digest as string, list);
    }
  }
  return out;
}

const MULTI_DIGESTS = (as: Iterable<[string, Counted | null]>): string[] => [...as].filter(([, c]) => c?.multi === 1).map(([d]) => d);

/** Changes gathered for the end of a store transaction (deferAggregateChanges). */
const deferred = new WeakMap<Queryable, Changes>();

/** From now on, the aggregate changes of this transaction wait for applyDeferredChanges. */
export function deferAggregateChanges(q: Queryable): void {
  deferred.set(q, new Changes());
}

/** Forgets what this transaction's write gathered (it failed, and is rolled back). */
export function dropDeferredChanges(q: Queryable): void {
  deferred.delete(q);
}

/**
 * Applies the changes deferAggregateChanges gathered, each statement's rows in key order. Where the
 * transaction writes its repository counters at its end too, the increments go with those
 * (writeRepositoryCounters; on PostgreSQL in one statement, in no set order: no increment reads
 * another's row or a repository's), and the deletions of emptied keys after them, as they must see
 * the increments (together: each deletes one key's row, which the increments locked already, so
 * their order takes no lock).
 */
export async function applyDeferredChanges(q: Queryable): Promise<void> {
  const changes = deferred.get(q);
  deferred.delete(q);
  if (!changes) return;
  const { increments, emptied } = changes.statements();
  if (repositoryCountersDeferred(q)) writeWithRepositoryCounters(q, increments, emptied);
  else for (const w of [...increments, ...emptied]) await q.run(w.sql, w.params);
}

/** The transaction's pending changes, and whether they wait for its end (else the caller applies them). */
export function changesOf(q: Queryable): { changes: Changes; later: boolean } {
  const later = deferred.get(q);
  return later ? { changes: later, later: true } : { changes: new Changes(), later: false };
}

interface ImageRow {
  week: number;
  as: Counted | null;
  evidence: EvidenceAs;
}

function evidenceAs(r: Row): EvidenceAs {
  return { verified: num(r.verified), pusher: (r.pusher as string | null) ?? null };
}

/** This repository's rows of these images, locked for this transaction beside other writers. */
async function lockImageRows(q: Queryable, repoId: number, digests: readonly string[]): Promise<Map<string, ImageRow>> {
  const rows = await q.all<Row>(
    `SELECT digest, week, builder, build_source, media_family, multi, verified, pusher FROM insight_images
     WHERE repository_id = ? AND digest IN (${marks(digests.length)}) ORDER BY digest${q.lock ? ' FOR UPDATE' : ''}`,
    [repoId, ...digests],
  );
  return new Map(rows.map((r) => [r.digest as string, { week: num(r.week), as: counted(r), evidence: evidenceAs(r) }]));
}

/**
 * Beside other writers, before several tag sets in one transaction (the webhook's batches,
 * pushTags): locks the rows of the images they touch, those the tags are set to and those they
 * point at now, in one order (repository, digest). Each set locks its own as it goes (imagesTagged
 * here, tagWeeksMoved in evidence-weeks.ts), in the batch's order: two batches with images of two
 * repositories in opposite orders would each hold one the other waits for, and PostgreSQL would
 * end one as a deadlock, after a second's wait, to run it again. Rows not there yet are not locked.
 */
export async function lockImagesOfTagSets(q: Queryable, sets: readonly { repository: string; tag: string; digest: string }[]): Promise<void> {
  if (!q.lock || sets.length < 2) return;
  for (const part of chunks(sets, IN_CHUNK)) {
    await q.all(
      `SELECT i.repository_id FROM insight_images i JOIN repositories r ON r.id = i.repository_id
       JOIN (VALUES ${part.map(() => '(?, ?, ?)').join(', ')}) AS v ON v.column1 = r.name
       WHERE i.digest = v.column3 OR i.digest = (SELECT g.digest FROM tags g WHERE g.repository_id = r.id AND g.name = v.column2)
       ORDER BY i.repository_id, i.digest FOR UPDATE OF i`,
      part.flatMap((s) => [s.repository, s.tag, s.digest]),
    );
  }
}

/**
 * Tags of this repository were set to these digests at `at`: their images may be new, or their
 * first weeks earlier (a first week is the minimum over the image's sets in the repository, so a
 * set only ever moves it earlier). `repository`: the repository's name, when the caller knows it.
 * Returns what each image counts as beside the report, its row locked (for evidence-weeks.ts).
 */
export async function imagesTagged(q: Queryable, repoId: number, digests: Iterable<string>, at: number, repository?: string): Promise<Map<string, LockedImage>> {
  // As weekOf in SQL: integer division truncates.
  const week = Math.trunc((at - WEEK_ORIGIN) / WEEK_MS);
  const { changes, later } = changesOf(q);
  let namespace = repository === undefined ? undefined : namespaceOf(repository);
  const evidence = new Map<string, LockedImage>();
  for (const part of chunks([...new Set(digests)].sort(), IN_CHUNK)) {
    // New images first, counted as their manifests are now (or not yet, while not stored), in one
    // statement: an image's row is locked by inserting it, or below. Whether it is verified and its
    // pusher come with it (evidence-weeks.ts).
    const inserted = await q.all<Row>(
      `INSERT INTO insight_images (repository_id, digest, week, builder, build_source, media_family, multi, verified, pusher)
       SELECT CAST(? AS bigint), v.column1, CAST(? AS bigint), ${INSERTED_COUNTED}, ${INSERTED_EVIDENCE}
       FROM (VALUES ${part.map(() => '(?)').join(', ')}) AS v LEFT JOIN manifests m ON m.digest = v.column1
       WHERE true ORDER BY v.column1
       ON CONFLICT (repository_id, digest) DO NOTHING RETURNING digest, builder, build_source, media_family, multi, verified, pusher`,
      [repoId, week, repoId, ...part],
    );
    const added = new Map<string, Counted | null>(inserted.map((r) => [r.digest as string, counted(r)]));
    for (const r of inserted) evidence.set(r.digest as string, { ...evidenceAs(r), fresh: true });
    // Rows there before (or inserted meanwhile by a transaction that committed since): locked, then compared.
    const theirs = part.filter((d) => !added.has(d));
    const before = theirs.length > 0 ? await lockImageRows(q, repoId, theirs) : new Map<string, ImageRow>();
    for (const [d, row] of before) evidence.set(d, { ...row.evidence, fresh: false });
    const earlier = [...before].filter(([, row]) => week < row.week);
    if (earlier.length > 0) {
      const moved = earlier.map(([d]) => d);
      await q.run(`UPDATE insight_images SET week = ? WHERE repository_id = ? AND digest IN (${marks(moved.length)})`, [week, repoId, ...moved]);
    }
    if (![...added.values()].some((c) => c !== null) && earlier.length === 0) continue;
    namespace ??= namespaceOf((await q.all<Row>('SELECT name FROM repositories WHERE id = ?', [repoId]))[0]?.name as string);
    const platforms = await platformsOf(q, MULTI_DIGESTS([...added, ...earlier.map(([d, row]): [string, Counted | null] => [d, row.as])]));
    for (const [d, c] of added) changes.image(repoId, namespace, platforms.get(d), week, c, 1);
    for (const [d, row] of earlier) {
      changes.image(repoId, namespace, platforms.get(d), row.week, row.as, -1);
      changes.image(repoId, namespace, platforms.get(d), week, row.as, 1);
    }
  }
  if (!later) await changes.apply(q);
  return evidence;
}

/** A new row's verified and pusher (v.column1: its digest; the parameter: its repository's id). */
const INSERTED_EVIDENCE = `CASE WHEN EXISTS (SELECT 1 FROM build_verifications bv JOIN repositories br ON br.name = bv.repository
    WHERE br.id = CAST(? AS bigint) AND bv.digest = v.column1) THEN 1 ELSE 0 END,
  (SELECT p.pusher FROM manifest_pushers p WHERE p.digest = v.column1)`;

/** COUNTED_SQL for a new row of insight_images: NULL throughout while the manifest is not stored. */
const INSERTED_COUNTED = ['builder', 'build_source', 'media_family']
  .map((c) => `CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.${c}, '') END`)
  .concat(['CASE WHEN m.id IS NULL THEN NULL WHEN m.platform_count > 1 THEN 1 ELSE 0 END'])
  .join(', ');

/** These manifests' derived columns (or the manifests themselves) changed: their images move to their new keys. */
export async function manifestsChanged(q: Queryable, digests: Iterable<string>): Promise<void> {
  const { changes, later } = changesOf(q);
  for (const part of chunks([...new Set(digests)], IN_CHUNK)) {
    const images = await q.all<Row>(
      `SELECT i.repository_id, r.name, i.digest, i.week, i.builder, i.build_source, i.media_family, i.multi
       FROM insight_images i JOIN repositories r ON r.id = i.repository_id WHERE i.digest IN (${marks(part.length)})`,
      part,
    );
    if (images.length === 0) continue;
    const now = await countedManifests(q, part);
    const stale = images.filter((r) => !sameCounted(counted(r), now.get(r.digest as string) ?? null));
    if (stale.length === 0) continue;
    const platforms = await platformsOf(q, [...new Set(stale.filter((r) => num(r.multi) === 1 || now.get(r.digest as string)?.multi === 1).map((r) => r.digest as string))]);
    for (const r of stale) {
      const digest = r.digest as string;
      const repoId = num(r.repository_id);
      const namespace = namespaceOf(r.name as string);
      changes.image(repoId, namespace, platforms.get(digest), num(r.week), counted(r), -1);
      changes.image(repoId, namespace, platforms.get(digest), num(r.week), now.get(digest) ?? null, 1);
    }
    for (const digest of new Set(stale.map((r) => r.digest as string))) {
      const c = now.get(digest) ?? null;
      await q.run('UPDATE insight_images SET builder = ?, build_source = ?, media_family = ?, multi = ? WHERE digest = ?', [
        c?.builder ?? null,
        c?.build_source ?? null,
        c?.media_family ?? null,
        c?.multi ?? null,
        digest,
      ]);
    }
  }
  if (!later) await changes.apply(q);
}

/**
 * Fills every aggregate from the base tables: the migration that added the namespace level, and
 * the bench seeders. The namespace level is summed in code from the repository level (the
 * namespace is a name's first segment, which the two databases spell differently in SQL).
 */
export async function backfillInsightWeeks(q: Queryable): Promise<void> {
  // Not the evidence aggregates: they come with migration 12 (backfillInsightEvidence), after this one.
  for (const table of [...[...COUNT_TABLES].reverse(), 'insight_images']) await q.run(`DELETE FROM ${table}`);
  await q.run(
    `INSERT INTO insight_images (repository_id, digest, week, builder, build_source, media_family, multi)
     SELECT s.repository_id, s.digest, s.week,
       CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.builder, '') END, CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.build_source, '') END,
       CASE WHEN m.id IS NULL THEN NULL ELSE COALESCE(m.media_family, '') END, CASE WHEN m.id IS NULL THEN NULL WHEN m.platform_count > 1 THEN 1 ELSE 0 END
     FROM (SELECT g.repository_id, e.digest, ${weekOf('min(e.at)')} AS week FROM tag_events e JOIN tags g ON g.id = e.tag_id WHERE e.kind = ${SET} GROUP BY g.repository_id, e.digest) s
     LEFT JOIN manifests m ON m.digest = s.digest`,
  );
  await q.run(
    `INSERT INTO insight_counts (repository_id, week, builder, build_source, media_family, multi, images)
     SELECT repository_id, week, builder, build_source, media_family, multi, count(*) FROM insight_images WHERE builder IS NOT NULL
     GROUP BY repository_id, week, builder, build_source, media_family, multi`,
  );
  await q.run(
    `INSERT INTO insight_platforms (repository_id, week, os, architecture, variant, images)
     SELECT i.repository_id, i.week, c.os, COALESCE(c.architecture, ''), COALESCE(c.variant, ''), count(*)
     FROM insight_images i JOIN manifests m ON m.digest = i.digest JOIN manifest_children c ON c.parent_id = m.id
     WHERE i.multi = 1 AND ${PLATFORM_WHERE}
     GROUP BY i.repository_id, i.week, c.os, COALESCE(c.architecture, ''), COALESCE(c.variant, '')`,
  );
  for (const [from, to, dims] of [
    ['insight_counts', 'insight_namespace_counts', ['builder', 'build_source', 'media_family', 'multi']],
    ['insight_platforms', 'insight_namespace_platforms', ['os', 'architecture', 'variant']],
  ] as const) {
    const sums = new Map<string, Param[]>();
    const rows = await q.all<Row>(`SELECT r.name, a.week, ${dims.map((d) => `a.${d}`).join(', ')}, a.images FROM ${from} a JOIN repositories r ON r.id = a.repository_id`);
    for (const r of rows) {
      const key: Param[] = [num(r.week), namespaceOf(r.name as string), ...dims.map((d) => (d === 'multi' ? num(r[d]) : (r[d] as string)))];
      const id = JSON.stringify(key);
      const sum = sums.get(id);
      if (sum) sum[sum.length - 1] = num(sum[sum.length - 1]) + num(r.images);
      else sums.set(id, [...key, num(r.images)]);
    }
    const width = dims.length + 3;
    for (const part of chunks([...sums.values()], Math.floor(MAX_PARAMS / width))) {
      await q.run(`INSERT INTO ${to} (${TABLES[to].join(', ')}, images) VALUES ${part.map(() => `(${marks(width)})`).join(', ')}`, part.flat());
    }
  }
}
