// tagtrail attach against a real CNCF distribution 2.8 registry, which has no referrers API, so
// the referrers tag (sha256-<hex>) is what it exercises; the API path runs against an
// emulation of the API in front of the same registry (test/helpers/referrers-api.ts), and
// GitLab.com's handling of the referrers tag is emulated with the fault proxy. Every result is
// read back with curl or skopeo, not with tagtrail.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialResolver } from '../../src/oci/auth/credentials.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { curlManifest, makeImage, makeIndex, pushImage, pushManifestList, sha256, skopeoPullToDir, type ImageInfo } from '../helpers/images.js';
import { startReferrersApi, type ReferrersApi } from '../helpers/referrers-api.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenIssuer, type TokenIssuer } from '../helpers/token-issuer.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];
const TYPE = 'application/vnd.tagtrail.build.v1+json';
const EMPTY = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}
interface Json {
  mediaType?: string;
  artifactType?: string;
  config?: Desc;
  layers?: Desc[];
  subject?: Desc;
  manifests?: Desc[];
  annotations?: Record<string, string>;
}
interface AttachJson {
  subject: { digest: string; mediaType: string; size: number };
  referrer: string;
  changed: boolean;
  path: string;
  fallbackTag?: { tag: string; digest: string };
  annotations: Record<string, string>;
}

let registry: TestRegistry;
let work: string;
const env = gitlabEnv();

async function read(base: string, repo: string, reference: string): Promise<{ status: number; digest?: string; contentType?: string; json: Json; bytes: Buffer }> {
  const r = await curlManifest(`${base}/v2/${repo}/manifests/${reference}`, { accept: ACCEPT });
  return { status: r.status, digest: r.digest, contentType: r.contentType, json: r.status === 200 ? (JSON.parse(r.body.toString('utf8')) as Json) : {}, bytes: r.body };
}

async function head(repo: string, reference: string): Promise<string | undefined> {
  return (await curlManifest(`${registry.url}/v2/${repo}/manifests/${reference}`, { accept: ACCEPT, method: 'HEAD' })).digest;
}

const tagOf = (digest: string): string => digest.replace(':', '-');

async function attach(host: string, image: string, extra: string[] = [], opts: { env?: Record<string, string>; now?: () => Date } = {}) {
  const r = await runCli(['attach', `${host}/${image}`, '-o', 'json', ...extra], { env: opts.env ?? env, ...(opts.now ? { now: opts.now } : {}) });
  return { ...r, json: r.code === 0 ? (JSON.parse(r.stdout) as AttachJson) : undefined };
}

async function pullWhole(ref: string, image: ImageInfo): Promise<void> {
  const dir = await mkdtemp(join(work, 'pull-'));
  const pulled = await skopeoPullToDir(ref, dir);
  expect(pulled.layers).toEqual(image.layers.map((l) => l.digest));
  expect(pulled.configDigest).toBe(image.configDigest);
}

/** Checks the referrer manifest as stored: our type, the empty config and layer, the subject. */
async function expectReferrer(base: string, repo: string, digest: string, subject: { digest: string; mediaType: string; size: number }): Promise<Json> {
  const r = await read(base, repo, digest);
  expect(r.status).toBe(200);
  expect(r.contentType).toBe(OCI_MANIFEST);
  expect(sha256(r.bytes)).toBe(digest);
  expect(r.json.artifactType).toBe(TYPE);
  expect(r.json.config).toEqual({ mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY, size: 2 });
  expect(r.json.layers).toEqual([{ mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY, size: 2 }]);
  expect(r.json.subject).toEqual(subject);
  return r.json;
}

async function freshImage(repo: string, tag: string, seed: string, format?: 'v2s2'): Promise<ImageInfo & { pushed: string }> {
  const image = await makeImage(await mkdtemp(join(work, 'img-')), { tag, seed, layers: 2, ...(format ? { format } : {}) });
  const pushed = await pushImage(image, `${registry.host}/${repo}:${tag}`);
  return { ...image, pushed };
}

/** A referrer written by another tool: pushed by digest, and added to the referrers tag by read-modify-write. */
async function pushForeignReferrer(repo: string, subject: Desc, artifactType: string): Promise<string> {
  const blob = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${EMPTY}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: '{}' });
  await blob.arrayBuffer();
  expect([201, 202]).toContain(blob.status);
  if (blob.status === 202) {
    const loc = new URL(blob.headers.get('location') as string, registry.url);
    loc.searchParams.set('digest', EMPTY);
    const put = await fetch(loc, { method: 'PUT', body: '{}' });
    await put.arrayBuffer();
    expect(put.status).toBe(201);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY, size: 2 }],
    subject,
    annotations: { 'com.example.tool': 'other' },
  });
  const digest = sha256(manifest);
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${digest}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  await res.arrayBuffer();
  expect(res.status).toBe(201);
  const fb = await read(registry.url, repo, tagOf(subject.digest));
  const list = fb.status === 200 ? (fb.json.manifests ?? []) : [];
  const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...list, { mediaType: OCI_MANIFEST, digest, size: Buffer.byteLength(manifest), artifactType, annotations: { 'com.example.tool': 'other' } }] });
  const put = await fetch(`${registry.url}/v2/${repo}/manifests/${tagOf(subject.digest)}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: index });
  await put.arrayBuffer();
  expect(put.status).toBe(201);
  return digest;
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tagtrail-attach-'));
});

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('attach to an OCI image on a registry without the referrers API (referrers tag)', () => {
  const repo = 'group/oci';
  let image: ImageInfo & { pushed: string };
  let first: AttachJson;

  beforeAll(async () => {
    image = await freshImage(repo, 'v1', 'oci');
  });

  it('writes the referrer and the sha256-<hex> tag in 10 requests; the tag keeps its digest and the old digest pulls whole', async () => {
    registry.resetRequests();
    const r = await attach(registry.host, `${repo}:v1`, ['-a', 'com.example.team=payments']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    first = r.json as AttachJson;
    expect(first).toMatchObject({ changed: true, path: 'fallback-tag', subject: { digest: image.pushed, mediaType: OCI_MANIFEST } });
    // The documented keys (docs/attach.md), camelCase as in every JSON output; scripts read them.
    expect(Object.keys(first)).toEqual(['image', 'subject', 'referrer', 'changed', 'dryRun', 'path', 'fallbackTag', 'annotations']);
    expect(Object.keys(first.fallbackTag ?? {})).toEqual(['tag', 'digest']);
    expect(first.fallbackTag?.tag).toBe(tagOf(image.pushed));
    // GET subject (no GET /v2/ before it), GET referrers (404), GET sha256-<hex> (404), HEAD blob,
    // POST + PUT blob, PUT referrer, race-check HEAD of the tag, PUT of the tag, and the tag read back.
    expect(registry.count()).toBe(10);
    expect(registry.count({ method: 'PUT' })).toBe(3);
    expect(registry.count({ kind: 'referrers' })).toBe(1);
    expect(registry.count({ kind: 'blob', method: 'GET' })).toBe(0);

    expect(await head(repo, 'v1')).toBe(image.pushed);
    await pullWhole(`${registry.host}/${repo}@${image.pushed}`, image);

    const subject = { mediaType: OCI_MANIFEST, digest: image.pushed, size: (await read(registry.url, repo, image.pushed)).bytes.length };
    expect(first.subject).toEqual(subject);
    const ref = await expectReferrer(registry.url, repo, first.referrer, subject);
    expect(ref.annotations?.['com.example.team']).toBe('payments');
    expect(ref.annotations?.['com.gitlab.ci.pipeline_id']).toBe(env.CI_PIPELINE_ID);
    expect(ref.annotations?.['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const fb = await read(registry.url, repo, tagOf(image.pushed));
    expect(fb.status).toBe(200);
    expect(fb.contentType).toBe(OCI_INDEX);
    expect(fb.digest).toBe(first.fallbackTag?.digest);
    expect(fb.json.manifests).toEqual([{ mediaType: OCI_MANIFEST, digest: first.referrer, size: expect.any(Number), artifactType: TYPE, annotations: ref.annotations }]);
  });

  it('is idempotent: the same details again (at another time) write nothing', async () => {
    registry.resetRequests();
    const r = await attach(registry.host, `${repo}:v1`, ['-a', 'com.example.team=payments'], { now: () => new Date('2031-05-01T00:00:00Z') });
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ changed: false, referrer: first.referrer, path: 'fallback-tag' });
    // Nothing written, so no fallbackTag: it names the referrers tag a run wrote.
    expect(Object.keys(r.json ?? {})).toEqual(['image', 'subject', 'referrer', 'changed', 'dryRun', 'path', 'annotations']);
    expect(registry.count({ method: 'PUT' })).toBe(0);
    expect(registry.count({ method: 'POST' })).toBe(0);
    // GET subject, GET referrers (404), GET sha256-<hex>, GET of the listed referrer to check it.
    expect(registry.count()).toBe(4);
    expect((await read(registry.url, repo, tagOf(image.pushed))).json.manifests).toHaveLength(1);
  });

  it('--dry-run says what it would attach and writes nothing', async () => {
    registry.resetRequests();
    const r = await runCli(['attach', `${registry.host}/${repo}:v1`, '--dry-run', '-a', 'com.example.team=dry'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('would attach build details');
    expect(r.stdout).toContain('com.example.team="dry"');
    expect(registry.count({ method: /^(PUT|POST)$/ })).toBe(0);
  });

  it('keeps every referrer in the tag: two attach runs with other details and one written by another tool', async () => {
    const subject = first.subject;
    const foreign = await pushForeignReferrer(repo, subject, 'application/vnd.example.sbom+json');
    const second = await attach(registry.host, `${repo}:v1`, ['-a', 'com.example.team=search']);
    expect(second.code).toBe(0);
    expect(second.json?.changed).toBe(true);
    const third = await attach(registry.host, `${repo}@${image.pushed}`, ['-a', 'com.example.team=ledger']);
    expect(third.code).toBe(0);
    const fb = await read(registry.url, repo, tagOf(image.pushed));
    const listed = (fb.json.manifests ?? []).map((d) => d.digest);
    expect(listed).toEqual([first.referrer, foreign, second.json?.referrer, third.json?.referrer]);
    expect(new Set(listed).size).toBe(4);
    const other = fb.json.manifests?.find((d) => d.digest === foreign);
    expect(other).toMatchObject({ artifactType: 'application/vnd.example.sbom+json', annotations: { 'com.example.tool': 'other' } });
    for (const d of [second.json, third.json]) await expectReferrer(registry.url, repo, d?.referrer as string, subject);
    expect(await head(repo, 'v1')).toBe(image.pushed);
    await pullWhole(`${registry.host}/${repo}@${image.pushed}`, image);
  });

  it('four attach runs at once on one image: every run that succeeds stays listed in the tag', async () => {
    const racy = await freshImage('group/race', 'v1', 'race');
    registry.resetRequests();
    const runs = await Promise.all(['a', 'b', 'c', 'd'].map((n) => attach(registry.host, 'group/race:v1', ['-a', `com.example.run=${n}`])));
    for (const r of runs) expect([0, 3], r.stderr).toContain(r.code);
    const ok = runs.filter((r) => r.code === 0).map((r) => r.json?.referrer as string);
    expect(ok.length).toBeGreaterThan(0);
    const listed = ((await read(registry.url, 'group/race', tagOf(racy.pushed))).json.manifests ?? []).map((d) => d.digest);
    for (const d of ok) expect(listed).toContain(d);
    expect(new Set(listed).size).toBe(listed.length);
    expect(registry.count({ method: 'PUT', path: new RegExp(`/manifests/${tagOf(racy.pushed)}$`) })).toBeGreaterThanOrEqual(4);
    expect(await head('group/race', 'v1')).toBe(racy.pushed);
  });

  it('show reads the newest referrer and says so; the older ones are listed too', async () => {
    registry.resetRequests();
    const r = await runCli(['show', `${registry.host}/${repo}:v1`, '-o', 'json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as { source: string; referrer: string; referrers: { digest: string; path: string }[]; build: { pipeline: { id: string } } };
    expect(d.source).toBe('referrer');
    expect(d.build.pipeline.id).toBe(env.CI_PIPELINE_ID);
    expect(d.referrers).toHaveLength(3);
    expect(d.referrers.every((x) => x.path === 'fallback-tag')).toBe(true);
    // GET image, referrers API (404), the sha256-<hex> tag, the three referrer manifests; no
    // config blob, since a referrer had the details.
    expect(registry.count()).toBe(6);
    expect(registry.count({ kind: 'blob' })).toBe(0);
    expect(d.referrers.map((x) => x.digest)).not.toContain(undefined);
    const text = await runCli(['show', `${registry.host}/${repo}:v1`]);
    expect(text.stdout).toContain(`build details (from referrer ${d.referrer}`);
    expect(text.stdout).toContain('via the referrers tag');
  });

  it('show prefers the manifest annotations when the image carries its own', async () => {
    const own = await freshImage('group/both', 'v1', 'both');
    const a = await attach(registry.host, 'group/both:v1', ['-a', 'com.example.where=referrer']);
    expect(a.code).toBe(0);
    const annotated = await runCli(['annotate', `${registry.host}/group/both:v1`, '--no-ci', '-a', 'com.gitlab.ci.pipeline_id=555', '--no-verify'], { env });
    expect(annotated.code).toBe(0);
    // The annotated manifest is a new digest: attach the referrer to it too.
    const b = await attach(registry.host, 'group/both:v1', ['-a', 'com.example.where=referrer']);
    expect(b.json?.subject.digest).not.toBe(own.pushed);
    const r = await runCli(['show', `${registry.host}/group/both:v1`, '-o', 'json']);
    const d = JSON.parse(r.stdout) as { source: string; build: { pipeline: { id: string } }; referrers: unknown[] };
    expect(d.source).toBe('annotations');
    expect(d.build.pipeline.id).toBe('555');
    expect(d.referrers).toHaveLength(1);
    const text = await runCli(['show', `${registry.host}/group/both:v1`]);
    expect(text.stdout).toContain('build details (from the manifest annotations)');
    expect(text.stdout).toContain('not used: the manifest annotations take precedence');
  });
});

describe('attach to other kinds of subject', () => {
  it('a Docker schema 2 image keeps its media type and digest; the referrer names it', async () => {
    const image = await freshImage('group/docker', 'v1', 'docker', 'v2s2');
    const before = await read(registry.url, 'group/docker', 'v1');
    expect(before.contentType).toBe(DOCKER_MANIFEST);
    const r = await attach(registry.host, 'group/docker:v1');
    expect(r.code).toBe(0);
    expect(r.json?.subject).toEqual({ mediaType: DOCKER_MANIFEST, digest: before.digest, size: before.bytes.length });
    expect(await head('group/docker', 'v1')).toBe(before.digest);
    await expectReferrer(registry.url, 'group/docker', r.json?.referrer as string, { mediaType: DOCKER_MANIFEST, digest: before.digest as string, size: before.bytes.length });
    const fb = await read(registry.url, 'group/docker', tagOf(before.digest as string));
    expect(fb.json.manifests?.map((d) => d.digest)).toEqual([r.json?.referrer]);
    await pullWhole(`${registry.host}/group/docker@${before.digest}`, image);
  });

  it('an OCI index: the referrer names the index, the tag lists only the referrer, the platforms are untouched', async () => {
    const index = await makeIndex(await mkdtemp(join(work, 'idx-')), { tag: 'multi', attestations: true, image: { seed: 'idx', layers: 1 } });
    const digest = await pushImage(index, `${registry.host}/group/index:multi`);
    const before = await read(registry.url, 'group/index', 'multi');
    const r = await attach(registry.host, 'group/index:multi');
    expect(r.code).toBe(0);
    expect(r.json?.subject).toEqual({ mediaType: OCI_INDEX, digest, size: before.bytes.length });
    expect(await head('group/index', 'multi')).toBe(digest);
    await expectReferrer(registry.url, 'group/index', r.json?.referrer as string, { mediaType: OCI_INDEX, digest, size: before.bytes.length });
    const fb = await read(registry.url, 'group/index', tagOf(digest));
    expect(fb.json.manifests?.map((d) => d.digest)).toEqual([r.json?.referrer]);
    // Every platform manifest is unchanged, and the image pulls whole by the old digest.
    for (const d of before.json.manifests ?? []) expect(await head('group/index', d.digest)).toBe(d.digest);
    await pullWhole(`${registry.host}/group/index@${digest}`, index.images[0] as ImageInfo);
    const show = JSON.parse((await runCli(['show', `${registry.host}/group/index:multi`, '-o', 'json'])).stdout) as { source: string; referrer: string };
    expect(show).toMatchObject({ source: 'referrer', referrer: r.json?.referrer });
  });

  it('--no-verify skips the read-back of the tag: 9 requests', async () => {
    const image = await freshImage('group/noverify', 'v1', 'noverify');
    registry.resetRequests();
    const r = await attach(registry.host, 'group/noverify:v1', ['--no-verify']);
    expect(r.code).toBe(0);
    expect(registry.count()).toBe(9);
    expect(registry.count({ method: 'GET', path: /\/manifests\/sha256-/ })).toBe(1);
    expect((await read(registry.url, 'group/noverify', tagOf(image.pushed))).json.manifests?.map((d) => d.digest)).toEqual([r.json?.referrer]);
  });

  it('a Docker manifest list', async () => {
    const index = await makeIndex(await mkdtemp(join(work, 'list-')), { tag: 'list', image: { seed: 'list', layers: 1 } });
    const pushed = await pushManifestList(index, `${registry.host}/group/list:list`);
    const r = await attach(registry.host, 'group/list:list');
    expect(r.code).toBe(0);
    expect(r.json?.subject).toEqual({ mediaType: DOCKER_LIST, digest: pushed.digest, size: pushed.bytes.length });
    expect(await head('group/list', 'list')).toBe(pushed.digest);
  });
});

describe('bad input and refusals', () => {
  it('outside CI with no --annotation: exit 2 before any request', async () => {
    registry.resetRequests();
    const r = await runCli(['attach', `${registry.host}/group/oci:v1`], { env: {} });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no build details to attach');
    expect(registry.count()).toBe(0);
  });

  it('a bad reference or annotation: exit 2, nothing sent', async () => {
    registry.resetRequests();
    expect((await runCli(['attach', 'HTTP://bad ref'], { env })).code).toBe(2);
    const bad = await runCli(['attach', `${registry.host}/group/oci:v1`, '-a', 'nokey'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('has no "="');
    expect(registry.count()).toBe(0);
  });

  it('a missing tag: exit 1, nothing written', async () => {
    registry.resetRequests();
    const r = await runCli(['attach', `${registry.host}/group/oci:missing`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not found');
    expect(registry.count({ method: /^(PUT|POST)$/ })).toBe(0);
  });

  it('--referrers-api always on a registry without the API: exit 1, nothing written', async () => {
    registry.resetRequests();
    const r = await runCli(['attach', `${registry.host}/group/oci:v1`, '--referrers-api', 'always', '-a', 'com.example.x=1'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has no referrers API');
    expect(registry.count({ method: /^(PUT|POST)$/ })).toBe(0);
  });
});

describe('faults on the way', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy({ upstream: registry.url });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('503 on the PUT of the tag and a reset on the blob upload are retried; the result is whole', async () => {
    const image = await freshImage('group/faults', 'v1', 'faults');
    proxy.clearRules();
    proxy.reset();
    const tagPut = proxy.addRule({ method: 'PUT', path: /\/manifests\/sha256-/, times: 1, fault: { kind: 'status', status: 503, retryAfter: 0 } });
    const upload = proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, fault: { kind: 'reset', afterBytes: 0 } });
    const r = await attach(proxy.host, 'group/faults:v1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(tagPut.applied()).toBe(1);
    expect(upload.applied()).toBe(1);
    const fb = await read(registry.url, 'group/faults', tagOf(image.pushed));
    expect(fb.json.manifests?.map((d) => d.digest)).toEqual([r.json?.referrer]);
    expect(await head('group/faults', 'v1')).toBe(image.pushed);
  });

  it('a connection that breaks on the POST opening the blob upload: the POST is not sent again blindly; the blob is looked for, a new upload opened, and the result is whole', async () => {
    const image = await freshImage('group/faults3', 'v1', 'faults3');
    proxy.clearRules();
    proxy.reset();
    const opening = proxy.addRule({ method: 'POST', path: /\/blobs\/uploads\//, times: 1, fault: { kind: 'hangup' } });
    const r = await attach(proxy.host, 'group/faults3:v1');
    expect(r.code, r.stderr).toBe(0);
    expect(opening.applied()).toBe(1);
    const posts = proxy.requests.filter((q) => q.method === 'POST');
    expect(posts).toHaveLength(2);
    // Between the broken POST and the next one: a HEAD of the blob, which was not there.
    const between = proxy.requests.filter((q) => q.seq > posts[0]!.seq && q.seq < posts[1]!.seq);
    expect(between.map((q) => [q.method, q.kind, q.status])).toEqual([['HEAD', 'blob', 404]]);
    const fb = await read(registry.url, 'group/faults3', tagOf(image.pushed));
    expect(fb.json.manifests?.map((d) => d.digest)).toEqual([r.json?.referrer]);
    expect(await head('group/faults3', 'v1')).toBe(image.pushed);
  });

  it('a referrer PUT the registry refuses: exit 1, the tag is not written, a re-run succeeds', async () => {
    const image = await freshImage('group/faults2', 'v1', 'faults2');
    proxy.clearRules();
    proxy.addRule({ method: 'PUT', path: /\/manifests\/sha256:/, fault: { kind: 'status', status: 400, body: JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] }) } });
    const r = await runCli(['attach', `${proxy.host}/group/faults2:v1`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('manifest invalid');
    expect((await read(registry.url, 'group/faults2', tagOf(image.pushed))).status).toBe(404);
    proxy.clearRules();
    const again = await attach(proxy.host, 'group/faults2:v1');
    expect(again.code).toBe(0);
    expect((await read(registry.url, 'group/faults2', tagOf(image.pushed))).json.manifests?.map((d) => d.digest)).toEqual([again.json?.referrer]);
  });

  it('a 403 from the referrers API is an auth error (exit 1), not taken for a registry without the API', async () => {
    proxy.clearRules();
    proxy.addRule({ method: 'GET', path: /\/referrers\//, fault: { kind: 'status', status: 403, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'denied' }] }) } });
    const r = await runCli(['attach', `${proxy.host}/group/faults2:v1`, '-a', 'com.example.x=1'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('denied (HTTP 403)');
    proxy.clearRules();
  });
});

describe('a registry with the referrers API (emulated in front of the real registry)', () => {
  let api: ReferrersApi;
  const repo = 'group/api';
  let image: ImageInfo & { pushed: string };

  beforeAll(async () => {
    api = await startReferrersApi({ upstream: registry.url, pageSize: 2 });
    image = await freshImage(repo, 'v1', 'api');
  });
  afterAll(async () => {
    await api?.stop();
  });

  it('uses the API: no sha256-<hex> tag is written, the API lists the referrer, show finds it through the API', async () => {
    registry.resetRequests();
    const r = await attach(api.host, `${repo}:v1`);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ changed: true, path: 'api', subject: { digest: image.pushed } });
    expect(r.json?.fallbackTag).toBeUndefined();
    // Reached the registry: GET subject, HEAD blob, POST + PUT blob, PUT referrer (the
    // referrers GET was answered by the API in front).
    expect(registry.count()).toBe(5);
    expect(registry.count({ method: 'PUT', kind: 'manifest' })).toBe(1);
    expect(api.referrersRequests()).toBe(1);
    expect((await read(registry.url, repo, tagOf(image.pushed))).status).toBe(404);
    expect(await head(repo, 'v1')).toBe(image.pushed);

    const listed = await curlManifest(`${api.url}/v2/${repo}/referrers/${image.pushed}`, { accept: OCI_INDEX });
    expect((JSON.parse(listed.body.toString('utf8')) as Json).manifests?.map((d) => d.digest)).toEqual([r.json?.referrer]);

    const show = JSON.parse((await runCli(['show', `${api.host}/${repo}:v1`, '-o', 'json'])).stdout) as { source: string; referrers: { path: string }[] };
    expect(show).toMatchObject({ source: 'referrer', referrers: [{ path: 'api' }] });

    registry.resetRequests();
    const again = await attach(api.host, `${repo}:v1`);
    expect(again.json).toMatchObject({ changed: false, referrer: r.json?.referrer, path: 'api' });
    expect(registry.count({ method: /^(PUT|POST)$/ })).toBe(0);
  });

  it('follows Link pagination and filters by artifactType when the registry does not', async () => {
    for (const n of ['1', '2']) expect((await attach(api.host, `${repo}:v1`, ['-a', `com.example.n=${n}`])).code).toBe(0);
    await pushForeignReferrer(repo, { mediaType: OCI_MANIFEST, digest: image.pushed, size: (await read(registry.url, repo, image.pushed)).bytes.length }, 'application/vnd.example.sig');
    const client = new RegistryClient({ fetch: globalThis.fetch, credentials: credentialResolver({ env: {}, registries: [api.host] }) });
    const before = api.referrersRequests();
    const page = await client.listReferrers(api.host, repo, image.pushed, TYPE);
    expect(page?.manifests).toHaveLength(3);
    expect(api.referrersRequests() - before).toBe(2); // three on pages of two
    // No filter on the registry's side: the client filters, and says the registry did not.
    const unfiltered = await startReferrersApi({ upstream: registry.url, pageSize: 1, filter: false });
    try {
      const res = await client.listReferrers(api.host, repo, image.pushed);
      expect(res?.manifests.length).toBeGreaterThanOrEqual(3);
      const other = await client.listReferrers(unfiltered.host, repo, image.pushed, TYPE);
      // A fresh emulation knows no referrers: an empty index, 200, means "API present, none".
      expect(other).toEqual({ manifests: [], filtered: false });
    } finally {
      await unfiltered.stop();
    }
    const show = JSON.parse((await runCli(['show', `${api.host}/${repo}:v1`, '-o', 'json'])).stdout) as { referrers: { digest: string }[] };
    expect(show.referrers).toHaveLength(3);
  });

  it('--referrers-api never writes the sha256-<hex> tag even where the API exists', async () => {
    const other = await freshImage('group/api-never', 'v1', 'never');
    const r = await attach(api.host, 'group/api-never:v1', ['--referrers-api', 'never']);
    expect(r.code).toBe(0);
    expect(r.json?.path).toBe('fallback-tag');
    expect((await read(registry.url, 'group/api-never', tagOf(other.pushed))).json.manifests?.map((d) => d.digest)).toEqual([r.json?.referrer]);
  });
});

describe("GitLab.com's referrers tag (emulated: referrers API 404, sha256-<hex> resolved as the digest sha256:<hex>)", () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy({ upstream: registry.url });
    proxy.addRule({ method: 'GET', path: /\/referrers\//, fault: { kind: 'status', status: 404 } });
    proxy.addRule({ method: /^(GET|HEAD)$/, path: /\/manifests\/sha256-[a-f0-9]{64}$/, fault: { kind: 'rewrite', to: (url) => url.replace(/\/manifests\/sha256-/, '/manifests/sha256:') } });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('attach to an index refuses before writing anything, naming the problem', async () => {
    const index = await makeIndex(await mkdtemp(join(work, 'gl-')), { tag: 'gl', image: { seed: 'gl', layers: 1 } });
    const digest = await pushImage(index, `${registry.host}/group/gitlab:gl`);
    proxy.reset();
    const r = await runCli(['attach', `${proxy.host}/group/gitlab:gl`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`resolved the tag sha256-${digest.slice(7)} to the subject ${digest} itself`);
    expect(r.stderr).toContain('nothing was written');
    expect(proxy.count({ method: /^(PUT|POST)$/ })).toBe(0);
    expect((await read(registry.url, 'group/gitlab', tagOf(digest))).status).toBe(404);
  });

  it("show ignores what the tag resolves to (never the index's own platforms as referrers) and warns", async () => {
    const index = await makeIndex(await mkdtemp(join(work, 'gl2-')), { tag: 'gl2', image: { seed: 'gl2', layers: 1 } });
    const digest = await pushImage(index, `${registry.host}/group/gitlab:gl2`);
    // Attached properly on the real registry; read through the quirk.
    expect((await attach(registry.host, 'group/gitlab:gl2')).code).toBe(0);
    const r = await runCli(['show', `${proxy.host}/group/gitlab:gl2`, '-o', 'json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: the referrers tag of group/gitlab@${digest} is not usable`);
    const d = JSON.parse(r.stdout) as { source: string; referrers: unknown[] };
    expect(d.referrers).toEqual([]);
    expect(d.source).toBe('none');
  });

  it('an image subject is refused the same way', async () => {
    const image = await freshImage('group/gitlab-img', 'v1', 'glimg');
    proxy.reset();
    const r = await runCli(['attach', `${proxy.host}/group/gitlab-img:v1`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`to the subject ${image.pushed} itself`);
    expect(proxy.count({ method: /^(PUT|POST)$/ })).toBe(0);
  });
});

describe('token auth, as GitLab runs its registry', () => {
  let issuer: TokenIssuer;
  let authed: TestRegistry;
  const USER = 'gitlab-ci-token';
  const PASSWORD = 'glcbt-64-attach-job-token';

  beforeAll(async () => {
    issuer = await startTokenIssuer({ users: { [USER]: { password: PASSWORD } } });
    authed = await startRegistry({ auth: { tokenIssuer: issuer } });
  });
  afterAll(async () => {
    await authed?.stop();
    await issuer?.stop();
  });

  it('attaches with the job token: one push token for the whole run, and the secret never printed', async () => {
    const image = await makeImage(await mkdtemp(join(work, 'auth-')), { tag: 'v1', seed: 'auth', layers: 1 });
    const digest = await pushImage(image, `${authed.host}/group/auth:v1`, { creds: `${USER}:${PASSWORD}` });
    const ciEnv = gitlabEnv({ CI_REGISTRY: authed.host, CI_REGISTRY_USER: USER, CI_REGISTRY_PASSWORD: PASSWORD });
    const tokensBefore = issuer.issued();
    authed.resetRequests();
    const r = await runCli(['attach', `${authed.host}/group/auth:v1`, '-o', 'json', '--debug'], { env: ciEnv });
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    expect(issuer.issued() - tokensBefore).toBe(1);
    expect(authed.count({ status: 401 })).toBe(1); // the first GET, which brings the challenge
    // The 10 requests without auth, and the first GET once more with the token; tokens come from the issuer.
    expect(authed.count()).toBe(11);
    const json = JSON.parse(r.stdout) as AttachJson;
    expect(json).toMatchObject({ changed: true, path: 'fallback-tag', subject: { digest } });
    const token = await issuer.mintToken({ access: [{ type: 'repository', name: 'group/auth', actions: ['pull'] }] });
    const fb = await curlManifest(`${authed.url}/v2/group/auth/manifests/${tagOf(digest)}`, { accept: OCI_INDEX, auth: { bearer: token } });
    expect((JSON.parse(fb.body.toString('utf8')) as Json).manifests?.map((d) => d.digest)).toEqual([json.referrer]);
  });
});
