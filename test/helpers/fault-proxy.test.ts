// Each fault of the proxy does what it says, seen by a plain fetch client, in front of a real
// registry (and of a token-auth one for the expired-token fault).
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFaultProxy, startRecordingServer } from './fault-proxy.js';
import { useFaultProxy, useRegistry, useTempDir, useTokenIssuer } from './fixtures.js';
import { makeImage, MEDIA, pushImage, sha256, type ImageInfo } from './images.js';

const tmp = useTempDir('fault-test');
const registry = useRegistry();
const proxy = useFaultProxy(() => ({ upstream: registry().url }));

let image: ImageInfo | undefined;
async function pushed(): Promise<ImageInfo> {
  if (!image) {
    image = await makeImage(join(tmp(), 'img'), { layerSize: 64 * 1024 });
    await pushImage(image, `${registry().host}/group/app:v1`);
  }
  return image;
}

const manifestUrl = (): string => `${proxy().url}/v2/group/app/manifests/v1`;
const accept = { accept: `${MEDIA.ociManifest}, ${MEDIA.ociIndex}` };

afterEach(() => {
  proxy().clearRules();
  proxy().reset();
});

describe('fault proxy', () => {
  it('passes requests through untouched and records them, Authorization value included', async () => {
    const img = await pushed();
    const res = await fetch(manifestUrl(), { headers: { ...accept, authorization: 'Bearer secret-value' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(img.digest);
    expect(res.headers.get('content-type')).toBe(MEDIA.ociManifest);
    expect(Buffer.from(await res.arrayBuffer()).equals(img.manifestBytes)).toBe(true);
    expect(proxy().requests).toHaveLength(1);
    expect(proxy().requests[0]).toMatchObject({ method: 'GET', kind: 'manifest', repository: 'group/app', reference: 'v1', status: 200, hasAuthorization: true });
    expect(proxy().requests[0]?.headers.authorization).toBe('Bearer secret-value');
    expect(proxy().count({ kind: 'manifest', method: 'GET' })).toBe(1);
    expect(proxy().count({ kind: 'blob' })).toBe(0);
  });

  it('adds latency', async () => {
    await pushed();
    proxy().addRule({ method: 'GET', path: /\/manifests\//, fault: { kind: 'latency', ms: 300 } });
    const start = Date.now();
    const res = await fetch(manifestUrl(), { headers: accept });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(Date.now() - start).toBeGreaterThanOrEqual(290);
  });

  it('answers a status with Retry-After, only the first N or the Nth time, without asking upstream', async () => {
    await pushed();
    const rule = proxy().addRule({ method: 'GET', path: /\/manifests\/v1$/, times: 2, fault: { kind: 'status', status: 429, retryAfter: 3 } });
    const nth = proxy().addRule({ method: 'HEAD', path: /\/manifests\//, nth: 2, fault: { kind: 'status', status: 503 } });
    registry().resetRequests();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(manifestUrl(), { headers: accept });
      await res.arrayBuffer();
      statuses.push(res.status);
      if (i === 0) {
        expect(res.headers.get('retry-after')).toBe('3');
      }
    }
    expect(statuses).toEqual([429, 429, 200]);
    expect(rule.matched()).toBe(3);
    expect(rule.applied()).toBe(2);
    const heads: number[] = [];
    for (let i = 0; i < 3; i++) heads.push((await fetch(manifestUrl(), { method: 'HEAD', headers: accept })).status);
    expect(heads).toEqual([200, 503, 200]);
    expect(nth.applied()).toBe(1);
    // Only the requests that were let through reached the registry.
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1);
    expect(registry().count({ method: 'HEAD', kind: 'manifest' })).toBe(2);
    expect(proxy().count({ status: 429 })).toBe(2);
    expect(proxy().requests.filter((r) => r.fault !== undefined).map((r) => r.fault)).toEqual(['status', 'status', 'status']);
  });

  it.each([500, 502])('answers %i with a registry-style error body', async (status) => {
    proxy().addRule({ path: /\/v2\/$/, fault: { kind: 'status', status } });
    const res = await fetch(`${proxy().url}/v2/`);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { errors: unknown[] }).errors).toHaveLength(1);
  });

  it('resets the connection in the middle of the body', async () => {
    const img = await pushed();
    const layer = img.layers[0]?.digest ?? '';
    proxy().addRule({ method: 'GET', path: /\/blobs\//, times: 1, fault: { kind: 'reset', afterBytes: 1000 } });
    const res = await fetch(`${proxy().url}/v2/group/app/blobs/${layer}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(img.layers[0]?.size));
    await expect(res.arrayBuffer()).rejects.toThrow();
    // The next one is whole.
    const again = await fetch(`${proxy().url}/v2/group/app/blobs/${layer}`);
    expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(layer);
  });

  it('truncates a body: Content-Length promises more than is sent', async () => {
    const img = await pushed();
    proxy().addRule({ method: 'GET', path: /\/manifests\//, fault: { kind: 'truncate', afterBytes: 20 } });
    const res = await fetch(manifestUrl(), { headers: accept });
    expect(res.headers.get('content-length')).toBe(String(img.manifestBytes.length));
    await expect(res.arrayBuffer()).rejects.toThrow();
    expect(proxy().requests[0]?.fault).toBe('truncate');
  });

  it('sends a wrong Docker-Content-Digest with the real body', async () => {
    const img = await pushed();
    const wrong = `sha256:${'0'.repeat(64)}`;
    proxy().addRule({ path: /\/manifests\//, fault: { kind: 'wrong-digest', digest: wrong } });
    const res = await fetch(manifestUrl(), { headers: accept });
    expect(res.headers.get('docker-content-digest')).toBe(wrong);
    expect(Buffer.from(await res.arrayBuffer()).equals(img.manifestBytes)).toBe(true);
    proxy().clearRules();
    proxy().addRule({ path: /\/manifests\//, fault: { kind: 'wrong-digest' } });
    const head = await fetch(manifestUrl(), { method: 'HEAD', headers: accept });
    expect(head.headers.get('docker-content-digest')).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(head.headers.get('docker-content-digest')).not.toBe(img.digest);
  });

  it('redirects to another host, which records what crossed over', async () => {
    const img = await pushed();
    const other = await startRecordingServer(() => ({ status: 200, body: img.manifestBytes }));
    try {
      proxy().addRule({ method: 'GET', path: /\/manifests\//, times: 1, fault: { kind: 'redirect', to: other.url } });
      const manual = await fetch(manifestUrl(), { headers: accept, redirect: 'manual' });
      expect(manual.status).toBe(307);
      expect(manual.headers.get('location')).toBe(`${other.url}/v2/group/app/manifests/v1`);
      proxy().addRule({ method: 'GET', path: /\/manifests\//, times: 1, fault: { kind: 'redirect', to: other.url, status: 302 } });
      const followed = await fetch(manifestUrl(), { headers: { ...accept, authorization: 'Bearer must-not-cross', 'x-trace': 'kept' } });
      expect(followed.status).toBe(200);
      expect(other.requests).toHaveLength(1);
      expect(other.requests[0]).toMatchObject({ method: 'GET', url: '/v2/group/app/manifests/v1' });
      expect(other.requests[0]?.headers['x-trace']).toBe('kept');
      // fetch drops Authorization on a cross-origin redirect; the recorder shows it did.
      expect(other.requests[0]?.hasAuthorization).toBe(false);
    } finally {
      await other.stop();
    }
  });

  it('hangs up without an answer', async () => {
    proxy().addRule({ path: /\/v2\/$/, times: 1, fault: { kind: 'hangup' } });
    await expect(fetch(`${proxy().url}/v2/`)).rejects.toThrow();
    expect((await fetch(`${proxy().url}/v2/`)).status).toBe(200);
  });

  it('keeps upstream Location headers behind the proxy', async () => {
    let origin = '';
    const upstream = await startRecordingServer(() => ({ status: 202, headers: { location: `${origin}/v2/x/blobs/uploads/abc?_state=s` } }));
    origin = upstream.url;
    const front = await startFaultProxy({ upstream: upstream.url });
    try {
      const res = await fetch(`${front.url}/v2/x/blobs/uploads/`, { method: 'POST', redirect: 'manual' });
      expect(res.status).toBe(202);
      expect(res.headers.get('location')).toBe(`${front.url}/v2/x/blobs/uploads/abc?_state=s`);
      // Through the registry, upload Locations already name the proxy: it forwards the Host header.
      const upload = await fetch(`${proxy().url}/v2/group/app/blobs/uploads/`, { method: 'POST' });
      expect(upload.status).toBe(202);
      expect(upload.headers.get('location')?.startsWith(`${proxy().url}/v2/group/app/blobs/uploads/`)).toBe(true);
      expect(proxy().requests[0]?.kind).toBe('upload');
    } finally {
      await front.stop();
      await upstream.stop();
    }
  });
});

describe('fault proxy before a token-auth registry', () => {
  const issuer = useTokenIssuer({ users: { 'gitlab-ci-token': { password: 'job-token-123' } } });
  const authRegistry = useRegistry(() => ({ auth: { tokenIssuer: issuer() } }));
  const authProxy = useFaultProxy(() => ({ upstream: authRegistry().url }));

  it('answers 401 with the upstream challenge for that request, as if the token expired', async () => {
    const token = issuer().mintToken({ access: [{ type: 'repository', name: 'group/app', actions: ['pull', 'push'] }] });
    const url = `${authProxy().url}/v2/group/app/manifests/v1`;
    expect((await fetch(url, { headers: { ...accept, authorization: `Bearer ${token}` } })).status).toBe(404);
    authProxy().addRule({ method: 'PUT', path: /\/manifests\//, times: 1, fault: { kind: 'unauthorized' } });
    authRegistry().resetRequests();
    const res = await fetch(url, { method: 'PUT', headers: { 'content-type': MEDIA.ociManifest, authorization: `Bearer ${token}` }, body: '{}' });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain(`realm="${issuer().realm}"`);
    expect(challenge).toContain(`service="${issuer().service}"`);
    // distribution lists the actions in no fixed order.
    expect(challenge).toMatch(/scope="repository:group\/app:(pull,push|push,pull)"/);
    // The registry saw a GET /v2/ (the proxy checking once that it demands auth) and the replay
    // without credentials, never the real PUT.
    expect(authRegistry().requests.map((r) => [r.method, r.kind, r.hasAuthorization, r.status])).toEqual([
      ['GET', 'base', false, 401],
      ['PUT', 'manifest', false, 401],
    ]);
  });
});

// Only lower bounds on time: a busy machine can make a shaped link slower, never faster.
describe('fault proxy shaping a slow link', () => {
  const LATENCY = 100;
  const BPS = 4_000_000; // 0.5 MB/s
  const LAYER = 256 * 1024;
  const linked = useFaultProxy(() => ({ upstream: registry().url, link: { latencyMs: LATENCY, bitsPerSecond: BPS } }));
  let layered: ImageInfo | undefined;
  async function layerImage(): Promise<ImageInfo> {
    if (!layered) {
      layered = await makeImage(join(tmp(), 'layered'), { layers: 1, layerSize: LAYER });
      await pushImage(layered, `${registry().host}/group/shaped:v1`);
    }
    return layered;
  }
  const seconds = (bytes: number): number => (bytes * 8 * 1000) / BPS;

  it('adds its latency to every request', async () => {
    const started = performance.now();
    expect((await fetch(`${linked().url}/v2/`)).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(LATENCY);
  });

  it('sends a body no faster than the bandwidth, whole, and shares it between concurrent downloads', async () => {
    const img = await layerImage();
    const layer = img.layers[0]!;
    const url = `${linked().url}/v2/group/shaped/blobs/${layer.digest}`;
    const get = async (): Promise<string> => sha256(Buffer.from(await (await fetch(url)).arrayBuffer()));
    let started = performance.now();
    expect(await get()).toBe(layer.digest);
    expect(performance.now() - started).toBeGreaterThanOrEqual(LATENCY + seconds(layer.size) * 0.95);
    started = performance.now();
    expect(await Promise.all([get(), get()])).toEqual([layer.digest, layer.digest]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(LATENCY + seconds(2 * layer.size) * 0.95);
  });

  it('takes an upload no faster than the bandwidth', async () => {
    const body = Buffer.alloc(LAYER, 7);
    const start = await fetch(`${linked().url}/v2/group/shaped/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location') ?? '', linked().url);
    location.searchParams.set('digest', sha256(body));
    const started = performance.now();
    const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body });
    expect(put.status).toBe(201);
    expect(performance.now() - started).toBeGreaterThanOrEqual(LATENCY + seconds(body.length) * 0.95);
    expect(Buffer.from(await (await fetch(`${registry().url}/v2/group/shaped/blobs/${sha256(body)}`)).arrayBuffer()).equals(body)).toBe(true);
  });
});
