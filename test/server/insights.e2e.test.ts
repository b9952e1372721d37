// Insights end to end: images shaped like real builders' output (BuildKit with attestations,
// kaniko, Docker's classic builder, Jib, ko) and one image built for real with Debian's buildah,
// pushed to a real registry, crawled by `tagtrail sync` into SQLite and PostgreSQL; the derived
// builder of each manifest is read back with SQL, the report through the API (JSON and CSV), and
// the page in chromium (screenshots in test-results/ui/).
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.js';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';
import { runCli } from '../helpers/cli.js';
import { run } from '../helpers/exec.js';
import { useRegistry } from '../helpers/fixtures.js';
import { makeImage, makeIndex, pushImage, skopeoInspectRaw } from '../helpers/images.js';
import { BACKENDS, type Catalog, useBackend } from '../catalog/backends.js';
import { type ServeProcess, ensureBuilt, startServe } from './serve-process.js';
import { expectMatchesContract } from './api-contract.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = new URL('../../test-results/ui/', import.meta.url).pathname;

const registry = useRegistry();

// ---------------------------------------------------------------- builder-shaped configs

/** The base image's own history (alpine, built with Docker's classic builder), as every FROM alpine image carries it. */
const ALPINE = [
  { created: '2024-01-27T00:30:48.624602109Z', created_by: '/bin/sh -c #(nop) ADD file:37a76ec18f9887751cd8473744917d08b7431fc4085097bb6a09d81b41775473 in / ' },
  { created: '2024-01-27T00:30:48.743965523Z', created_by: '/bin/sh -c #(nop)  CMD ["/bin/sh"]', empty_layer: true },
];

/** docker buildx build: Dockerfile steps with BuildKit's comment and suffix. */
const BUILDKIT_HISTORY = [
  ...ALPINE,
  { created: '2026-11-20T10:00:00Z', created_by: 'RUN /bin/sh -c apk add --no-cache ca-certificates # buildkit', comment: 'buildkit.dockerfile.v0' },
  { created: '2026-11-20T10:00:01Z', created_by: 'CMD ["/app"]', comment: 'buildkit.dockerfile.v0', empty_layer: true },
];

/** kaniko: the instruction as written, author kaniko. */
const KANIKO_HISTORY = [...ALPINE, { created: '2026-11-20T10:00:00Z', author: 'kaniko', created_by: 'COPY app /app', comment: '' }];

/** docker build without BuildKit: #(nop) steps, container_config and docker_version. */
const DOCKER_HISTORY = [...ALPINE, { created: '2026-11-20T10:00:00Z', created_by: '/bin/sh -c #(nop) COPY file:5b1d2ed7e5f7a5f1 in /app ' }];
const DOCKER_FIELDS = {
  container: '3f1a9c1b2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8',
  container_config: { Cmd: ['/bin/sh', '-c', '#(nop) COPY file:5b1d2ed7e5f7a5f1 in /app '], Image: 'sha256:05455a08881ea9cf0e752bc48e61bbd71a34c029bb13df01e40e3e70e0d007bd' },
  docker_version: '20.10.24',
};

/** jib-maven-plugin: epoch times, one entry per layer kind. */
const JIB_HISTORY = [
  { created: '2024-01-10T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:abc in / ' },
  { created: '1970-01-01T00:00:00Z', author: 'Jib', created_by: 'jib-maven-plugin:3.4.0', comment: 'dependencies' },
  { created: '1970-01-01T00:00:00Z', author: 'Jib', created_by: 'jib-maven-plugin:3.4.0', comment: 'classes' },
];

/** ko build: the base's history, then ko's kodata and binary layers; the config's author names ko. */
const KO_HISTORY = [
  { author: 'apko', created: '2026-01-01T00:00:00Z', created_by: 'apko', comment: 'This is an apko single-layer image' },
  { author: 'ko', created: '0001-01-01T00:00:00Z', created_by: 'ko build ko://example.com/api', comment: 'kodata contents, at $KO_DATA_PATH' },
  { author: 'ko', created: '0001-01-01T00:00:00Z', created_by: 'ko build ko://example.com/api', comment: 'go build output, at /ko-app/api' },
];

const CI_ANNOTATIONS = {
  'com.gitlab.ci.pipeline_id': '9001',
  'com.gitlab.ci.commit_sha': '4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39',
  'com.gitlab.ci.project_path': 'java/orders',
};

interface Expected {
  ref: string;
  digest: string;
  builder: string;
  source: string;
  family: string;
  platforms: number;
}

let dir: string;
const expected: Record<string, Expected> = {};
let buildahManifest: Record<string, unknown>;

/** A buildah image, for real: from scratch, a label and a command, committed and pushed. */
async function buildahImage(ref: string): Promise<string> {
  const root = join(dir, 'buildah');
  const common = ['--storage-driver', 'vfs', '--root', join(root, 'storage'), '--runroot', join(root, 'run')];
  // An empty auth file of its own: never the machine's credentials.
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'auth.json'), '{"auths":{}}');
  const env = { PATH: process.env.PATH, HOME: root, STORAGE_DRIVER: 'vfs', BUILDAH_ISOLATION: 'chroot', REGISTRY_AUTH_FILE: join(root, 'auth.json') };
  const ctr = (await run('buildah', [...common, 'from', 'scratch'], { env, timeoutMs: 120_000 })).stdout.toString().trim().split('\n').pop()!;
  await run('buildah', [...common, 'config', '--label', 'org.opencontainers.image.revision=4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39', '--cmd', '/app', ctr], { env });
  await run('buildah', [...common, 'commit', ctr, 'tools-buildah'], { env, timeoutMs: 120_000 });
  const digestFile = join(root, 'digest');
  await run('buildah', [...common, 'push', '--tls-verify=false', '--digestfile', digestFile, 'tools-buildah', `docker://${ref}`], { env, timeoutMs: 120_000 });
  return (await readFile(digestFile, 'utf8')).trim();
}

beforeAll(async () => {
  dir = await makeTempDir('insights-e2e');
  const host = registry().host;
  const push = async (name: string, image: Parameters<typeof pushImage>[0], repository: string, e: Omit<Expected, 'ref' | 'digest'>) => {
    const ref = `${host}/${repository}:1`;
    expected[name] = { ref, digest: await pushImage(image, ref), ...e };
  };
  await push('buildkit', await makeIndex(join(dir, 'buildkit'), { attestations: true, image: { history: BUILDKIT_HISTORY } }), 'web/frontend', {
    builder: 'buildkit',
    source: 'none',
    family: 'oci',
    platforms: 2,
  });
  // buildx --annotation: build details on the index; no config needs reading.
  await push(
    'buildkitAnnotated',
    await makeIndex(join(dir, 'buildkit-annotated'), { attestations: true, indexAnnotations: { ...CI_ANNOTATIONS, 'com.gitlab.ci.project_path': 'web/admin' }, image: { history: BUILDKIT_HISTORY } }),
    'web/admin',
    { builder: 'buildkit', source: 'annotations', family: 'oci', platforms: 2 },
  );
  await push('kaniko', await makeImage(join(dir, 'kaniko'), { layers: 1, history: KANIKO_HISTORY }), 'web/worker', { builder: 'kaniko', source: 'none', family: 'oci', platforms: 1 });
  await push('docker', await makeImage(join(dir, 'docker'), { layers: 1, history: DOCKER_HISTORY, configFields: DOCKER_FIELDS, format: 'v2s2' }), 'legacy/monolith', {
    builder: 'docker',
    source: 'none',
    family: 'docker',
    platforms: 1,
  });
  // Annotated, so the default crawl reads no config: "config not read".
  await push('jib', await makeImage(join(dir, 'jib'), { layers: 2, history: JIB_HISTORY, configFields: { created: '1970-01-01T00:00:00Z' }, manifestAnnotations: CI_ANNOTATIONS }), 'java/orders', {
    builder: 'unread',
    source: 'annotations',
    family: 'oci',
    platforms: 1,
  });
  await push(
    'ko',
    await makeIndex(join(dir, 'ko'), {
      image: {
        layers: 1,
        history: KO_HISTORY,
        configFields: { author: 'github.com/ko-build/ko', created: '0001-01-01T00:00:00Z' },
        manifestAnnotations: { 'org.opencontainers.image.base.name': 'cgr.dev/chainguard/static:latest', 'org.opencontainers.image.base.digest': `sha256:${'5'.repeat(64)}` },
      },
    }),
    'go/api',
    { builder: 'ko', source: 'none', family: 'oci', platforms: 2 },
  );
  const buildahRef = `${host}/tools/buildah-real:1`;
  expected.buildah = { ref: buildahRef, digest: await buildahImage(buildahRef), builder: 'buildah', source: 'labels', family: 'oci', platforms: 1 };
  buildahManifest = JSON.parse((await skopeoInspectRaw(`${host}/tools/buildah-real@${expected.buildah.digest}`)).toString('utf8')) as Record<string, unknown>;
}, 300_000);

afterAll(async () => {
  if (dir) await removeTempDir(dir);
});

async function syncInto(db: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Record<string, number>> {
  const r = await runCli(['sync', '--registry', registry().url, '--db', db, '-o', 'json', ...extra], { env });
  if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

async function derived(catalog: Catalog): Promise<Record<string, { builder: string; source: string; family: string; platforms: number; evidence: string[] }>> {
  const digests = Object.values(expected).map((e) => `'${e.digest}'`);
  const rows = await catalog.sql(`SELECT digest, builder, build_source, media_family, platform_count, builder_evidence FROM manifests WHERE digest IN (${digests.join(', ')})`);
  const byDigest = new Map(rows.map((r) => [r.digest as string, r]));
  return Object.fromEntries(
    Object.entries(expected).map(([name, e]) => {
      const r = byDigest.get(e.digest);
      return [name, { builder: r?.builder as string, source: r?.build_source as string, family: r?.media_family as string, platforms: Number(r?.platform_count), evidence: JSON.parse(String(r?.builder_evidence ?? '[]')) as string[] }];
    }),
  );
}

describe('the real buildah image', () => {
  it("carries buildah's own marks: io.buildah.version in the config, empty base annotations on the manifest", () => {
    expect(buildahManifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(buildahManifest.annotations).toEqual({ 'org.opencontainers.image.base.digest': '', 'org.opencontainers.image.base.name': '' });
  });
});

describe.each(BACKENDS)('insights on %s', (backendName) => {
  const backend = useBackend(backendName);
  let catalog: Catalog;
  let app: Hono;
  let firstSync: Record<string, number>;

  beforeAll(async () => {
    catalog = await backend().fresh();
    firstSync = await syncInto(catalog.url);
    app = createApp({ store: catalog.store });
  }, 120_000);

  it('derives each manifest’s builder, build-details source, media type family and platform count at ingest', async () => {
    const got = await derived(catalog);
    for (const [name, e] of Object.entries(expected)) {
      expect({ name, ...got[name], evidence: undefined }).toEqual({ name, builder: e.builder, source: e.source, family: e.family, platforms: e.platforms, evidence: undefined });
    }
    expect(got.buildah!.evidence).toEqual([expect.stringMatching(/^config label io\.buildah\.version=1\.\d+\.\d+$/)]);
    expect(got.buildkit!.evidence[0]).toMatch(/attestation manifest/);
    expect(got.docker!.evidence).toEqual(['history[2].created_by has "#(nop)"', 'config docker_version=20.10.24']);
    expect(got.ko!.evidence).toContain('platform manifest: history[2].author=ko');
    // Configs were read only for images without build annotations: the two annotated ones cost none.
    expect(firstSync.configsFetched).toBe(1 /* kaniko */ + 1 /* docker */ + 2 /* ko */ + 2 /* buildkit */ + 1 /* buildah */);
  });

  it("shows a manifest's builder and its evidence in the image API", async () => {
    const res = await app.request(`/api/v1/images/${expected.docker!.digest}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { mediaType: string; insight: Record<string, unknown> };
    expectMatchesContract('GET', `/api/v1/images/${expected.docker!.digest}`, res.status, body);
    expect(body.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(body.insight).toEqual({
      builder: 'docker',
      confidence: 'high',
      evidence: ['history[2].created_by has "#(nop)"', 'config docker_version=20.10.24'],
      buildSource: 'none',
      mediaFamily: 'docker',
      platformCount: 1,
    });
  });

  it('serves the weekly report as JSON', async () => {
    const res = await app.request('/api/v1/insights');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      groupBy: string;
      totals: { images: number; builders: Record<string, number>; buildSources: Record<string, number>; mediaTypes: Record<string, number>; multiPlatform: number; shares: { withBuildDetails: number; multiPlatform: number } };
      weeks: { week: string; images: number }[];
      groups: { name: string; totals: { images: number } }[];
    };
    expectMatchesContract('GET', '/api/v1/insights', res.status, body);
    expect(body.groupBy).toBe('namespace');
    expect(body.totals).toMatchObject({
      images: 7,
      builders: { buildkit: 2, kaniko: 1, docker: 1, jib: 0, ko: 1, buildah: 1, unknown: 0, unread: 1 },
      buildSources: { annotations: 2, referrer: 0, labels: 1, none: 4 },
      mediaTypes: { oci: 6, docker: 1, other: 0 },
      multiPlatform: 3,
      shares: { withBuildDetails: 0.4286, multiPlatform: 0.4286 },
    });
    expect(body.weeks).toHaveLength(52);
    expect(body.weeks.at(-1)!.images).toBe(7);
    expect(Object.fromEntries(body.groups.map((g) => [g.name, g.totals.images]))).toEqual({ web: 3, legacy: 1, java: 1, go: 1, tools: 1 });

    const web = (await (await app.request('/api/v1/insights?namespace=web&interval=week')).json()) as { groupBy: string; groups: { name: string }[]; totals: { images: number } };
    expectMatchesContract('GET', '/api/v1/insights?namespace=web&interval=week', 200, web);
    expect(web.groupBy).toBe('repository');
    expect(web.groups.map((g) => g.name).sort()).toEqual(['web/admin', 'web/frontend', 'web/worker']);
    expect(web.totals.images).toBe(3);
  });

  it('exports the report as CSV', async () => {
    for (const path of ['/api/v1/insights.csv?namespace=web', '/api/v1/insights?namespace=web&format=csv']) {
      const res = await app.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
      expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="tagtrail-insights-web-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv"$/);
      const lines = (await res.text()).split('\r\n');
      expect(lines.at(-1)).toBe('');
      const header = lines[0]!.split(',');
      expect(header.slice(0, 4)).toEqual(['week_start', 'scope', 'name', 'images']);
      const rows = lines.slice(1, -1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
      const total = rows.find((r) => r.week_start === 'total' && r.scope === 'namespace');
      expect(total).toMatchObject({ name: 'web', images: '3', builder_buildkit: '2', builder_kaniko: '1', build_details_annotations: '1', multi_platform: '2' });
      expect(rows.filter((r) => r.week_start === 'total' && r.scope === 'repository').map((r) => r.name).sort()).toEqual(['web/admin', 'web/frontend', 'web/worker']);
    }
  });

  it('answers a bad parameter with a 400 naming it', async () => {
    for (const [query, name] of [
      ['interval=day', 'interval'],
      ['from=yesterday', 'from'],
      ['namespace=Web', 'namespace'],
      ['repository=web/admin&namespace=go', 'repository'],
      ['from=2026-02-01&to=2026-01-01', 'from'],
      ['from=2000-01-01&to=2026-01-01', 'from'],
      ['format=xml', 'format'],
      ['bogus=1', 'bogus'],
    ] as const) {
      const res = await app.request(`/api/v1/insights?${query}`);
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expectMatchesContract('GET', `/api/v1/insights?${query}`, res.status, body);
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error.code).toBe('USAGE');
      expect(body.error.message, query).toContain(`parameter ${name}`);
    }
    expect((await app.request('/api/v1/insights.csv?format=json')).status).toBe(400);
  });

  it('a second sync reads nothing new', async () => {
    const again = await syncInto(catalog.url);
    expect(again).toMatchObject({ manifestsFetched: 0, configsFetched: 0, manifestsStored: 0 });
  });
});

describe('--read-configs', () => {
  const backend = useBackend('sqlite');

  it('reads the config of annotated images too, once per config digest, and tells their builder', async () => {
    const catalog = await backend().fresh();
    const first = await syncInto(catalog.url, ['--read-configs']);
    // Every image config, annotated or not: the default's 7, plus Jib's and the annotated index's two.
    expect(first.configsFetched).toBe(7 + 1 + 2);
    const got = await derived(catalog);
    expect(got.jib).toMatchObject({ builder: 'jib', source: 'annotations', evidence: ['history[2].created_by=jib-maven-plugin:3.4.0'] });
    expect(got.buildkitAnnotated).toMatchObject({ builder: 'buildkit', source: 'annotations' });
    const again = await syncInto(catalog.url, [], { TAGTRAIL_READ_CONFIGS: '1' });
    expect(again).toMatchObject({ manifestsFetched: 0, configsFetched: 0 });
  });

  it('turned on for a catalog synced without it, reads the configs of the images left "config not read", once', async () => {
    const catalog = await backend().fresh();
    await syncInto(catalog.url);
    expect((await derived(catalog)).jib).toMatchObject({ builder: 'unread' });
    const second = await syncInto(catalog.url, ['--read-configs']);
    // Only the Jib image was "config not read"; the annotated BuildKit index is known by its attestations.
    expect(second).toMatchObject({ manifestsFetched: 0, configsFetched: 1 });
    const got = await derived(catalog);
    expect(got.jib).toMatchObject({ builder: 'jib', source: 'annotations' });
    const insights = (await (await createApp({ store: catalog.store }).request('/api/v1/insights?namespace=java')).json()) as { totals: { builders: Record<string, number> } };
    expect(insights.totals.builders).toMatchObject({ jib: 1, unread: 0 });
    expect(await syncInto(catalog.url, ['--read-configs'])).toMatchObject({ manifestsFetched: 0, configsFetched: 0 });
  });

  it('refuses a TAGTRAIL_READ_CONFIGS that is not a yes or no', async () => {
    const catalog = await backend().fresh();
    const r = await runCli(['sync', '--registry', registry().url, '--db', catalog.url], { env: { TAGTRAIL_READ_CONFIGS: 'maybe' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('TAGTRAIL_READ_CONFIGS');
  });
});

describe('the insights page in chromium', () => {
  let server: ServeProcess;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Debian's chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
    await mkdir(SHOTS, { recursive: true });
    ensureBuilt();
    const db = `sqlite:${join(dir, 'serve.db')}`;
    await syncInto(db);
    server = await startServe(['--db', db, '--listen', '127.0.0.1:0', '--reconcile-interval', '0'], {});
    base = server.url;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('renders the four charts with titles, the figures and a CSV link that downloads valid CSV, without scripts', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const violations: string[] = [];
    try {
      const page = await context.newPage();
      page.on('console', (m) => {
        if (/Content.Security.Policy|Refused/i.test(m.text())) violations.push(m.text());
      });
      const res = await page.goto(`${base}/`);
      expect(res?.status()).toBe(200);
      await page.getByRole('link', { name: 'Insights' }).click();
      await page.waitForURL(/\/insights$/);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('How images are built');
      const charts = page.locator('svg.chart[role="img"]');
      await expect(charts.count()).resolves.toBe(4);
      await expect(page.locator('svg.chart > title').allTextContents()).resolves.toEqual(['Builders', 'Build details, by source', 'OCI or Docker media types', 'Multi-platform images']);
      await expect(page.getByRole('img', { name: /Builders/ }).count()).resolves.toBe(1);
      // Bars: one <rect> per non-zero series in the current week, each with its figures as a tooltip title.
      await expect(page.locator('#chart-builders-title').locator('xpath=..').locator('rect > title').allTextContents()).resolves.toEqual(
        expect.arrayContaining([expect.stringMatching(/BuildKit \(buildx\): 2 of 7 \(29 %\)$/), expect.stringMatching(/unknown: config not read: 1 of 7/)]),
      );
      await expect(page.locator('dl.summary').textContent()).resolves.toContain('Images7');
      await expect(page.locator('table.groups tbody tr').count()).resolves.toBe(5);
      await page.screenshot({ path: `${SHOTS}insights.png`, fullPage: true });

      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download CSV' }).click()]);
      expect(download.suggestedFilename()).toMatch(/^tagtrail-insights-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
      const csv = await readFile((await download.path())!, 'utf8');
      const lines = csv.split('\r\n').filter((l) => l !== '');
      const header = lines[0]!.split(',');
      expect(lines.every((l) => l.split(',').length === header.length)).toBe(true);
      const total = lines.map((l) => l.split(',')).find((c) => c[0] === 'total' && c[1] === 'all')!;
      expect(Number(total[header.indexOf('images')])).toBe(7);
      expect(Number(total[header.indexOf('builder_buildah')])).toBe(1);

      // One namespace, from the groups table.
      await page.getByRole('link', { name: 'web', exact: true }).click();
      await page.waitForURL(/namespace=web/);
      await expect(page.locator('table.groups tbody tr').count()).resolves.toBe(3);
      await expect(page.locator('dl.summary').textContent()).resolves.toContain('Images3');
      // The tag page says how its image was built.
      await page.goto(`${base}/r/tools/buildah-real/-/tags/1`);
      await expect(page.locator('dl.facts').first().textContent()).resolves.toMatch(/Built withbuildah or podman \(config label io\.buildah\.version=1\.\d+\.\d+\)/);
      expect(violations).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('is readable at 375 px: no horizontal scrolling, charts fit', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
    try {
      const page = await context.newPage();
      await page.goto(`${base}/insights`);
      const widths = await page.evaluate(() => ({
        doc: document.documentElement.scrollWidth,
        charts: Array.from(document.querySelectorAll('svg.chart'), (s) => s.getBoundingClientRect().width),
      }));
      expect(widths.doc).toBeLessThanOrEqual(375);
      for (const w of widths.charts) expect(w).toBeLessThanOrEqual(375);
      await page.screenshot({ path: `${SHOTS}insights-375.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });
});

describe('serve --read-configs', () => {
  it("reconciles with every new config read, so the annotated Jib image's builder is known", async () => {
    ensureBuilt();
    const db = `sqlite:${join(dir, 'serve-read-configs.db')}`;
    const serve = await startServe(['--db', db, '--listen', '127.0.0.1:0', '--registry', registry().url, '--reconcile-interval', '3600', '--read-configs'], {});
    try {
      const done = await serve.waitForLog((l) => l.msg.startsWith('reconcile complete'), 60_000);
      expect(done).toMatchObject({ configsFetched: 10 });
      const res = await fetch(`${serve.url}/api/v1/images/${expected.jib!.digest}`);
      const body = (await res.json()) as { insight: { builder: string; buildSource: string } };
      expect(body.insight).toMatchObject({ builder: 'jib', buildSource: 'annotations' });
    } finally {
      await serve.stop();
    }
  });
});
