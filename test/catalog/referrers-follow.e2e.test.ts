// End to end: build details written with `tagtrail attach` (a referrer listed in the sha256-<hex>
// referrers tag of a real distribution 2.8) are followed by the catalog, through `tagtrail sync`
// and through the registry's notifications into `tagtrail serve`. On both backends. Results are
// read back through the API, the browser, with SQL, and the image's digest with curl.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/cleanup.js';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { curlManifest, makeImage, pushImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { type ServeProcess, ensureBuilt, startServe, until } from '../server/serve-process.js';
import { BACKENDS, type Catalog, useBackend } from './backends.js';
import { hex } from './seed.js';

const SECRET = `referrers-secret-${hex(16)}`;

interface Item {
  repository: string;
  tag: string;
  digest: string;
  build: { source: string; referrer?: string; pipeline?: { id: string }; commit?: { sha: string } } | null;
}

async function search(base: string, query: string): Promise<Item[]> {
  const res = await fetch(`${base}/api/v1/images?${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Item[] }).items;
}

async function attach(image: string, pipeline: string, commit: string, extra: string[] = []): Promise<{ referrer: string; fallbackTag: { tag: string; digest: string } }> {
  const r = await runCli(['attach', image, '-o', 'json', ...extra], { env: gitlabEnv({ CI_PIPELINE_ID: pipeline, CI_COMMIT_SHA: commit, CI_COMMIT_SHORT_SHA: commit.slice(0, 8) }) });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { referrer: string; fallbackTag: { tag: string; digest: string } };
}

/** The tags whose search terms hold key=value, with SQL. */
async function tagsByTerm(catalog: Catalog, key: string, value: string): Promise<string[]> {
  const rows = await catalog.sql(
    `SELECT r.name AS repository, g.name AS tag FROM tag_terms t JOIN tags g ON g.id = t.tag_id JOIN repositories r ON r.id = g.repository_id
     WHERE t.key = '${key}' AND t.value = '${value}' AND g.deleted_at IS NULL ORDER BY r.name, g.name`,
  );
  return rows.map((r) => `${String(r.repository)}:${String(r.tag)}`);
}

async function buildSource(catalog: Catalog, digest: string): Promise<string | null> {
  const rows = await catalog.sql(`SELECT build_source FROM manifests WHERE digest = '${digest}'`);
  return (rows[0]?.build_source as string | undefined) ?? null;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

beforeAll(() => {
  ensureBuilt();
});

describe.each(BACKENDS)('build-details referrers followed by the catalog on %s', (backendName) => {
  const backend = useBackend(backendName);
  let registry: TestRegistry;
  let serve: ServeProcess | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = await makeTempDir('referrers-follow');
  });

  afterAll(async () => {
    await serve?.stop();
    await registry?.stop();
  });

  it('tagtrail sync reads the referrers tag and the referrer once; search finds the image by the CI pipeline and commit; deleting the tag takes it away', async () => {
    registry = await startRegistry({ deleteEnabled: true });
    const catalog = await backend().fresh();
    const pipeline = String(8000 + Math.floor(Math.random() * 1000));
    const commit = hex(20);
    const image = await makeImage(`${dir}/sync`, { tag: 'v1', seed: `sync-${backendName}`, layers: 1 });
    const digest = await pushImage(image, `${registry.host}/team/app:v1`);
    const attached = await attach(`${registry.host}/team/app:v1`, pipeline, commit);
    expect(attached.fallbackTag.tag).toBe(`sha256-${digest.slice(7)}`);

    const sync = async () => {
      const r = await runCli(['sync', '--registry', registry.host, '--db', catalog.url, '-o', 'json']);
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as { tags: number; manifestsFetched: number; errorCount: number };
    };
    const first = await sync();
    // The image, the referrers tag's index and the referrer manifest.
    expect(first).toMatchObject({ tags: 1, manifestsFetched: 3, errorCount: 0 });

    expect(await tagsByTerm(catalog, 'com.gitlab.ci.pipeline_id', pipeline)).toEqual(['team/app:v1']);
    expect(await tagsByTerm(catalog, 'com.gitlab.ci.commit_sha', commit)).toEqual(['team/app:v1']);
    expect(await buildSource(catalog, digest)).toBe('referrer');
    expect(await catalog.sql(`SELECT referrer_digest FROM referrer_links WHERE subject_digest = '${digest}'`)).toEqual([{ referrer_digest: attached.referrer }]);
    // The referrers tag is no image tag of the catalog.
    expect(await catalog.sql(`SELECT name FROM tags WHERE deleted_at IS NULL ORDER BY name`)).toEqual([{ name: 'v1' }]);

    // A second sync: one HEAD per tag (the referrers tag too), no manifest read.
    const gets = registry.count({ method: 'GET', kind: 'manifest' });
    const second = await sync();
    expect(second.manifestsFetched).toBe(0);
    expect(registry.count({ method: 'GET', kind: 'manifest' })).toBe(gets);

    // The API and the browser, from a serve on the same catalog.
    const port = await freePort();
    serve = await startServe([], { TAGTRAIL_LISTEN: `127.0.0.1:${port}`, TAGTRAIL_DB: catalog.url });
    const items = await search(serve.url, `pipeline=${pipeline}`);
    expect(items).toMatchObject([{ repository: 'team/app', tag: 'v1', digest, build: { source: 'referrer', referrer: attached.referrer, pipeline: { id: pipeline }, commit: { sha: commit } } }]);
    expect((await search(serve.url, `commit=${commit.slice(0, 10)}`)).map((i) => i.tag)).toEqual(['v1']);
    const detail = (await (await fetch(`${serve.url}/api/v1/images/${digest}`)).json()) as { build: Item['build']; referrers: { digest: string }[] };
    expect(detail.build).toMatchObject({ source: 'referrer', referrer: attached.referrer });
    expect(detail.referrers.map((r) => r.digest)).toEqual([attached.referrer]);
    const page = await (await fetch(`${serve.url}/r/team/app/-/tags/v1`)).text();
    expect(page).toContain(`build details from referrer <code>${attached.referrer}</code>`);

    // The image itself is untouched.
    const served = await curlManifest(`${registry.url}/v2/team/app/manifests/v1`, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    expect(served.status).toBe(200);
    expect(served.digest).toBe(digest);
    expect(sha256(served.body)).toBe(digest);

    // Deleting the referrers tag's index (and with it the tag): the next sync drops the link.
    const del = await curlManifest(`${registry.url}/v2/team/app/manifests/${attached.fallbackTag.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    await sync();
    expect(await tagsByTerm(catalog, 'com.gitlab.ci.pipeline_id', pipeline)).toEqual([]);
    expect(await buildSource(catalog, digest)).toBe('none');
    expect(await search(serve.url, `pipeline=${pipeline}`)).toEqual([]);
    await serve.stop();
    serve = undefined;
    await registry.stop();
  });

  it('the webhook follows the referrers tag within seconds; a newer attach wins; deleting the referrer manifest falls back to the older one', async () => {
    const catalog = await backend().fresh();
    const port = await freePort();
    registry = await startRegistry({
      deleteEnabled: true,
      notifications: { url: `http://127.0.0.1:${port}/api/v1/events`, headers: { Authorization: [SECRET] }, ignoredActions: ['pull'], ignoredMediaTypes: ['application/octet-stream'] },
    });
    serve = await startServe([], {
      TAGTRAIL_LISTEN: `127.0.0.1:${port}`,
      TAGTRAIL_REGISTRY: registry.host,
      TAGTRAIL_DB: catalog.url,
      TAGTRAIL_WEBHOOK_SECRET: SECRET,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
    const base = serve.url;
    const commit = hex(20);
    const image = await makeImage(`${dir}/hook`, { tag: 'v1', seed: `hook-${backendName}`, layers: 1 });
    const digest = await pushImage(image, `${registry.host}/hook/app:v1`);
    await until(async () => ((await search(base, 'repository=hook/app')).length > 0 ? true : undefined), 5000);

    const first = await attach(`${registry.host}/hook/app:v1`, '9101', commit);
    const found = await until(async () => {
      const items = await search(base, 'pipeline=9101');
      return items.length > 0 ? items : undefined;
    }, 5000);
    expect(found).toMatchObject([{ repository: 'hook/app', tag: 'v1', digest, build: { source: 'referrer', referrer: first.referrer, commit: { sha: commit } } }]);
    expect(await tagsByTerm(catalog, 'com.gitlab.ci.pipeline_id', '9101')).toEqual(['hook/app:v1']);
    expect(await buildSource(catalog, digest)).toBe('referrer');

    // A second attach, later: its details are the ones shown and searched.
    await new Promise((r) => setTimeout(r, 1100)); // org.opencontainers.image.created has whole seconds
    // Build details are written once: a second pipeline attaches only with --overwrite.
    const second = await attach(`${registry.host}/hook/app:v1`, '9102', commit, ['--overwrite']);
    await until(async () => ((await search(base, 'pipeline=9102')).length > 0 ? true : undefined), 5000);
    expect(await search(base, 'pipeline=9101')).toEqual([]);
    expect((await search(base, 'pipeline=9102'))[0]?.build).toMatchObject({ source: 'referrer', referrer: second.referrer });

    // The newer referrer manifest deleted: the older one's details come back.
    const del = await curlManifest(`${registry.url}/v2/hook/app/manifests/${second.referrer}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    await until(async () => ((await search(base, 'pipeline=9101')).length > 0 ? true : undefined), 5000);
    expect(await search(base, 'pipeline=9102')).toEqual([]);
    expect(await tagsByTerm(catalog, 'com.gitlab.ci.pipeline_id', '9101')).toEqual(['hook/app:v1']);

    const served = await curlManifest(`${registry.url}/v2/hook/app/manifests/v1`, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    expect(served.digest).toBe(digest);
    expect(sha256(served.body)).toBe(digest);
    expect(serve.logs().some((l) => JSON.stringify(l).includes(SECRET))).toBe(false);
  });
});
