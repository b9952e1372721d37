// annotate --from-labels against a real CNCF distribution registry: config labels become manifest
// annotations, read back with curl; the image stays pullable whole with skopeo.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { curlManifest, makeImage, makeIndex, pushImage, sha256, skopeoPullToDir, type ImageInfo } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

// What a Dockerfile with Label Schema and OCI labels leaves in the config, plus what
// `tagtrail flags --format labels` adds and what a base image passes on.
const LABELS = {
  'org.label-schema.schema-version': '1.0',
  'org.label-schema.build-date': '2026-03-04T05:06:07Z',
  'org.label-schema.vcs-ref': '0123456789abcdef0123456789abcdef01234567',
  'org.label-schema.vcs-url': 'https://gitlab.example.com/group/app',
  'org.label-schema.name': 'app',
  'org.label-schema.description': 'The app',
  'org.label-schema.usage': 'https://docs.example.com/app',
  'org.label-schema.vendor': 'Example',
  'org.label-schema.docker.cmd': 'docker run app',
  'org.opencontainers.image.version': '1.4.2',
  'org.opencontainers.image.ref.name': 'ubuntu',
  'com.gitlab.ci.pipeline_id': '777',
  maintainer: 'someone@example.com',
};

const PROMOTED = {
  'org.opencontainers.image.created': '2026-03-04T05:06:07Z',
  'org.opencontainers.image.revision': '0123456789abcdef0123456789abcdef01234567',
  'org.opencontainers.image.source': 'https://gitlab.example.com/group/app',
  'org.opencontainers.image.title': 'app',
  'org.opencontainers.image.description': 'The app',
  'org.opencontainers.image.documentation': 'https://docs.example.com/app',
  'org.opencontainers.image.vendor': 'Example',
  'org.opencontainers.image.version': '1.4.2',
  'com.gitlab.ci.pipeline_id': '777',
};

let registry: TestRegistry;
let work: string;

async function read(repo: string, reference: string) {
  const r = await curlManifest(`${registry.url}/v2/${repo}/manifests/${reference}`, { accept: ACCEPT });
  expect(r.status).toBe(200);
  const json = JSON.parse(r.body.toString('utf8')) as {
    mediaType: string;
    annotations?: Record<string, string>;
    config?: { digest: string };
    manifests?: { digest: string; mediaType: string }[];
  };
  return { digest: r.digest as string, json };
}

async function pullWhole(ref: string, image: ImageInfo): Promise<void> {
  const dir = await mkdtemp(join(work, 'pull-'));
  const pulled = await skopeoPullToDir(ref, dir, undefined, image.platform);
  expect(pulled.layers).toEqual(image.layers.map((l) => l.digest));
  expect(pulled.configDigest).toBe(image.configDigest);
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tagtrail-labels-'));
});

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('annotate --from-labels', () => {
  it('copies OCI, Label Schema (mapped) and GitLab CI labels into the manifest, reading the config blob once', async () => {
    const repo = 'labels/oci';
    const image = await makeImage(join(work, 'oci'), { labels: LABELS, tag: 'v1' });
    await pushImage(image, `${registry.host}/${repo}:v1`);

    // Before: show falls back to the labels, GitLab CI ones included.
    const shown = JSON.parse((await runCli(['show', '-o', 'json', `${registry.host}/${repo}:v1`], {})).stdout) as { source: string; build: { pipeline?: { id: string }; commit?: { sha: string } } };
    expect(shown.source).toBe('labels');
    expect(shown.build.pipeline?.id).toBe('777');
    expect(shown.build.commit?.sha).toBe(LABELS['org.label-schema.vcs-ref']);
    registry.resetRequests();

    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--from-labels', '--no-ci', '--no-verify'], {});
    expect(r.stderr).toMatch(/^warning: the previous digest sha256:[0-9a-f]{64} of labels\/\w+:v1 is now untagged/);
    expect(r.code).toBe(0);
    // manifest GET, the config blob GET, race-check HEAD, PUT: one blob request, the config.
    expect(registry.count({ kind: 'blob' })).toBe(1);
    expect(registry.requests.filter((q) => q.kind === 'blob').map((q) => q.path)).toEqual([`/v2/${repo}/blobs/${image.configDigest}`]);
    expect(registry.count({ kind: 'upload' })).toBe(0);

    const after = await read(repo, 'v1');
    expect(after.digest).not.toBe(image.digest);
    expect(after.json.annotations).toEqual(PROMOTED);
    expect(after.json.config?.digest).toBe(image.configDigest);
    await pullWhole(`${registry.host}/${repo}:v1`, image);
    const shownAfter = JSON.parse((await runCli(['show', '-o', 'json', `${registry.host}/${repo}:v1`], {})).stdout) as { source: string; build: { pipeline?: { id: string } } };
    expect(shownAfter.source).toBe('annotations');
    expect(shownAfter.build.pipeline?.id).toBe('777');

    // A second run finds nothing to add and writes nothing.
    registry.resetRequests();
    const again = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--from-labels', '--no-ci'], {});
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('up to date');
    expect(registry.count({ method: 'PUT' })).toBe(0);
    expect((await read(repo, 'v1')).digest).toBe(after.digest);
  });

  it('ranks labels below CI values and --annotation, and never over what the manifest has', async () => {
    const repo = 'labels/rank';
    const image = await makeImage(join(work, 'rank'), {
      labels: LABELS,
      manifestAnnotations: { 'org.opencontainers.image.version': '9.9.9' },
      tag: 'v1',
    });
    await pushImage(image, `${registry.host}/${repo}:v1`);
    const env = gitlabEnv();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--from-labels', '-a', 'org.opencontainers.image.title=from-flag', '--no-verify'], { env });
    expect(r.code).toBe(0);
    const a = (await read(repo, 'v1')).json.annotations ?? {};
    expect(a['org.opencontainers.image.revision']).toBe(env.CI_COMMIT_SHA);
    expect(a['com.gitlab.ci.pipeline_id']).toBe(env.CI_PIPELINE_ID);
    expect(a['org.opencontainers.image.title']).toBe('from-flag');
    expect(a['org.opencontainers.image.version']).toBe('9.9.9');
    // The build's own date beats the run's clock, which only fills a missing creation time.
    expect(a['org.opencontainers.image.created']).toBe('2026-03-04T05:06:07Z');
    expect(a['org.opencontainers.image.vendor']).toBe('Example');
  });

  it('annotates each platform of a Docker manifest list from its own config, and the list with what they share', async () => {
    const repo = 'labels/list';
    const index = await makeIndex(join(work, 'list'), { format: 'v2s2', tag: 'v1', image: { labels: { 'org.label-schema.vcs-ref': 'abc1234', 'org.opencontainers.image.version': '2' } } });
    await pushImage(index, `${registry.host}/${repo}:v1`);
    const before = await read(repo, 'v1');
    expect(before.json.mediaType).toBe(DOCKER_LIST);
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--from-labels', '--no-ci', '--to-oci', '--no-verify'], {});
    expect(r.stderr).toMatch(/^warning: the previous digest sha256:[0-9a-f]{64} of labels\/\w+:v1 is now untagged/);
    expect(r.code).toBe(0);
    expect(registry.count({ kind: 'blob' })).toBe(2);
    const after = await read(repo, 'v1');
    expect(after.json.mediaType).toBe(OCI_INDEX);
    expect(after.json.annotations).toEqual({ 'org.opencontainers.image.revision': 'abc1234', 'org.opencontainers.image.version': '2' });
    for (const child of after.json.manifests ?? []) {
      const c = await read(repo, child.digest);
      expect(c.json.annotations).toEqual({ 'org.opencontainers.image.revision': 'abc1234', 'org.opencontainers.image.version': '2' });
    }
    for (const image of index.images) await pullWhole(`${registry.host}/${repo}:v1`, image);
  });

  it('gives an index only the label values all its platforms agree on', async () => {
    const repo = 'labels/mixed';
    const amd = await makeImage(join(work, 'mixed-amd'), { platform: { os: 'linux', architecture: 'amd64' }, labels: { 'org.opencontainers.image.version': '3', 'org.label-schema.vcs-ref': 'aaa' } });
    const arm = await makeImage(join(work, 'mixed-arm'), { platform: { os: 'linux', architecture: 'arm64' }, labels: { 'org.opencontainers.image.version': '3', 'org.label-schema.vcs-ref': 'bbb' } });
    await pushImage(amd, `${registry.host}/${repo}@${amd.digest}`);
    await pushImage(arm, `${registry.host}/${repo}@${arm.digest}`);
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [amd.descriptor, arm.descriptor] }));
    const put = await fetch(`${registry.url}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: indexBytes });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(indexBytes));

    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--from-labels', '--no-ci', '--no-verify'], {});
    expect(r.code).toBe(0);
    const after = await read(repo, 'v1');
    expect(after.json.annotations).toEqual({ 'org.opencontainers.image.version': '3' });
    const revisions = await Promise.all((after.json.manifests ?? []).map(async (m) => (await read(repo, m.digest)).json.annotations?.['org.opencontainers.image.revision']));
    expect(revisions).toEqual(['aaa', 'bbb']);
  });

  it('writes nothing for an image without labels to promote, and reads no blob without --from-labels', async () => {
    const repo = 'labels/none';
    const image = await makeImage(join(work, 'none'), { labels: { maintainer: 'x' }, tag: 'v1' });
    await pushImage(image, `${registry.host}/${repo}:v1`);
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--from-labels', '--no-ci'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('up to date');
    expect(registry.count({ method: 'PUT' })).toBe(0);
    expect((await read(repo, 'v1')).digest).toBe(image.digest);

    registry.resetRequests();
    const plain = await runCli(['annotate', `${registry.host}/${repo}:v1`, '-a', 'com.example.x=1', '--no-ci', '--no-verify'], {});
    expect(plain.code).toBe(0);
    expect(registry.count({ kind: 'blob' })).toBe(0);
  });

  it('refuses an image whose config blob is not JSON, leaving the tag as it was (exit 2)', async () => {
    const repo = 'labels/damaged';
    const config = Buffer.from('not json at all');
    const start = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location') as string, registry.url);
    location.searchParams.set('digest', sha256(config));
    expect((await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: config })).status).toBe(201);
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length }, layers: [] }),
    );
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest })).status).toBe(201);
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/${repo}:v1`, '--from-labels'], { env: gitlabEnv() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config blob');
    expect(r.stderr).toContain('without --from-labels');
    expect(registry.count({ method: 'PUT' })).toBe(0);
    expect((await read(repo, 'v1')).digest).toBe(sha256(manifest));
  });

  it('with nothing else to write and no --from-labels, still refuses before any request', async () => {
    registry.resetRequests();
    const r = await runCli(['annotate', `${registry.host}/labels/none:v1`, '--no-ci'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--from-labels');
    expect(registry.count()).toBe(0);
  });
});
