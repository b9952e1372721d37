// tagtrail annotate against a real CNCF distribution registry without auth. Every assertion on
// the result reads the registry back with curl or skopeo, not with tagtrail.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitlabEnv, runBin, runCli } from '../helpers/cli.js';
import { ATTESTATION_ANNOTATIONS, curlManifest, makeImage, makeIndex, pushImage, skopeoPullToDir, type ImageInfo, type IndexInfo } from '../helpers/images.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

let registry: TestRegistry;
let work: string;
const env = gitlabEnv();

interface Read {
  status: number;
  digest?: string;
  contentType?: string;
  json: Record<string, unknown> & { annotations?: Record<string, string>; manifests?: { digest: string; size: number; mediaType: string; platform?: { os: string; architecture: string }; annotations?: Record<string, string> }[]; layers?: { digest: string }[] };
  bytes: Buffer;
}

async function read(repo: string, reference: string): Promise<Read> {
  const r = await curlManifest(`${registry.url}/v2/${repo}/manifests/${reference}`, { accept: ACCEPT });
  return { status: r.status, digest: r.digest, contentType: r.contentType, json: r.status === 200 ? JSON.parse(r.body.toString('utf8')) : {}, bytes: r.body };
}

function expectCiAnnotations(a: Record<string, string> | undefined): void {
  expect(a?.['com.gitlab.ci.pipeline_id']).toBe(env.CI_PIPELINE_ID);
  expect(a?.['com.gitlab.ci.job_id']).toBe(env.CI_JOB_ID);
  expect(a?.['com.gitlab.ci.commit_sha']).toBe(env.CI_COMMIT_SHA);
  expect(a?.['com.gitlab.ci.commit_ref_name']).toBe(env.CI_COMMIT_REF_NAME);
  expect(a?.['com.gitlab.ci.branch']).toBe(env.CI_COMMIT_BRANCH);
  expect(a?.['com.gitlab.ci.project_url']).toBe(env.CI_PROJECT_URL);
  expect(a?.['org.opencontainers.image.revision']).toBe(env.CI_COMMIT_SHA);
  expect(a?.['org.opencontainers.image.source']).toBe(env.CI_PROJECT_URL);
  expect(a?.['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
}

async function pullWhole(ref: string, image: ImageInfo, platform?: { os: string; architecture: string }): Promise<void> {
  const dir = await mkdtemp(join(work, 'pull-'));
  const pulled = await skopeoPullToDir(ref, dir, undefined, platform);
  expect(pulled.layers).toEqual(image.layers.map((l) => l.digest));
  expect(pulled.configDigest).toBe(image.configDigest);
}

function counts() {
  return {
    total: registry.count(),
    blobs: registry.count({ kind: 'blob' }) + registry.count({ kind: 'upload' }),
    puts: registry.count({ method: 'PUT' }),
    heads: registry.count({ method: 'HEAD' }),
    gets: registry.count({ method: 'GET', kind: 'manifest' }),
  };
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tagtrail-annotate-'));
});

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('annotate a single OCI image', () => {
  let image: ImageInfo;
  const repo = 'group/oci';

  beforeAll(async () => {
    image = await makeImage(join(work, 'oci'), { layers: 3, tag: 'v1' });
    await pushImage(image, `${registry.host}/${repo}:v1`);
  });

  it('writes the CI annotations with 6 requests (GET, referrers API and tag list for what stays with the old digest, HEAD before and after the PUT; no GET /v2/) and no blob traffic, and the image still pulls whole', async () => {
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '-a', 'com.example.team=payments'], { env });
    expect(r.stderr).toContain('is now untagged');
    expect(r.code).toBe(0);
    const c = counts();
    expect(c).toEqual({ total: 6, blobs: 0, puts: 1, heads: 2, gets: 1 });
    expect(registry.count({ kind: 'base' })).toBe(0);
    expect([registry.count({ kind: 'referrers' }), registry.count({ kind: 'tags' })]).toEqual([1, 1]);

    const after = await read(repo, 'v1');
    expect(after.contentType).toBe(OCI_MANIFEST);
    expect(after.digest).not.toBe(image.digest);
    expect(r.stdout).toContain(`${registry.host}/${repo}@${after.digest}`);
    expectCiAnnotations(after.json.annotations);
    expect(after.json.annotations?.['com.example.team']).toBe('payments');
    expect(after.json.layers?.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
    await pullWhole(`${registry.host}/${repo}:v1`, image);
    // The old manifest is still there by digest (only untagged).
    expect((await read(repo, image.digest)).status).toBe(200);
  });

  it('--no-verify makes the request floor: GET, referrers API, tag list, race-check HEAD, PUT, and no blob', async () => {
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '-a', 'com.example.floor=yes', '--no-verify'], { env });
    expect(r.code).toBe(0);
    expect(counts()).toEqual({ total: 5, blobs: 0, puts: 1, heads: 1, gets: 1 });
    expect((await read(repo, 'v1')).json.annotations?.['com.example.floor']).toBe('yes');
    await runCli(['annotate', `${registry.host}/${repo}:v1`, '--remove-annotation', 'com.example.floor', '--no-verify'], { env });
  });

  it('a write that fails stops the look-ups for the warnings: the process exits with the write\'s error, without waiting out their retries', async () => {
    const proxy = await startFaultProxy({ upstream: registry.url });
    try {
      // The referrers API keeps answering 503 with Retry-After: 30, so its retries would keep the
      // process waiting for minutes; the PUT of the tag is refused.
      proxy.addRule({ method: 'GET', path: /\/referrers\//, fault: { kind: 'status', status: 503, retryAfter: 30 } });
      proxy.addRule({ method: 'PUT', path: /\/manifests\/v1$/, fault: { kind: 'status', status: 400 } });
      const before = await read(repo, 'v1');
      const r = await runBin(['annotate', '--insecure-registry', proxy.host, `${proxy.host}/${repo}:v1`, '-a', 'com.example.refused=yes'], { env, timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('PUT /v2/group/oci/manifests/v1 failed with HTTP 400');
      // One referrers request, no retry: the failed write stopped the look-up while it waited.
      expect(proxy.count({ kind: 'referrers' })).toBe(1);
      expect((await read(repo, 'v1')).digest).toBe(before.digest);
    } finally {
      await proxy.stop();
    }
  });

  it('sends the referrers API request and the tag list together, and the write does not wait for them', async () => {
    const slow = await startFaultProxy({ upstream: registry.url });
    try {
      // Both look-ups held for a while at the proxy: one after the other, the second would arrive
      // only after the first was answered, and a write waiting for them would come after both.
      slow.addRule({ method: 'GET', path: /\/referrers\//, fault: { kind: 'latency', ms: 1500 } });
      slow.addRule({ method: 'GET', path: /\/tags\/list/, fault: { kind: 'latency', ms: 1500 } });
      const r = await runCli(['annotate', `${slow.host}/${repo}:v1`, '-a', 'com.example.together=yes'], { env });
      expect(r.code, r.stderr).toBe(0);
      const referrers = slow.requests.find((q) => q.kind === 'referrers');
      const tags = slow.requests.find((q) => q.kind === 'tags');
      expect(referrers?.endedAt).toBeDefined();
      expect(tags?.endedAt).toBeDefined();
      expect(tags!.receivedAt).toBeLessThan(referrers!.endedAt!);
      expect(referrers!.receivedAt).toBeLessThan(tags!.endedAt!);
      // The race check and the PUT went out while the look-ups were still held.
      const put = slow.requests.find((q) => q.method === 'PUT');
      const raceCheck = slow.requests.find((q) => q.method === 'HEAD');
      expect(raceCheck!.receivedAt).toBeLessThan(Math.min(referrers!.endedAt!, tags!.endedAt!));
      expect(put!.receivedAt).toBeLessThan(Math.min(referrers!.endedAt!, tags!.endedAt!));
      expect((await read(repo, 'v1')).json.annotations?.['com.example.together']).toBe('yes');
    } finally {
      await slow.stop();
      await runCli(['annotate', `${registry.host}/${repo}:v1`, '--remove-annotation', 'com.example.together', '--no-read-back'], { env });
    }
  });

  it('the race check takes the connection the read of the tag left open; the look-ups open their own (the CLI, on node:http)', async () => {
    const link = await startFaultProxy({ upstream: registry.url });
    try {
      const r = await runBin(['annotate', '--insecure-registry', link.host, `${link.host}/${repo}:v1`, '-a', 'com.example.warm=yes', '--no-read-back'], { env });
      expect(r.code, r.stderr).toBe(0);
      const tagRead = link.requests.find((q) => q.method === 'GET' && q.reference === 'v1');
      const raceCheck = link.requests.find((q) => q.method === 'HEAD' && q.reference === 'v1');
      const lookUps = link.requests.filter((q) => q.kind === 'referrers' || q.kind === 'tags');
      // On a real link a new connection costs a round trip (two or three with TLS) before its
      // request: the request the write waits for must not pay it, the look-ups can.
      expect(raceCheck?.connection).toBe(tagRead?.connection);
      expect(lookUps.map((q) => q.connection)).not.toContain(tagRead?.connection);
      expect((await read(repo, 'v1')).json.annotations?.['com.example.warm']).toBe('yes');
    } finally {
      await link.stop();
      await runCli(['annotate', `${registry.host}/${repo}:v1`, '--remove-annotation', 'com.example.warm', '--no-read-back'], { env });
    }
  });

  it('a look-up for the warnings that fails (tag list: HTTP 500) is a warning: the tag is still annotated, exit 0', async () => {
    const failing = await startFaultProxy({ upstream: registry.url });
    try {
      failing.addRule({ method: 'GET', path: /\/tags\/list/, fault: { kind: 'status', status: 500 } });
      const r = await runCli(['annotate', `${failing.host}/${repo}:v1`, '-a', 'com.example.lookup=failed'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`could not check the referrers and digest-named tags of ${repo}@`);
      expect(r.stderr).toContain('HTTP 500');
      expect((await read(repo, 'v1')).json.annotations?.['com.example.lookup']).toBe('failed');
    } finally {
      await failing.stop();
      await runCli(['annotate', `${registry.host}/${repo}:v1`, '--remove-annotation', 'com.example.lookup', '--no-read-back'], { env });
    }
  });

  it('is idempotent: a re-run writes nothing and keeps the digest', async () => {
    const before = await read(repo, 'v1');
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '-a', 'com.example.team=payments', '-o', 'json'], { env: { ...env }, now: () => new Date('2030-01-01T00:00:00Z') });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { changed: boolean; before: string; after: string };
    expect(out).toMatchObject({ changed: false, before: before.digest, after: before.digest });
    expect(registry.count({ method: 'PUT' })).toBe(0);
    expect((await read(repo, 'v1')).digest).toBe(before.digest);
  });

  it('--dry-run prints the keys it would add, change and remove, and writes nothing', async () => {
    const before = await read(repo, 'v1');
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--dry-run', '-a', 'com.example.team=search', '-a', 'com.example.new=1', '--remove-annotation', 'com.gitlab.ci.job_url'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('would change');
    expect(r.stdout).toContain('+ com.example.new="1"');
    expect(r.stdout).toContain('~ com.example.team: "payments" -> "search"');
    expect(r.stdout).toContain('- com.gitlab.ci.job_url');
    expect(registry.count({ method: 'PUT' })).toBe(0);
    expect((await read(repo, 'v1')).digest).toBe(before.digest);
  });

  it('--remove-annotation and --no-ci change only what they name', async () => {
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--no-ci', '--remove-annotation', 'com.example.team', '-o', 'dotenv'], { env });
    expect(r.code).toBe(0);
    const after = await read(repo, 'v1');
    expect(after.json.annotations?.['com.example.team']).toBeUndefined();
    expectCiAnnotations(after.json.annotations);
    expect(r.stdout).toContain(`TAGTRAIL_DIGEST=${after.digest}`);
    expect(r.stdout).toMatch(/^TAGTRAIL_DIGEST_BEFORE=sha256:[0-9a-f]{64}$/m);
  });

  it('annotates by digest reference without moving any tag', async () => {
    const tagged = await read(repo, 'v1');
    const r = await runCli(['annotate', `${registry.host}/${repo}@${tagged.digest}`, '--no-ci', '-a', 'com.example.pinned=yes', '-o', 'json'], { env });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { after: string };
    const byDigest = await read(repo, out.after);
    expect(byDigest.status).toBe(200);
    expect(byDigest.json.annotations?.['com.example.pinned']).toBe('yes');
    expect((await read(repo, 'v1')).digest).toBe(tagged.digest);
  });
});

describe('annotate a Docker schema 2 image', () => {
  let image: ImageInfo;
  const repo = 'group/docker';

  beforeAll(async () => {
    image = await makeImage(join(work, 'v2s2'), { format: 'v2s2', tag: 'v1' });
    await pushImage(image, `${registry.host}/${repo}:v1`, { format: 'v2s2' });
    await pushImage(image, `${registry.host}/${repo}:convert`, { format: 'v2s2' });
  });

  it('keeps the Docker media type', async () => {
    expect((await read(repo, 'v1')).contentType).toBe(DOCKER_MANIFEST);
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`], { env });
    expect(r.code).toBe(0);
    const after = await read(repo, 'v1');
    expect(after.contentType).toBe(DOCKER_MANIFEST);
    expect(after.json.mediaType).toBe(DOCKER_MANIFEST);
    expectCiAnnotations(after.json.annotations);
    await pullWhole(`${registry.host}/${repo}:v1`, image);
  });

  it('--to-oci converts it to OCI media types, blobs unchanged', async () => {
    const r = await runCli(['annotate', `${registry.host}/${repo}:convert`, '--to-oci'], { env });
    expect(r.code).toBe(0);
    const after = await read(repo, 'convert');
    expect(after.contentType).toBe(OCI_MANIFEST);
    expect((after.json.config as { mediaType: string }).mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expectCiAnnotations(after.json.annotations);
    await pullWhole(`${registry.host}/${repo}:convert`, image);
  });
});

describe('annotate an OCI index with attestations', () => {
  let index: IndexInfo;
  const repo = 'group/multi';

  beforeAll(async () => {
    index = await makeIndex(join(work, 'index'), {
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ],
      attestations: true,
      tag: 'v1',
    });
    await pushImage(index, `${registry.host}/${repo}:v1`);
    await pushImage(index, `${registry.host}/${repo}:some`);
    await pushImage(index, `${registry.host}/${repo}:floor`);
    await pushImage(index, `${registry.host}/${repo}:overlap`);
  });

  it('--no-read-back: a push to the tag while the platform manifests are being written is refused as a conflict, not overwritten', async () => {
    await pushImage(index, `${registry.host}/${repo}:racy`);
    const held = await startFaultProxy({ upstream: registry.url });
    try {
      // The writes below the index take a while; another client pushes the tag meanwhile.
      held.addRule({ method: 'PUT', path: /\/manifests\/sha256:/, fault: { kind: 'latency', ms: 1500 } });
      const running = runCli(['annotate', `${held.host}/${repo}:racy`, '--no-read-back'], { env });
      while (!held.requests.some((q) => q.method === 'PUT' && q.reference?.startsWith('sha256:'))) await new Promise((r) => setTimeout(r, 20));
      // Theirs: one of the platform manifests, pushed straight to the registry under the tag.
      const theirs = index.images[0]!;
      const put = await fetch(`${registry.url}/v2/${repo}/manifests/racy`, { method: 'PUT', headers: { 'content-type': theirs.mediaType }, body: new Uint8Array(theirs.manifestBytes) });
      expect(put.status).toBe(201);
      const r = await running;
      expect((await read(repo, 'racy')).digest).toBe(theirs.digest);
      expect(r.code, r.stderr).toBe(3);
    } finally {
      await held.stop();
    }
  });

  it('overlaps the round trips: the children and their attestations are read together with the look-ups, then written together on the same connections; the race check follows those writes and the index is written last', async () => {
    const held = await startFaultProxy({ upstream: registry.url });
    // Requests below the index are held at the proxy until every one that should be in flight
    // together has arrived: a client that sent them one after another would never get there.
    const gate = () => {
      let open!: () => void;
      const until = new Promise<void>((resolve) => (open = resolve));
      return { until, open };
    };
    const reads = gate();
    const writes = gate();
    const all = held.requests;
    const isChild = (q: (typeof all)[number]): boolean => q.reference?.startsWith('sha256:') === true && q.kind === 'manifest';
    const childGets = () => all.filter((q) => q.method === 'GET' && isChild(q));
    const childPuts = () => all.filter((q) => q.method === 'PUT' && isChild(q));
    const raceCheck = () => all.filter((q) => q.method === 'HEAD' && q.reference === 'overlap');
    const lookUps = () => all.filter((q) => q.kind === 'referrers' || q.kind === 'tags');
    // Waits (polling) until the condition holds; gives up after a generous while, so that a client
    // sending one request after another fails the assertions below rather than hanging the test.
    const reached = async (cond: () => boolean): Promise<boolean> => {
      for (let i = 0; i < 1500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
      return cond();
    };
    try {
      held.addRule({ method: 'GET', path: /\/manifests\/sha256:/, fault: { kind: 'hold', until: reads.until } });
      held.addRule({ method: 'PUT', path: /\/manifests\/sha256:/, fault: { kind: 'hold', until: writes.until } });
      const running = runCli(['annotate', `${held.host}/${repo}:overlap`, '--no-verify'], { env });
      // The platform manifests and their attestations are read in flight together, beside the
      // look-ups for the warnings.
      const readTogether = await reached(() => childGets().length === index.images.length + index.attestations.length && lookUps().length === 2);
      reads.open();
      // The platform manifests are written in flight together; the race check is not sent while
      // any of them is unanswered (a push to the tag landing meanwhile must be seen).
      const writtenTogether = await reached(() => childPuts().length === index.images.length);
      const checksWhileWriting = raceCheck().length;
      writes.open();
      const r = await running;
      expect(r.code, r.stderr).toBe(0);
      expect(readTogether).toBe(true);
      expect(writtenTogether).toBe(true);
      expect(checksWhileWriting).toBe(0);
      const indexPut = all.filter((q) => q.method === 'PUT' && q.reference === 'overlap');
      expect(childGets()).toHaveLength(index.images.length + index.attestations.length);
      expect(childPuts()).toHaveLength(index.images.length);
      expect([raceCheck().length, indexPut.length, lookUps().length]).toEqual([1, 1, 2]);
      // No GET /v2/: the GET of the tag is the first request.
      expect(all[0]).toMatchObject({ method: 'GET', reference: 'overlap' });
      expect(all.some((q) => q.kind === 'base')).toBe(false);
      // The race check goes out after every child PUT was answered, and the index PUT after it.
      const lastPutEnd = Math.max(...childPuts().map((q) => q.endedAt ?? Infinity));
      expect(raceCheck()[0]!.receivedAt).toBeGreaterThan(lastPutEnd);
      expect(indexPut[0]!.receivedAt).toBeGreaterThan(raceCheck()[0]!.endedAt ?? Infinity);
      // Those writes ride on connections the reads opened (keep-alive): none opens a new one.
      const firstPut = Math.min(...childPuts().map((q) => q.receivedAt));
      const readConnections = new Set(all.filter((q) => q.receivedAt < firstPut).map((q) => q.connection));
      expect(childPuts().filter((q) => !readConnections.has(q.connection))).toEqual([]);
      const after = await read(repo, 'overlap');
      expectCiAnnotations(after.json.annotations);
      for (const img of index.images) await pullWhole(`${registry.host}/${repo}:overlap`, img, img.platform);
    } finally {
      reads.open();
      writes.open();
      await held.stop();
    }
  });

  it('the reads of the children start with one on the connection the read of the index left open; the look-ups open their own (the CLI, on node:http)', async () => {
    await pushImage(index, `${registry.host}/${repo}:warm`);
    const link = await startFaultProxy({ upstream: registry.url });
    try {
      const r = await runBin(['annotate', '--insecure-registry', link.host, `${link.host}/${repo}:warm`, '--no-read-back'], { env });
      expect(r.code, r.stderr).toBe(0);
      const tagRead = link.requests.find((q) => q.method === 'GET' && q.reference === 'warm');
      const childGets = link.requests.filter((q) => q.method === 'GET' && q.kind === 'manifest' && q.reference?.startsWith('sha256:'));
      const lookUps = link.requests.filter((q) => q.kind === 'referrers' || q.kind === 'tags');
      expect(childGets).toHaveLength(index.images.length + index.attestations.length);
      expect(childGets.map((q) => q.connection)).toContain(tagRead?.connection);
      expect(lookUps).toHaveLength(2);
      expect(lookUps.map((q) => q.connection)).not.toContain(tagRead?.connection);
      expectCiAnnotations((await read(repo, 'warm')).json.annotations);
    } finally {
      await link.stop();
    }
  });

  it('--no-verify stays within 2N+A+5 requests for an index of N platform manifests and A references of them', async () => {
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:floor`, '--no-verify'], { env });
    expect(r.code).toBe(0);
    // GET of the index, N + A GETs below it, N PUTs, race-check HEAD, the two look-ups, PUT of the index.
    expect(registry.count()).toBeLessThanOrEqual(2 * index.images.length + index.attestations.length + 5);
    expect(registry.count({ kind: 'blob' }) + registry.count({ kind: 'upload' })).toBe(0);
    expectCiAnnotations((await read(repo, 'floor')).json.annotations);
  });

  it('annotates the index and every platform manifest, children first, within 2N+A+6 requests', async () => {
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`], { env });
    expect(r.code).toBe(0);
    const n = index.images.length;
    // A: each attestation of a changed platform is read once, to see whether its subject must follow.
    expect(registry.count()).toBeLessThanOrEqual(2 * n + index.attestations.length + 6);
    expect(registry.count({ kind: 'blob' }) + registry.count({ kind: 'upload' })).toBe(0);
    // The index is PUT last, after every child.
    const puts = registry.requests.filter((q) => q.method === 'PUT');
    expect(puts.map((q) => q.reference).at(-1)).toBe('v1');
    expect(puts.slice(0, -1).every((q) => q.reference?.startsWith('sha256:'))).toBe(true);

    const after = await read(repo, 'v1');
    expect(after.contentType).toBe(OCI_INDEX);
    expectCiAnnotations(after.json.annotations);
    const list = after.json.manifests ?? [];
    expect(list).toHaveLength(index.images.length + index.attestations.length);
    const images = list.filter((d) => d.annotations?.[ATTESTATION_ANNOTATIONS.type] !== 'attestation-manifest');
    const attestations = list.filter((d) => d.annotations?.[ATTESTATION_ANNOTATIONS.type] === 'attestation-manifest');
    for (const d of images) {
      const child = await read(repo, d.digest);
      expect(child.status).toBe(200);
      expect(child.bytes.byteLength).toBe(d.size);
      expectCiAnnotations(child.json.annotations);
    }
    // Attestations are untouched, and name the new digest of the image they describe.
    expect(attestations.map((d) => d.digest).sort()).toEqual(index.attestations.map((a) => a.digest).sort());
    const imageDigests = new Set(images.map((d) => d.digest));
    for (const a of attestations) expect(imageDigests.has(a.annotations?.[ATTESTATION_ANNOTATIONS.digest] ?? '')).toBe(true);
    for (const img of index.images) await pullWhole(`${registry.host}/${repo}:v1`, img, img.platform);
  });

  it('--platform narrows which children are annotated; the index is always annotated', async () => {
    const r = await runCli(['annotate', `${registry.host}/${repo}:some`, '--platform', 'linux/arm64'], { env });
    expect(r.code).toBe(0);
    const after = await read(repo, 'some');
    expectCiAnnotations(after.json.annotations);
    for (const d of after.json.manifests ?? []) {
      if (d.annotations?.[ATTESTATION_ANNOTATIONS.type] === 'attestation-manifest') continue;
      const child = await read(repo, d.digest);
      if (d.platform?.architecture === 'arm64') expectCiAnnotations(child.json.annotations);
      else expect(child.json.annotations?.['com.gitlab.ci.pipeline_id']).toBeUndefined();
    }
  });
});

describe('annotate a Docker manifest list', () => {
  it('annotates the list and its manifests, keeping Docker media types', async () => {
    const repo = 'group/list';
    const list = await makeIndex(join(work, 'list'), { format: 'v2s2', tag: 'v1' });
    await pushImage(list, `${registry.host}/${repo}:v1`);
    expect((await read(repo, 'v1')).contentType).toBe(DOCKER_LIST);
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`], { env });
    expect(r.code).toBe(0);
    const after = await read(repo, 'v1');
    expect(after.contentType).toBe(DOCKER_LIST);
    expectCiAnnotations(after.json.annotations);
    for (const d of after.json.manifests ?? []) {
      const child = await read(repo, d.digest);
      expect(child.contentType).toBe(DOCKER_MANIFEST);
      expectCiAnnotations(child.json.annotations);
    }
    for (const img of list.images) await pullWhole(`${registry.host}/${repo}:v1`, img, img.platform);
  });
});

describe('bad input', () => {
  it.each([
    [['annotate', 'Registry.example.com:99999/app'], 'invalid image reference'],
    [['annotate', '127.0.0.1:1/App:v1'], 'invalid image reference'],
    [['annotate', '127.0.0.1:1/app:v1', '-a', 'nodots=x'], 'reverse-DNS'],
    [['annotate', '127.0.0.1:1/app:v1', '-a', 'com.example.x'], 'has no "="'],
    [['annotate', '127.0.0.1:1/app:v1', '--platform', 'linux'], 'invalid platform'],
    [['annotate', '127.0.0.1:1/app:v1', '--output', 'xml'], 'xml'],
    [['annotate'], 'missing required argument'],
  ])('%j exits 2 with a clear message and no request', async (args, message) => {
    registry.resetRequests();
    const r = await runCli(args, { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(registry.count()).toBe(0);
  });

  it('refuses to run with nothing to write outside CI', async () => {
    const r = await runCli(['annotate', `${registry.host}/group/oci:v1`], { env: {} });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not a GitLab CI job');
  });

  it('checks every reference before writing any', async () => {
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/group/oci:v1`, 'bad reference'], { env });
    expect(r.code).toBe(2);
    expect(registry.count({ method: 'PUT' })).toBe(0);
  });

  it('reports a missing tag as an error, exit 1', async () => {
    const r = await runCli(['annotate', `${registry.host}/group/oci:nope`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not found');
  });
});
