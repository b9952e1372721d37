// The browser UI in-process: pages rendered from a real SQLite catalog, read as HTML text. The
// browser suite (ui.e2e.test.ts) drives the same pages in chromium against a real registry.
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/catalog/store.js';
import { openStore } from '../../src/catalog/open.js';
import { createApp } from '../../src/server/app.js';
import { ASSETS } from '../../src/server/ui/assets.js';
import { CONTENT_SECURITY_POLICY, mountUi, parseRepositoryPath } from '../../src/server/ui/index.js';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';
import { gitlabEnv } from '../helpers/cli.js';
import { imageRecord, indexRecord } from '../helpers/records.js';

const NOW = new Date('2026-11-26T12:00:00Z');
const SHA = '4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39';

/** The annotation set `tagtrail annotate` writes for gitlabEnv(), by hand. */
function ciAnnotations(overrides: Record<string, string> = {}): Record<string, string> {
  const env = gitlabEnv();
  return {
    'com.gitlab.ci.pipeline_id': env.CI_PIPELINE_ID as string,
    'com.gitlab.ci.pipeline_url': env.CI_PIPELINE_URL as string,
    'com.gitlab.ci.job_id': env.CI_JOB_ID as string,
    'com.gitlab.ci.job_name': env.CI_JOB_NAME as string,
    'com.gitlab.ci.job_url': env.CI_JOB_URL as string,
    'com.gitlab.ci.project_url': env.CI_PROJECT_URL as string,
    'com.gitlab.ci.project_path': env.CI_PROJECT_PATH as string,
    'com.gitlab.ci.commit_sha': SHA,
    'com.gitlab.ci.commit_ref_name': 'main',
    'com.gitlab.ci.branch': 'main',
    'com.gitlab.ci.user_login': 'dev',
    'org.opencontainers.image.revision': SHA,
    'org.opencontainers.image.source': env.CI_PROJECT_URL as string,
    ...overrides,
  };
}

let dir: string;
let store: Store;
let app: Hono;
const digests: Record<string, string> = {};

async function tag(repository: string, name: string, record: ReturnType<typeof imageRecord>, at: Date): Promise<void> {
  await store.putManifest(record);
  await store.setTag(repository, name, record.digest, at);
  digests[`${repository}:${name}`] = record.digest;
}

beforeAll(async () => {
  dir = await makeTempDir('ui');
  store = await openStore(`sqlite:${dir}/catalog.db`);
  const minutes = (m: number): Date => new Date(NOW.getTime() - m * 60_000);
  await tag('group/app', 'v1', imageRecord({ annotations: ciAnnotations() }), minutes(300));
  await tag('group/app', 'v2', indexRecord({ annotations: ciAnnotations({ 'com.gitlab.ci.pipeline_id': '9002', 'com.gitlab.ci.pipeline_url': 'https://gitlab.example.com/group/app/-/pipelines/9002' }) }), minutes(200));
  await tag('group/app', 'plain', imageRecord(), minutes(100));
  await tag('group/multi', 'v3', indexRecord({ annotations: ciAnnotations(), childAnnotations: { ...ciAnnotations(), 'com.example.arch-note': 'built on a native runner' } }), minutes(95));
  await tag('group/app', 'mr', imageRecord({ annotations: ciAnnotations({ 'com.gitlab.ci.branch': '', 'com.gitlab.ci.commit_ref_name': 'refs/merge-requests/12/head', 'com.gitlab.ci.merge_request_iid': '12' }) }), minutes(50));
  await tag('group/app', 'release', imageRecord({ annotations: ciAnnotations({ 'com.gitlab.ci.branch': '', 'com.gitlab.ci.tag': 'v1.0.0', 'com.gitlab.ci.commit_ref_name': 'v1.0.0' }) }), minutes(40));
  await tag(
    'evil/app',
    'x',
    imageRecord({
      annotations: {
        'com.gitlab.ci.pipeline_id': '<script>alert(1)</script>',
        'com.gitlab.ci.pipeline_url': 'javascript:alert(1)',
        'com.gitlab.ci.job_name': '"><img src=x onerror=alert(1)>',
        'com.gitlab.ci.job_url': 'https://evil.example/job',
        'com.gitlab.ci.project_url': 'https://evil.example/group/app',
        'com.gitlab.ci.commit_sha': SHA,
        'com.gitlab.ci.branch': "main'><script>alert(2)</script>",
        'com.gitlab.ci.user_login': '<b>bold</b>',
        'org.opencontainers.image.url': 'https://user@gitlab.example.com/x',
        'com.example.note': '</code></pre><script>alert(3)</script>',
      },
    }),
    minutes(10),
  );
  // A tag deleted after it was pushed.
  await tag('group/older', 'gone', imageRecord({ annotations: ciAnnotations() }), minutes(2000));
  await store.deleteTag('group/older', 'gone', minutes(1900));
  // A tag that moved: v1 of group/older points at a newer digest now.
  await tag('group/older', 'v1', imageRecord({ annotations: ciAnnotations() }), minutes(1000));
  digests.olderFirst = digests['group/older:v1'] as string;
  await tag('group/older', 'v1', imageRecord({ annotations: ciAnnotations({ 'com.gitlab.ci.pipeline_id': '9100' }) }), minutes(900));
  app = new Hono();
  mountUi(app, { store, gitlabUrls: ['https://gitlab.example.com'], registryHost: 'registry.example.com', now: () => NOW });
});

afterAll(async () => {
  await store?.close();
  if (dir) await removeTempDir(dir);
});

async function get(path: string): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await app.request(path);
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** The <a> elements of a page: href and inner text. */
function links(text: string): { href: string; text: string }[] {
  return [...text.matchAll(/<a\b[^>]*\bhref="([^"]*)"[^>]*>(.*?)<\/a>/gs)].map((m) => ({ href: m[1] as string, text: (m[2] as string).replace(/<[^>]+>/g, '') }));
}

describe('pages', () => {
  it('lists repositories with tag counts and the share with build details', async () => {
    const { status, text, headers } = await get('/');
    expect(status).toBe(200);
    expect(headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(headers.get('referrer-policy')).toBe('no-referrer');
    expect(text).toContain('href="/r/group/app"');
    expect(text).toMatch(/80% <span class="muted">\(4 of 5\)<\/span>/);
    const filtered = await get('/?q=older');
    expect(filtered.text).toContain('href="/r/group/older"');
    expect(filtered.text).not.toContain('href="/r/group/app"');
  });

  it('shows a repository’s tags newest first, with links to GitLab', async () => {
    const { status, text } = await get('/r/group/app');
    expect(status).toBe(200);
    const order = [...text.matchAll(/data-tag="([^"]+)"/g)].map((m) => m[1]);
    expect(order).toEqual(['release', 'mr', 'plain', 'v2', 'v1']);
    const l = links(text);
    expect(l).toContainEqual({ href: 'https://gitlab.example.com/group/app/-/pipelines/9001', text: '#9001' });
    expect(l).toContainEqual({ href: 'https://gitlab.example.com/group/app/-/jobs/77001', text: 'build' });
    expect(l).toContainEqual({ href: 'https://gitlab.example.com/group/app/-/tree/main', text: 'main' });
    expect(l).toContainEqual({ href: 'https://gitlab.example.com/group/app/-/tags/v1.0.0', text: 'v1.0.0' });
    expect(l).toContainEqual({ href: 'https://gitlab.example.com/group/app/-/merge_requests/12', text: '!12' });
    expect(l).toContainEqual({ href: `https://gitlab.example.com/group/app/-/commit/${SHA}`, text: SHA.slice(0, 8) });
    expect(l).toContainEqual({ href: '/r/group/app/-/tags/v1', text: 'v1' });
    expect(l).toContainEqual({ href: '/docs/annotate', text: 'How to add them' });
    expect(text).toContain(`data-copy="${SHA}"`);
    expect(text).toContain(`data-copy="registry.example.com/group/app@${digests['group/app:v1']}"`);
    expect(text).toContain('aria-label="Copy commit SHA"');
    expect(text).toContain('aria-label="Copy image reference"');
    expect(text).toContain('linux/amd64, linux/arm64/v8');
    expect(text).toMatch(/<time datetime="2026-11-26T07:00:00.000Z" title="2026-11-26 07:00:00 UTC">5 hours ago<\/time>/);
  });

  it('pages through tags with a cursor', async () => {
    const first = await get('/r/group/app?limit=2');
    expect([...first.text.matchAll(/data-tag="([^"]+)"/g)].map((m) => m[1])).toEqual(['release', 'mr']);
    const next = links(first.text).find((l) => l.text.startsWith('Older tags'));
    expect(next).toBeDefined();
    const second = await get(next!.href.replace(/&amp;/g, '&'));
    expect([...second.text.matchAll(/data-tag="([^"]+)"/g)].map((m) => m[1])).toEqual(['plain', 'v2']);
    expect(links(second.text).some((l) => l.text.includes('First page'))).toBe(true);
    const bad = await get('/r/group/app?cursor=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Page link not valid');
  });

  it('answers a bad limit with a 400 page naming it, as the API does, on every paged page', async () => {
    const api = createApp({ store });
    for (const path of ['/', '/r/group/app', '/search?q=main']) {
      for (const value of ['0', 'abc', '201', '<b>9</b>']) {
        const sep = path.includes('?') ? '&' : '?';
        const page = await get(`${path}${sep}limit=${encodeURIComponent(value)}`);
        expect(page.status, `${path} limit=${value}`).toBe(400);
        expect(page.headers.get('content-type')).toContain('text/html');
        // The site's layout, the parameter named, and what was given escaped.
        expect(page.text).toContain('<header class="site">');
        expect(page.text).toContain('<h1>Cannot show this page</h1>');
        expect(page.text).toContain('parameter limit:');
        expect(page.text).toContain('is not a whole number from 1 to 200');
        expect(page.text).not.toContain('<b>9</b>');
      }
    }
    expect((await get('/r/group/app?limit=200')).status).toBe(200);
    // The same parser answers the API (whose pages go up to 500).
    const res = await api.request('/api/v1/repositories?limit=abc');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('parameter limit: "abc" is not a whole number from 1 to 500');
    const weeks = await get('/insights?weeks=7');
    expect(weeks.status).toBe(400);
    expect(weeks.text).toContain('parameter weeks: &quot;7&quot; is not one of 12, 26, 52, 104');
    expect((await get('/insights?weeks=52')).status).toBe(200);
    const broken = await get('/r/group/app/-/tags/v1?history=!!');
    expect(broken.status).toBe(400);
    expect(broken.text).toContain('Page link not valid');
  });

  it('shows a tag: annotations by platform, labels in plain words, raw JSON and earlier digests', async () => {
    const { status, text } = await get('/r/group/app/-/tags/v2');
    expect(status).toBe(200);
    expect(text).toContain('<h3 id="group-top">Index');
    expect(text).toContain('linux/amd64');
    expect(text).toContain('linux/arm64/v8');
    expect(text).toContain('<span class="label">Source revision (commit)</span><code class="key">org.opencontainers.image.revision</code>');
    expect(text).toContain('&quot;mediaType&quot;: &quot;application/vnd.oci.image.index.v1+json&quot;');
    const moved = await get('/r/group/older/-/tags/v1');
    expect(moved.text).toContain('Earlier digests of this tag');
    // The earlier digest says which build it was.
    expect(moved.text).toMatch(/pipeline <a href="https:\/\/gitlab\.example\.com\/group\/app\/-\/pipelines\/9001" rel="noopener noreferrer">#9001<\/a>, main, <code>4f2c1a9e<\/code>/);
    const earlier = links(moved.text).filter((l) => l.href.startsWith('/r/group/older/-/manifests/'));
    expect(earlier.map((l) => l.href)).toEqual([`/r/group/older/-/manifests/${digests.olderFirst}`]);
    const old = await get(earlier[0]!.href);
    expect(old.status).toBe(200);
    expect(old.text).toContain(digests.olderFirst);
  });

  it('shows a deleted tag with its history', async () => {
    const { status, text } = await get('/r/group/older/-/tags/gone');
    expect(status).toBe(200);
    expect(text).toContain('This tag was deleted');
    expect(text).toContain(`href="/r/group/older/-/manifests/${digests['group/older:gone']}"`);
    expect(text).toContain('<td data-label="Then">deleted</td>');
    expect((await get('/r/group/older')).text).not.toContain('data-tag="gone"');
  });

  it('shows a platform manifest’s own annotations, and folds those the index has as well', async () => {
    const { text } = await get('/r/group/multi/-/tags/v3');
    const amd64 = text.slice(text.indexOf('<h3 id="group-1">'), text.indexOf('<h3 id="group-2">'));
    expect(amd64).toContain('linux/amd64');
    const [own, folded] = amd64.split('<details class="same">') as [string, string];
    expect(own).toContain('com.example.arch-note');
    expect(own).not.toContain('com.gitlab.ci.pipeline_id');
    expect(folded).toContain(`${Object.keys(ciAnnotations()).length} annotations the same as on the index`);
    expect(folded).toContain('com.gitlab.ci.pipeline_id');
  });

  it('searches by commit, pipeline, ref, annotation and repository', async () => {
    const commit = await get(`/search?q=${SHA.slice(0, 8)}`);
    expect(commit.text).toContain('Commits starting with 4f2c1a9e');
    expect(commit.text).toContain('href="/r/group/app/-/tags/v1"');
    const pipeline = await get('/search?q=9002');
    expect(pipeline.text).toContain('href="/r/group/app/-/tags/v2"');
    expect(pipeline.text).not.toContain('href="/r/group/app/-/tags/v1"');
    const ref = await get('/search?q=v1.0.0');
    expect(ref.text).toContain('href="/r/group/app/-/tags/release"');
    const annotation = await get('/search?q=com.gitlab.ci.merge_request_iid%3D12');
    expect(annotation.text).toContain('href="/r/group/app/-/tags/mr"');
    const both = await get('/search?q=older');
    expect(both.text).toContain('href="/r/group/older"');
    const nothing = await get('/search?q=nothing-here');
    expect(nothing.text).toContain('Nothing found');
    const bad = await get('/search?q=commit%3Axyz');
    expect(bad.status).toBe(400);
  });

  it('escapes hostile annotations and links only to allowed GitLab servers', async () => {
    for (const path of ['/r/evil/app', '/r/evil/app/-/tags/x', '/search?q=evil']) {
      const { text } = await get(path);
      expect(text).not.toMatch(/<script>alert/);
      expect(text).not.toMatch(/<img src=x/);
      expect(text).not.toContain('<b>bold</b>');
      expect(text).not.toMatch(/(href|src|action|formaction)="[^"]*javascript:/i);
      for (const l of links(text)) expect(/^(\/|#|https:\/\/gitlab\.example\.com\/)/.test(l.href), l.href).toBe(true);
      // Scripts come from our own file only.
      expect([...text.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual([`<script src="${ASSETS.copy.path}" defer>`]);
      // No event handler attribute in any real tag (escaped text holds no '<').
      for (const m of text.matchAll(/<[a-z][^>]*>/gi)) expect(m[0]).not.toMatch(/\son[a-z]+\s*=/i);
    }
    const { text } = await get('/r/evil/app/-/tags/x');
    expect(text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(text).toContain('https://evil.example/job');
    expect(text).toContain('<span class="value">javascript:alert(1)</span>');
  });

  it('answers 404 pages for what is not there', async () => {
    for (const path of ['/nope', '/r/nope/nothing', '/r/group/app/-/tags/nope', '/r/group/app/-/tags/bad%20tag', '/r/Bad Name', `/r/group/app/-/manifests/sha256:${'0'.repeat(64)}`, '/r/group/app/-/else/x', '/assets/nope.css']) {
      const { status, headers } = await get(path);
      expect(status, path).toBe(404);
      expect(headers.get('content-security-policy'), path).toBe(CONTENT_SECURITY_POLICY);
    }
  });

  it('serves the docs page and the assets with a long cache', async () => {
    expect((await get('/docs/annotate')).text).toContain('tagtrail annotate');
    for (const a of [ASSETS.style, ASSETS.copy]) {
      const res = await app.request(a.path);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('content-type')).toBe(a.contentType);
      const again = await app.request(a.path, { headers: { 'If-None-Match': a.etag } });
      expect(again.status).toBe(304);
    }
  });
});

describe('mounted on the server app', () => {
  it('leaves the API, health and metrics to the app, and answers other paths with HTML', async () => {
    const server = createApp({ store, ui: (a) => mountUi(a, { store, gitlabUrls: ['https://gitlab.example.com'], now: () => NOW }) });
    const api = await server.request('/api/v1/nope');
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect(await (await server.request('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await server.request('/api/v1/repositories')).headers.get('content-type')).toContain('application/json');
    const page = await server.request('/nope');
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect((await server.request('/r/group/app')).status).toBe(200);
  });
});

describe('parseRepositoryPath', () => {
  it('splits the repository from what follows /-/', () => {
    expect(parseRepositoryPath('/r/group/sub/app')).toEqual({ repository: 'group/sub/app', rest: [] });
    expect(parseRepositoryPath('/r/group/app/')).toEqual({ repository: 'group/app', rest: [] });
    expect(parseRepositoryPath('/r/group/app/-/tags/v1.0')).toEqual({ repository: 'group/app', rest: ['tags', 'v1.0'] });
    expect(parseRepositoryPath('/r/group/app/-/manifests/sha256%3Aab')).toEqual({ repository: 'group/app', rest: ['manifests', 'sha256:ab'] });
    expect(parseRepositoryPath('/r/Group/app')).toBeUndefined();
    expect(parseRepositoryPath('/r/group//app')).toBeUndefined();
    expect(parseRepositoryPath('/r/%E0%A4%A')).toBeUndefined();
  });
});
