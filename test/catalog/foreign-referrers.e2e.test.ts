// Hostile input: a referrer pushed to another repository (attacker/own) that names a victim's
// digest as its subject and claims to be from 2099. distribution does not check that the subject
// exists, so anyone who can push anywhere can write one. It must never lend its build details to
// victim/app: not through sync, the webhook, the periodic reconcile, nor `tagtrail show`. On both
// backends, against a real distribution 2.8; read back through the API, the browser and SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_DETAILS_ARTIFACT_TYPE, EMPTY_DESCRIPTOR } from '../../src/oci/referrers.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { runCli } from '../helpers/cli.js';
import { makeImage, pushImage, sha256 } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { ensureBuilt, startServe, until } from '../server/serve-process.js';
import { BACKENDS, type Catalog, useBackend } from './backends.js';
import { ciAnnotations, hex } from './seed.js';

const SECRET = `foreign-referrers-${hex(16)}`;
const ATTACKER_PIPELINE = '666';
const ATTACKER_USER = 'trusted-release-bot';

interface Item {
  tag: string;
  digest: string;
  build: { source: string; referrer?: string; pipeline?: { id: string } } | null;
}

/** Writes a build-details referrer of `subject` into `repository` and lists it in its referrers tag, with plain HTTP. */
async function pushReferrer(url: string, repository: string, subject: string, annotations: Record<string, string>): Promise<string> {
  const start = await fetch(`${url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  const location = new URL(start.headers.get('location') ?? '', url);
  location.searchParams.set('digest', EMPTY_DESCRIPTOR.digest);
  const blob = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: '{}' });
  await blob.arrayBuffer();
  expect(blob.status).toBe(201);
  const head = await fetch(`${url}/v2/victim/app/manifests/${subject}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUILD_DETAILS_ARTIFACT_TYPE,
      config: EMPTY_DESCRIPTOR,
      layers: [EMPTY_DESCRIPTOR],
      subject: { mediaType: OCI_MANIFEST, digest: subject, size: Number(head.headers.get('content-length') ?? 0) },
      annotations,
    }),
  );
  const digest = sha256(manifest);
  const put = await fetch(`${url}/v2/${repository}/manifests/${digest}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  await put.arrayBuffer();
  expect(put.status).toBe(201);
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, digest, size: manifest.length, artifactType: BUILD_DETAILS_ARTIFACT_TYPE, annotations }],
  });
  const tag = await fetch(`${url}/v2/${repository}/manifests/sha256-${subject.slice('sha256:'.length)}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: index });
  await tag.arrayBuffer();
  expect(tag.status).toBe(201);
  return digest;
}

interface Scene {
  /** victim/app:v1: no annotations; its own repository lists a referrer (pipeline 100). */
  v1: string;
  victimReferrer: string;
  /** victim/app:own: its own annotations (pipeline 200). */
  own: string;
  /** victim/app:bare: no build details at all. */
  bare: string;
  attackerReferrers: string[];
}

async function stage(registry: TestRegistry): Promise<Scene> {
  const dir = await makeTempDir('foreign-referrers');
  const v1 = await pushImage(await makeImage(`${dir}/v1`, { layers: 1, tag: 'v1' }), `${registry.host}/victim/app:v1`);
  const own = await pushImage(await makeImage(`${dir}/own`, { layers: 1, tag: 'own', manifestAnnotations: ciAnnotations(hex(20), '200', 'main') }), `${registry.host}/victim/app:own`);
  const bare = await pushImage(await makeImage(`${dir}/bare`, { layers: 1, tag: 'bare' }), `${registry.host}/victim/app:bare`);
  const victimReferrer = await pushReferrer(registry.url, 'victim/app', v1, {
    ...ciAnnotations(hex(20), '100', 'main'),
    'org.opencontainers.image.created': '2026-01-01T00:00:00Z',
  });
  const hostile = {
    ...ciAnnotations(hex(20), ATTACKER_PIPELINE, 'main'),
    'com.gitlab.ci.user_login': ATTACKER_USER,
    'com.gitlab.ci.project_url': 'https://gitlab.example.com/victim/app',
    'org.opencontainers.image.created': '2099-01-01T00:00:00Z',
  };
  const attackerReferrers: string[] = [];
  for (const subject of [v1, own, bare]) attackerReferrers.push(await pushReferrer(registry.url, 'attacker/own', subject, hostile));
  return { v1, victimReferrer, own, bare, attackerReferrers };
}

/** The catalog has read the attacker's referrers (so the assertions below are not vacuous). */
async function attackerLinked(catalog: Catalog, scene: Scene): Promise<true | undefined> {
  const rows = await catalog.sql(
    `SELECT l.referrer_digest FROM referrer_links l JOIN repositories r ON r.id = l.repository_id WHERE r.name = 'attacker/own'`,
  );
  return rows.length === scene.attackerReferrers.length ? true : undefined;
}

async function expectRuleHolds(base: string, catalog: Catalog, scene: Scene): Promise<void> {
  const tags = (await (await fetch(`${base}/api/v1/repositories/victim/app/tags`)).json()) as { items: Item[] };
  const byTag = new Map(tags.items.map((i) => [i.tag, i]));
  expect(byTag.get('v1')?.build).toMatchObject({ source: 'referrer', referrer: scene.victimReferrer, pipeline: { id: '100' } });
  expect(byTag.get('own')?.build).toMatchObject({ source: 'annotations', pipeline: { id: '200' } });
  expect(byTag.get('bare')?.build).toBeNull();

  const found = (await (await fetch(`${base}/api/v1/images?pipeline=${ATTACKER_PIPELINE}`)).json()) as { items: Item[] };
  expect(found.items).toEqual([]);

  const detail = (await (await fetch(`${base}/api/v1/images/${scene.bare}`)).json()) as { build: unknown; referrers: { digest: string }[] };
  expect(detail.build).toBeNull();
  expect(detail.referrers).toEqual([]);
  const scoped = (await (await fetch(`${base}/api/v1/images/${scene.v1}?repository=victim/app`)).json()) as { referrers: { digest: string }[] };
  expect(scoped.referrers.map((r) => r.digest)).toEqual([scene.victimReferrer]);

  for (const tag of ['v1', 'own', 'bare']) {
    const page = await (await fetch(`${base}/r/victim/app/-/tags/${tag}`)).text();
    expect(page).not.toContain(ATTACKER_USER);
  }
  const bareManifest = await (await fetch(`${base}/r/victim/app/-/manifests/${scene.bare}`)).text();
  expect(bareManifest).not.toContain(ATTACKER_USER);

  // In the database: no search term of a victim tag comes from the attacker, and the insights do not count the bare image as built.
  const terms = await catalog.sql(
    `SELECT g.name FROM tag_terms t JOIN tags g ON g.id = t.tag_id JOIN repositories r ON r.id = g.repository_id
     WHERE r.name = 'victim/app' AND t.key = 'com.gitlab.ci.pipeline_id' AND t.value = '${ATTACKER_PIPELINE}'`,
  );
  expect(terms).toEqual([]);
  const built = await catalog.sql(`SELECT name, has_build FROM tags WHERE name = 'bare'`);
  expect(built.map((r) => Number(r.has_build))).toEqual([0]);
  const source = await catalog.sql(`SELECT build_source FROM manifests WHERE digest = '${scene.bare}'`);
  expect(source).toEqual([{ build_source: 'none' }]);
}

beforeAll(() => {
  ensureBuilt();
});

describe.each(BACKENDS)('a referrer from another repository lends no build details, on %s', (backendName) => {
  const backend = useBackend(backendName);
  const started: { stop(): Promise<unknown> }[] = [];

  afterAll(async () => {
    for (const s of started.reverse()) await s.stop();
  });

  it('tagtrail sync', async () => {
    const registry = await startRegistry();
    started.push(registry);
    const scene = await stage(registry);
    const catalog = await backend().fresh();
    const r = await runCli(['sync', '--registry', registry.host, '--db', catalog.url, '-o', 'json']);
    expect(r.code).toBe(0);
    expect(await attackerLinked(catalog, scene)).toBe(true);
    const serve = await startServe([], { TAGTRAIL_LISTEN: '127.0.0.1:0', TAGTRAIL_DB: catalog.url, TAGTRAIL_RECONCILE_INTERVAL: '0' });
    started.push(serve);
    await expectRuleHolds(serve.url, catalog, scene);
  });

  it('the webhook', async () => {
    const port = await freePort();
    const registry = await startRegistry({ notifications: { url: `http://127.0.0.1:${port}/api/v1/events`, headers: { Authorization: [SECRET] }, ignoredActions: ['pull'] } });
    started.push(registry);
    const catalog = await backend().fresh();
    const serve = await startServe([], {
      TAGTRAIL_LISTEN: `127.0.0.1:${port}`,
      TAGTRAIL_REGISTRY: registry.host,
      TAGTRAIL_DB: catalog.url,
      TAGTRAIL_WEBHOOK_SECRET: SECRET,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
    started.push(serve);
    const scene = await stage(registry);
    await until(() => attackerLinked(catalog, scene), 20_000);
    await until(async () => ((await catalog.sql(`SELECT 1 AS one FROM referrer_links WHERE referrer_digest = '${scene.victimReferrer}'`)).length > 0 ? true : undefined), 20_000);
    await expectRuleHolds(serve.url, catalog, scene);
  });

  it('the periodic reconcile', async () => {
    const registry = await startRegistry();
    started.push(registry);
    const scene = await stage(registry);
    const catalog = await backend().fresh();
    const serve = await startServe(['--reconcile-interval', '1'], { TAGTRAIL_LISTEN: '127.0.0.1:0', TAGTRAIL_REGISTRY: registry.host, TAGTRAIL_DB: catalog.url });
    started.push(serve);
    await serve.waitForLog((l) => l.msg === 'reconcile complete', 30_000);
    expect(await attackerLinked(catalog, scene)).toBe(true);
    await expectRuleHolds(serve.url, catalog, scene);
  });
});

describe('tagtrail show', () => {
  it("reads the referrers of the image's own repository only", async () => {
    const registry = await startRegistry();
    try {
      const scene = await stage(registry);
      const r = await runCli(['show', `${registry.host}/victim/app:bare`, '-o', 'json']);
      expect(r.code).toBe(0);
      const shown = JSON.parse(r.stdout) as { source: string; referrers: unknown[] };
      expect(shown.source).toBe('none');
      expect(shown.referrers).toEqual([]);
      const v1 = JSON.parse((await runCli(['show', `${registry.host}/victim/app:v1`, '-o', 'json'])).stdout) as { referrer?: string; referrers: { digest: string }[] };
      expect(v1.referrer).toBe(scene.victimReferrer);
      expect(v1.referrers.map((x) => x.digest)).toEqual([scene.victimReferrer]);
    } finally {
      await registry.stop();
    }
  });
});
