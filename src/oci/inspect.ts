// Reads from the registry what an image's build details are decided from (details/inspect.ts):
// the manifest, each platform manifest of an index, the build-details referrers (found through
// the referrers API or the sha256-<hex> referrers tag) and, on demand, the config labels.
import { type Annotations, CREATED_KEY } from './annotations.js';
import { type Manifest, formatPlatform, isReferenceDescriptor } from './manifest.js';
import { labelsOfConfig } from './config.js';
import { BUILD_DETAILS_ARTIFACT_TYPE, type ReferrersPath, artifactTypeOf, listReferrers, referrerSubject } from './referrers.js';
import { isImageManifestMediaType } from './mediatypes.js';
import { type Reference, withDigest } from './reference.js';
import type { RegistryClient } from './registry.js';

interface PlatformManifest {
  readonly platform: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly annotations: Annotations;
  readonly manifest: Manifest;
}

interface ImageParts {
  readonly top: Manifest;
  /** An index's platform manifests (references to other manifests left out); empty for an image. */
  readonly children: readonly PlatformManifest[];
  /** Build-details referrers of this image, newest first, each checked to name this image as its subject. */
  readonly referrers: readonly BuildReferrer[];
  readonly warnings: string[];
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

/** The labels of the config of an image manifest (or of an index's first platform manifest). */
export async function configLabels(client: RegistryClient, ref: Reference, parts: ImageParts): Promise<Annotations | undefined> {
  const m = parts.top.kind === 'image' ? parts.top : parts.children[0]?.manifest;
  if (m?.kind !== 'image') return undefined;
  const blob = await client.getBlob(ref.registry, ref.repository, m.config.digest);
  try {
    return labelsOfConfig(JSON.parse(Buffer.from(blob).toString('utf8')));
  } catch {
    return undefined;
  }
}

export async function readImage(client: RegistryClient, ref: Reference): Promise<ImageParts> {
  const top = await client.getManifest(ref);
  const children: PlatformManifest[] = [];
  if (top.kind === 'index') {
    const wanted = top.manifests.filter((d) => isImageManifestMediaType(d.mediaType) && !isReferenceDescriptor(d));
    const fetched = await Promise.all(wanted.map((d) => client.getManifest(withDigest(ref, d.digest))));
    wanted.forEach((d, i) => {
      const m = fetched[i] as Manifest;
      children.push({ platform: formatPlatform(d.platform), digest: d.digest, mediaType: m.mediaType, annotations: m.annotations, manifest: m });
    });
  }
  const warnings: string[] = [];
  const referrers = await buildReferrers(client, ref, top, warnings);
  return { top, children, referrers, warnings };
}
