// What SqlStore checks before it writes or reads: digests, names, times, page sizes, manifest
// records and the opaque cursors it hands out. Bad input fails here, before any transaction.
import { InvalidCursorError, InvalidInputError, UsageError } from '../../errors.js';
import { verifyDigest } from '../../oci/digest.js';
import { isValidDigest } from '../../oci/reference.js';
import { DEFAULT_PAGE_SIZE, STORE_MAX_PAGE_SIZE } from '../paging.js';
import type { ManifestRecord } from '../types.js';

export function ms(at: Date, what: string): number {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new UsageError(`${what}: not a valid time`);
  return at.getTime();
}

export function checkDigest(digest: unknown, what = 'digest'): asserts digest is string {
  if (typeof digest !== 'string' || !isValidDigest(digest)) {
    throw new InvalidInputError('INVALID_REFERENCE', `invalid ${what} ${JSON.stringify(String(digest).slice(0, 200))}`, {
      hint: 'a digest is sha256:<64 hex> or sha512:<128 hex>',
    });
  }
}

export function checkName(v: unknown, what: string): asserts v is string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 512) throw new UsageError(`${what} must be a non-empty string of at most 512 characters`);
}

export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > STORE_MAX_PAGE_SIZE) throw new UsageError(`limit must be an integer from 1 to ${STORE_MAX_PAGE_SIZE}`);
  return limit;
}

export function encodeCursor(kind: string, value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ k: kind, ...value }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined, kind: string): Record<string, unknown> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  if (typeof v !== 'object' || v === null || (v as { k?: unknown }).k !== kind) {
    throw new InvalidCursorError('invalid cursor', { hint: 'pass back the nextCursor of the previous page, with the same query' });
  }
  return v as Record<string, unknown>;
}

export function cursorNumber(c: Record<string, unknown>, field: string): number {
  const v = c[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new InvalidCursorError('invalid cursor');
  return v;
}

export function cursorString(c: Record<string, unknown>, field: string): string {
  const v = c[field];
  if (typeof v !== 'string') throw new InvalidCursorError('invalid cursor');
  return v;
}

export function validateRecord(rec: ManifestRecord, depth = 0): void {
  if (typeof rec !== 'object' || rec === null) throw new InvalidInputError('INVALID_MANIFEST', 'a manifest record is an object');
  checkDigest(rec.digest, 'manifest digest');
  if (typeof rec.mediaType !== 'string' || rec.mediaType === '') throw new InvalidInputError('INVALID_MANIFEST', `manifest ${rec.digest} has no media type`);
  if (!(rec.raw instanceof Uint8Array)) throw new InvalidInputError('INVALID_MANIFEST', `manifest ${rec.digest}: raw must be the manifest bytes`);
  verifyDigest(rec.raw, rec.digest, `manifest ${rec.digest}`);
  if (rec.configDigest != null) checkDigest(rec.configDigest, 'config digest');
  if (depth > 2) throw new InvalidInputError('INVALID_MANIFEST', `manifest ${rec.digest}: indexes nested too deep`);
  for (const c of rec.children ?? []) {
    checkDigest(c.digest, 'child digest');
    if (c.manifest) {
      if (c.manifest.digest !== c.digest) throw new InvalidInputError('INVALID_MANIFEST', `child ${c.digest} came with the record of ${c.manifest.digest}`);
      validateRecord(c.manifest, depth + 1);
    }
  }
}
