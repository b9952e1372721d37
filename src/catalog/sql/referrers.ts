// The SQL of build-details referrers (tables from migration 3), shared by both dialects and
// called from SqlStore inside its transactions. A referrer manifest is stored once by digest;
// links say which repository's referrers tag lists it for which subject.
//
// The rule, owned here: a referrer lends build details to a digest only in the repository whose
// referrers tag lists it. Anyone who can push to some repository can push a referrer naming any
// digest as its subject (distribution does not check that the subject exists), so a referrer
// listed in another repository never counts. Among a repository's referrers of a digest the newest
// (by org.opencontainers.image.created, then digest) with build annotations wins; it stands in
// only when the image carries no build annotations itself (see summarize in terms.ts, resolveBuild in
// details/build.ts), so a self-declared `created` never outranks the image's own details.
import { hasBuildAnnotations } from '../../details/keys.js';
import { type Annotations, CREATED_KEY, emptyAnnotations } from '../../oci/annotations.js';
import { IN_CHUNK, type Queryable, type Row, chunks, marks } from './driver.js';
import type { ReferrerInfo, ReferrerRecord } from '../types.js';


function annotationsOf(v: unknown): Annotations {
  const out = emptyAnnotations();
  let parsed: unknown;
  try {
    parsed = typeof v === 'string' ? JSON.parse(v) : v;
  } catch {
    return out;
  }
  if (!Array.isArray(parsed)) return out;
  for (const p of parsed) {
    if (!Array.isArray(p)) continue;
    const [k, val] = p as unknown[];
    if (typeof k === 'string' && typeof val === 'string') out[k] = val;
  }
  return out;
}

function info(r: Row): ReferrerInfo {
  return { digest: r.digest as string, annotations: annotationsOf(r.annotations), created: (r.created as string | null) ?? '' };
}

const LINKED = `SELECT DISTINCT l.subject_digest, r.digest, r.created, r.annotations, r.has_build, rp.name AS repository
  FROM referrer_links l JOIN referrers r ON r.digest = l.referrer_digest JOIN repositories rp ON rp.id = l.repository_id`;

/** One entry per referrer, naming every repository whose referrers tag lists it. */
function withRepositories(rows: Row[]): ReferrerInfo[] {
  const byDigest = new Map<string, ReferrerInfo & { repositories: string[] }>();
  for (const r of rows) {
    const found = byDigest.get(r.digest as string);
    if (found) {
      if (!found.repositories.includes(r.repository as string)) found.repositories.push(r.repository as string);
    } else byDigest.set(r.digest as string, { ...info(r), repositories: [r.repository as string] });
  }
  for (const v of byDigest.values()) v.repositories.sort();
  return [...byDigest.values()];
}

function newestFirst(a: ReferrerInfo, b: ReferrerInfo): number {
  if (a.created !== b.created) return a.created < b.created ? 1 : -1;
  return a.digest < b.digest ? 1 : a.digest > b.digest ? -1 : 0;
}

/** The newest referrer with build details, listed in repository `repoId`, of each digest that has one. */
export async function newestReferrers(q: Queryable, repoId: number, digests: readonly string[]): Promise<Map<string, ReferrerInfo>> {
  const out = new Map<string, ReferrerInfo>();
  const unique = [...new Set(digests)];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const part = unique.slice(i, i + IN_CHUNK);
    const rows = await q.all<Row>(`${LINKED} WHERE l.repository_id = ? AND l.subject_digest IN (${marks(part.length)}) AND r.has_build = 1`, [repoId, ...part]);
    for (const r of rows) {
      const subject = r.subject_digest as string;
      const candidate = info(r);
      const best = out.get(subject);
      if (!best || newestFirst(candidate, best) < 0) out.set(subject, candidate);
    }
  }
  return out;
}

/** The link's repository has a tag on its subject (any state: a tag once set is evidence enough for the insights). */
const TAGGED_HERE = 'EXISTS (SELECT 1 FROM tags g WHERE g.repository_id = l.repository_id AND g.digest = l.subject_digest)';

/**
 * The referrers of `digest` that count, newest first: those listed in repository `repoId`; with
 * null, those listed in a repository that tags the digest (a digest alone names no repository).
 */
export async function referrersOf(q: Queryable, digest: string, repoId: number | null): Promise<ReferrerInfo[]> {
  const rows =
    repoId === null
      ? await q.all<Row>(`${LINKED} WHERE l.subject_digest = ? AND ${TAGGED_HERE}`, [digest])
      : await q.all<Row>(`${LINKED} WHERE l.subject_digest = ? AND l.repository_id = ?`, [digest, repoId]);
  return withRepositories(rows).sort(newestFirst);
}

/** referrersOf for several digests in one query a chunk: each digest's list, newest first. */
export async function referrersOfMany(q: Queryable, digests: readonly string[], repoId: number | null): Promise<Map<string, ReferrerInfo[]>> {
  const out = new Map<string, ReferrerInfo[]>();
  const unique = [...new Set(digests)];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const part = unique.slice(i, i + IN_CHUNK);
    const rows =
      repoId === null
        ? await q.all<Row>(`${LINKED} WHERE l.subject_digest IN (${marks(part.length)}) AND ${TAGGED_HERE}`, part)
        : await q.all<Row>(`${LINKED} WHERE l.subject_digest IN (${marks(part.length)}) AND l.repository_id = ?`, [...part, repoId]);
    const bySubject = new Map<string, Row[]>();
    for (const r of rows) bySubject.set(r.subject_digest as string, [...(bySubject.get(r.subject_digest as string) ?? []), r]);
    for (const [subject, list] of bySubject) out.set(subject, withRepositories(list));
  }
  for (const list of out.values()) list.sort(newestFirst);
  return out;
}

/** SQL true when the manifest digest `subject` (an SQL expression) is one buildReferrerSubjects finds. */
export function buildReferrerSql(subject: string): string {
  return `EXISTS (SELECT 1 FROM referrer_links l JOIN referrers r ON r.digest = l.referrer_digest WHERE l.subject_digest = ${subject} AND r.has_build = 1 AND ${TAGGED_HERE})`;
}

/**
 * The digests among these that have a referrer with build details listed in a repository that
 * tags them (the insights' build source), one statement per chunk.
 */
export async function buildReferrerSubjects(q: Queryable, digests: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const part of chunks([...new Set(digests)], IN_CHUNK)) {
    const rows = await q.all<{ subject_digest: string }>(
      `SELECT DISTINCT l.subject_digest FROM referrer_links l JOIN referrers r ON r.digest = l.referrer_digest WHERE l.subject_digest IN (${marks(part.length)}) AND r.has_build = 1 AND ${TAGGED_HERE}`,
      part,
    );
    for (const r of rows) found.add(r.subject_digest);
  }
  return found;
}

export async function hasReferrerRow(q: Queryable, digest: string): Promise<boolean> {
  return (await q.all('SELECT 1 AS one FROM referrers WHERE digest = ?', [digest])).length > 0;
}

export async function storedSubject(q: Queryable, digest: string): Promise<string | null> {
  const r = (await q.all<{ subject_digest: string }>('SELECT subject_digest FROM referrers WHERE digest = ?', [digest]))[0];
  return r ? r.subject_digest : null;
}

/** Stores a referrer manifest once; returns true when it was new. */
export async function insertReferrer(q: Queryable, rec: ReferrerRecord, cleaned: Annotations): Promise<boolean> {
  const pairs = Object.entries(cleaned).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const rows = await q.all(
    `INSERT INTO referrers (digest, subject_digest, artifact_type, created, has_build, annotations, stored_at)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING RETURNING digest`,
    [rec.digest, rec.subjectDigest, rec.artifactType, cleaned[CREATED_KEY] ?? '', hasBuildAnnotations(cleaned) ? 1 : 0, JSON.stringify(pairs), Date.now()],
  );
  return rows.length > 0;
}

export async function repositoryId(q: Queryable, name: string): Promise<number | null> {
  const r = (await q.all<{ id: unknown }>('SELECT id FROM repositories WHERE name = ?', [name]))[0];
  return r ? Number(r.id) : null;
}

export async function tagDigest(q: Queryable, repoId: number, subject: string): Promise<string | null> {
  const r = (await q.all<{ index_digest: string }>('SELECT index_digest FROM referrer_tags WHERE repository_id = ? AND subject_digest = ?', [repoId, subject]))[0];
  return r ? r.index_digest : null;
}

export async function tagSubjects(q: Queryable, repoId: number): Promise<string[]> {
  const rows = await q.all<{ subject_digest: string }>('SELECT subject_digest FROM referrer_tags WHERE repository_id = ? ORDER BY subject_digest', [repoId]);
  return rows.map((r) => r.subject_digest);
}

/**
 * Makes the repository's links for `subject` equal `referrers` (only those stored with that
 * subject are linked) and records the tag's digest; a null digest drops the tag and its links.
 * Returns whether any link changed.
 */
export async function replaceLinks(q: Queryable, repoId: number, subject: string, indexDigest: string | null, referrers: readonly string[], at: number): Promise<boolean> {
  const before = new Set((await q.all<{ referrer_digest: string }>('SELECT referrer_digest FROM referrer_links WHERE repository_id = ? AND subject_digest = ?', [repoId, subject])).map((r) => r.referrer_digest));
  const wanted = new Set<string>();
  const list = [...new Set(referrers)];
  for (let i = 0; i < list.length && indexDigest !== null; i += IN_CHUNK) {
    const part = list.slice(i, i + IN_CHUNK);
    const rows = await q.all<{ digest: string }>(`SELECT digest FROM referrers WHERE subject_digest = ? AND digest IN (${marks(part.length)})`, [subject, ...part]);
    for (const r of rows) wanted.add(r.digest);
  }
  let changed = false;
  for (const d of before) {
    if (wanted.has(d)) continue;
    await q.run('DELETE FROM referrer_links WHERE repository_id = ? AND subject_digest = ? AND referrer_digest = ?', [repoId, subject, d]);
    changed = true;
  }
  for (const d of wanted) {
    if (before.has(d)) continue;
    await q.run('INSERT INTO referrer_links (repository_id, subject_digest, referrer_digest) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [repoId, subject, d]);
    changed = true;
  }
  if (indexDigest === null) {
    await q.run('DELETE FROM referrer_tags WHERE repository_id = ? AND subject_digest = ?', [repoId, subject]);
  } else {
    await q.run(
      `INSERT INTO referrer_tags (repository_id, subject_digest, index_digest, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (repository_id, subject_digest) DO UPDATE SET index_digest = excluded.index_digest, updated_at = excluded.updated_at`,
      [repoId, subject, indexDigest, at],
    );
  }
  return changed;
}

/** Drops the repository's links to a deleted referrer manifest; returns the subjects that lost one. */
export async function dropReferrer(q: Queryable, repoId: number, referrer: string): Promise<string[]> {
  const rows = await q.all<{ subject_digest: string }>('SELECT subject_digest FROM referrer_links WHERE repository_id = ? AND referrer_digest = ?', [repoId, referrer]);
  if (rows.length === 0) return [];
  await q.run('DELETE FROM referrer_links WHERE repository_id = ? AND referrer_digest = ?', [repoId, referrer]);
  // Linked nowhere else: forget it, so a referrers tag still listing it reads it again (and finds it gone).
  await q.run('DELETE FROM referrers WHERE digest = ? AND NOT EXISTS (SELECT 1 FROM referrer_links l WHERE l.referrer_digest = ?)', [referrer, referrer]);
  return [...new Set(rows.map((r) => r.subject_digest))];
}
