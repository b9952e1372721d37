// Catalog records made in memory, for tests and benchmarks that fill a Store directly (no
// registry): manifests whose raw bytes hash to their digest, as putManifest requires.
import { createHash, randomBytes } from 'node:crypto';
import type { ManifestRecord, Platform } from '../../src/catalog/types.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function fakeDigest(): string {
  return `sha256:${randomBytes(32).toString('hex')}`;
}

export interface ImageRecordOptions {
  annotations?: Record<string, string>;
  /** Makes the bytes (and so the digest) distinct; default random. */
  salt?: string;
}

/** An OCI image manifest with one layer; its config and layer blobs do not exist anywhere. */
export function imageRecord(options: ImageRecordOptions = {}): ManifestRecord {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: fakeDigest(), size: 1234 },
    layers: [{ mediaType: OCI_LAYER, digest: fakeDigest(), size: 5678, annotations: { 'test.salt': options.salt ?? randomBytes(8).toString('hex') } }],
  };
  if (options.annotations) manifest.annotations = options.annotations;
  const raw = Buffer.from(JSON.stringify(manifest));
  return {
    digest: digestOf(raw),
    mediaType: OCI_MANIFEST,
    raw,
    configDigest: (manifest.config as { digest: string }).digest,
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
}

export interface IndexRecordOptions {
  annotations?: Record<string, string>;
  /** Default linux/amd64 and linux/arm64/v8. */
  platforms?: Platform[];
  /** Annotations of each platform manifest. */
  childAnnotations?: Record<string, string>;
}

/** An OCI index of image manifests, with the children's records. */
export function indexRecord(options: IndexRecordOptions = {}): ManifestRecord {
  const platforms = options.platforms ?? [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  const children = platforms.map((platform) => {
    const child = imageRecord(options.childAnnotations ? { annotations: options.childAnnotations } : {});
    return { digest: child.digest, mediaType: OCI_MANIFEST, size: child.raw.length, platform, manifest: child };
  });
  const index: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: c.platform })),
  };
  if (options.annotations) index.annotations = options.annotations;
  const raw = Buffer.from(JSON.stringify(index));
  return {
    digest: digestOf(raw),
    mediaType: OCI_INDEX,
    raw,
    ...(options.annotations ? { annotations: options.annotations } : {}),
    children,
  };
}
