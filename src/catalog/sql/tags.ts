// A tag's life in the catalog: each set or delete is logged (tag_events) and folded into the tag's
// state (tagstate.ts, pure); the state, the repository's counters and the tag's search terms
// (terms.ts) move together, in the caller's transaction. An event older than the tag's newest is
// logged for history and replayed; a crawl's observation stands as an event at the crawl's start.
import type { EventOutcome, ReconcileResult, TagHistory } from '../types.js';
import { MANIFEST_DELETE, SET, TAG_DELETE, type Segment, type TagEvent, type TagState, compareEvents, fold, isLive, lastEvent, step } from '../tagstate.js';
import { IN_CHUNK, MAX_PARAMS, type Dialect, type Param, type Queryable, type Row, type Statement, chunks, dateOrNull, insertMany, marks, num, numOrNull, runTogether } from './driver.js';
import { type TagWeekMove, tagWeeksMoved, weekOfTime } from './evidence-weeks.js';
import { type LockedImage, imagesTagged } from './insight-weeks.js';
import { repositoryChanged, repositoryCountersDeferred } from './repository-counters.js';
import { type WriteContext, lockEvidence, loadSummaries, splitValue, summaryKey, termWrites } from './terms.js';

/**
 * New tags written per step of a first crawl: what one step holds (the images' views, their
 * terms, the statements' parameters) stays small whatever the repository's size.
 */
const NEW_TAGS_CHUNK = 100;

export interface TagRow {
  id: number;
  repository_id: number;
  name: string;
  digest: string | null;
  deleted_at: number | null;
  updated_at: number | null;
  last_kind: number;
  last_digest: string;
  first_seen: number | null;
  has_build: number;
  /** The newest crawl that found the tag at observed_digest (migration 5). */
  observed_at: number | null;
  observed_digest: string | null;
}

export const TAG_COLUMNS =
  'g.id, g.repository_id, g.name, g.digest, g.deleted_at, g.updated_at, g.last_kind, g.last_digest, g.first_seen, g.has_build, g.observed_at, g.observed_digest';

export function tagRow(r: Row): TagRow {
  return {
    id: num(r.id),
    repository_id: num(r.repository_id),
    name: r.name as string,
    digest: (r.digest as string | null) ?? null,
    deleted_at: numOrNull(r.deleted_at),
    updated_at: numOrNull(r.updated_at),
    last_kind: num(r.last_kind),
    last_digest: r.last_digest as string,
    first_seen: numOrNull(r.first_seen),
    has_build: num(r.has_build),
    observed_at: numOrNull(r.observed_at),
    observed_digest: (r.observed_digest as string | null) ?? null,
  };
}

/** A crawl's observation of the tag as the event it stands for (see tagstate.ts). */
function observation(row: TagRow): TagEvent | null {
  return row.observed_at === null || row.observed_digest === null ? null : { at: row.observed_at, kind: SET, digest: row.observed_digest };
}

/** Whether `event` can be applied as one step after `before`: it is newer than the last event and than the crawl's observation. */
function stepsForward(row: TagRow, before: TagState | null, event: TagEvent): boolean {
  const seen = observation(row);
  if (seen !== null && compareEvents(event, seen) <= 0) return false;
  return before === null || compareEvents(event, lastEvent(before)) > 0;
}

function stateOf(row: TagRow): TagState | null {
  if (row.updated_at === null) return null;
  return {
    digest: row.digest,
    deletedAt: row.deleted_at,
    updatedAt: row.updated_at,
    lastKind: row.last_kind as TagState['lastKind'],
    lastDigest: row.last_digest,
    firstSeen: row.first_seen,
  };
}

/** One page of a tag's segments, newest first: those that started before `before`, at most `limit`. */
function historyPage(segments: readonly Segment[], before: number | undefined, limit: number): { entries: TagHistory['entries']; nextCursor?: string } {
  const older = segments.filter((s) => before === undefined || s.since < before).reverse();
  const shown = older.slice(0, limit);
  const entries = shown.map((s) => ({ digest: s.digest, since: new Date(s.since), until: dateOrNull(s.until), end: s.end }));
  const last = shown[shown.length - 1];
  return older.length > limit && last ? { entries, nextCursor: String(last.since) } : { entries };
}


/** The key of a tag's lock (driver.ts LOCK_LEVELS). */
export function tagLockKey(repository: string, tag: string): string {
  return `${repository}\u0000${tag}`;
}

/**
 * One set or delete of a tag, logged and applied (see applyTagEvent). Beside other writers it
 * locks what the tag's terms are read from (a set) and then the tag itself: events of other tags
 * go on meanwhile, events of this tag wait their turn. `summaries`: the terms of the images that
 * earlier events of the same write read (Store.pushTags), when nothing changed their evidence since.
 */
export async function tagEvent(q: Queryable, d: Dialect, repository: string, tag: string, event: TagEvent, summaries: WriteContext['summaries'] = new Map()): Promise<EventOutcome> {
  if (q.lock) {
    const own = { level: 'tag', key: tagLockKey(repository, tag), exclusive: true } as const;
    if (event.kind === SET) await lockEvidence(q, [event.digest], [own]);
    else await q.lock([own]);
  }
  const ctx: WriteContext = { summaries, ...(q.lock ? { evidenceLocked: new Set(event.kind === SET ? [event.digest] : []) } : {}) };
  if (d.writableCtes && repositoryCountersDeferred(q)) {
    // A repository the catalog has: found with the tag, in the tag's statement.
    const rows = await q.all(TAG_WITH_EVENT_BY_NAME, [repository, tag, tag, tag, event.at, event.kind, event.digest, event.digest, event.at], { prepare: true });
    if (rows[0]) {
      const logged = tagAndEventOf(rows[0]);
      await repositoryChanged(q, d, logged.row.repository_id, { firstSeen: event.at, lastSeen: event.at });
      return applyTagEvent(q, d, logged.row.repository_id, tag, event, ctx, repository, logged);
    }
  }
  const repoId = await ensureRepository(q, d, repository, event.at);
  return applyTagEvent(q, d, repoId, tag, event, ctx, repository);
}

/** A manifest deleted from a repository (`event` is its MANIFEST_DELETE): the tags there that pointed at it. */
export async function deleteManifest(q: Queryable, d: Dialect, repository: string, event: TagEvent): Promise<{ tagsDeleted: number }> {
  const digest = event.digest;
  {
    // Tag events that set this digest read its deletions under the same lock, shared.
    if (q.lock) await q.lock([{ level: 'evidence', key: `m:${digest}`, exclusive: true }]);
    const repoId = await ensureRepository(q, d, repository, event.at);
    const fresh = await q.run('INSERT INTO manifest_deletions (repository_id, digest, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [repoId, digest, event.at]);
    if (fresh === 0) return { tagsDeleted: 0 };
    // Only tags that were ever set to this digest can be affected.
    const affected = `SELECT ${TAG_COLUMNS} FROM tags g WHERE g.repository_id = ? AND g.id IN (SELECT e.tag_id FROM tag_events e WHERE e.digest = ? AND e.kind = ${SET})`;
    let rows = await q.all(affected, [repoId, digest]);
    if (q.lock && rows.length > 0) {
      // No set of this digest can commit meanwhile (the evidence lock): lock the tags, then read them as they are now.
      await q.lock(rows.map((r) => ({ level: 'tag', key: tagLockKey(repository, r.name as string), exclusive: true })));
      rows = await q.all(affected, [repoId, digest]);
    }
    const ctx: WriteContext = { summaries: new Map(), ...(q.lock ? { evidenceLocked: new Set<string>() } : {}) };
    let tagsDeleted = 0;
    for (const row of rows.map(tagRow)) {
      const before = stateOf(row);
      const after = before !== null && stepsForward(row, before, event) ? step(before, event) : await replay(q, row);
      if (after === before) continue;
      await writeTagState(q, d, row, before, after, null, ctx);
      if (isLive(before) && !isLive(after)) tagsDeleted++;
    }
    return { tagsDeleted };
  }
}

/** Makes the repository's live tags equal `liveTags` as of `when` (a crawl's view of it). */
export async function reconcileRepository(q: Queryable, d: Dialect, repository: string, liveTags: ReadonlyMap<string, string>, when: number): Promise<ReconcileResult> {
  {
    const result: ReconcileResult = { added: 0, updated: 0, deleted: 0, unchanged: 0, skipped: 0 };
    const repoId = await ensureRepository(q, d, repository, when);
    const ctx: WriteContext = { summaries: new Map() };
    const rows = (await q.all(`SELECT ${TAG_COLUMNS} FROM tags g WHERE g.repository_id = ?`, [repoId])).map(tagRow);
    const known = new Set<string>();
    const unchanged: number[] = [];
    for (const row of rows) {
      known.add(row.name);
      const state = stateOf(row);
      const digest = liveTags.get(row.name);
      if (state === null) continue;
      if (digest !== undefined && isLive(state) && state.digest === digest) {
        result.unchanged++;
        unchanged.push(row.id);
        continue;
      }
      if (digest === undefined && !isLive(state)) continue;
      // A newer event already decided this tag: the crawl's view is older, leave it.
      if (state.updatedAt > when) {
        result.skipped++;
        continue;
      }
      const event: TagEvent = digest === undefined ? { at: when, kind: TAG_DELETE, digest: '' } : { at: when, kind: SET, digest };
      await applyTagEvent(q, d, repoId, row.name, event, ctx);
      if (digest === undefined) result.deleted++;
      else if (isLive(state)) result.updated++;
      else result.added++;
    }
    // What the registry says now is an observation at the crawl's start: an event dated before it
    // that arrives later cannot move the tag away from it (tagstate.ts).
    for (const part of chunks(unchanged, IN_CHUNK)) {
      await q.run(
        `UPDATE tags SET last_seen = ${d.greatest}(COALESCE(last_seen, ?), ?),
           observed_digest = CASE WHEN observed_at IS NULL OR observed_at < ? THEN digest ELSE observed_digest END,
           observed_at = ${d.greatest}(COALESCE(observed_at, ?), ?) WHERE id IN (${marks(part.length)})`,
        [when, when, when, when, when, ...part],
      );
    }
    const fresh = [...liveTags].filter(([tag]) => !known.has(tag));
    await insertNewTags(q, d, repoId, fresh, when, ctx);
    result.added += fresh.length;
    return result;
  }
}

/**
 * Tags the repository has never had, set at `at`: what applyTagEvent would do for each, in
 * bulk (a first crawl brings thousands). A manifest deletion logged earlier but dated at or
 * after `at` applies after the set, as in applyTagEvent.
 */
async function insertNewTags(q: Queryable, d: Dialect, repoId: number, fresh: readonly (readonly [string, string])[], at: number, ctx: WriteContext): Promise<void> {
  let live = 0;
  let build = 0;
  let newest: number | null = null;
  for (const part of chunks(fresh, NEW_TAGS_CHUNK)) {
    const digests = [...new Set(part.map(([, d]) => d))];
    const deletedAt = new Map<string, number>();
    const rows = await q.all<Row>(
      `SELECT digest, min(at) AS at FROM manifest_deletions WHERE repository_id = ? AND at >= ? AND digest IN (${marks(digests.length)}) GROUP BY digest`,
      [repoId, at, ...digests],
    );
    for (const r of rows) deletedAt.set(r.digest as string, num(r.at));
    await loadSummaries(q, repoId, digests, ctx);
    const states = part.map(([name, digest]) => {
      let state = step(null, { at, kind: SET, digest }) as TagState;
      const md = deletedAt.get(digest);
      if (md !== undefined) state = step(state, { at: md, kind: MANIFEST_DELETE, digest }) as TagState;
      const summary = ctx.summaries.get(summaryKey(repoId, digest))!;
      return { name, digest, state, summary, live: isLive(state) };
    });
    const ids = new Map<string, number>();
    for (const rowsPart of chunks(states, Math.floor(MAX_PARAMS / 10))) {
      const inserted = await q.all<Row>(
        `INSERT INTO tags (repository_id, name, digest, deleted_at, updated_at, last_kind, last_digest, first_seen, last_seen, has_build)
         VALUES ${rowsPart.map(() => `(${marks(10)})`).join(', ')} RETURNING id, name`,
        rowsPart.flatMap((x) => [
          repoId,
          x.name,
          x.digest,
          x.state.deletedAt,
          x.state.updatedAt,
          x.state.lastKind,
          x.state.lastDigest,
          x.state.firstSeen,
          at,
          x.summary.hasBuildDetails ? 1 : 0,
        ]),
      );
      for (const r of inserted) ids.set(r.name as string, num(r.id));
    }
    await insertMany(q, 'tag_events', ['tag_id', 'at', 'kind', 'digest'], states.map((x) => [ids.get(x.name)!, at, SET, x.digest]));
    const known = await imagesTagged(q, repoId, digests, at);
    await tagWeeksMoved(q, repoId, states.map((x): TagWeekMove => ({ digest: x.digest, week: weekOfTime(x.state.updatedAt), n: 1 })), known);
    const terms: Param[][] = [];
    for (const x of states) {
      newest = Math.max(newest ?? x.state.updatedAt, x.state.updatedAt);
      if (!x.live) continue;
      live++;
      if (x.summary.hasBuildDetails) build++;
      const id = ids.get(x.name)!;
      for (const [k, v] of x.summary.terms) {
        const [prefix, rest] = splitValue(v);
        terms.push([id, repoId, k, prefix, rest, x.state.updatedAt]);
      }
    }
    await insertMany(q, 'tag_terms', ['tag_id', 'repository_id', 'key', 'value', 'value_rest', 'updated_at'], terms);
    // Done with these images: a repository of many tags does not keep them all (one further use
    // in this transaction only reads one again).
    for (const d of digests) ctx.summaries.delete(summaryKey(repoId, d));
  }
  if (newest === null) return;
  await repositoryChanged(q, d, repoId, { live, build, updatedAt: newest });
}

export async function ensureRepository(q: Queryable, d: Dialect, name: string, at: number): Promise<number> {
  if (repositoryCountersDeferred(q)) {
    // Without locking the row: its times are written with its counters, at the transaction's end.
    const find = () => q.all<{ id: unknown }>('SELECT id FROM repositories WHERE name = ?', [name]);
    let rows = await find();
    if (!rows[0]) rows = await q.all<{ id: unknown }>('INSERT INTO repositories (name, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id', [name, at, at]);
    if (!rows[0]) rows = await find();
    const id = num(rows[0]!.id);
    await repositoryChanged(q, d, id, { firstSeen: at, lastSeen: at });
    return id;
  }
  const g = d.greatest;
  const rows = await q.all<{ id: unknown }>(
    `INSERT INTO repositories (name, first_seen, last_seen) VALUES (?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET last_seen = ${g}(repositories.last_seen, excluded.last_seen),
       first_seen = ${g === 'max' ? 'min' : 'LEAST'}(repositories.first_seen, excluded.first_seen)
     RETURNING id`,
    [name, at, at],
  );
  return num(rows[0]!.id);
}

/**
 * A manifest deletion of the event's digest logged earlier but dated at or after it (it applies
 * after the set): the column deleted_later of TAG_WITH_EVENT. Parameters: digest, at.
 */
const DELETED_LATER = 'SELECT min(d.at) FROM manifest_deletions d WHERE d.repository_id = g.repository_id AND d.digest = ? AND d.at >= ?';

/** The tag (repository id, name) with deleted_later. Parameters: digest, at, repository id, name. */
const TAG_WITH_DELETION = `SELECT ${TAG_COLUMNS}, (${DELETED_LATER}) AS deleted_later FROM tags g WHERE g.repository_id = ? AND g.name = ?`;

/**
 * PostgreSQL, in one statement: the tag, created if need be, with deleted_later, and the event
 * logged (fresh: 1, or 0 when it was logged already). The repository by id, or by name when
 * `byName`. No row when the repository is not in the catalog (by name), or when the tag was
 * created meanwhile by a transaction this statement's snapshot does not see: then the steps go
 * one by one. Parameters: the repository, name (twice), at, kind, digest, then those of
 * DELETED_LATER.
 */
function tagWithEvent(byName: boolean): string {
  return `WITH rp AS (SELECT id FROM repositories WHERE ${byName ? 'name = ?' : 'id = CAST(? AS bigint)'}),
  ins AS (
    INSERT INTO tags (repository_id, name) SELECT rp.id, CAST(? AS text) FROM rp
    WHERE NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = rp.id AND name = ?) ON CONFLICT (repository_id, name) DO NOTHING RETURNING *),
  t AS (SELECT * FROM ins UNION ALL SELECT tags.* FROM tags JOIN rp ON tags.repository_id = rp.id WHERE tags.name = ?),
  e AS (INSERT INTO tag_events (tag_id, at, kind, digest) SELECT id, CAST(? AS bigint), CAST(? AS smallint), ? FROM t ON CONFLICT DO NOTHING RETURNING tag_id)
  SELECT ${TAG_COLUMNS}, (${DELETED_LATER}) AS deleted_later, (SELECT count(*) FROM e) AS fresh FROM t g`;
}
const TAG_WITH_EVENT = tagWithEvent(false);
const TAG_WITH_EVENT_BY_NAME = tagWithEvent(true);

interface TagAndEvent {
  row: TagRow;
  fresh: boolean;
  deletedLater: number | null;
}

function tagAndEventOf(r: Row): TagAndEvent {
  return { row: tagRow(r), fresh: num(r.fresh) > 0, deletedLater: numOrNull(r.deleted_later) };
}

/** The tag's row (created if need be), whether the event is new to its log (now logged), and deleted_later. */
async function tagAndEvent(q: Queryable, d: Dialect, repoId: number, tag: string, event: TagEvent): Promise<TagAndEvent> {
  if (d.writableCtes) {
    const rows = await q.all(TAG_WITH_EVENT, [repoId, tag, tag, tag, event.at, event.kind, event.digest, event.digest, event.at], { prepare: true });
    if (rows[0]) return tagAndEventOf(rows[0]);
  }
  const find = () => q.all(TAG_WITH_DELETION, [event.digest, event.at, repoId, tag], { prepare: true });
  let rows = await find();
  if (!rows[0]) {
    await q.run('INSERT INTO tags (repository_id, name) VALUES (?, ?) ON CONFLICT (repository_id, name) DO NOTHING', [repoId, tag]);
    rows = await find();
  }
  const row = tagRow(rows[0]!);
  const fresh = await q.run('INSERT INTO tag_events (tag_id, at, kind, digest) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [row.id, event.at, event.kind, event.digest]);
  return { row, fresh: fresh > 0, deletedLater: numOrNull(rows[0]!.deleted_later) };
}

/** Logs one event of a tag and brings the tag's state up to date: one step if it is the newest, else a replay. */
async function applyTagEvent(q: Queryable, d: Dialect, repoId: number, tag: string, event: TagEvent, ctx: WriteContext, repository?: string, logged?: TagAndEvent): Promise<EventOutcome> {
  const { row, fresh, deletedLater } = logged ?? (await tagAndEvent(q, d, repoId, tag, event));
  if (!fresh) return 'duplicate';
  const known = event.kind === SET ? await imagesTagged(q, repoId, [event.digest], event.at, repository) : undefined;
  const before = stateOf(row);
  let after: TagState | null;
  if (stepsForward(row, before, event)) {
    after = step(before, event);
    // A deletion of this manifest logged earlier but dated later applies after this set.
    if (event.kind === SET && deletedLater !== null) after = step(after, { at: deletedLater, kind: MANIFEST_DELETE, digest: event.digest });
  } else {
    after = await replay(q, row);
  }
  await writeTagState(q, d, row, before, after, event.at, ctx, known, repository);
  return after !== null && compareEvents(lastEvent(after), event) === 0 ? 'applied' : 'superseded';
}

async function tagEvents(q: Queryable, row: TagRow): Promise<TagEvent[]> {
  const own = (await q.all<Row>('SELECT at, kind, digest FROM tag_events WHERE tag_id = ?', [row.id])).map(
    (r): TagEvent => ({ at: num(r.at), kind: num(r.kind) as TagEvent['kind'], digest: r.digest as string }),
  );
  const seen = observation(row);
  if (seen !== null) own.push(seen);
  const set = [...new Set(own.filter((e) => e.kind === SET).map((e) => e.digest))];
  const events = [...own];
  for (const part of chunks(set, IN_CHUNK)) {
    const rows = await q.all<Row>(`SELECT digest, at FROM manifest_deletions WHERE repository_id = ? AND digest IN (${marks(part.length)})`, [row.repository_id, ...part]);
    for (const r of rows) events.push({ at: num(r.at), kind: MANIFEST_DELETE, digest: r.digest as string });
  }
  return events;
}

async function replay(q: Queryable, row: TagRow): Promise<TagState | null> {
  return fold(await tagEvents(q, row)).state;
}

/**
 * Stores a tag's new state and keeps its terms, its repository's counters and the evidence
 * aggregates (evidence-weeks.ts; `known` as there) in step: the tag's row and its terms in one go
 * (runTogether).
 */
async function writeTagState(
  q: Queryable,
  d: Dialect,
  row: TagRow,
  before: TagState | null,
  after: TagState | null,
  seenAt: number | null,
  ctx: WriteContext,
  known?: ReadonlyMap<string, LockedImage>,
  repository?: string,
): Promise<void> {
  if (after === null) return;
  const g = d.greatest;
  const wasLive = isLive(before);
  const nowLive = isLive(after);
  let hasBuild = row.has_build === 1;
  const terms: Statement[] = [];
  if (nowLive) {
    if (!wasLive || before?.digest !== after.digest) {
      // A tag that never had a state has no terms yet.
      const rebuilt = await termWrites(q, row, after.digest as string, after.updatedAt, ctx, before !== null);
      hasBuild = rebuilt.hasBuild;
      terms.push(...rebuilt.writes);
    } else if (before?.updatedAt !== after.updatedAt) terms.push({ sql: 'UPDATE tag_terms SET updated_at = ? WHERE tag_id = ?', params: [after.updatedAt, row.id] });
  } else if (wasLive) {
    terms.push({ sql: 'DELETE FROM tag_terms WHERE tag_id = ?', params: [row.id] });
  }
  await runTogether(q, d, [
    {
      sql: `UPDATE tags SET digest = ?, deleted_at = ?, updated_at = ?, last_kind = ?, last_digest = ?, first_seen = ?, has_build = ?,
       last_seen = ${seenAt === null ? 'last_seen' : `${g}(COALESCE(last_seen, ?), ?)`} WHERE id = ?`,
      params: [after.digest, after.deletedAt, after.updatedAt, after.lastKind, after.lastDigest, after.firstSeen, hasBuild ? 1 : 0, ...(seenAt === null ? [] : [seenAt, seenAt]), row.id],
    },
    ...terms,
  ]);
  // The images the tag's row counts for (its digest, in the week of its update), before and after.
  const moves: TagWeekMove[] = [];
  if (row.digest !== null && row.updated_at !== null) moves.push({ digest: row.digest, week: weekOfTime(row.updated_at), n: -1 });
  if (after.digest !== null) moves.push({ digest: after.digest, week: weekOfTime(after.updatedAt), n: 1 });
  await tagWeeksMoved(q, row.repository_id, moves, known, repository);
  const liveDelta = (nowLive ? 1 : 0) - (wasLive ? 1 : 0);
  const buildDelta = (nowLive && hasBuild ? 1 : 0) - (wasLive && row.has_build ? 1 : 0);
  // The repository's update time is its tags' newest. A replay can move a tag's time back
  // (an older event turned out to decide it): then take the maximum afresh.
  const movedBack = before !== null && after.updatedAt < before.updatedAt;
  await repositoryChanged(q, d, row.repository_id, movedBack ? { live: liveDelta, build: buildDelta, recompute: true } : { live: liveDelta, build: buildDelta, updatedAt: after.updatedAt });
}
/** A page of a tag's history: segments that started before `before` (ms), at most `limit`. */
export async function tagHistory(db: Queryable, repository: string, tag: string, before: number | undefined, limit: number): Promise<TagHistory | null> {
  const rows = await db.all(`SELECT ${TAG_COLUMNS} FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = ? AND g.name = ?`, [repository, tag]);
  if (!rows[0]) return null;
  const row = tagRow(rows[0]);
  const { state, segments } = fold(await tagEvents(db, row));
  if (!state) return null;
  return {
    repository,
    tag,
    digest: isLive(state) ? state.digest : null,
    deletedAt: dateOrNull(state.deletedAt),
    updatedAt: new Date(state.updatedAt),
    firstSeen: dateOrNull(state.firstSeen),
    ...historyPage(segments, before, limit),
  };
}

