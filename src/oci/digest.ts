// Digests are always taken over raw bytes, never over re-serialised JSON.
import { createHash } from 'node:crypto';
import { DigestMismatchError } from '../errors.js';

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Hashes bytes with the algorithm the expected digest names (sha256 or sha512). */
function digestOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function verifyDigest(bytes: Uint8Array, expected: string, what: string): void {
  const algorithm = expected.startsWith('sha512:') ? 'sha512' : 'sha256';
  const actual = digestOf(bytes, algorithm);
  if (actual !== expected) {
    throw new DigestMismatchError(`${what}: the content hashes to ${actual}, not ${expected}`, {
      hint: 'the registry or a proxy in between returned other bytes than it named; retry, and check any caching proxy',
    });
  }
}
