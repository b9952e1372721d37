// The image maker writes layouts that real tools accept: tar reads the layers, skopeo the layout.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { run } from './exec.js';
import { useTempDir } from './fixtures.js';
import { ATTESTATION_ANNOTATIONS, makeImage, makeIndex, makeTar, MEDIA, sha256 } from './images.js';

const tmp = useTempDir('images-test');

function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

describe('makeTar', () => {
  it('writes an archive GNU tar lists and extracts byte for byte', async () => {
    const content = Buffer.from('x'.repeat(1000));
    const path = join(tmp(), 'plain.tar');
    await writeFile(path, makeTar([{ name: 'a/b.txt', content }, { name: 'empty', content: Buffer.alloc(0) }]));
    const listing = await run('tar', ['-tvf', path]);
    expect(listing.stdout.toString()).toMatch(/a\/b\.txt/);
    const extracted = await run('tar', ['-xOf', path, 'a/b.txt']);
    expect(extracted.stdout.equals(content)).toBe(true);
  });
});

describe('makeImage', () => {
  it('writes a layout whose blobs match their digests, with a real image config', async () => {
    const dir = join(tmp(), 'one');
    const image = await makeImage(dir, { layers: 3, labels: { 'com.example.a': 'b' }, manifestAnnotations: { 'org.example.x': 'y' }, tag: 'v1', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(index.manifests).toEqual([expect.objectContaining({ digest: image.digest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } })]);
    const manifestBytes = await readFile(blobPath(dir, image.digest));
    expect(sha256(manifestBytes)).toBe(image.digest);
    const manifest = JSON.parse(manifestBytes.toString()) as { mediaType: string; annotations: Record<string, string>; layers: { digest: string; mediaType: string }[] };
    expect(manifest.mediaType).toBe(MEDIA.ociManifest);
    expect(manifest.annotations).toEqual({ 'org.example.x': 'y' });
    expect(manifest.layers).toHaveLength(3);

    const config = JSON.parse(await readFile(blobPath(dir, image.configDigest), 'utf8')) as Record<string, unknown> & { rootfs: { diff_ids: string[] }; config: { Labels: Record<string, string> }; history: unknown[] };
    expect(config).toMatchObject({ architecture: 'arm', os: 'linux', variant: 'v7', config: { Labels: { 'com.example.a': 'b' } } });
    expect(config.history).toHaveLength(3);
    // diff_ids are the digests of the uncompressed layers, and each layer is a tar GNU tar reads.
    for (const [i, layer] of manifest.layers.entries()) {
      const gz = await readFile(blobPath(dir, layer.digest));
      expect(sha256(gz)).toBe(layer.digest);
      expect(config.rootfs.diff_ids[i]).toBe(sha256(gunzipSync(gz)));
      const listing = await run('tar', ['-tzf', blobPath(dir, layer.digest)]);
      expect(listing.stdout.toString().trim()).toBe(`tagtrail/layer-${i + 1}.txt`);
    }
  });

  it('makes distinct layers per call, and identical ones for the same seed', async () => {
    const a = await makeImage(join(tmp(), 'a'));
    const b = await makeImage(join(tmp(), 'b'));
    expect(a.layers.map((l) => l.digest)).not.toEqual(b.layers.map((l) => l.digest));
    expect(new Set(a.layers.map((l) => l.digest)).size).toBe(2);
    const c1 = await makeImage(join(tmp(), 'c1'), { seed: 's', layerSize: 4096 });
    const c2 = await makeImage(join(tmp(), 'c2'), { seed: 's', layerSize: 4096 });
    expect(c1.digest).toBe(c2.digest);
    expect(c1.layers[0]?.size).toBeGreaterThan(4096); // random filler does not compress
  });

  it('keeps several tags in one layout', async () => {
    const dir = join(tmp(), 'multi-tag');
    await makeImage(dir, { tag: 'one' });
    const two = await makeImage(dir, { tag: 'two' });
    const again = await makeImage(dir, { tag: 'one' });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest).sort()).toEqual([two.digest, again.digest].sort());
  });
});

describe('makeIndex', () => {
  it('writes BuildKit-style attestation manifests next to the platform manifests', async () => {
    const dir = join(tmp(), 'index');
    const index = await makeIndex(dir, { attestations: true, indexAnnotations: { 'org.example.i': 'j' } });
    expect(index.images).toHaveLength(2);
    expect(index.attestations).toHaveLength(2);
    const stored = JSON.parse(await readFile(blobPath(dir, index.digest), 'utf8')) as { annotations: unknown; manifests: { digest: string; platform: unknown; annotations?: Record<string, string> }[] };
    expect(stored.annotations).toEqual({ 'org.example.i': 'j' });
    expect(stored.manifests.slice(0, 2).map((m) => m.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    for (const [i, att] of index.attestations.entries()) {
      const descriptor = stored.manifests[2 + i];
      expect(descriptor?.platform).toEqual({ architecture: 'unknown', os: 'unknown' });
      expect(descriptor?.annotations).toEqual({
        [ATTESTATION_ANNOTATIONS.type]: 'attestation-manifest',
        [ATTESTATION_ANNOTATIONS.digest]: index.images[i]?.digest,
      });
      const manifest = JSON.parse(att.manifestBytes.toString()) as { config: { mediaType: string }; layers: { mediaType: string; digest: string }[] };
      expect(manifest.config.mediaType).toBe(MEDIA.ociConfig);
      expect(manifest.layers[0]?.mediaType).toBe(MEDIA.inToto);
      const statement = JSON.parse(await readFile(blobPath(dir, manifest.layers[0]?.digest ?? ''), 'utf8')) as { predicateType: string; subject: { digest: { sha256: string } }[] };
      expect(statement.predicateType).toBe('https://slsa.dev/provenance/v0.2');
      expect(`sha256:${statement.subject[0]?.digest.sha256}`).toBe(index.images[i]?.digest);
    }
    expect(createHash('sha256').update(index.indexBytes).digest('hex')).toBe(index.digest.slice(7));
  });
});
