// The registry browser under a repository of 10,000 tags: server time (app.request, from the
// request to the last byte of the body) for the repository page and the search page, p50 and
// p95 over 200 requests each, and the bytes of each page. SQLite catalog in a temp dir, filled
// directly through the Store. Goal: p95 under 100 ms.
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { openStore } from '../src/catalog/open.js';
import { createApp } from '../src/server/app.js';
import { mountUi } from '../src/server/ui/index.js';
import { imageRecord, indexRecord } from '../test/helpers/records.js';
import { fmt, percentile, writeResults } from './lib.js';
import { makeTempDir, removeTempDir } from '../test/helpers/cleanup.js';

const TAGS = 10_000;
const REQUESTS = 200;
const WARMUP = 20;
const REPOSITORY = 'group/big-app';
const PROJECT = 'https://gitlab.example.com/group/big-app';
const BRANCHES = ['main', 'develop', 'release/1.x', 'feature/login', 'feature/search'];

function commitOf(i: number): string {
  return (i.toString(16).padStart(8, '0') + 'c0ffee'.repeat(6)).slice(0, 40);
}

function annotations(i: number): Record<string, string> {
  const pipeline = String(100_000 + Math.floor(i / 2));
  const branch = BRANCHES[i % BRANCHES.length] as string;
  const commit = commitOf(i);
  return {
    'com.gitlab.ci.pipeline_id': pipeline,
    'com.gitlab.ci.pipeline_url': `${PROJECT}/-/pipelines/${pipeline}`,
    'com.gitlab.ci.job_id': String(500_000 + i),
    'com.gitlab.ci.job_name': i % 2 === 0 ? 'build' : 'build:arm',
    'com.gitlab.ci.job_url': `${PROJECT}/-/jobs/${500_000 + i}`,
    'com.gitlab.ci.project_url': PROJECT,
    'com.gitlab.ci.project_path': 'group/big-app',
    'com.gitlab.ci.commit_sha': commit,
    'com.gitlab.ci.commit_ref_name': branch,
    'com.gitlab.ci.branch': branch,
    'com.gitlab.ci.user_login': `dev${i % 7}`,
    'org.opencontainers.image.revision': commit,
    'org.opencontainers.image.source': PROJECT,
    'org.opencontainers.image.created': new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
    ...(i % 10 === 0 ? { 'com.gitlab.ci.merge_request_iid': String(i / 10) } : {}),
  };
}

interface Timing {
  page: string;
  path: string;
  p50: number;
  p95: number;
  max: number;
  bytes: number;
  gzipBytes: number;
  rows: number;
}

/** A rough guess for `npm run bench` to announce; a full run's measured duration replaces it (bench/results/durations.json). */
export const estimatedSeconds = 120;

export default async function bench(): Promise<void> {
  const dir = await makeTempDir('bench-ui');
  const store = await openStore(`sqlite:${join(dir, 'catalog.db')}`);
  try {
    const fillStarted = Date.now();
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < TAGS; i++) {
      // One in ten is a two-platform index; one in twenty has no build details.
      const record = i % 20 === 19 ? imageRecord() : i % 10 === 3 ? indexRecord({ annotations: annotations(i), childAnnotations: annotations(i) }) : imageRecord({ annotations: annotations(i) });
      await store.putManifest(record);
      await store.setTag(REPOSITORY, `build-${i}`, record.digest, new Date(t0 + i * 60_000));
    }
    const fillSeconds = (Date.now() - fillStarted) / 1000;

    const app = createApp({ store, ui: (a) => mountUi(a, { store, gitlabUrls: ['https://gitlab.example.com'], registryHost: 'registry.example.com', now: () => new Date(t0 + TAGS * 60_000) }) });
    const fetchPage = async (path: string): Promise<string> => {
      const res = await app.request(path);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      return text;
    };

    // The cursors of the first 40 pages, so the deep-page run reads all over the table.
    const pageLinks: string[] = [`/r/${REPOSITORY}`];
    for (let i = 0; i < 40; i++) {
      const m = /href="([^"]*)" rel="next"/.exec(await fetchPage(pageLinks[pageLinks.length - 1] as string));
      if (!m) break;
      pageLinks.push((m[1] as string).replace(/&amp;/g, '&'));
    }

    const cases: { page: string; paths: string[] }[] = [
      { page: 'repository, first page', paths: [`/r/${REPOSITORY}`] },
      { page: 'repository, pages 2-41 (cursor)', paths: pageLinks.slice(1) },
      { page: 'search: commit prefix', paths: Array.from({ length: 50 }, (_, k) => `/search?q=${commitOf(k * 197).slice(0, 8)}`) },
      { page: 'search: pipeline id', paths: Array.from({ length: 50 }, (_, k) => `/search?q=${100_000 + k * 97}`) },
      { page: 'search: branch (2,000 matches)', paths: ['/search?q=ref%3Adevelop'] },
      { page: 'search: key=value', paths: ['/search?q=com.gitlab.ci.job_name%3Dbuild%3Aarm'] },
      { page: 'search: name (ref and repository)', paths: ['/search?q=main'] },
      { page: 'tag page (index)', paths: ['/r/group/big-app/-/tags/build-9993'] },
      { page: 'repositories', paths: ['/'] },
    ];

    const timings: Timing[] = [];
    for (const c of cases) {
      for (let i = 0; i < WARMUP; i++) await fetchPage(c.paths[i % c.paths.length] as string);
      const ms: number[] = [];
      let bytes = 0;
      let gzipBytes = 0;
      let rows = 0;
      for (let i = 0; i < REQUESTS; i++) {
        const path = c.paths[i % c.paths.length] as string;
        const started = process.hrtime.bigint();
        const text = await fetchPage(path);
        ms.push(Number(process.hrtime.bigint() - started) / 1e6);
        if (i === 0) {
          bytes = Buffer.byteLength(text);
          gzipBytes = gzipSync(text).length;
          rows = (text.match(/<tr data-tag=/g) ?? []).length || (text.match(/<tr>/g) ?? []).length;
        }
      }
      ms.sort((a, b) => a - b);
      timings.push({ page: c.page, path: c.paths[0] as string, p50: percentile(ms, 50), p95: percentile(ms, 95), max: ms[ms.length - 1] as number, bytes, gzipBytes, rows });
    }

    // The catalog queries alone, for what the rendering adds on top.
    const baseline = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
      for (let i = 0; i < WARMUP; i++) await fn();
      const ms: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const started = process.hrtime.bigint();
        await fn();
        ms.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
      ms.sort((a, b) => a - b);
      timings.push({ page: name, path: '', p50: percentile(ms, 50), p95: percentile(ms, 95), max: ms[ms.length - 1] as number, bytes: 0, gzipBytes: 0, rows: 50 });
    };
    await baseline('(store.listTags alone, first page)', () => store.listTags(REPOSITORY, { limit: 50 }));
    await baseline('(store.searchImages alone, branch)', () => store.searchImages({ ref: 'develop', limit: 50 }));

    const goalMet = timings.filter((t) => t.page.startsWith('repository') || t.page.startsWith('search')).every((t) => t.p95 < 100);
    const md = [
      `## Registry browser: ${TAGS.toLocaleString('en')} tags in one repository (SQLite)`,
      '',
      `Server time per page (app.request, to the last byte), ${REQUESTS} requests after ${WARMUP} warm-up, 50 rows a page. Goal: p95 under 100 ms for the repository and search pages: ${goalMet ? 'met' : 'NOT met'}.`,
      '',
      '| page | p50 ms | p95 ms | max ms | rows | bytes | gzip bytes |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...timings.map((t) => `| ${t.page} | ${fmt(t.p50)} | ${fmt(t.p95)} | ${fmt(t.max)} | ${t.rows} | ${t.bytes ? t.bytes.toLocaleString('en') : ''} | ${t.gzipBytes ? t.gzipBytes.toLocaleString('en') : ''} |`),
      '',
      `Filling the catalog through the Store took ${fmt(fillSeconds)} s.`,
    ].join('\n');
    await writeResults('ui', { tags: TAGS, requests: REQUESTS, fillSeconds, goalMet, timings }, md);
  } finally {
    await store.close();
    await removeTempDir(dir);
  }
}
