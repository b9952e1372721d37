// A repository's counters and times (live_tags, build_tags, updated_at, first_seen, last_seen) as
// the writes of one transaction change them. Inside a store transaction (deferRepositoryCounters)
// the changes are gathered and written at its end, one UPDATE per repository: the row every tag
// event of a repository updates is then held only from that UPDATE to the commit. They are listed
// in id order, which sets the order the rows are taken in only where they run one by one (SQLite);
// on PostgreSQL they go in one statement (runTogether), in no set order, and a deadlock between
// two transactions that touch several repositories is retried (postgres.ts).
import { type Dialect, type Queryable, type Statement, runTogether } from './driver.js';

interface Change {
  live: number;
  build: number;
  /** The newest tag time to fold into updated_at (GREATEST). */
  updatedAt: number | null;
  /** A tag's time moved back: take the maximum of its tags afresh. */
  recompute: boolean;
  firstSeen: number | null;
  lastSeen: number | null;
}

interface Pending {
  d: Dialect;
  changes: Map<number, Change>;
  /** Other end-of-transaction writes to send with the counters' (writeWithRepositoryCounters). */
  before: Statement[];
  after: Statement[];
}

const pending = new WeakMap<Queryable, Pending>();

export function deferRepositoryCounters(q: Queryable, d: Dialect): void {
  pending.set(q, { d, changes: new Map(), before: [], after: [] });
}

/**
 * Writes to run at the transaction's end with its repository counters (writeRepositoryCounters):
 * `together` with them (on PostgreSQL in one statement, in no set order: none may read what another
 * writes, nor change a row another changes), and `after` them, together too (each may read what
 * the first group wrote, none what another of its own group writes).
 */
export function writeWithRepositoryCounters(q: Queryable, together: readonly Statement[], after: readonly Statement[]): void {
  const gathered = pending.get(q);
  if (!gathered) throw new Error('no repository counters deferred in this transaction');
  gathered.before.push(...together);
  gathered.after.push(...after);
}

/** Forgets what this transaction's write gathered (it failed, and is rolled back). */
export function dropRepositoryCounters(q: Queryable): void {
  pending.delete(q);
}

/** Whether this transaction gathers its repository changes for the end (deferRepositoryCounters). */
export function repositoryCountersDeferred(q: Queryable): boolean {
  return pending.has(q);
}

/** `d` may be left out for a change of the counters alone. */
export async function repositoryChanged(q: Queryable, d: Dialect | undefined, repoId: number, change: Partial<Change>): Promise<void> {
  const full: Change = { live: 0, build: 0, updatedAt: null, recompute: false, firstSeen: null, lastSeen: null, ...change };
  const gathered = pending.get(q)?.changes;
  if (!gathered) return apply(q, d, repoId, full);
  const was = gathered.get(repoId);
  if (!was) {
    gathered.set(repoId, full);
    return;
  }
  const most = (a: number | null, b: number | null, pick: (x: number, y: number) => number) => (a === null ? b : b === null ? a : pick(a, b));
  gathered.set(repoId, {
    live: was.live + full.live,
    build: was.build + full.build,
    updatedAt: most(was.updatedAt, full.updatedAt, Math.max),
    recompute: was.recompute || full.recompute,
    firstSeen: most(was.firstSeen, full.firstSeen, Math.min),
    lastSeen: most(was.lastSeen, full.lastSeen, Math.max),
  });
}

/** Writes what the transaction gathered (see deferRepositoryCounters), with the writes handed over; the last writes before the commit. */
export async function writeRepositoryCounters(q: Queryable): Promise<void> {
  const gathered = pending.get(q);
  pending.delete(q);
  if (!gathered) return;
  const updates = [...gathered.changes]
    .sort(([a], [b]) => a - b)
    .map(([repoId, change]) => counterUpdate(gathered.d, repoId, change))
    .filter((u): u is Statement => u !== null);
  await runTogether(q, gathered.d, [...gathered.before, ...updates]);
  await runTogether(q, gathered.d, gathered.after);
}

async function apply(q: Queryable, d: Dialect | undefined, repoId: number, c: Change): Promise<void> {
  const update = counterUpdate(d, repoId, c);
  if (update) await q.run(update.sql, update.params);
}

function counterUpdate(d: Dialect | undefined, repoId: number, c: Change): Statement | null {
  const g = d?.greatest ?? 'max';
  const least = g === 'max' ? 'min' : 'LEAST';
  if (!d && (c.updatedAt !== null || c.firstSeen !== null || c.lastSeen !== null)) throw new Error('a repository time changed without its dialect');
  const sets = ['live_tags = live_tags + ?', 'build_tags = build_tags + ?'];
  const params: number[] = [c.live, c.build];
  if (c.recompute) sets.push('updated_at = (SELECT max(t.updated_at) FROM tags t WHERE t.repository_id = repositories.id)');
  else if (c.updatedAt !== null) {
    sets.push(`updated_at = ${g}(COALESCE(updated_at, ?), ?)`);
    params.push(c.updatedAt, c.updatedAt);
  }
  if (c.firstSeen !== null) {
    sets.push(`first_seen = ${least}(first_seen, ?)`);
    params.push(c.firstSeen);
  }
  if (c.lastSeen !== null) {
    sets.push(`last_seen = ${g}(last_seen, ?)`);
    params.push(c.lastSeen);
  }
  if (c.live === 0 && c.build === 0 && sets.length === 2) return null;
  return { sql: `UPDATE repositories SET ${sets.join(', ')} WHERE id = ?`, params: [...params, repoId] };
}
