// The read rule (read-scope.ts) in SQL, in one place: every reader that takes a ReadScope adds
// readableSql() on its repositories row, so lists, search, counts and insights agree. Shared by
// both dialects; only the JSON-to-rows function differs.
import type { Dialect, Param, Queryable } from './driver.js';
import type { ReadScope } from '../read-scope.js';
import type { ImageDetail } from '../types.js';

/** Rows of a JSON array of strings bound as one parameter, as a table with column `value`. */
function stringSet(d: Dialect): string {
  return d.name === 'sqlite' ? 'json_each(?)' : 'jsonb_array_elements_text(CAST(? AS jsonb)) AS p(value)';
}

/**
 * SQL true when the repository row `r` (an alias of repositories) may be read. A repository
 * whose project GitLab discovery recorded belongs to that project; any other to the member
 * project whose path is its own or a prefix of it, segment by segment.
 */
export function readableSql(d: Dialect, scope: ReadScope, r: string): { sql: string; params: Param[] } {
  // GitLab full paths keep their case (Acme/App); registry names are lower case.
  const projects = JSON.stringify(scope.projects.map((p) => p.toLowerCase()));
  const open = scope.publicAndInternal ? ` OR ${r}.gitlab_visibility IN ('public', 'internal')` : '';
  // Both conditions are subqueries that do not refer to the row, so each runs once per
  // statement, not once per repository (parsing the list each time): the member projects as a
  // set, and the repositories named by or under a project path, found through the name index (a
  // byte-order range, repository names being COLLATE "C"; the substr check decides).
  const member = `lower(${r}.gitlab_project_path) IN (SELECT value FROM ${stringSet(d)})`;
  const under = `${r}_under`;
  const prefix = `${r}.id IN (SELECT ${under}.id FROM ${stringSet(d)} JOIN repositories ${under} ON ${under}.name = value
    OR (${under}.name > value || '/' AND ${under}.name < value || '0' AND substr(${under}.name, 1, length(value) + 1) = value || '/'))`;
  return {
    sql: `((${r}.gitlab_project_path IS NOT NULL AND (${member}${open})) OR (${r}.gitlab_project_path IS NULL AND ${prefix}))`,
    params: [projects, projects],
  };
}

/** The names among `names` that may be read. */
export async function readableRepositories(q: Queryable, d: Dialect, names: readonly string[], scope: ReadScope): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const cond = readableSql(d, scope, 'r');
  const rows = await q.all<{ name: unknown }>(`SELECT r.name FROM repositories r WHERE r.name IN (SELECT value FROM ${stringSet(d)}) AND ${cond.sql}`, [JSON.stringify([...new Set(names)]), ...cond.params]);
  return new Set(rows.map((row) => String(row.name)));
}

/** The digests among `digests` that a tag of a readable repository points, or once pointed, at. */
async function readableDigests(q: Queryable, d: Dialect, digests: readonly string[], scope: ReadScope): Promise<Set<string>> {
  if (digests.length === 0) return new Set();
  const cond = readableSql(d, scope, 'r');
  const rows = await q.all<{ digest: unknown }>(
    `SELECT DISTINCT e.digest FROM tag_events e JOIN tags g ON g.id = e.tag_id JOIN repositories r ON r.id = g.repository_id WHERE e.digest IN (SELECT value FROM ${stringSet(d)}) AND ${cond.sql}`,
    [JSON.stringify([...new Set(digests)]), ...cond.params],
  );
  return new Set(rows.map((row) => String(row.digest)));
}

/**
 * Images as the person may see them, in two queries whatever their number: one is left out
 * unless a readable repository tags it (or once did), or tags an index that holds it; the rest
 * keep their tags and parent indexes in readable repositories only. Asked through `repository`,
 * one the person may not read, there are none.
 */
export async function scopedImages(q: Queryable, d: Dialect, details: ReadonlyMap<string, ImageDetail>, scope: ReadScope, repository?: string): Promise<Map<string, ImageDetail>> {
  const out = new Map<string, ImageDetail>();
  if (details.size === 0) return out;
  const all = [...details.values()];
  const names = all.flatMap((detail) => [
    ...detail.tags.map((t) => t.repository),
    ...(detail.verifications ?? []).map((v) => v.repository),
    ...(detail.referrers ?? []).flatMap((r) => r.repositories ?? []),
  ]);
  const readable = await readableRepositories(q, d, repository === undefined ? names : [...names, repository], scope);
  if (repository !== undefined && !readable.has(repository)) return out;
  const digests = await readableDigests(q, d, all.flatMap((detail) => [detail.digest, ...detail.parents]), scope);
  for (const [key, detail] of details) {
    if (!digests.has(detail.digest) && !detail.parents.some((p) => digests.has(p))) continue;
    // An index that holds it is named only when a readable repository tags it.
    // Verified build reports and build-details referrers, too, only of readable repositories
    // (a referrer listed only by an unreadable one would lend its build details otherwise).
    const verifications = detail.verifications?.filter((v) => readable.has(v.repository));
    const referrers = detail.referrers
      ?.filter((r) => (r.repositories ?? []).some((name) => readable.has(name)))
      .map((r) => ({ ...r, repositories: (r.repositories ?? []).filter((name) => readable.has(name)) }));
    out.set(key, {
      ...detail,
      tags: detail.tags.filter((t) => readable.has(t.repository)),
      parents: detail.parents.filter((p) => digests.has(p)),
      ...(verifications !== undefined ? { verifications } : {}),
      ...(referrers !== undefined ? { referrers } : {}),
    });
  }
  return out;
}

/** One image as the person may see it (scopedImages), or null. */
export async function scopedImage(q: Queryable, d: Dialect, detail: ImageDetail, scope: ReadScope, repository?: string): Promise<ImageDetail | null> {
  return (await scopedImages(q, d, new Map([[detail.digest, detail]]), scope, repository)).get(detail.digest) ?? null;
}
