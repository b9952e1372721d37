// Per-manifest facts the insights count, decided in one place each: where an image's build
// details come from, its media type family and its platforms. The store computes them at ingest
// and when its evidence changes (see sql.ts, deriveManifests).
import { type Build, buildFromAnnotations, hasBuildAnnotations, labelsAsAnnotations } from '../gitlab/build.js';
import type { Annotations } from '../oci/annotations.js';
import type { ReferrerInfo } from './types.js';
import { isReferenceDescriptor } from '../oci/manifest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/mediatypes.js';

export const BUILD_SOURCES = ['annotations', 'referrer', 'labels', 'none'] as const;
/**
 * Where an image's build details come from, best first: its manifest annotations (or, for an
 * index, any platform manifest's), a referrer artifact attached to it (tagtrail attach, found
 * through the referrers tag; see referrers.ts), its config labels only, or nowhere.
 */
export type BuildSource = (typeof BUILD_SOURCES)[number];

interface BuildEvidence {
  /** The manifest's own annotations. */
  annotations: Annotations;
  /** Config labels, when read. */
  labels?: Annotations;
  /** For an index: the sources decided for its platform manifests. */
  children?: readonly BuildSource[];
  /** True when a referrer carrying build details is recorded against this manifest. */
  referrer?: boolean;
}

/** The one function that decides the build-details source of a manifest. */
export function buildDetailsSource(e: BuildEvidence): BuildSource {
  const children = e.children ?? [];
  if (hasBuildAnnotations(e.annotations) || children.includes('annotations')) return 'annotations';
  if (e.referrer === true || children.includes('referrer')) return 'referrer';
  if ((e.labels && hasBuildAnnotations(labelsAsAnnotations(e.labels))) || children.includes('labels')) return 'labels';
  return 'none';
}

/**
 * The build details shown for an image (API and browser), in the order buildDetailsSource
 * decides: its own annotations; else a build-details referrer, which the caller must have taken
 * from the image's own repository (referrer-store.ts); else its config labels. A referrer never
 * outranks the image's own annotations, whatever `created` it claims.
 */
export function buildDetails(annotations: Annotations, labelAnnotations?: Annotations | null, referrer?: ReferrerInfo): Build | null {
  if (hasBuildAnnotations(annotations)) return buildFromAnnotations(annotations);
  if (referrer && hasBuildAnnotations(referrer.annotations)) return { ...buildFromAnnotations(referrer.annotations, 'referrer'), referrer: referrer.digest };
  if (labelAnnotations && hasBuildAnnotations(labelAnnotations)) return buildFromAnnotations(labelAnnotations, 'labels');
  return null;
}

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
