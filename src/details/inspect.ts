// `tagtrail show`: an image's build details read from the registry (oci/inspect.ts), decided by
// resolveBuild. The config labels are read only when neither the manifests nor a referrer carry
// build details.
import type { Annotations } from '../oci/annotations.js';
import { type BuildReferrer, configLabels, readImage } from '../oci/inspect.js';
import { type Reference, formatReference } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';
import { type Build, type BuildSource, mergeAnnotations, resolveBuild } from './build.js';
import { labelsAsAnnotations } from './keys.js';

export interface ImageDetails {
  readonly image: string;
  readonly digest: string;
  readonly mediaType: string;
  /** The index's own annotations, then keys from its platform manifests it lacks. */
  readonly annotations: Annotations;
  readonly manifests: readonly { platform: string; digest: string; mediaType: string; annotations: Annotations }[];
  /** Config labels, read only when neither the manifests nor a referrer carry build details. */
  readonly labels?: Annotations;
  /** Build-details referrers of this image, newest first, each checked to name this image as its subject. */
  readonly referrers: readonly BuildReferrer[];
  readonly build?: Build;
  /** Where `build` came from: the manifest annotations, a referrer, the config labels, or nowhere. */
  readonly source: BuildSource;
  /** The referrer `build` came from, when source is referrer. */
  readonly referrer?: string;
  readonly warnings: readonly string[];
}

export async function inspectImage(client: RegistryClient, ref: Reference): Promise<ImageDetails> {
  const parts = await readImage(client, ref);
  const annotations = mergeAnnotations(parts.top.annotations, parts.children.map((c) => c.annotations));
  const base = {
    image: formatReference(ref),
    digest: parts.top.digest,
    mediaType: parts.top.mediaType,
    annotations,
    manifests: parts.children.map(({ platform, digest, mediaType, annotations: a }) => ({ platform, digest, mediaType, annotations: a })),
    referrers: parts.referrers,
    warnings: parts.warnings,
  };
  const found = resolveBuild({ annotations, referrers: parts.referrers });
  if (found) return { ...base, build: found, source: found.source, ...(found.referrer ? { referrer: found.referrer } : {}) };
  const labels = await configLabels(client, ref, parts);
  const build = resolveBuild({ annotations, labelAnnotations: labelsAsAnnotations(labels) });
  return { ...base, ...(labels ? { labels } : {}), ...(build ? { build, source: build.source } : { source: 'none' }) };
}
