// The SQL of signed-in sessions (table from migration 8), shared by both dialects and called from
// SqlStore. What a session holds is decided in server/auth/: here, rows in and out.
import type { Queryable } from './driver.js';

export interface SessionRecord {
  /** SHA-256 (hex) of the cookie's secret: the database alone cannot be replayed as cookies. */
  id: string;
  /** The GitLab user's `sub` claim. */
  subject: string;
  username: string;
  /** The GitLab access token, encrypted. */
  token: string;
  /** The sign-out form's CSRF token. */
  csrf: string;
  createdAt: Date;
  expiresAt: Date;
}

export async function putSession(q: Queryable, s: SessionRecord): Promise<void> {
  await q.run('INSERT INTO sessions (id, subject, username, token, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
    s.id,
    s.subject.slice(0, 255),
    s.username.slice(0, 255),
    s.token,
    s.csrf,
    s.createdAt.getTime(),
    s.expiresAt.getTime(),
  ]);
}

/** The session while it lasts at `now`; an expired one is not returned. */
export async function findSession(q: Queryable, id: string, now: Date): Promise<SessionRecord | undefined> {
  const rows = await q.all<Record<string, unknown>>('SELECT id, subject, username, token, csrf, created_at, expires_at FROM sessions WHERE id = ? AND expires_at > ?', [id, now.getTime()]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    id: String(r.id),
    subject: String(r.subject),
    username: String(r.username),
    token: String(r.token),
    csrf: String(r.csrf),
    createdAt: new Date(Number(r.created_at)),
    expiresAt: new Date(Number(r.expires_at)),
  };
}

/** Replaces the session's encrypted GitLab token (after a refresh); its lifetime stays. */
export async function setSessionToken(q: Queryable, id: string, token: string): Promise<void> {
  await q.run('UPDATE sessions SET token = ? WHERE id = ?', [token, id]);
}

/** Ends one session, and drops every expired one on the way. */
export async function deleteSession(q: Queryable, id: string, now: Date): Promise<void> {
  await q.run('DELETE FROM sessions WHERE id = ? OR expires_at <= ?', [id, now.getTime()]);
}
