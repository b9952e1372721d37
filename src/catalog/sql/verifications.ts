// The SQL of verified builds and of pushers (tables from migration 7), shared by both dialects and
// called from SqlStore. A verification is a build report checked against a GitLab ID token
// (src/server/builds.ts); it is kept per repository and digest, so when a tag moves to another
// digest the mark does not follow it. A pusher is the user agent of the registry notification that
// announced a manifest's push (src/catalog/pushers.ts names the tool).
import { UsageError } from '../../errors.js';
import type { Driver, Param, Queryable, Row } from './driver.js';
import type { SearchQuery } from '../types.js';
import { recordFirstPusher, verificationRecorded } from './evidence-weeks.js';

/** What a checked build report proves: a job of this project pushed this digest in this pipeline. */
export interface VerifiedBuild {
  by: 'gitlab-id-token';
  /** The token's `iss`: the GitLab server. */
  issuer: string;
  projectPath: string;
  pipelineId: string;
  jobId: string;
  sha: string;
  ref: string;
  /** When serve checked the report. */
  at: Date;
}

export interface PusherRecord {
  /** The push request's User-Agent, as the registry reported it (cut to 200 characters). */
  userAgent: string;
  /** The tool it names (buildkit, kaniko, buildah, docker, ...), or 'other'. */
  pusher: string;
}

const key = (repository: string, digest: string): string => `${repository}@${digest}`;

/** A condition on the repositories row `r` (read-scope-sql.ts readableSql): only repositories the person may read. */
export interface ReadableCondition {
  sql: string;
  params: Param[];
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

/**
 * Records (or renews) the verification of a digest in a repository, and counts the image there
 * as verified (evidence-weeks.ts). Runs alone (Store.recordVerifications).
 */
export async function recordVerification(q: Queryable, repository: string, digest: string, v: VerifiedBuild): Promise<void> {
  const renewed = await q.run('DELETE FROM build_verifications WHERE repository = ? AND digest = ?', [repository, digest]);
  await q.run(
    'INSERT INTO build_verifications (repository, digest, issuer, project_path, pipeline_id, job_id, sha, ref, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [repository, digest, v.issuer, v.projectPath, v.pipelineId, v.jobId, v.sha, v.ref, v.at.getTime()],
  );
  if (renewed === 0) await verificationRecorded(q, repository, digest);
}

function fromRow(r: Record<string, unknown>): VerifiedBuild {
  return {
    by: 'gitlab-id-token',
    issuer: String(r.issuer),
    projectPath: String(r.project_path),
    pipelineId: String(r.pipeline_id),
    jobId: String(r.job_id),
    sha: String(r.sha),
    ref: String(r.ref),
    at: new Date(num(r.verified_at)),
  };
}

/** The verifications of these digests, keyed `repository@digest`. */
export async function verificationsOf(q: Queryable, digests: readonly string[]): Promise<Map<string, VerifiedBuild & { repository: string }>> {
  const out = new Map<string, VerifiedBuild & { repository: string }>();
  const unique = [...new Set(digests)];
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500);
    const rows = await q.all<Record<string, unknown>>(
      `SELECT repository, digest, issuer, project_path, pipeline_id, job_id, sha, ref, verified_at FROM build_verifications WHERE digest IN (${chunk.map(() => '?').join(', ')}) ORDER BY verified_at DESC`,
      chunk,
    );
    for (const r of rows) out.set(key(String(r.repository), String(r.digest)), { ...fromRow(r), repository: String(r.repository) });
  }
  return out;
}

export function verificationKey(repository: string, digest: string): string {
  return key(repository, digest);
}

/**
 * Ids of live tags whose (repository, digest) is verified, newest first, with the filters a
 * verification answers for itself (its pipeline, commit and ref were checked against the image's
 * annotations). Annotation filters are refused with verified=true.
 */
export async function searchVerified(q: Queryable, query: SearchQuery, limit: number, readable?: ReadableCondition): Promise<{ ids: number[]; next?: { u: number; i: number } }> {
  if (query.annotations && query.annotations.length > 0) {
    throw new UsageError('verified=true cannot be combined with annotation= filters', { hint: 'use commit=, pipeline= or ref= with verified=true' });
  }
  const where: string[] = ['g.deleted_at IS NULL'];
  const params: Param[] = [];
  if (readable) {
    where.push(readable.sql);
    params.push(...readable.params);
  }
  if (query.repository !== undefined) {
    where.push('r.name = ?');
    params.push(query.repository);
  }
  if (query.tag !== undefined) {
    where.push('g.name = ?');
    params.push(query.tag);
  }
  if (query.pipeline !== undefined) {
    where.push('v.pipeline_id = ?');
    params.push(query.pipeline);
  }
  if (query.ref !== undefined) {
    where.push('v.ref = ?');
    params.push(query.ref);
  }
  if (query.commit !== undefined) {
    // A prefix as a range: no pattern characters in play.
    const p = query.commit.toLowerCase();
    where.push('v.sha >= ? AND v.sha < ?');
    params.push(p, `${p}\u{10FFFF}`);
  }
  const cursor = decodeVerifiedCursor(query.cursor);
  if (cursor) {
    where.push('(g.updated_at < ? OR (g.updated_at = ? AND g.id < ?))');
    params.push(cursor.u, cursor.u, cursor.i);
  }
  const rows = await q.all<Record<string, unknown>>(
    'SELECT g.id, g.updated_at FROM tags g JOIN repositories r ON r.id = g.repository_id ' +
      'JOIN build_verifications v ON v.repository = r.name AND v.digest = g.digest ' +
      `WHERE ${where.join(' AND ')} ORDER BY g.updated_at DESC, g.id DESC LIMIT ${limit + 1}`,
    params,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { ids: page.map((r) => num(r.id)), ...(rows.length > limit && last ? { next: { u: num(last.updated_at), i: num(last.id) } } : {}) };
}

export function encodeVerifiedCursor(next: { u: number; i: number }): string {
  return Buffer.from(JSON.stringify({ k: 'v', ...next }), 'utf8').toString('base64url');
}

function decodeVerifiedCursor(cursor: string | undefined): { u: number; i: number } | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  const c = v as { k?: unknown; u?: unknown; i?: unknown } | undefined;
  if (!c || c.k !== 'v' || !Number.isSafeInteger(c.u) || !Number.isSafeInteger(c.i)) {
    throw new UsageError('the cursor is not one this search returned', { hint: 'pass back nextCursor from the previous page of the same search' });
  }
  return { u: c.u as number, i: c.i as number };
}

/**
 * Verified images, and images by pusher, of the insights report counted from the base tables:
 * distinct repository and digest of a tag (live or deleted) updated in [from, to) and pointing, or
 * last pointing, at it, of these repositories (listedRepositories in insights.ts; null: every
 * one). What the aggregates (evidence-weeks.ts insightEvidence, which the product reads) must
 * always equal: tests and benchmarks compare the two.
 */
export async function recountInsightEvidence(db: Driver, from: number, to: number, repositoryIds: readonly number[] | null): Promise<{ verified: number; pushedBy: Record<string, number> }> {
  const d = db.dialect;
  const listed = repositoryIds === null ? '' : ` AND ${d.inIdList('g.repository_id')}`;
  const window: Param[] = [from, to, ...(repositoryIds === null ? [] : [d.idList(repositoryIds)])];
  // A manifest has one pusher, so (repository, digest) counts each image once.
  const rows = await db.all<Row>(
    `SELECT (SELECT COUNT(*) FROM (SELECT DISTINCT v.repository, v.digest FROM build_verifications v
         JOIN repositories r ON r.name = v.repository JOIN tags g ON g.repository_id = r.id AND g.digest = v.digest
         WHERE g.updated_at >= ? AND g.updated_at < ?${listed}) x) AS verified,
       (SELECT ${d.jsonAgg(d.jsonArray(['y.pusher', 'y.n']))} FROM (SELECT x.pusher, COUNT(*) AS n
         FROM (SELECT DISTINCT g.repository_id, g.digest, p.pusher FROM tags g JOIN manifest_pushers p ON p.digest = g.digest
               WHERE g.updated_at >= ? AND g.updated_at < ?${listed}) x GROUP BY x.pusher) y) AS pushers`,
    [...window, ...window],
  );
  const pushers = rows[0]?.pushers;
  const pairs = (pushers == null ? [] : typeof pushers === 'string' ? JSON.parse(pushers) : pushers) as [unknown, unknown][];
  const pushedBy: Record<string, number> = {};
  for (const [pusher, n] of pairs) pushedBy[String(pusher)] = num(n);
  return { verified: num(rows[0]?.verified ?? 0), pushedBy };
}

/**
 * The first push of a manifest names its pusher; later pushes of the same bytes change nothing.
 * Beside other writers the caller holds the manifest's evidence lock exclusively (evidence-weeks.ts).
 */
export async function recordPusher(q: Queryable, digest: string, userAgent: string, pusher: string, at: Date): Promise<void> {
  // The first push recorded stays, also when two arrive at once.
  await recordFirstPusher(q, digest, userAgent.slice(0, 200), pusher, at.getTime());
}

export async function pusherOf(q: Queryable, digest: string): Promise<PusherRecord | undefined> {
  return (await pushersOf(q, [digest])).get(digest);
}

/** The pushers of these digests (as pusherOf, for several at once). */
export async function pushersOf(q: Queryable, digests: readonly string[]): Promise<Map<string, PusherRecord>> {
  const out = new Map<string, PusherRecord>();
  const unique = [...new Set(digests)];
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500);
    const rows = await q.all<Record<string, unknown>>(`SELECT digest, user_agent, pusher FROM manifest_pushers WHERE digest IN (${chunk.map(() => '?').join(', ')})`, chunk);
    for (const r of rows) out.set(String(r.digest), { userAgent: String(r.user_agent), pusher: String(r.pusher) });
  }
  return out;
}

