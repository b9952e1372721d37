// The registry browser in a real browser: Debian's chromium, driven with playwright-core, against
// `tagtrail serve` (the built CLI, as a child process) over a SQLite catalog that `tagtrail sync`
// filled from a real registry, whose images were pushed with skopeo and annotated with
// `tagtrail annotate`. Screenshots of every page go to test-results/ui/.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { useRegistry } from '../helpers/fixtures.js';
import { makeImage, makeIndex, pushImage } from '../helpers/images.js';
import { type ServeProcess, ensureBuilt, startServe } from './serve-process.js';

export const CHROMIUM = '/usr/bin/chromium';
const SHOTS = new URL('../../test-results/ui/', import.meta.url).pathname;
const GITLAB = 'https://gitlab.example.com';
const PROJECT = `${GITLAB}/group/app`;

const registry = useRegistry();

/** A commit SHA per image, so each can be found by its own prefix. */
function sha(n: number): string {
  return `${n.toString(16).padStart(2, '0')}${'4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a'}`.slice(0, 40);
}

interface Pushed {
  repository: string;
  tag: string;
  /** The digest now, after annotate. */
  digest: string;
  /** The digest skopeo pushed, before annotate. */
  pushedDigest: string;
  commit?: string;
  pipeline?: string;
}

let dir: string;
let db: string;
let server: ServeProcess;
let base: string;
let browser: Browser;
const images: Record<string, Pushed> = {};

/** Annotates with the real CLI, then syncs, so each tag gets its own update time in the catalog. */
async function annotate(ref: string, env: Record<string, string>, extra: string[] = []): Promise<string> {
  const r = await runCli(['annotate', ref, '-o', 'json', ...extra], { env });
  if (r.code !== 0) throw new Error(`annotate ${ref} failed (${r.code}): ${r.stderr}`);
  await new Promise((resolve) => setTimeout(resolve, 5));
  await syncAll();
  return (JSON.parse(r.stdout) as { after: string }).after;
}

async function syncAll(): Promise<void> {
  const r = await runCli(['sync', '--registry', registry().url, '--db', db, '-o', 'json']);
  if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}${r.stdout}`);
}

/** Pushes an image, syncs it as it was pushed, then annotates it (so the tag has an earlier digest). */
async function pushed(name: string, repository: string, tag: string, options: { index?: boolean } = {}): Promise<string> {
  const layout = `${dir}/${name}`;
  const image = options.index ? await makeIndex(layout, { tag }) : await makeImage(layout, { tag });
  const ref = `${registry().host}/${repository}:${tag}`;
  const digest = await pushImage(image, ref);
  images[name] = { repository, tag, digest, pushedDigest: digest };
  return ref;
}

function pipelineEnv(n: number, overrides: Record<string, string> = {}): Record<string, string> {
  return gitlabEnv({
    CI_PIPELINE_ID: String(9000 + n),
    CI_PIPELINE_URL: `${PROJECT}/-/pipelines/${9000 + n}`,
    CI_JOB_ID: String(77000 + n),
    CI_JOB_URL: `${PROJECT}/-/jobs/${77000 + n}`,
    CI_COMMIT_SHA: sha(n),
    CI_COMMIT_SHORT_SHA: sha(n).slice(0, 8),
    ...overrides,
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the browser tests need Debian's chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
  }
  await mkdir(SHOTS, { recursive: true });
  ensureBuilt();
  dir = await makeTempDir('ui-e2e');
  db = `sqlite:${dir}/catalog.db`;

  // group/app: five builds of main, then a release tag and a merge request pipeline.
  const refs: Record<string, string> = {};
  for (let n = 1; n <= 5; n++) refs[`main${n}`] = await pushed(`main${n}`, 'group/app', `build-${n}`);
  refs.release = await pushed('release', 'group/app', 'v1.0.0');
  refs.mr = await pushed('mr', 'group/app', 'mr-12');
  refs.multi = await pushed('multi', 'group/multi', 'v2', { index: true });
  refs.plain = await pushed('plain', 'group/plain', 'latest');
  refs.evil = await pushed('evil', 'evil/app', 'x');
  await syncAll();

  for (let n = 1; n <= 5; n++) {
    const name = `main${n}`;
    const digest = await annotate(refs[name] as string, pipelineEnv(n));
    Object.assign(images[name] as Pushed, { digest, commit: sha(n), pipeline: String(9000 + n) });
  }
  images.release!.digest = await annotate(refs.release as string, pipelineEnv(6, { CI_COMMIT_TAG: 'v1.0.0', CI_COMMIT_REF_NAME: 'v1.0.0', CI_COMMIT_BRANCH: '' }));
  images.mr!.digest = await annotate(
    refs.mr as string,
    pipelineEnv(7, { CI_MERGE_REQUEST_IID: '12', CI_COMMIT_REF_NAME: 'feature/login', CI_COMMIT_BRANCH: '', CI_PIPELINE_SOURCE: 'merge_request_event' }),
  );
  images.multi!.digest = await annotate(refs.multi as string, pipelineEnv(8, { CI_COMMIT_REF_NAME: 'release/2.x', CI_COMMIT_BRANCH: 'release/2.x' }));
  // Hostile values: markup, script URLs and links to a foreign host, all through the real CLI.
  images.evil!.digest = await annotate(refs.evil as string, pipelineEnv(9, { CI_COMMIT_REF_NAME: 'hostile', CI_COMMIT_BRANCH: 'hostile' }), [
    '-a', 'com.gitlab.ci.pipeline_url=javascript:window.__pwned=1',
    '-a', 'com.gitlab.ci.job_name=<script>window.__pwned=2</script>',
    '-a', 'com.gitlab.ci.job_url=JAVASCRIPT:window.__pwned=3',
    '-a', 'com.gitlab.ci.project_url=https://evil.example/group/app',
    '-a', 'com.gitlab.ci.branch="><img src=x onerror="window.__pwned=4">',
    '-a', 'com.gitlab.ci.user_login=<b onmouseover="window.__pwned=5">dev</b>',
    '-a', 'org.opencontainers.image.url=https://gitlab.example.com.evil.example/x',
    '-a', 'org.opencontainers.image.documentation=data:text/html,<script>window.__pwned=6</script>',
    '-a', 'com.example.note=</code></pre><script>window.__pwned=7</script><a href="javascript:window.__pwned=8">click</a>',
  ]);

  server = await startServe(['--db', db, '--listen', '127.0.0.1:0', '--registry', registry().url, '--reconcile-interval', '0', '--gitlab-url', GITLAB], {});
  base = server.url;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) await removeTempDir(dir);
});

/** A fresh context for each test. No page may open a dialog (alert, confirm, prompt). */
async function withPage<T>(fn: (page: Page, context: BrowserContext) => Promise<T>, options: { javaScript?: boolean; width?: number } = {}): Promise<T> {
  const context = await browser.newContext({
    javaScriptEnabled: options.javaScript !== false,
    viewport: { width: options.width ?? 1280, height: 900 },
  });
  const dialogs: string[] = [];
  try {
    const page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const result = await fn(page, context);
    expect(dialogs).toEqual([]);
    return result;
  } finally {
    await context.close();
  }
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

function row(page: Page, tag: string) {
  return page.locator(`tr[data-tag="${tag}"]`);
}

describe('the registry browser in chromium', () => {
  it('lists repositories with tag counts and the share with build details', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/`);
      await shot(page, 'repositories');
      const app = page.locator('tr', { has: page.getByRole('link', { name: 'group/app', exact: true }) });
      await expect(app.locator('td[data-label="Tags"]').textContent()).resolves.toBe('7');
      await expect(app.locator('td[data-label="With build details"]').textContent()).resolves.toContain('100% (7 of 7)');
      const plain = page.locator('tr', { has: page.getByRole('link', { name: 'group/plain', exact: true }) });
      await expect(plain.locator('td[data-label="With build details"]').textContent()).resolves.toContain('0% (0 of 1)');
      await page.getByLabel('Filter by name').fill('multi');
      await page.getByLabel('Filter by name').press('Enter');
      await page.waitForURL(/\?q=multi/);
      await expect(page.locator('table.repositories tbody tr').count()).resolves.toBe(1);
    });
  });

  it('links each build detail to its GitLab page', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/r/group/app`);
      await shot(page, 'repository');
      const first = images.main1 as Pushed;
      const r = row(page, 'build-1');
      await expect(r.getByRole('link', { name: 'build-1' }).getAttribute('href')).resolves.toBe('/r/group/app/-/tags/build-1');
      await expect(r.getByRole('link', { name: '#9001' }).getAttribute('href')).resolves.toBe(`${PROJECT}/-/pipelines/9001`);
      await expect(r.getByRole('link', { name: 'build', exact: true }).getAttribute('href')).resolves.toBe(`${PROJECT}/-/jobs/77001`);
      await expect(r.getByRole('link', { name: 'main', exact: true }).getAttribute('href')).resolves.toBe(`${PROJECT}/-/tree/main`);
      await expect(r.getByRole('link', { name: first.commit!.slice(0, 8) }).getAttribute('href')).resolves.toBe(`${PROJECT}/-/commit/${first.commit}`);
      await expect(r.locator('td[data-label="User"]').textContent()).resolves.toBe('dev');
      await expect(r.locator('td[data-label="Digest"]').textContent()).resolves.toBe(first.digest.slice(7, 19));

      const release = row(page, 'v1.0.0');
      await expect(release.getByRole('link', { name: 'v1.0.0', exact: true }).last().getAttribute('href')).resolves.toBe(`${PROJECT}/-/tags/v1.0.0`);
      const mr = row(page, 'mr-12');
      await expect(mr.getByRole('link', { name: '!12' }).getAttribute('href')).resolves.toBe(`${PROJECT}/-/merge_requests/12`);
      await expect(mr.locator('td[data-label="Branch or tag"]').textContent()).resolves.toContain('feature/login');

      // Times read relative, with the absolute time on hover.
      const time = r.locator('time');
      await expect(time.textContent()).resolves.toMatch(/ago|just now/);
      await expect(time.getAttribute('title')).resolves.toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    });
  });

  it('says so for a tag with no build details, and links to how to add them', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/r/group/plain`);
      const r = row(page, 'latest');
      await expect(r.textContent()).resolves.toContain('No build details');
      await r.getByRole('link', { name: 'How to add them' }).click();
      await page.waitForURL(`${base}/docs/annotate`);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Adding build details to images');
      await shot(page, 'docs');
    });
  });

  it('copies the full commit SHA and the image reference', async () => {
    await withPage(async (page, context) => {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
      await page.goto(`${base}/r/group/app`);
      const first = images.main1 as Pushed;
      const r = row(page, 'build-1');
      await r.getByRole('button', { name: 'Copy commit SHA' }).click();
      await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(first.commit);
      await expect(page.getByRole('status').textContent()).resolves.toMatch(/^(|Copied the commit SHA\.)$/);
      await r.getByRole('button', { name: 'Copy image reference' }).click();
      await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(`${registry().host}/group/app@${first.digest}`);

      // By keyboard: Tab to the button and press Enter.
      const target = row(page, 'build-2').getByRole('button', { name: 'Copy commit SHA' });
      await row(page, 'build-2').getByRole('link', { name: (images.main2 as Pushed).commit!.slice(0, 8) }).focus();
      await page.keyboard.press('Tab');
      await expect(target.evaluate((el) => el === document.activeElement)).resolves.toBe(true);
      await page.keyboard.press('Enter');
      await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe((images.main2 as Pushed).commit);
    });
  });

  it('pages through tags newest first', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/r/group/app?limit=3`);
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) {
        seen.push(...(await page.locator('tr[data-tag]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-tag') ?? ''))));
        const older = page.getByRole('link', { name: /Older tags/ });
        if ((await older.count()) === 0) break;
        if (i === 0) await shot(page, 'repository-page-1');
        await older.click();
        await page.waitForLoadState();
      }
      expect(seen).toEqual(['mr-12', 'v1.0.0', 'build-5', 'build-4', 'build-3', 'build-2', 'build-1']);
      await page.getByRole('link', { name: /First page/ }).click();
      await expect(page.locator('tr[data-tag]').first().getAttribute('data-tag')).resolves.toBe('mr-12');
    });
  });

  it('searches from the header box by commit prefix, pipeline, ref, annotation and repository', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/r/group/app`);
      const box = page.getByRole('searchbox', { name: 'Search images' });
      const search = async (q: string): Promise<string[]> => {
        await box.fill(q);
        await box.press('Enter');
        await page.waitForURL(/\/search\?/);
        return page.locator('a.tag-name').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
      };
      expect(await search((images.main3 as Pushed).commit!.slice(0, 9))).toEqual(['/r/group/app/-/tags/build-3']);
      await shot(page, 'search-commit');
      expect(await search('9004')).toEqual(['/r/group/app/-/tags/build-4']);
      expect(await search('v1.0.0')).toEqual(['/r/group/app/-/tags/v1.0.0']);
      expect(await search('release/2.x')).toEqual(['/r/group/multi/-/tags/v2']);
      expect(await search('com.gitlab.ci.merge_request_iid=12')).toEqual(['/r/group/app/-/tags/mr-12']);
      const found = await search('group/mul');
      expect(found).toEqual(['/r/group/multi']);
      expect(await search('main')).toHaveLength(5);
      await shot(page, 'search-ref');
      await search('no-such-thing');
      await expect(page.locator('main').textContent()).resolves.toContain('Nothing found');
      // A result leads to its tag page.
      await search('9001');
      await page.getByRole('link', { name: 'group/app:build-1' }).click();
      await page.waitForURL(`${base}/r/group/app/-/tags/build-1`);
    });
  });

  it('pages through search results', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/search?q=main&limit=2`);
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) {
        seen.push(...(await page.locator('a.tag-name').evaluateAll((as) => as.map((a) => a.textContent ?? ''))));
        const more = page.getByRole('link', { name: /More/ });
        if ((await more.count()) === 0) break;
        await more.click();
        await page.waitForLoadState();
      }
      expect(seen).toEqual(['group/app:build-5', 'group/app:build-4', 'group/app:build-3', 'group/app:build-2', 'group/app:build-1']);
    });
  });

  it('shows every annotation of an index by platform, the raw JSON and the earlier digests', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/r/group/multi/-/tags/v2`);
      await shot(page, 'tag-multi');
      const groups = await page.locator('section h3').evaluateAll((hs) => hs.map((h) => h.textContent ?? ''));
      expect(groups.map((g) => g.split(' ')[0])).toEqual(['Index', 'linux/amd64', 'linux/arm64/v8']);
      for (const label of ['Pipeline ID', 'Source revision (commit)', 'Source code', 'Created', 'Title']) {
        await expect(page.locator('section', { hasText: 'linux/amd64' }).getByText(label, { exact: true }).count()).resolves.toBeGreaterThan(0);
      }
      const raw = await page.locator('#raw ~ details pre').first().textContent();
      expect(JSON.parse(raw ?? '')).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json' });
      const history = page.locator('table.history tbody tr');
      await expect(history.count()).resolves.toBe(1);
      await expect(history.locator('td[data-label="Digest"] code').getAttribute('title')).resolves.toBe((images.multi as Pushed).pushedDigest);
      // It was pushed by skopeo and synced before annotate: a digest without build details.
      await expect(history.locator('td[data-label="Built by"]').textContent()).resolves.toBe('no build details');
      await history.getByRole('link').click();
      await page.waitForURL(/\/r\/group\/multi\/-\/manifests\/sha256:/);
      await shot(page, 'manifest');
    });
  });

  it('renders hostile annotations as inert text, and runs none of their script', async () => {
    await withPage(async (page) => {
      const violations: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
      });
      for (const path of ['/r/evil/app', '/r/evil/app/-/tags/x', '/search?q=evil', `/search?q=${encodeURIComponent('<script>window.__pwned=9</script>')}`]) {
        const res = await page.goto(`${base}${path}`);
        expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
        if (path === '/r/evil/app/-/tags/x') await shot(page, 'tag-hostile');
        if (path === '/r/evil/app') await shot(page, 'repository-hostile');
        // Hover and click everything a user might: nothing may run.
        for (const el of await page.locator('main b, main img, main a').all()) await el.hover().catch(() => undefined);
        await expect(page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).resolves.toBeUndefined();
        await expect(page.locator('main script, main img, main b').count()).resolves.toBe(0);
        const hrefs = await page.locator('a[href]').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
        for (const href of hrefs) expect(href, path).toMatch(/^(\/|#|https:\/\/gitlab\.example\.com\/)/);
      }
      await page.goto(`${base}/r/evil/app/-/tags/x`);
      const main = (await page.locator('main').textContent()) ?? '';
      for (const text of ['javascript:window.__pwned=1', '<script>window.__pwned=2</script>', 'https://evil.example/group/app', 'https://gitlab.example.com.evil.example/x', '<a href="javascript:window.__pwned=8">click</a>']) {
        expect(main).toContain(text);
      }
      expect(violations).toEqual([]);
    });
  });

  it('works without JavaScript, except the copy buttons, which stay hidden', async () => {
    await withPage(
      async (page) => {
        await page.goto(`${base}/r/group/app`);
        await expect(page.getByRole('button', { name: 'Copy commit SHA' }).first().isVisible()).resolves.toBe(false);
        const box = page.getByRole('searchbox', { name: 'Search images' });
        await box.fill('9002');
        await box.press('Enter');
        await page.waitForURL(/\/search\?q=9002/);
        await page.getByRole('link', { name: 'group/app:build-2' }).click();
        await page.waitForURL(/\/tags\/build-2$/);
        await shot(page, 'tag-nojs');
      },
      { javaScript: false },
    );
  });

  it('reads on a narrow screen without sideways scrolling', async () => {
    await withPage(
      async (page) => {
        for (const [path, name] of [
          ['/', 'narrow-repositories'],
          ['/r/group/app', 'narrow-repository'],
          ['/r/group/multi/-/tags/v2', 'narrow-tag'],
          ['/search?q=main', 'narrow-search'],
        ] as const) {
          await page.goto(`${base}${path}`);
          await shot(page, name);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          expect(overflow, path).toBeLessThanOrEqual(0);
        }
      },
      { width: 375 },
    );
  });

  it('lets the keyboard reach the search box, every link and every button', async () => {
    await withPage(async (page) => {
      await page.goto(`${base}/r/group/app`);
      await page.keyboard.press('Tab');
      await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Skip to content');
      const reached = new Set<string>();
      for (let i = 0; i < 200; i++) {
        await page.keyboard.press('Tab');
        const label = await page.evaluate(() => {
          const el = document.activeElement;
          return el ? `${el.tagName}:${el.getAttribute('aria-label') ?? el.getAttribute('name') ?? el.textContent?.trim()}` : '';
        });
        reached.add(label);
      }
      expect(reached).toContain('INPUT:q');
      expect(reached).toContain('BUTTON:Copy commit SHA');
      expect(reached).toContain('BUTTON:Copy image reference');
      expect(reached).toContain('A:#9001');
    });
  });

  it('links only to the GitLab servers named with --gitlab-url or TAGTRAIL_GITLAB_URL', async () => {
    const hrefs = async (url: string): Promise<string[]> => [...(await (await fetch(url)).text()).matchAll(/href="(https:[^"]*)"/g)].map((m) => m[1] as string);
    expect(await hrefs(`${base}/r/group/app`)).toContain(`${PROJECT}/-/pipelines/9001`);
    // The default, https://gitlab.com, and a list in the environment that leaves our server out.
    const envs: Record<string, string>[] = [{}, { TAGTRAIL_GITLAB_URL: 'https://gitlab.com,https://gitlab.other.example' }];
    for (const env of envs) {
      const other = await startServe(['--db', db, '--listen', '127.0.0.1:0'], env);
      try {
        expect(await hrefs(`${other.url}/r/group/app`)).toEqual([]);
      } finally {
        await other.stop();
      }
    }
    const listed = await startServe(['--db', db, '--listen', '127.0.0.1:0'], { TAGTRAIL_GITLAB_URL: `https://gitlab.com, ${GITLAB}` });
    try {
      expect(await hrefs(`${listed.url}/r/group/app`)).toContain(`${PROJECT}/-/pipelines/9001`);
    } finally {
      await listed.stop();
    }
  });
});
