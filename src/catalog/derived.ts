// Per-manifest facts the insights count, decided in one place each: its media type family and
// its platforms (where its build details come from is details/build.ts's buildDetailsSource).
// The store computes them at ingest and when its evidence changes (sql/insights.ts).
import { isReferenceDescriptor } from '../oci/manifest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/mediatypes.js';

export const MEDIA_FAMILIES = ['oci', 'docker', 'other'] as const;
export type MediaFamily = (typeof MEDIA_FAMILIES)[number];

export function mediaFamily(mediaType: string): MediaFamily {
  if (mediaType === OCI_MANIFEST || mediaType === OCI_INDEX) return 'oci';
  if (mediaType === DOCKER_MANIFEST || mediaType === DOCKER_MANIFEST_LIST || mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) return 'docker';
  return 'other';
}

/** A platform of an index child that counts: attestation manifests (unknown/unknown) do not. */
export function isRealPlatform(os: string | null | undefined, architecture: string | null | undefined): boolean {
  return !!os && !!architecture && !isReferenceDescriptor({ platform: { os, architecture } });
}
