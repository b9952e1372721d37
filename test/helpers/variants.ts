// Many tags, cheaply: one image pushed with skopeo, then variants of its manifest (same config and
// layers, one annotation changed, so a new digest each) PUT under new tags with fetch, into as
// many repositories as asked (blobs mounted across). And the registry's own view of its tags,
// read straight from the registry, to compare a catalog with.
import { makeTempDir } from './cleanup.js';
import { MEDIA, makeImage, pushImage, type ImageInfo } from './images.js';

export interface Variants {
  /** The repository the base image went to (with tag `seed`). */
  base: string;
  image: ImageInfo;
}

/** Pushes the base image to `${directHost}/${base}:seed`. */
export async function pushBase(directHost: string, base: string): Promise<Variants> {
  const dir = await makeTempDir('variants');
  const image = await makeImage(dir, { tag: 'seed', layers: 1 });
  await pushImage(image, `${directHost}/${base}:seed`);
  return { base, image };
}

/** Mounts the base image's blobs into repository (idempotent). */
export async function mountBlobs(url: string, v: Variants, repository: string): Promise<void> {
  for (const digest of [v.image.configDigest, ...v.image.layers.map((l) => l.digest)]) {
    const res = await fetch(`${url}/v2/${repository}/blobs/uploads/?mount=${digest}&from=${v.base}`, { method: 'POST' });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`mounting ${digest} into ${repository}: ${res.status}`);
  }
}

/**
 * PUTs a variant of the base manifest as repository:tag, with `annotations` added (a distinct
 * annotation set gives a distinct digest). Returns the digest the registry reports.
 */
export async function putVariant(url: string, v: Variants, repository: string, tag: string, annotations: Record<string, string>): Promise<string> {
  const manifest = { ...v.image.manifest, annotations: { ...((v.image.manifest.annotations as Record<string, string> | undefined) ?? {}), ...annotations } };
  const res = await fetch(`${url}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': MEDIA.ociManifest }, body: JSON.stringify(manifest) });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`PUT ${repository}:${tag}: ${res.status}`);
  const digest = res.headers.get('docker-content-digest');
  if (!digest) throw new Error(`PUT ${repository}:${tag}: no Docker-Content-Digest`);
  return digest;
}

/**
 * `count` tags v0…v{count-1} in `repository`, each a variant of a base image pushed to `base`
 * (blobs mounted across), with annotationsOf(i) added. Returns the digests, in tag order.
 */
export async function putVariants(directHost: string, base: string, repository: string, count: number, annotationsOf: (i: number) => Record<string, string>): Promise<string[]> {
  const v = await pushBase(directHost, base);
  const url = `http://${directHost}`;
  await mountBlobs(url, v, repository);
  const digests: string[] = [];
  for (let i = 0; i < count; i++) digests.push(await putVariant(url, v, repository, `v${i}`, annotationsOf(i)));
  return digests;
}

const ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerManifestList].join(', ');

/** Every tag of the registry as `repository:tag` -> digest, from /v2/_catalog, tags/list and a HEAD per tag. */
export async function registryTags(url: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const res = await fetch(`${url}/v2/_catalog?n=1000`);
  if (res.status !== 200) throw new Error(`GET /v2/_catalog: ${res.status} ${await res.text()}`);
  const catalog = (await res.json()) as { repositories?: string[] };
  for (const repository of catalog.repositories ?? []) {
    const list = await fetch(`${url}/v2/${repository}/tags/list`);
    if (list.status === 404) continue;
    const tags = ((await list.json()) as { tags?: string[] | null }).tags ?? [];
    for (const tag of tags) {
      const head = await fetch(`${url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT } });
      const digest = head.headers.get('docker-content-digest');
      if (head.status !== 200 || !digest) throw new Error(`HEAD ${repository}:${tag}: ${head.status}`);
      out.set(`${repository}:${tag}`, digest);
    }
  }
  return out;
}
