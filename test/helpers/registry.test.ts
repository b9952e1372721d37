// A no-auth registry takes every kind of image skopeo can push, serves it back to curl with the
// right Content-Type, counts the requests it received, and notifies a listener.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useNotificationSink, useRegistry, useTempDir } from './fixtures.js';
import { curlManifest, makeImage, makeIndex, MEDIA, pushImage, pushLayout, pushManifestList, sha256, skopeoInspectRaw, skopeoPullToDir } from './images.js';
import { EVENTS_MEDIA_TYPE, registryConfig } from './registry.js';

const tmp = useTempDir('registry-test');
const sink = useNotificationSink();
const registry = useRegistry(() => ({ deleteEnabled: true, notifications: { url: sink().url, headers: { 'X-Test-Token': ['sink-secret'] } } }));

const ALL_MANIFESTS = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerManifestList];

describe('a registry without auth', () => {
  it('takes an OCI image, serves it with the OCI media type and the digest skopeo reported', async () => {
    const image = await makeImage(join(tmp(), 'oci'), { manifestAnnotations: { 'org.example.a': 'b' } });
    registry().resetRequests();
    const digest = await pushImage(image, `${registry().host}/group/oci:v1`);
    expect(digest).toBe(image.digest);
    // Two layers and a config went up through the counting proxy, then one manifest PUT.
    expect(registry().count({ method: 'PUT', kind: 'manifest' })).toBe(1);
    expect(registry().count({ method: 'PUT', kind: 'upload' })).toBe(3);

    const r = await curlManifest(`${registry().url}/v2/group/oci/manifests/v1`, { accept: ALL_MANIFESTS });
    expect(r.status).toBe(200);
    expect(r.contentType).toBe(MEDIA.ociManifest);
    expect(r.digest).toBe(image.digest);
    expect(r.body.equals(image.manifestBytes)).toBe(true);
    expect((await skopeoInspectRaw(`${registry().host}/group/oci:v1`)).equals(image.manifestBytes)).toBe(true);

    const pulled = await skopeoPullToDir(`${registry().host}/group/oci:v1`, join(tmp(), 'oci-pulled'));
    expect(pulled.layers).toEqual(image.layers.map((l) => l.digest));
    expect(pulled.configDigest).toBe(image.configDigest);
  });

  it('takes a Docker v2s2 image converted by skopeo, same layers', async () => {
    const image = await makeImage(join(tmp(), 'v2s2'), { labels: { 'com.example.l': '1' }, format: 'v2s2' });
    const digest = await pushImage(image, `${registry().host}/group/v2s2:v1`);
    expect(digest).not.toBe(image.digest); // skopeo converted the OCI manifest of the layout
    const r = await curlManifest(`${registry().url}/v2/group/v2s2/manifests/v1`, { accept: ALL_MANIFESTS });
    expect(r.contentType).toBe(MEDIA.dockerManifest);
    expect(r.digest).toBe(digest);
    expect(sha256(r.body)).toBe(digest);
    const manifest = JSON.parse(r.body.toString()) as { config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string }[] };
    expect(manifest.config).toMatchObject({ mediaType: MEDIA.dockerConfig, digest: image.configDigest });
    expect(manifest.layers.map((l) => [l.mediaType, l.digest])).toEqual(image.layers.map((l) => [MEDIA.dockerLayerGzip, l.digest]));
    // pushLayout converts an OCI image on request too.
    const again = await pushLayout(image.dir, `${registry().host}/group/v2s2:v2`, { tag: image.tag, format: 'v2s2' });
    expect(again).toBe(digest);
  });

  it('takes an OCI index with BuildKit attestation manifests (skopeo --all), byte for byte', async () => {
    const index = await makeIndex(join(tmp(), 'index'), { attestations: true });
    const digest = await pushImage(index, `${registry().host}/group/index:v1`);
    expect(digest).toBe(index.digest);
    const r = await curlManifest(`${registry().url}/v2/group/index/manifests/v1`, { accept: ALL_MANIFESTS });
    expect(r.contentType).toBe(MEDIA.ociIndex);
    expect(r.body.equals(index.indexBytes)).toBe(true);
    for (const att of index.attestations) {
      const a = await curlManifest(`${registry().url}/v2/group/index/manifests/${att.digest}`, { accept: ALL_MANIFESTS });
      expect(a.status).toBe(200);
      expect(a.contentType).toBe(MEDIA.ociManifest);
      expect(a.body.equals(att.manifestBytes)).toBe(true);
    }
    const arm = index.images[1];
    const pulled = await skopeoPullToDir(`${registry().host}/group/index:v1`, join(tmp(), 'index-arm'), undefined, arm?.platform);
    expect(pulled.layers).toEqual(arm?.layers.map((l) => l.digest));
  });

  it('takes a Docker manifest list', async () => {
    const index = await makeIndex(join(tmp(), 'list'));
    const pushed = await pushManifestList(index, `${registry().host}/group/list:v1`);
    const r = await curlManifest(`${registry().url}/v2/group/list/manifests/v1`, { accept: ALL_MANIFESTS });
    expect(r.contentType).toBe(MEDIA.dockerManifestList);
    expect(r.digest).toBe(pushed.digest);
    expect(pushed.list.manifests.map((m) => [m.mediaType, m.platform])).toEqual(index.images.map((i) => [MEDIA.dockerManifest, i.platform]));
    const child = await curlManifest(`${registry().url}/v2/group/list/manifests/${pushed.list.manifests[0]?.digest}`, { accept: ALL_MANIFESTS });
    expect(child.contentType).toBe(MEDIA.dockerManifest);
    await expect(pushManifestList(await makeIndex(join(tmp(), 'list-att'), { attestations: true }), `${registry().host}/group/list:v2`)).rejects.toThrow(/attestation/);
    // The same through makeIndex's format and pushImage.
    const v2s2 = await makeIndex(join(tmp(), 'list-v2s2'), { format: 'v2s2' });
    const digest = await pushImage(v2s2, `${registry().host}/group/list:v3`);
    const r3 = await curlManifest(`${registry().url}/v2/group/list/manifests/v3`, { accept: ALL_MANIFESTS });
    expect(r3.contentType).toBe(MEDIA.dockerManifestList);
    expect(r3.digest).toBe(digest);
    await expect(makeIndex(join(tmp(), 'list-bad'), { format: 'v2s2', attestations: true })).rejects.toThrow(/attestation/);
  });

  it('counts requests on arrival, and its own access log agrees', async () => {
    registry().resetRequests();
    const r = await curlManifest(`${registry().url}/v2/group/oci/manifests/v1`, { method: 'HEAD', accept: ALL_MANIFESTS });
    expect(r.status).toBe(200);
    await curlManifest(`${registry().url}/v2/group/oci/manifests/nope`, { accept: ALL_MANIFESTS });
    expect(registry().requests.map((q) => [q.method, q.kind, q.repository, q.reference, q.status])).toEqual([
      ['HEAD', 'manifest', 'group/oci', 'v1', 200],
      ['GET', 'manifest', 'group/oci', 'nope', 404],
    ]);
    await expect.poll(() => registry().accessLog().filter((e) => e.path === '/v2/group/oci/manifests/nope')).toEqual([
      expect.objectContaining({ method: 'GET', status: 404 }),
    ]);
  });

  it('notifies the listener of a manifest push with the events media type', async () => {
    const image = await makeImage(join(tmp(), 'notify'));
    await pushImage(image, `${registry().host}/group/notify:v7`);
    const event = await sink().waitForEvent((e) => e.action === 'push' && e.target.repository === 'group/notify' && e.target.tag === 'v7');
    expect(event.target).toMatchObject({ mediaType: MEDIA.ociManifest, digest: image.digest });
    const delivery = sink().deliveries.find((d) => d.events.includes(event));
    expect(delivery?.contentType).toBe(EVENTS_MEDIA_TYPE);
    expect(delivery?.headers['x-test-token']).toBe('sink-secret');
  });

  it('deletes manifests when delete is enabled', async () => {
    const image = await makeImage(join(tmp(), 'delete'));
    const digest = await pushImage(image, `${registry().host}/group/delete:v1`);
    expect((await curlManifest(`${registry().url}/v2/group/delete/manifests/${digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await curlManifest(`${registry().url}/v2/group/delete/manifests/v1`, { accept: ALL_MANIFESTS })).status).toBe(404);
  });
});

describe('registryConfig', () => {
  it('writes token auth and notification settings distribution reads', () => {
    const config = JSON.parse(
      registryConfig(
        {
          auth: { tokenIssuer: { realm: 'http://127.0.0.1:1/jwt/auth', service: 'container_registry', issuer: 'gitlab-issuer', certPath: '/c.pem' } },
          notifications: [{ url: 'http://127.0.0.1:2/a' }, { url: 'http://127.0.0.1:3/b', ignoredActions: ['pull'] }],
        },
        '/s',
        5000,
      ),
    ) as Record<string, unknown>;
    expect(config).toMatchObject({
      http: { addr: '127.0.0.1:5000' },
      auth: { token: { realm: 'http://127.0.0.1:1/jwt/auth', service: 'container_registry', issuer: 'gitlab-issuer', rootcertbundle: '/c.pem' } },
      notifications: { endpoints: [{ name: 'tagtrail-test-1', timeout: '1000ms', backoff: '200ms', threshold: 3 }, { ignore: { actions: ['pull'] } }] },
      storage: { delete: { enabled: false } },
    });
  });
});
