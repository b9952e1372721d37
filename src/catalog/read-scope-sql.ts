// The read rule (read-scope.ts) in SQL, in one place: every reader that takes a ReadScope adds
// readableSql() on its repositories row, so lists, search, counts and insights agree. Shared by
// both dialects; only the JSON-to-rows function differs.
import type { Dialect, Param, Queryable } from './sql.js';
import type { ReadScope } from './read-scope.js';
import type { ImageDetail } from './types.js';

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
  const projects = JSON.stringify(scope.projects);
  const open = scope.publicAndInternal ? ` OR ${r}.gitlab_visibility IN ('public', 'internal')` : '';
  const member = `EXISTS (SELECT 1 FROM ${stringSet(d)} WHERE value = ${r}.gitlab_project_path)`;
  const prefix = `EXISTS (SELECT 1 FROM ${stringSet(d)} WHERE ${r}.name = value OR substr(${r}.name, 1, length(value) + 1) = value || '/')`;
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

/** True when a tag of a readable repository points, or once pointed, at one of the digests. */
export async function anyDigestReadable(q: Queryable, d: Dialect, digests: readonly string[], scope: ReadScope): Promise<boolean> {
  if (digests.length === 0) return false;
  const cond = readableSql(d, scope, 'r');
  const rows = await q.all(
    `SELECT 1 AS one FROM tag_events e JOIN tags g ON g.id = e.tag_id JOIN repositories r ON r.id = g.repository_id WHERE e.digest IN (SELECT value FROM ${stringSet(d)}) AND ${cond.sql} LIMIT 1`,
    [JSON.stringify([...new Set(digests)]), ...cond.params],
  );
  return rows.length > 0;
}

/**
 * One image as the person may see it: null unless a readable repository tags it (or once did),
 * or tags an index that holds it; then with its tags and parent indexes in readable repositories only.
 */
export async function scopedImage(q: Queryable, d: Dialect, detail: ImageDetail, scope: ReadScope): Promise<ImageDetail | null> {
  if (!(await anyDigestReadable(q, d, [detail.digest, ...detail.parents], scope))) return null;
  const readable = await readableRepositories(q, d, detail.tags.map((t) => t.repository), scope);
  // An index that holds it, but only one a readable repository tags, is named.
  const parents: string[] = [];
  for (const parent of detail.parents) if (await anyDigestReadable(q, d, [parent], scope)) parents.push(parent);
  return { ...detail, tags: detail.tags.filter((t) => readable.has(t.repository)), parents };
}
