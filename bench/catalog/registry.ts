import { gzipSync } from 'node:zlib';
import { OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP } from '../../src/oci/mediatypes.js';
import { build, log, pool, sha256hex } from './common.js';
import { MAX_TAGS, PUT_CONCURRENCY, REPOSITORIES } from './settings.js';


export interface RegistryImage {
  repository: string;
  tag: string;
  digest: string;
  size: number;
}

/**
 * Deep: the registry grows by growing its ${REPOSITORIES} repositories. Wide (the control): as many tags
 * in four times the repositories, each as small as a deep one at a quarter of the size; its
 * builds are numbered after the deep ones, so every manifest is distinct.
 */
export type Layout = 'deep' | 'wide' | 'all';
export const LAYOUT_REPOSITORIES: Record<Layout, number> = { deep: REPOSITORIES, wide: REPOSITORIES * 4, all: REPOSITORIES * 5 };
const benchRepository = (i: number, layout: Layout = 'deep'): string =>
  layout === 'deep' ? `bench/app-${String(i % REPOSITORIES).padStart(2, '0')}` : `wide/app-${String(i % LAYOUT_REPOSITORIES.wide).padStart(2, '0')}`;

/** A request that failed on the network (a kept-alive connection the registry closed) is sent again, twice at most. */
async function withRetry(what: string, send: () => Promise<Response>): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (attempt >= 3) throw new Error(`${what}: ${(err as Error).message} (${cause?.code ?? cause?.message ?? 'no cause'})`, { cause: err });
      log(`${what}: ${(err as Error).message} (${cause?.code ?? cause?.message ?? 'no cause'}); sending it again`);
    }
  }
}

/** Monolithic upload: POST /v2/<repo>/blobs/uploads/, then PUT <location>?digest=. */
async function uploadBlob(base: string, repository: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${sha256hex(bytes)}`;
  const started = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
  await started.arrayBuffer();
  const location = started.headers.get('location');
  if (started.status !== 202 || !location) throw new Error(`blob upload to ${repository}: ${started.status}`);
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(bytes), signal: AbortSignal.timeout(30_000) });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`blob upload to ${repository}: PUT ${put.status}`);
  return digest;
}

interface Blobs {
  config: { digest: string; size: number };
  layer: { digest: string; size: number };
}

export async function uploadBlobs(base: string, layout: Layout = 'deep'): Promise<Blobs> {
  const tar = Buffer.from('tagtrail benchmark layer\n');
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256hex(tar)}`] }, history: [{ created_by: 'bench' }] }),
  );
  let blobs: Blobs | undefined;
  for (let r = 0; r < LAYOUT_REPOSITORIES[layout]; r++) {
    const repository = benchRepository(r, layout);
    const configDigest = await uploadBlob(base, repository, config);
    const layerDigest = await uploadBlob(base, repository, layer);
    blobs = { config: { digest: configDigest, size: config.byteLength }, layer: { digest: layerDigest, size: layer.byteLength } };
  }
  return blobs as Blobs;
}

/** PUTs the manifests of builds from..to-1 by tag, PUT_CONCURRENCY at a time, straight to the registry. */
export async function fillRegistry(base: string, blobs: Blobs, from: number, to: number, into: RegistryImage[], layout: Layout = 'deep'): Promise<void> {
  await pool(to - from, PUT_CONCURRENCY, async (k) => {
    const i = from + k;
    const b = build(layout === 'deep' ? i : MAX_TAGS + i);
    const repository = benchRepository(i, layout);
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, ...blobs.config },
        layers: [{ mediaType: OCI_LAYER_GZIP, ...blobs.layer }],
        annotations: b.annotations,
      }),
    );
    const digest = `sha256:${sha256hex(bytes)}`;
    const res = await withRetry(`PUT ${repository}:${b.tag}`, () =>
      fetch(`${base}/v2/${repository}/manifests/${b.tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes, signal: AbortSignal.timeout(60_000) }),
    );
    const text = await res.text();
    if (res.status !== 201) throw new Error(`PUT ${repository}:${b.tag}: ${res.status} ${text.slice(0, 200)}`);
    if (res.headers.get('docker-content-digest') !== digest) throw new Error(`PUT ${repository}:${b.tag}: stored as ${res.headers.get('docker-content-digest')}`);
    into[i] = { repository, tag: b.tag, digest, size: bytes.byteLength };
  });
}

