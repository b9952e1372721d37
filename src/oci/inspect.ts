// Reads an image's build details: the annotations of the manifest (and of each platform manifest
// of an index); else those of a build-details referrer (`tagtrail attach`), found through the
// referrers API or the sha256-<hex> referrers tag; else the config labels. The manifest's own
// annotations win when both exist.
import { type Build, buildFromAnnotations, hasBuildAnnotations, labelsAsAnnotations } from '../gitlab/build.js';
import { type Annotations, emptyAnnotations } from './annotations.js';
import { CREATED_KEY } from '../gitlab/ci.js';
import { type Manifest, formatPlatform, isReferenceDescriptor } from './manifest.js';
import { labelsOfConfig } from './config.js';
import { BUILD_DETAILS_ARTIFACT_TYPE, type ReferrersPath, artifactTypeOf, listReferrers, referrerSubject } from './referrers.js';
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
  /** Config labels, read only when neither the manifests nor a referrer carry build details. */
  readonly labels?: Annotations;
  /** Build-details referrers of this image, newest first, each checked to name this image as its subject. */
  readonly referrers: readonly BuildReferrer[];
  readonly build?: Build;
  /** Where `build` came from: the manifest annotations, a referrer, the config labels, or nowhere. */
  readonly source: 'annotations' | 'referrer' | 'labels' | 'none';
  /** The referrer `build` came from, when source is referrer. */
  readonly referrer?: string;
  readonly warnings: readonly string[];
}

export interface BuildReferrer {
  readonly digest: string;
  /** How it was found: the registry's referrers API or the sha256-<hex> tag. */
  readonly path: ReferrersPath;
  readonly annotations: Annotations;
}

/** At most this many referrer manifests are read for one image. */
const MAX_REFERRERS_READ = 16;

async function buildReferrers(client: RegistryClient, ref: Reference, top: Manifest, warnings: string[]): Promise<BuildReferrer[]> {
  const subject = { registry: ref.registry, repository: ref.repository, digest: top.digest };
  const childDigests = top.kind === 'index' ? top.manifests.map((d) => d.digest) : [];
  const list = await listReferrers(client, subject, { artifactType: BUILD_DETAILS_ARTIFACT_TYPE, childDigests });
  warnings.push(...list.warnings);
  if (list.path === 'none') return [];
  const newestFirst = [...list.manifests].sort((a, b) => (b.annotations?.[CREATED_KEY] ?? '').localeCompare(a.annotations?.[CREATED_KEY] ?? ''));
  if (newestFirst.length > MAX_REFERRERS_READ) warnings.push(`${newestFirst.length} build-details referrers; read the newest ${MAX_REFERRERS_READ}`);
  const out: BuildReferrer[] = [];
  for (const d of newestFirst.slice(0, MAX_REFERRERS_READ)) {
    let m: Manifest;
    try {
      m = await client.getManifest(withDigest(ref, d.digest));
    } catch (err) {
      if ((err as { code?: unknown }).code === 'NOT_FOUND' || (err as { code?: unknown }).code === 'UNREADABLE_MANIFEST') {
        warnings.push(`the referrer ${d.digest} is listed but cannot be read; ignored`);
        continue;
      }
      throw err;
    }
    // Believe the manifest, not the list: it must name this image and be of our type.
    if (referrerSubject(m) !== top.digest || artifactTypeOf(m) !== BUILD_DETAILS_ARTIFACT_TYPE) {
      warnings.push(`the referrer ${d.digest} does not name ${top.digest} as its subject with artifactType ${BUILD_DETAILS_ARTIFACT_TYPE}; ignored`);
      continue;
    }
    out.push({ digest: m.digest, path: list.path, annotations: m.annotations });
  }
  return out.sort((a, b) => (b.annotations[CREATED_KEY] ?? '').localeCompare(a.annotations[CREATED_KEY] ?? ''));
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
    return labelsOfConfig(JSON.parse(Buffer.from(blob).toString('utf8')));
  } catch {
    return undefined;
  }
}

export async function inspectImage(client: RegistryClient, ref: Reference): Promise<ImageDetails> {
  const top = await client.getManifest(ref);
  const children: { platform: string; digest: string; mediaType: string; annotations: Annotations; manifest: Manifest }[] = [];
  if (top.kind === 'index') {
    const wanted = top.manifests.filter((d) => isImageManifestMediaType(d.mediaType) && !isReferenceDescriptor(d));
    const fetched = await Promise.all(wanted.map((d) => client.getManifest(withDigest(ref, d.digest))));
    wanted.forEach((d, i) => {
      const m = fetched[i] as Manifest;
      children.push({ platform: formatPlatform(d.platform), digest: d.digest, mediaType: m.mediaType, annotations: m.annotations, manifest: m });
    });
  }
  const annotations = mergeAnnotations(top.annotations, children.map((c) => c.annotations));
  const warnings: string[] = [];
  const referrers = await buildReferrers(client, ref, top, warnings);
  const base = {
    image: formatReference(ref),
    digest: top.digest,
    mediaType: top.mediaType,
    annotations,
    manifests: children.map(({ platform, digest, mediaType, annotations: a }) => ({ platform, digest, mediaType, annotations: a })),
    referrers,
    warnings,
  };
  if (hasBuildAnnotations(annotations)) return { ...base, build: buildFromAnnotations(annotations), source: 'annotations' };
  const attached = referrers.find((r) => hasBuildAnnotations(r.annotations));
  if (attached) return { ...base, build: buildFromAnnotations(attached.annotations), source: 'referrer', referrer: attached.digest };

  const first = top.kind === 'image' ? top : children[0]?.manifest;
  const labels = first ? await configLabels(client, ref, first) : undefined;
  const mapped = labelsAsAnnotations(labels);
  if (hasBuildAnnotations(mapped)) return { ...base, ...(labels ? { labels } : {}), build: buildFromAnnotations(mapped, 'labels'), source: 'labels' };
  return { ...base, ...(labels ? { labels } : {}), source: 'none' };
}
