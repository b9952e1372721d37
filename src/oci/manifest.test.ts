import { describe, expect, it } from 'vitest';
import { TagtrailError, exitCodeFor } from '../errors.js';
import { sha256Digest } from './digest.js';
import { isReferenceDescriptor, jsonToOci, jsonWithAnnotations, parseManifest, parsePlatform, platformMatches, platformNames, serialize } from './manifest.js';
import { DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from './mediatypes.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const image = { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 10, digest: D('a') }, layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 20, digest: D('b') }] };

function err(fn: () => unknown): TagtrailError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TagtrailError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('parseManifest', () => {
  it('keeps raw bytes and takes the digest over them', () => {
    const bytes = Buffer.from(`{ "schemaVersion": 2,\n "mediaType": "${OCI_MANIFEST}", "config": {"mediaType":"${OCI_CONFIG}","digest":"${D('c')}","size":2}, "layers": [] }`);
    const m = parseManifest(bytes);
    expect(m.kind).toBe('image');
    expect(m.bytes).toBe(bytes);
    expect(m.digest).toBe(sha256Digest(bytes));
  });

  it('takes the media type from the content type when the document has none', () => {
    const bytes = serialize({ schemaVersion: 2, manifests: [] });
    expect(parseManifest(bytes, `${OCI_INDEX}; charset=utf-8`).mediaType).toBe(OCI_INDEX);
  });

  it('refuses schema 1, oversize, non-JSON and bad descriptors', () => {
    expect(err(() => parseManifest(serialize({ schemaVersion: 1, name: 'x' }))).code).toBe('UNREADABLE_MANIFEST');
    expect(err(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1, 32))).code).toBe('UNREADABLE_MANIFEST');
    expect(err(() => parseManifest(Buffer.from('nope'))).code).toBe('UNREADABLE_MANIFEST');
    expect(err(() => parseManifest(Buffer.from([0xff, 0xfe]))).code).toBe('UNREADABLE_MANIFEST');
    expect(err(() => parseManifest(serialize({ ...image, layers: [{ mediaType: 'x', digest: 'nope', size: 1 }] }))).code).toBe('UNREADABLE_MANIFEST');
    expect(err(() => parseManifest(serialize({ ...image, annotations: { 'a.b.c': 1 } }))).code).toBe('UNREADABLE_MANIFEST');
    expect(err(() => parseManifest(serialize({ ...image, mediaType: 'application/x-custom' }))).code).toBe('UNREADABLE_MANIFEST');
  });
});

describe('rewriting', () => {
  it('puts a new annotations field last and drops an empty one', () => {
    const withA = jsonWithAnnotations(image, { 'a.b.c': '1' });
    expect(Object.keys(withA)).toEqual(['schemaVersion', 'mediaType', 'config', 'layers', 'annotations']);
    expect(Object.keys(jsonWithAnnotations(withA, {}))).toEqual(['schemaVersion', 'mediaType', 'config', 'layers']);
  });

  it('converts Docker media types to OCI without touching digests', () => {
    const oci = jsonToOci(image) as typeof image;
    expect(oci.mediaType).toBe(OCI_MANIFEST);
    expect(oci.config.mediaType).toBe(OCI_CONFIG);
    expect(oci.config.digest).toBe(D('a'));
    expect(oci.layers[0]?.mediaType).toBe(OCI_LAYER_GZIP);
  });
});

describe('platforms', () => {
  it('parses and matches', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, parsePlatform('linux/arm64/v8'))).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, parsePlatform('linux/arm'))).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, parsePlatform('linux/arm/v7'))).toBe(false);
    expect(err(() => parsePlatform('linux')).code).toBe('INVALID_REFERENCE');
  });
});

describe('references and bounds', () => {
  it('any vnd.docker.reference.type, or the unknown/unknown platform, makes a reference, not a platform', () => {
    const d = (platform: { os: string; architecture: string } | undefined, annotations?: Record<string, string>) => ({ platform, annotations });
    expect(isReferenceDescriptor(d({ os: 'unknown', architecture: 'unknown' }, { 'vnd.docker.reference.type': 'attestation-manifest' }))).toBe(true);
    expect(isReferenceDescriptor(d({ os: 'linux', architecture: 'amd64' }, { 'vnd.docker.reference.type': 'builder' }))).toBe(true);
    expect(isReferenceDescriptor(d({ os: 'unknown', architecture: 'unknown' }))).toBe(true);
    expect(isReferenceDescriptor(d({ os: 'linux', architecture: 'arm64' }, { 'com.example.k': 'v' }))).toBe(false);
    expect(platformNames([{ os: 'linux', architecture: 'amd64' }, { os: 'unknown', architecture: 'unknown' }, { os: 'linux', architecture: 'amd64' }, null])).toEqual(['linux/amd64']);
  });

  it('an index of more than 1,000 children is unreadable (exit 1), 1,000 is not', () => {
    const child = { mediaType: DOCKER_MANIFEST, size: 10, digest: D('c') };
    const index = (n: number) => serialize({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array.from({ length: n }, () => child) });
    expect(parseManifest(index(1000)).kind).toBe('index');
    const e = err(() => parseManifest(index(1001)));
    expect(e.code).toBe('UNREADABLE_MANIFEST');
    expect(exitCodeFor(e)).toBe(1);
    expect(e.message).toContain('1001 manifests');
  });
});
