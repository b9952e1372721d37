import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { SyncSummary } from '../../src/catalog/sync.js';
import { MANIFEST_ACCEPT } from '../../src/oci/mediatypes.js';
import { trackChild } from '../../test/helpers/cleanup.js';
import { BIN } from '../../test/helpers/cli.js';
import type { TestRegistry } from '../../test/helpers/registry.js';
import { fmt } from '../lib.js';
import { log, now } from './common.js';
import { LAYOUT_REPOSITORIES, type Layout } from './registry.js';
import { CHILD_TIMEOUT_MS, SYNC_CONCURRENCY } from './settings.js';
import { cpuSpent } from './cpu.js';

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Peak RSS (KiB) as the process reported it at exit, else the highest VmHWM sampled. */
  peakRssKb: number;
  /** Peak V8 heap in use and peak memory of buffers (bytes), when the process reported them. */
  peakHeap?: number;
  liveHeap?: number;
  peakExternal?: number;
  /** CPU time of the process, all threads, ms, when it reported it. */
  cpuMs?: number;
  /** [ms since start, VmRSS KiB], every 50 ms. */
  samples: [number, number][];
}

async function runChild(args: string[], timeoutMs = CHILD_TIMEOUT_MS): Promise<ChildResult> {
  const started = now();
  const child: ChildProcess = spawn(process.execPath, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  // Killed when the bench ends early (bench/run.ts ends through process.exit on a signal).
  trackChild(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const samples: [number, number][] = [];
  let hwm = 0;
  const poll = setInterval(() => {
    readFile(`/proc/${child.pid}/status`, 'utf8').then(
      (status) => {
        const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
        hwm = Math.max(hwm, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
        if (Number.isFinite(rss)) samples.push([Math.round(now() - started), rss]);
      },
      () => undefined,
    );
  }, 50);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => {
    clearInterval(poll);
    clearTimeout(timer);
  });
  const line = /BENCH_MEMORY=(\{.*\})/.exec(stderr)?.[1];
  const reported = line ? (JSON.parse(line) as { maxRssKb: number; heapUsed: number; live: number; external: number; cpuMs?: number }) : undefined;
  return {
    code,
    stdout,
    stderr,
    wallMs: now() - started,
    peakRssKb: reported?.maxRssKb ?? hwm,
    ...(reported ? { peakHeap: reported.heapUsed, liveHeap: reported.live, peakExternal: reported.external } : {}),
    ...(reported?.cpuMs !== undefined ? { cpuMs: reported.cpuMs } : {}),
    samples,
  };
}

export interface SyncRun {
  store: 'sqlite' | 'postgres';
  layout: Layout;
  repositories: number;
  tags: number;
  pass: 'first' | 'second';
  summary: Pick<SyncSummary, 'complete' | 'repositories' | 'tags' | 'manifestsFetched' | 'configsFetched' | 'manifestsStored' | 'added' | 'unchanged' | 'errorCount' | 'durationMs'>;
  wallMs: number;
  tagsPerSecond: number;
  /** CPU time of the sync process (all its threads, start-up included) per tag, ms: steadier than its rate on a loaded machine. */
  cpuMsPerTag: number;
  requests: { manifestGet: number; manifestHead: number; blobGet: number; total: number };
  peakRssMiB: number;
  peakHeapMiB: number;
  /** The largest V8 heap in use right after a major GC: live objects, not garbage yet to collect. */
  liveHeapMiB: number;
  peakExternalMiB: number;
  /** RSS at 25, 50, 75 and 100 % of the run, MiB. */
  rssTimelineMiB: number[];
  catalogMiB?: number;
  /** CPU per tag of the registry and of the PostgreSQL server (0 for SQLite) while the sync ran; absent in older results. */
  beside?: BesideCpu;
}

/** CPU ms per tag spent beside the measured process: the registry's, the counting proxy's, the PostgreSQL server's. */
export interface BesideCpu {
  registryMsPerTag: number;
  /** This bench process: the counting proxy in front of the registry, every request of the run passes through it; absent in older results. */
  proxyMsPerTag?: number;
  /** Absent where the PostgreSQL server's pid could not be read (and for SQLite and the raw loops). */
  databaseMsPerTag?: number;
}

/** `databasePid`: the PostgreSQL server's postmaster, whose CPU is counted beside the sync's. */
export async function runSync(
  registry: TestRegistry,
  db: string,
  hook: string,
  store: 'sqlite' | 'postgres',
  tags: number,
  pass: 'first' | 'second',
  layout: Layout = 'deep',
  databasePid?: number,
): Promise<SyncRun> {
  registry.resetRequests();
  const prefix = layout === 'deep' ? ['--repository', 'bench'] : layout === 'wide' ? ['--repository', 'wide'] : [];
  // This process's CPU meanwhile is the counting proxy's: the sync runs in a child.
  const cpu = cpuSpent(registry.pid, store === 'postgres' ? databasePid : undefined);
  const r = await runChild(['--import', hook, BIN, 'sync', '--registry', registry.url, ...prefix, '--db', db, '--output', 'json', '--concurrency', String(SYNC_CONCURRENCY)]);
  const spent = cpu();
  if (r.code !== 0) throw new Error(`tagtrail sync exited ${r.code}: ${r.stderr.slice(-2000)} ${r.stdout.slice(-2000)}`);
  const s = JSON.parse(r.stdout) as SyncSummary;
  const at = (share: number): number => {
    const last = r.samples[r.samples.length - 1]?.[0] ?? 0;
    const found = r.samples.find(([t]) => t >= share * last) ?? r.samples[r.samples.length - 1];
    return Math.round(((found?.[1] ?? NaN) / 1024) * 10) / 10;
  };
  const run: SyncRun = {
    store,
    layout,
    repositories: LAYOUT_REPOSITORIES[layout],
    tags,
    pass,
    summary: {
      complete: s.complete,
      repositories: s.repositories,
      tags: s.tags,
      manifestsFetched: s.manifestsFetched,
      configsFetched: s.configsFetched,
      manifestsStored: s.manifestsStored,
      added: s.added,
      unchanged: s.unchanged,
      errorCount: s.errorCount,
      durationMs: s.durationMs,
    },
    wallMs: Math.round(r.wallMs),
    tagsPerSecond: s.tags / (s.durationMs / 1000),
    cpuMsPerTag: (r.cpuMs ?? NaN) / s.tags,
    requests: {
      manifestGet: registry.count({ method: 'GET', kind: 'manifest' }),
      manifestHead: registry.count({ method: 'HEAD', kind: 'manifest' }),
      blobGet: registry.count({ method: 'GET', kind: 'blob' }),
      total: registry.count(),
    },
    peakRssMiB: Math.round((r.peakRssKb / 1024) * 10) / 10,
    peakHeapMiB: Math.round(((r.peakHeap ?? NaN) / 1048576) * 10) / 10,
    liveHeapMiB: Math.round(((r.liveHeap ?? NaN) / 1048576) * 10) / 10,
    peakExternalMiB: Math.round(((r.peakExternal ?? NaN) / 1048576) * 10) / 10,
    rssTimelineMiB: [0.25, 0.5, 0.75, 1].map(at),
    beside: { registryMsPerTag: spent.registryMs / s.tags, proxyMsPerTag: spent.processMs / s.tags, ...(spent.databaseMs === undefined ? {} : { databaseMsPerTag: spent.databaseMs / s.tags }) },
  };
  if (db.startsWith('sqlite:')) {
    const path = db.slice('sqlite:'.length);
    const size = [path, `${path}-wal`].filter(existsSync).reduce((a, f) => a + statSync(f).size, 0);
    run.catalogMiB = Math.round((size / 1048576) * 10) / 10;
  }
  log(
    `sync ${pass} ${store} ${tags} tags (${layout}): ${fmt(run.tagsPerSecond, 0)} tags/s, ${fmt(run.cpuMsPerTag, 2)} ms CPU per tag, ${run.requests.manifestGet} manifest GETs, ${run.requests.manifestHead} HEADs, peak RSS ${run.peakRssMiB} MiB, live heap ${run.liveHeapMiB} MiB`,
  );
  return run;
}

export interface RawRun {
  mode: 'head' | 'head+get';
  requests: number;
  ms: number;
  /** Tags per second. */
  rate: number;
  /** CPU time of the loop's process per tag, ms. */
  cpuMsPerTag: number;
  /** The registry's CPU per tag while the loop ran; absent in older results. */
  beside?: BesideCpu;
}

export async function rawLoop(script: string, registry: TestRegistry, refsFile: string, mode: 'head' | 'head+get'): Promise<RawRun> {
  registry.resetRequests();
  const cpu = cpuSpent(registry.pid, undefined);
  const r = await runChild([script, registry.url, String(SYNC_CONCURRENCY), refsFile, mode, MANIFEST_ACCEPT]);
  const spent = cpu();
  if (r.code !== 0) throw new Error(`raw loop exited ${r.code}: ${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout) as { ms: number; n: number; errors: number; cpuMs: number };
  if (out.errors > 0) throw new Error(`raw loop: ${out.errors} requests failed`);
  const run: RawRun = {
    mode,
    requests: registry.count(),
    ms: Math.round(out.ms),
    rate: out.n / (out.ms / 1000),
    cpuMsPerTag: out.cpuMs / out.n,
    beside: { registryMsPerTag: spent.registryMs / out.n, proxyMsPerTag: spent.processMs / out.n },
  };
  log(`raw ${mode}: ${fmt(run.rate, 0)} tags/s, ${fmt(run.cpuMsPerTag, 2)} ms CPU per tag`);
  return run;
}

