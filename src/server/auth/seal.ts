// Secrets kept out of reach: the GitLab token a session stores is encrypted, and the sign-in's
// state, nonce and PKCE verifier travel in an encrypted, expiring cookie. Both are JWE (jose,
// dir + A256GCM) under keys derived from TAGTRAIL_SESSION_SECRET; another key signs the cookie.
import { createHash, hkdfSync } from 'node:crypto';
import { CompactEncrypt, EncryptJWT, compactDecrypt, jwtDecrypt } from 'jose';

export const MIN_SESSION_SECRET_LENGTH = 32;

export interface Keys {
  /** Signs the session cookie (hono's HMAC-SHA256 signed cookies), as hex. */
  cookie: string;
  token: Uint8Array;
  transaction: Uint8Array;
}

function derive(secret: string, purpose: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), `tagtrail ${purpose}`, 32));
}

export function deriveKeys(secret: string): Keys {
  return { cookie: Buffer.from(derive(secret, 'session cookie')).toString('hex'), token: derive(secret, 'gitlab token'), transaction: derive(secret, 'sign-in transaction') };
}

/** What a session keeps of GitLab's token response. */
interface SessionTokens {
  access: string;
  /** GitLab's OAuth access tokens last two hours; the refresh token renews them. */
  refresh?: string;
}

export async function sealTokens(keys: Keys, tokens: SessionTokens): Promise<string> {
  return sealToken(keys, JSON.stringify(tokens));
}

export async function openTokens(keys: Keys, sealed: string): Promise<SessionTokens | undefined> {
  const text = await openToken(keys, sealed);
  if (text === undefined) return undefined;
  try {
    const t = JSON.parse(text) as { access?: unknown; refresh?: unknown };
    if (typeof t.access !== 'string') return undefined;
    return { access: t.access, ...(typeof t.refresh === 'string' ? { refresh: t.refresh } : {}) };
  } catch {
    return undefined;
  }
}

async function sealToken(keys: Keys, token: string): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(token)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(keys.token);
}

async function openToken(keys: Keys, sealed: string): Promise<string | undefined> {
  try {
    const { plaintext } = await compactDecrypt(sealed, keys.token, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    return new TextDecoder().decode(plaintext);
  } catch {
    return undefined;
  }
}

/** What the sign-in needs back at the callback. */
interface Transaction {
  state: string;
  nonce: string;
  verifier: string;
  /** A path on serve itself to return to. */
  next: string;
}

export async function sealTransaction(keys: Keys, t: Transaction, now: Date, lifetimeSeconds: number): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  return new EncryptJWT({ ...t }).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).setIssuedAt(iat).setExpirationTime(iat + lifetimeSeconds).encrypt(keys.transaction);
}

export async function openTransaction(keys: Keys, sealed: string, now: Date): Promise<Transaction | undefined> {
  try {
    const { payload } = await jwtDecrypt(sealed, keys.transaction, { currentDate: now, keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    const { state, nonce, verifier, next } = payload as Record<string, unknown>;
    if (typeof state !== 'string' || typeof nonce !== 'string' || typeof verifier !== 'string' || typeof next !== 'string') return undefined;
    return { state, nonce, verifier, next };
  } catch {
    return undefined;
  }
}

/** SHA-256 hex: session ids in the database and token cache keys. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
