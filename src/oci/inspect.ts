// Reads an image's build details: the annotations of the manifest (and of each platform manifest
// of an index), and, only when none of them carries build details, the config labels.
import { type Build, buildFromAnnotations, hasBuildAnnotations, labelsAsAnnotations } from '../gitlab/build.js';
import { type Annotations, emptyAnnotations } from './annotations.js';
import { type Manifest, formatPlatform, isAttestationDescriptor } from './manifest.js';
import { isImageManifestMediaType } from './mediatypes.js';
import { type Reference, formatReference, withDigest } from './reference.js';
import type { RegistryClient } from './registry.js';

export interface ImageDetails {
  readonly image: string;
  readonly digest: string;
  readonly mediaType: string;
  /** The index's own annotations, then keys from its platform manifests it lacks. */
  readonly annotations: Annotations;
  readonly manifests: readonly { platform: string; digest: string; mediaType: string; annotations: Annotations }[];
  /** Config labels, read only when no manifest carries build details. */
  readonly labels?: Annotations;
  readonly build?: Build;
  readonly source: 'annotations' | 'labels' | 'none';
}

export function mergeAnnotations(top: Annotations, children: readonly Annotations[]): Annotations {
  const out = emptyAnnotations();
  Object.assign(out, top);
  for (const c of children) for (const [k, v] of Object.entries(c)) if (!(k in out)) out[k] = v;
  return out;
}

async function configLabels(client: RegistryClient, ref: Reference, m: Manifest): Promise<Annotations | undefined> {
  if (m.kind !== 'image') return undefined;
  const blob = await client.getBlob(ref.registry, ref.repository, m.config.digest);
  try {
    const cfg = JSON.parse(Buffer.from(blob).toString('utf8')) as { config?: { Labels?: unknown } };
    const labels = cfg.config?.Labels;
    if (typeof labels !== 'object' || labels === null) return undefined;
    const out = emptyAnnotations();
    for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
    return out;
  } catch {
    return undefined;
  }
}

export async function inspectImage(client: RegistryClient, ref: Reference): Promise<ImageDetails> {
  const top = await client.getManifest(ref);
  const children: { platform: string; digest: string; mediaType: string; annotations: Annotations; manifest: Manifest }[] = [];
  if (top.kind === 'index') {
    const wanted = top.manifests.filter((d) => isImageManifestMediaType(d.mediaType) && !isAttestationDescriptor(d));
    const fetched = await Promise.all(wanted.map((d) => client.getManifest(withDigest(ref, d.digest))));
    wanted.forEach((d, i) => {
      const m = fetched[i] as Manifest;
      children.push({ platform: formatPlatform(d.platform), digest: d.digest, mediaType: m.mediaType, annotations: m.annotations, manifest: m });
    });
  }
  const annotations = mergeAnnotations(top.annotations, children.map((c) => c.annotations));
  const base = {
    image: formatReference(ref),
    digest: top.digest,
    mediaType: top.mediaType,
    annotations,
    manifests: children.map(({ platform, digest, mediaType, annotations: a }) => ({ platform, digest, mediaType, annotations: a })),
  };
  if (hasBuildAnnotations(annotations)) return { ...base, build: buildFromAnnotations(annotations), source: 'annotations' };

  const first = top.kind === 'image' ? top : children[0]?.manifest;
  const labels = first ? await configLabels(client, ref, first) : undefined;
  const mapped = labelsAsAnnotations(labels);
  if (hasBuildAnnotations(mapped)) return { ...base, ...(labels ? { labels } : {}), build: buildFromAnnotations(mapped, 'labels'), source: 'labels' };
  return { ...base, ...(labels ? { labels } : {}), source: 'none' };
}
