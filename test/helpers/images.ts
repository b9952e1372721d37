// Container images made on disk in pure Node (OCI image layouts, our own tar writer, zlib's gzip),
// pushed and read back with real tools: skopeo and curl. Nothing here uses tagtrail's own code,
// so a test can check tagtrail's work against an independent reading.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeTempDir, removeTempDir } from './cleanup.js';
import { run } from './exec.js';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  inToto: 'application/vnd.in-toto+json',
} as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageOptions {
  /** Number of layers, each a gzip'd tar with one distinct file. Default 2. */
  layers?: number;
  /** Extra random (incompressible) bytes in each layer's file, for benchmarks. Default 0. */
  layerSize?: number;
  /** Default linux/amd64. */
  platform?: Platform;
  /** config.Labels of the image config. */
  labels?: Record<string, string>;
  /** The manifest's annotations (dropped when pushed with format v2s2, which has none). */
  manifestAnnotations?: Record<string, string>;
  /**
   * The config's history, replacing the generated one entry per layer: to reproduce what a
   * builder writes (its created_by, comment and author), base image entries and empty_layer ones included.
   */
  history?: Record<string, unknown>[];
  /** Top-level config fields merged over the generated ones (author, created, docker_version, container_config…). */
  configFields?: Record<string, unknown>;
  /** The org.opencontainers.image.ref.name of the manifest in index.json. Default latest. */
  tag?: string;
  /**
   * Makes the image reproducible: the same seed and options give the same digests. Without one,
   * each call makes different layers, so two images never share a blob by accident.
   */
  seed?: string;
  /**
   * The format pushImage() pushes it in. The layout itself is always OCI (skopeo's oci: transport
   * reads nothing else); 'v2s2' has skopeo convert on push, which changes the manifest digest but
   * not the config and layer digests. Default 'oci'.
   */
  format?: 'oci' | 'v2s2';
}

export interface LayerInfo {
  /** Digest of the gzip'd tar, as in the manifest. */
  digest: string;
  /** Digest of the uncompressed tar, as in the config's rootfs.diff_ids. */
  diffId: string;
  size: number;
}

export interface ImageInfo {
  /** The layout dir this image was written to. */
  dir: string;
  tag: string;
  /** skopeo source reference: oci:DIR:TAG */
  ref: string;
  digest: string;
  mediaType: string;
  manifest: Record<string, unknown>;
  manifestBytes: Buffer;
  config: Record<string, unknown>;
  configDigest: string;
  layers: LayerInfo[];
  platform: Platform;
  /** The descriptor of this manifest, as an index would list it. */
  descriptor: Descriptor;
  /** The format pushImage() pushes it in; with v2s2 the registry's manifest digest differs from digest. */
  format: 'oci' | 'v2s2';
}

export interface AttestationInfo {
  digest: string;
  /** The platform manifest this attestation describes. */
  describes: string;
  manifestBytes: Buffer;
  descriptor: Descriptor;
}

export interface IndexOptions {
  /** Default linux/amd64 and linux/arm64. */
  platforms?: Platform[];
  /** Add a BuildKit-style provenance attestation manifest for each platform. */
  attestations?: boolean;
  indexAnnotations?: Record<string, string>;
  /** Default latest. */
  tag?: string;
  /** Per platform image; platform and tag are ignored. */
  image?: Omit<ImageOptions, 'platform' | 'tag' | 'format'>;
  /**
   * The format pushImage() pushes it in: 'oci' (default) an OCI image index, 'v2s2' a Docker
   * manifest list of Docker v2s2 images (converted by skopeo on push; see pushManifestList).
   * A v2s2 index cannot have attestations.
   */
  format?: 'oci' | 'v2s2';
}

export interface IndexInfo {
  dir: string;
  tag: string;
  ref: string;
  digest: string;
  mediaType: string;
  index: Record<string, unknown>;
  indexBytes: Buffer;
  images: ImageInfo[];
  attestations: AttestationInfo[];
  descriptor: Descriptor;
  format: 'oci' | 'v2s2';
}

export const ATTESTATION_ANNOTATIONS = {
  type: 'vnd.docker.reference.type',
  digest: 'vnd.docker.reference.digest',
} as const;

const REF_NAME = 'org.opencontainers.image.ref.name';
const EPOCH = 1704067200; // 2024-01-01T00:00:00Z: fixed times keep seeded images reproducible
const CREATED = new Date(EPOCH * 1000).toISOString();

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Writes an image into the OCI layout at dir (created if missing, added to if present). */
export async function makeImage(dir: string, options: ImageOptions = {}): Promise<ImageInfo> {
  await initLayout(dir);
  const image = await writeImage(dir, options);
  await addToIndexJson(dir, image.descriptor, image.tag);
  return image;
}

/**
 * Writes an OCI image index of platform images into the layout at dir. For a Docker manifest
 * list, push one without attestations with pushManifestList().
 */
export async function makeIndex(dir: string, options: IndexOptions = {}): Promise<IndexInfo> {
  await initLayout(dir);
  const tag = options.tag ?? 'latest';
  const format = options.format ?? 'oci';
  if (format === 'v2s2' && options.attestations) {
    throw new Error('makeIndex: skopeo cannot convert attestation manifests to v2s2; make a v2s2 index without attestations');
  }
  const platforms = options.platforms ?? [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  const seed = options.image?.seed ?? randomUUID();
  const images: ImageInfo[] = [];
  const attestations: AttestationInfo[] = [];
  const manifests: Descriptor[] = [];
  for (const platform of platforms) {
    const image = await writeImage(dir, { ...options.image, seed: `${seed}/${platformString(platform)}`, platform, tag, format });
    images.push(image);
    manifests.push(image.descriptor);
  }
  if (options.attestations) {
    for (const image of images) {
      const attestation = await writeAttestation(dir, image, seed);
      attestations.push(attestation);
      manifests.push(attestation.descriptor);
    }
  }
  const mediaType = MEDIA.ociIndex;
  const index: Record<string, unknown> = { schemaVersion: 2, mediaType, manifests };
  if (options.indexAnnotations) index.annotations = options.indexAnnotations;
  const indexBytes = Buffer.from(JSON.stringify(index));
  const digest = await writeBlob(dir, indexBytes);
  const descriptor: Descriptor = { mediaType, digest, size: indexBytes.length };
  await addToIndexJson(dir, descriptor, tag);
  return { dir, tag, ref: `oci:${dir}:${tag}`, digest, mediaType, index, indexBytes, images, attestations, descriptor, format };
}

async function writeImage(dir: string, options: ImageOptions): Promise<ImageInfo> {
  const tag = options.tag ?? 'latest';
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const seed = options.seed ?? randomUUID();
  const layerCount = options.layers ?? 2;
  const layers: LayerInfo[] = [];
  const history: Record<string, unknown>[] = [];
  for (let i = 0; i < layerCount; i++) {
    const content = Buffer.concat([
      Buffer.from(`tagtrail test layer ${i + 1} of ${layerCount}\nseed ${seed}\nplatform ${platformString(platform)}\n`),
      options.layerSize ? seededBytes(`${seed}/${i}`, options.layerSize) : Buffer.alloc(0),
    ]);
    const tar = makeTar([{ name: `tagtrail/layer-${i + 1}.txt`, content }]);
    const gz = gzipSync(tar);
    layers.push({ digest: await writeBlob(dir, gz), diffId: sha256(tar), size: gz.length });
    history.push({ created: CREATED, created_by: `tagtrail test: add layer ${i + 1}` });
  }
  const config: Record<string, unknown> = {
    created: CREATED,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      ...(options.labels ? { Labels: options.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: options.history ?? history,
    ...options.configFields,
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await writeBlob(dir, configBytes);
  // Always OCI: skopeo's oci: transport only reads OCI media types; it converts to v2s2 on push.
  const mediaType = MEDIA.ociManifest;
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: MEDIA.ociLayerGzip, digest: l.digest, size: l.size })),
  };
  if (options.manifestAnnotations) manifest.annotations = options.manifestAnnotations;
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const digest = await writeBlob(dir, manifestBytes);
  const descriptor: Descriptor = { mediaType, digest, size: manifestBytes.length, platform };
  return { dir, tag, ref: `oci:${dir}:${tag}`, digest, mediaType, manifest, manifestBytes, config, configDigest, layers, platform, descriptor, format: options.format ?? 'oci' };
}

/**
 * A provenance attestation the way BuildKit attaches it: an OCI manifest whose one layer is an
 * in-toto statement about the platform manifest, listed in the index as platform unknown/unknown
 * with the vnd.docker.reference.* annotations pointing at that manifest.
 */
async function writeAttestation(dir: string, image: ImageInfo, seed: string): Promise<AttestationInfo> {
  const statement = {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://slsa.dev/provenance/v0.2',
    subject: [{ name: `pkg:docker/tagtrail-test@${image.tag}?platform=${encodeURIComponent(platformString(image.platform))}`, digest: { sha256: image.digest.slice('sha256:'.length) } }],
    predicate: {
      builder: { id: '' },
      buildType: 'https://mobyproject.org/buildkit@v1',
      metadata: { buildInvocationID: seed, buildStartedOn: CREATED, buildFinishedOn: CREATED },
    },
  };
  const layerBytes = Buffer.from(JSON.stringify(statement));
  const layerDigest = await writeBlob(dir, layerBytes);
  // BuildKit's config for attestations: no real image, but a valid config whose diff_ids match the layers.
  const config = { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [layerDigest] } };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await writeBlob(dir, configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length },
    layers: [{ mediaType: MEDIA.inToto, digest: layerDigest, size: layerBytes.length, annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' } }],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const digest = await writeBlob(dir, manifestBytes);
  return {
    digest,
    describes: image.digest,
    manifestBytes,
    descriptor: {
      mediaType: MEDIA.ociManifest,
      digest,
      size: manifestBytes.length,
      annotations: { [ATTESTATION_ANNOTATIONS.digest]: image.digest, [ATTESTATION_ANNOTATIONS.type]: 'attestation-manifest' },
      platform: { architecture: 'unknown', os: 'unknown' },
    },
  };
}

function platformString(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** Deterministic filler: SHA-256 in counter mode, incompressible like real binaries. */
function seededBytes(seed: string, size: number): Buffer {
  if (size > 8 * 1024 * 1024) return randomBytes(size);
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += 32, i++) {
    createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off);
  }
  return out;
}

async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  if (!existsSync(join(dir, 'oci-layout'))) await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  if (!existsSync(join(dir, 'index.json'))) {
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] }));
  }
}

async function writeBlob(dir: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
  return digest;
}

/** Lists descriptor in the layout's index.json under the tag, replacing what had that tag. */
async function addToIndexJson(dir: string, descriptor: Descriptor, tag: string): Promise<void> {
  const path = join(dir, 'index.json');
  const index = JSON.parse(await readFile(path, 'utf8')) as { manifests: Descriptor[] };
  index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
  // The platform stays in the blob; index.json only names and points.
  index.manifests.push({ mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size, annotations: { [REF_NAME]: tag } });
  await writeFile(path, JSON.stringify(index));
}

export interface TarEntry {
  name: string;
  content: Buffer;
  mode?: number;
}

/**
 * A ustar archive of regular files: 512-byte header per file, content padded to 512, two zero
 * blocks at the end. Enough for layers; names up to 100 bytes.
 */
export function makeTar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    if (name.length > 100) throw new Error(`makeTar: name longer than 100 bytes: ${entry.name}`);
    const header = Buffer.alloc(512);
    name.copy(header, 0);
    header.write(octal(entry.mode ?? 0o644, 8), 100, 'ascii');
    header.write(octal(0, 8), 108, 'ascii'); // uid
    header.write(octal(0, 8), 116, 'ascii'); // gid
    header.write(octal(entry.content.length, 12), 124, 'ascii');
    header.write(octal(EPOCH, 12), 136, 'ascii');
    header.write('        ', 148, 'ascii'); // checksum field counts as spaces while summing
    header.write('0', 156, 'ascii'); // regular file
    header.write('ustar\u0000', 257, 'ascii');
    header.write('00', 263, 'ascii');
    header.write('root', 265, 'ascii');
    header.write('root', 297, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
    blocks.push(header, entry.content);
    const pad = (512 - (entry.content.length % 512)) % 512;
    if (pad > 0) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Zero-padded octal with a trailing NUL, filling a field of width bytes. */
function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}

// ---------------------------------------------------------------------------------------------
// skopeo

export interface SkopeoAuth {
  /** user:password, passed as --src-creds / --dest-creds. */
  creds?: string;
}

/**
 * Flags every skopeo run gets: no signature policy lookup, and an empty auth file so a login on
 * this machine never leaks into a test. (skopeo still keeps its blob info cache under
 * /var/lib/containers/cache when run as root; it only speeds up copies.)
 */
async function skopeo(args: string[], timeoutMs = 120_000): Promise<Buffer> {
  const dir = await makeTempDir('skopeo');
  try {
    const authfile = join(dir, 'auth.json');
    await writeFile(authfile, '{"auths":{}}');
    const [command, ...rest] = args;
    const { stdout } = await run('skopeo', ['--insecure-policy', command as string, '--authfile', authfile, ...rest], { timeoutMs });
    return stdout;
  } finally {
    await removeTempDir(dir);
  }
}

export interface PushOptions extends SkopeoAuth {
  /** The tag in the layout to push; default: the layout's only image. */
  tag?: string;
  /**
   * Convert to this format; default: keep the layout's own (OCI). With all, v2s2 turns an OCI
   * index into a Docker manifest list, but fails on attestation manifests (see pushManifestList).
   */
  format?: 'oci' | 'v2s2';
  /** Copy every image of an index, not just the one for this machine's platform. */
  all?: boolean;
}

/**
 * skopeo copy oci:LAYOUT[:TAG] docker://REF over plain HTTP. Resolves with the digest of the
 * manifest the registry stored (skopeo --digestfile).
 */
export async function pushLayout(layoutDir: string, ref: string, options: PushOptions = {}): Promise<string> {
  const work = await makeTempDir('push');
  try {
    const digestFile = join(work, 'digest');
    const args = ['copy', '--dest-tls-verify=false', '--digestfile', digestFile, '--retry-times', '0'];
    if (options.format) args.push('--format', options.format);
    if (options.all) args.push('--all');
    if (options.creds) args.push('--dest-creds', options.creds);
    args.push(options.tag ? `oci:${layoutDir}:${options.tag}` : `oci:${layoutDir}`, `docker://${ref}`);
    await skopeo(args);
    return (await readFile(digestFile, 'utf8')).trim();
  } finally {
    await removeTempDir(work);
  }
}

/**
 * Pushes what makeImage or makeIndex made (an index with all its images), in the format it was
 * made for unless options.format says otherwise. Resolves with the digest the registry stored.
 */
export function pushImage(image: ImageInfo | IndexInfo, ref: string, options: Omit<PushOptions, 'tag' | 'all'> = {}): Promise<string> {
  const format = options.format ?? image.format;
  return pushLayout(image.dir, ref, { ...options, tag: image.tag, all: 'images' in image, ...(format === 'v2s2' ? { format } : {}) });
}

export interface PushedManifestList {
  /** Digest of the Docker manifest list, as stored by the registry. */
  digest: string;
  list: { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
  bytes: Buffer;
}

/**
 * Pushes an index made by makeIndex as a Docker manifest list
 * (application/vnd.docker.distribution.manifest.list.v2+json) of Docker schema 2 images:
 * skopeo 1.9 converts the OCI index and each image with --all --format v2s2. The conversion
 * changes every manifest digest (not the config and layer digests), so the list's children are
 * returned as the registry has them. Attestation manifests cannot be converted (skopeo fails with
 * "Unknown media type during manifest conversion: application/vnd.in-toto+json"), so an index
 * with attestations is refused here.
 */
export async function pushManifestList(index: IndexInfo, ref: string, options: SkopeoAuth = {}): Promise<PushedManifestList> {
  if (index.attestations.length > 0) {
    throw new Error('pushManifestList: the index has attestation manifests, which skopeo cannot convert to v2s2; make it without attestations');
  }
  const digest = await pushLayout(index.dir, ref, { ...options, tag: index.tag, all: true, format: 'v2s2' });
  const at = ref.lastIndexOf('@');
  const repo = at >= 0 ? ref.slice(0, at) : ref.slice(0, ref.lastIndexOf(':') > ref.lastIndexOf('/') ? ref.lastIndexOf(':') : ref.length);
  const bytes = await skopeoInspectRaw(`${repo}@${digest}`, options.creds);
  const list = JSON.parse(bytes.toString('utf8')) as PushedManifestList['list'];
  if (list.mediaType !== MEDIA.dockerManifestList) throw new Error(`pushManifestList: the registry holds ${list.mediaType}, not a manifest list`);
  return { digest, list, bytes };
}

/** skopeo inspect --raw: the manifest bytes exactly as the registry serves them. */
export function skopeoInspectRaw(ref: string, creds?: string): Promise<Buffer> {
  return skopeo(['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${ref}`]);
}

export interface PulledImage {
  dir: string;
  manifest: Record<string, unknown>;
  configDigest: string;
  /** Layer digests in manifest order; each blob was checked against its digest. */
  layers: string[];
}

/**
 * skopeo copy docker://REF dir:DIR: pulls the whole image (for an index, the image for platform,
 * default linux/amd64) and checks every blob it wrote against its digest.
 */
export async function skopeoPullToDir(ref: string, dir: string, creds?: string, platform?: Platform): Promise<PulledImage> {
  const args = ['copy', '--src-tls-verify=false', '--retry-times', '0'];
  if (creds) args.push('--src-creds', creds);
  args.push('--override-os', platform?.os ?? 'linux', '--override-arch', platform?.architecture ?? 'amd64');
  if (platform?.variant) args.push('--override-variant', platform.variant);
  args.push(`docker://${ref}`, `dir:${dir}`);
  await skopeo(args);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const files = new Set(await readdir(dir));
  for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
    const hex = digest.slice('sha256:'.length);
    if (!files.has(hex)) throw new Error(`skopeoPullToDir: ${digest} was not written`);
    const actual = sha256(await readFile(join(dir, hex)));
    if (actual !== digest) throw new Error(`skopeoPullToDir: blob ${digest} hashes to ${actual}`);
  }
  return { dir, manifest: manifest as unknown as Record<string, unknown>, configDigest: manifest.config.digest, layers: manifest.layers.map((l) => l.digest) };
}

// ---------------------------------------------------------------------------------------------
// curl

export interface CurlOptions {
  /** Accept header(s); several are joined with ", ". */
  accept?: string | string[];
  /** A Bearer token, or Basic user:password. */
  auth?: { bearer: string } | { basic: string };
  method?: 'GET' | 'HEAD' | 'DELETE';
  headers?: Record<string, string>;
  /** A CA certificate (PEM file) to verify an https server with, as curl --cacert. */
  cacert?: string;
}

export interface CurlResponse {
  status: number;
  /** Lower-cased names; the last value of a repeated header. */
  headers: Record<string, string>;
  body: Buffer;
  digest?: string;
  contentType?: string;
}

/** One request with the curl CLI; no redirects followed. The body is the raw bytes. */
export async function curlManifest(url: string, options: CurlOptions = {}): Promise<CurlResponse> {
  const work = await makeTempDir('curl');
  try {
    const headerFile = join(work, 'headers');
    const bodyFile = join(work, 'body');
    const args = ['-sS', '-D', headerFile, '-o', bodyFile];
    if (options.method === 'HEAD') args.push('--head');
    else if (options.method) args.push('-X', options.method);
    const accept = options.accept === undefined ? [] : Array.isArray(options.accept) ? options.accept : [options.accept];
    if (accept.length > 0) args.push('-H', `Accept: ${accept.join(', ')}`);
    if (options.auth && 'bearer' in options.auth) args.push('-H', `Authorization: Bearer ${options.auth.bearer}`);
    if (options.auth && 'basic' in options.auth) args.push('-u', options.auth.basic);
    for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
    if (options.cacert) args.push('--cacert', options.cacert);
    args.push(url);
    await run('curl', args);
    const headerText = await readFile(headerFile, 'utf8');
    const body = existsSync(bodyFile) ? await readFile(bodyFile) : Buffer.alloc(0);
    // The last block is the final response (a 100 Continue may precede it).
    const blocks = headerText.split(/\r?\n\r?\n/).filter((b) => b.trim().length > 0);
    const last = blocks[blocks.length - 1] ?? '';
    const [statusLine, ...headerLines] = last.split(/\r?\n/);
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const digest = headers['docker-content-digest'];
    const contentType = headers['content-type'];
    return { status, headers, body, ...(digest !== undefined ? { digest } : {}), ...(contentType !== undefined ? { contentType } : {}) };
  } finally {
    await removeTempDir(work);
  }
}
