// A signed Docker schema 1 manifest, as docker 1.x pushed them: a libtrust JWS in "pretty" form.
// The payload is the manifest without signatures; the signature block's protected header records
// formatLength and formatTail, so that payload = bytes[0, formatLength) + formatTail. The
// registry's digest is the SHA-256 of that payload, never of the bytes it serves.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { libtrustKeyId } from './token-issuer.js';

export interface SignedSchema1 {
  /** The bytes to PUT, signatures included. */
  bytes: Buffer;
  /** The payload without signatures. */
  payload: Buffer;
  /** sha256 of the payload: the digest distribution gives the manifest. */
  digest: string;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** A schema 1 manifest of these layer blobs (newest first), signed with a fresh P-256 key. */
export function signedSchema1(name: string, tag: string, layerDigests: readonly string[]): SignedSchema1 {
  const unsigned = {
    schemaVersion: 1,
    name,
    tag,
    architecture: 'amd64',
    fsLayers: layerDigests.map((blobSum) => ({ blobSum })),
    history: layerDigests.map((_, i) => ({ v1Compatibility: JSON.stringify({ id: createHash('sha256').update(`${name}:${i}`).digest('hex'), created: '2016-01-01T00:00:00Z' }) })),
  };
  const payload = Buffer.from(JSON.stringify(unsigned, null, 3));
  // The payload ends in "\n}": the tail is what follows the last value.
  const formatLength = payload.lastIndexOf('\n}');
  const formatTail = payload.subarray(formatLength);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as { crv: string; x: string; y: string };
  const protectedHeader = b64url(JSON.stringify({ formatLength, formatTail: b64url(formatTail), time: '2016-01-01T00:00:00Z' }));
  const signature = sign('sha256', Buffer.from(`${protectedHeader}.${b64url(payload)}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const block = {
    header: { jwk: { crv: jwk.crv, kid: libtrustKeyId(publicKey), kty: 'EC', x: jwk.x, y: jwk.y }, alg: 'ES256' },
    signature: b64url(signature),
    protected: protectedHeader,
  };
  const signatures = JSON.stringify([block], null, 3).replace(/\n/g, '\n   ');
  const bytes = Buffer.concat([payload.subarray(0, formatLength), Buffer.from(`,\n   "signatures": ${signatures}`), formatTail]);
  return { bytes, payload, digest: `sha256:${createHash('sha256').update(payload).digest('hex')}` };
}
