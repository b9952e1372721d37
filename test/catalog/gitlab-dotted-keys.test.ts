// GitLab's own key scheme (its cosign tutorial: com.gitlab.ci.pipeline.id, …): an image pushed to
// the real registry with only dotted keys shows its build details in `show`, the API and the
// browser, and a catalog finds it by pipeline, commit and ref, on both backends. A catalog synced
// before the keys were read gets its search terms from migration 9.
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { sync } from '../../src/catalog/sync.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { mountUi } from '../../src/server/ui/index.js';
import { parseGitlabUrls } from '../../src/server/ui/links.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { useRegistry } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { imageRecord } from '../helpers/records.js';
import { BACKENDS, type Catalog, useBackend } from './backends.js';
import { hex } from './seed.js';

const registry = useRegistry();

function dottedAnnotations(commit: string, pipeline: string, ref: string): Record<string, string> {
  return {
    'com.gitlab.ci.pipeline.id': pipeline,
    'com.gitlab.ci.pipeline.url': `https://gitlab.example.com/group/dotted/-/pipelines/${pipeline}`,
    'com.gitlab.ci.job.id': '4242',
    'com.gitlab.ci.job.url': 'https://gitlab.example.com/group/dotted/-/jobs/4242',
    'com.gitlab.ci.commit.sha': commit,
    'com.gitlab.ci.commit.ref.name': ref,
    'com.gitlab.ci.project.path': 'group/dotted',
    'com.gitlab.ci.user.name': 'Dev Eloper',
  };
}

const EXPECTED_BUILD = (commit: string, pipeline: string, ref: string) => ({
  source: 'annotations',
  pipeline: { id: pipeline, url: `https://gitlab.example.com/group/dotted/-/pipelines/${pipeline}` },
  job: { id: '4242', url: 'https://gitlab.example.com/group/dotted/-/jobs/4242' },
  commit: { sha: commit },
  ref: { name: ref, kind: 'unknown' },
  project: { path: 'group/dotted' },
  user: { name: 'Dev Eloper' },
});

describe.each(BACKENDS)('GitLab dotted keys on %s', (backendName) => {
  const backend = useBackend(backendName);
  const prefix = `dotted-${backendName}`;
  const commit = hex(20);
  const pipeline = String(200000 + Math.floor(Math.random() * 799999));
  const ref = `feature/dotted-${backendName}`;
  let catalog: Catalog;
  let digest: string;
  let showBuild: unknown;

  beforeAll(async () => {
    const dir = await makeTempDir('dotted');
    const image = await makeImage(`${dir}/app`, { manifestAnnotations: dottedAnnotations(commit, pipeline, ref), tag: 'v1' });
    digest = await pushImage(image, `${registry().host}/${prefix}/app:v1`);
    catalog = await backend().fresh();
    const client = new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
    expect(await sync({ client, store: catalog.store, registry: registry().host, prefix })).toMatchObject({ complete: true, added: 1 });
  });

  it('`show` reads the dotted keys as build details', async () => {
    const show = await runCli(['show', '-o', 'json', `${registry().host}/${prefix}/app:v1`]);
    expect(show.code).toBe(0);
    const out = JSON.parse(show.stdout) as { source: string; build: unknown; digest: string };
    expect(out.digest).toBe(digest);
    expect(out.source).toBe('annotations');
    expect(out.build).toEqual(EXPECTED_BUILD(commit, pipeline, ref));
    showBuild = out.build;
    const text = await runCli(['show', `${registry().host}/${prefix}/app:v1`]);
    expect(text.stdout).toContain(pipeline);
    expect(text.stdout).toContain('Dev Eloper');
  });

  it('the API finds the image by pipeline, commit prefix and ref, with the build `show` prints', async () => {
    const app = createApp({ store: catalog.store, gitlabServers: parseGitlabUrls(['https://gitlab.example.com']) });
    for (const query of [`pipeline=${pipeline}`, `commit=${commit.slice(0, 8)}`, `ref=${encodeURIComponent(ref)}`]) {
      const res = await app.request(`/api/v1/images?${query}`);
      expect(res.status).toBe(200);
      const items = ((await res.json()) as { items: { digest: string; build: unknown }[] }).items;
      expect(items.map((i) => i.digest), query).toEqual([digest]);
      expect(items[0]!.build).toEqual(showBuild ?? EXPECTED_BUILD(commit, pipeline, ref));
    }
  });

  it('the browser shows the dotted build details on the tag page', async () => {
    const app = new Hono();
    mountUi(app, { store: catalog.store, gitlabUrls: ['https://gitlab.example.com'], registryHost: registry().host, now: () => new Date() });
    const page = await (await app.request(`/r/${prefix}/app/-/tags/v1`)).text();
    expect(page).toContain(`href="https://gitlab.example.com/group/dotted/-/pipelines/${pipeline}"`);
    expect(page).toContain('Dev Eloper');
    const search = await (await app.request(`/search?q=${pipeline}`)).text();
    expect(search).toContain(`href="/r/${prefix}/app/-/tags/v1"`);
  });

  it('stores the dotted values under the keys a search reads (read back with SQL)', async () => {
    const rows = await catalog.sql(
      `SELECT t.key, t.value FROM tag_terms t JOIN tags g ON g.id = t.tag_id WHERE g.name = 'v1' AND t.key IN ('com.gitlab.ci.pipeline_id', 'com.gitlab.ci.commit_sha', 'com.gitlab.ci.commit_ref_name') ORDER BY t.key`,
    );
    expect(rows.map((r) => [r.key, r.value])).toEqual([
      ['com.gitlab.ci.commit_ref_name', ref],
      ['com.gitlab.ci.commit_sha', commit],
      ['com.gitlab.ci.pipeline_id', pipeline],
    ]);
  });

  it('migration 9 gives a catalog synced before the dotted keys were read their search terms', async () => {
    const underscore = "('com.gitlab.ci.pipeline_id', 'com.gitlab.ci.commit_sha', 'com.gitlab.ci.commit_ref_name', 'com.gitlab.ci.job_id', 'com.gitlab.ci.job_url', 'com.gitlab.ci.pipeline_url', 'com.gitlab.ci.project_path', 'com.gitlab.ci.user_name')";
    // As an older catalog holds it: terms without the keys read from the dotted ones, version 9 not applied.
    await catalog.exec(`DELETE FROM tag_terms WHERE key IN ${underscore}`);
    await catalog.exec('DELETE FROM schema_migrations WHERE version = 9');
    expect((await catalog.store.searchImages({ pipeline })).items).toEqual([]);
    expect(await catalog.store.migrate()).toEqual([9]);
    expect((await catalog.store.searchImages({ pipeline })).items.map((i) => i.digest)).toEqual([digest]);
    expect((await catalog.store.searchImages({ ref })).items.map((i) => i.digest)).toEqual([digest]);
    expect((await catalog.store.searchImages({ commit: commit.slice(0, 6) })).items.map((i) => i.digest)).toEqual([digest]);
    expect(await catalog.store.migrate()).toEqual([]);
  });

  it('reads a dotted key only where its underscore key is absent', async () => {
    const record = imageRecord({ annotations: { 'com.gitlab.ci.pipeline_id': '111111', 'com.gitlab.ci.pipeline.id': '222222', 'com.gitlab.ci.commit.sha': 'abcdef0123456789' } });
    await catalog.store.putManifest(record);
    await catalog.store.setTag(`${prefix}/both`, 'v1', record.digest, new Date());
    expect((await catalog.store.searchImages({ pipeline: '111111' })).items.map((i) => i.digest)).toEqual([record.digest]);
    expect((await catalog.store.searchImages({ pipeline: '222222' })).items).toEqual([]);
    expect((await catalog.store.searchImages({ commit: 'abcdef01' })).items.map((i) => i.digest)).toEqual([record.digest]);
    const app = createApp({ store: catalog.store, gitlabServers: [] });
    const items = ((await (await app.request('/api/v1/images?pipeline=111111')).json()) as { items: { build: { pipeline: { id: string }; commit: { sha: string } } }[] }).items;
    expect(items[0]!.build).toMatchObject({ pipeline: { id: '111111' }, commit: { sha: 'abcdef0123456789' } });
  });
});
