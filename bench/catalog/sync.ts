import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type PostgresCluster, createDatabase } from '../../test/helpers/postgres.js';
import type { TestRegistry } from '../../test/helpers/registry.js';
import { fmt } from '../lib.js';
import { type BesideCpu, type RawRun, type SyncRun, rawLoop, runSync } from './child.js';
import { buildChildPrograms } from './programs.js';
import { postmasterPid, totalAndCeilingCells } from './cpu.js';
import { int, load, log, now, passMiss } from './common.js';
import { LAYOUT_REPOSITORIES, type RegistryImage, fillRegistry, uploadBlobs } from './registry.js';
import { MAX_TAGS, MEMORY_ONLY, REPOSITORIES, RSS_RATIO_GOAL, SPEED_RATIO_GOAL, SYNC_CONCURRENCY, SYNC_SIZES } from './settings.js';


export interface SyncPart {
  repositories: number;
  sizes: number[];
  fill: { tags: number; ms: number; perSecond: number }[];
  runs: SyncRun[];
  raw: RawRun[];
  rawHeadRate: number;
  rawHeadGetRate: number;
  load: { before: number[]; after: number[] };
}

export async function syncPart(work: string, registry: TestRegistry, cluster: PostgresCluster | undefined, images: RegistryImage[]): Promise<SyncPart> {
  const before = load();
  const base = `http://${registry.directHost}`;
  const { rssHook: hook, rawLoop: rawScript } = await buildChildPrograms(work);
  const blobs = await uploadBlobs(base);
  const postmaster = postmasterPid(cluster);
  const fill: SyncPart['fill'] = [];
  const runs: SyncRun[] = [];
  const raw: RawRun[] = [];
  let filled = 0;
  for (const size of SYNC_SIZES) {
    const started = now();
    await fillRegistry(base, blobs, filled, size, images);
    const ms = now() - started;
    fill.push({ tags: size - filled, ms: Math.round(ms), perSecond: (size - filled) / (ms / 1000) });
    log(`registry filled to ${size} tags (${fmt((size - filled) / (ms / 1000), 0)} PUT/s)`);
    filled = size;
    const db = `sqlite:${join(work, `sync-${size}.db`)}`;
    if (size !== MAX_TAGS || MEMORY_ONLY) {
      runs.push(await runSync(registry, db, hook, 'sqlite', size, 'first'));
      if (cluster) runs.push(await runSync(registry, await createDatabase(cluster, `sync_${size}`), hook, 'postgres', size, 'first', 'deep', postmaster));
      continue;
    }
    // The largest size: the throughput runs, with the raw baseline before, between and after.
    const refsFile = join(work, 'refs.json');
    await writeFile(refsFile, JSON.stringify(images.slice(0, size).map((m) => [m.repository, m.tag])));
    raw.push(await rawLoop(rawScript, registry, refsFile, 'head'));
    raw.push(await rawLoop(rawScript, registry, refsFile, 'head+get'));
    runs.push(await runSync(registry, db, hook, 'sqlite', size, 'first'));
    runs.push(await runSync(registry, db, hook, 'sqlite', size, 'second'));
    raw.push(await rawLoop(rawScript, registry, refsFile, 'head'));
    if (cluster) {
      const url = await createDatabase(cluster, `sync_${size}`);
      runs.push(await runSync(registry, url, hook, 'postgres', size, 'first', 'deep', postmaster));
      runs.push(await runSync(registry, url, hook, 'postgres', size, 'second', 'deep', postmaster));
      raw.push(await rawLoop(rawScript, registry, refsFile, 'head'));
    }
  }
  if (MEMORY_ONLY) return { repositories: REPOSITORIES, sizes: SYNC_SIZES, fill, runs, raw, rawHeadRate: NaN, rawHeadGetRate: NaN, load: { before, after: load() } };
  // The control for memory: as many tags, in repositories as small as the smallest deep run's.
  const wideBlobs = await uploadBlobs(base, 'wide');
  const wide: RegistryImage[] = [];
  const started = now();
  await fillRegistry(base, wideBlobs, 0, MAX_TAGS, wide, 'wide');
  fill.push({ tags: MAX_TAGS, ms: Math.round(now() - started), perSecond: MAX_TAGS / ((now() - started) / 1000) });
  log(`registry filled with ${MAX_TAGS} more tags in ${LAYOUT_REPOSITORIES.wide} repositories`);
  runs.push(await runSync(registry, `sqlite:${join(work, 'sync-wide.db')}`, hook, 'sqlite', MAX_TAGS, 'first', 'wide'));
  // And the whole registry, both layouts: twice the largest size, past the SQLite page cache's limit.
  runs.push(await runSync(registry, `sqlite:${join(work, 'sync-all.db')}`, hook, 'sqlite', 2 * MAX_TAGS, 'first', 'all'));
  const heads = raw.filter((r) => r.mode === 'head').map((r) => r.rate);
  return {
    repositories: REPOSITORIES,
    sizes: SYNC_SIZES,
    fill,
    runs,
    raw,
    rawHeadRate: heads.reduce((a, b) => a + b, 0) / heads.length,
    rawHeadGetRate: raw.find((r) => r.mode === 'head+get')?.rate ?? NaN,
    load: { before, after: load() },
  };
}


export function syncMarkdown(p: SyncPart): string {
  const max = p.runs.filter((r) => r.tags === MAX_TAGS && r.layout === 'deep');
  const row = (r: SyncRun): string => {
    const first = r.pass === 'first';
    const gets = r.requests.manifestGet;
    const goal = first ? `one GET per new manifest (${int(r.tags)})` : '0 manifest GETs';
    const ok = first ? gets === r.tags : gets === 0;
    const rate = first ? `${fmt(r.summary.manifestsFetched / (r.summary.durationMs / 1000), 0)} manifests/s` : `${fmt(r.tagsPerSecond, 0)} tags/s`;
    // The speed goal: a first sync at the registry's HEAD+GET speed, an unchanged one at its HEAD speed.
    const ratio = r.tagsPerSecond / (first ? p.rawHeadGetRate : p.rawHeadRate);
    const speed = `${fmt(ratio, 2)}× of raw ${first ? 'HEAD+GET' : 'HEAD'}, goal ≥ ${SPEED_RATIO_GOAL}×: ${passMiss(ratio >= SPEED_RATIO_GOAL)}`;
    return `| ${first ? 'first' : 'second (unchanged)'} sync, ${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${rate} | ${fmt(r.tagsPerSecond / p.rawHeadRate, 2)}× | ${first ? `${fmt(r.tagsPerSecond / p.rawHeadGetRate, 2)}×` : '—'} | ${int(gets)} | ${int(r.requests.manifestHead)} | ${int(r.requests.blobGet)} | ${fmt(r.summary.durationMs / 1000, 1)} s | ${fmt(r.cpuMsPerTag, 2)} ms | ${goal} | ${passMiss(ok && r.summary.complete && r.summary.errorCount === 0)} | ${speed} |`;
  };
  const heads = p.raw.filter((r) => r.mode === 'head');
  const cores = availableParallelism();
  const cpuRow = (name: string, own: number, beside: BesideCpu | undefined, rate: number, database: boolean): string[] => {
    if (!beside) return [];
    // A PostgreSQL run whose server's CPU was not read (postmaster.pid) has no total.
    const unread = database && beside.databaseMsPerTag === undefined;
    const total = own + beside.registryMsPerTag + (beside.proxyMsPerTag ?? 0) + (beside.databaseMsPerTag ?? 0);
    return [
      `| ${name} | ${fmt(own, 2)} | ${fmt(beside.registryMsPerTag, 2)} | ${beside.proxyMsPerTag === undefined ? '—' : fmt(beside.proxyMsPerTag, 2)} | ${!database ? '—' : unread ? 'not read' : fmt(beside.databaseMsPerTag ?? NaN, 2)} | ${totalAndCeilingCells(unread ? undefined : total)} | ${fmt(rate, 0)} |`,
    ];
  };
  const cpuRows = [
    ...p.raw.filter((r) => r.mode === 'head+get').flatMap((r) => cpuRow('raw HEAD+GET loop', r.cpuMsPerTag, r.beside, r.rate, false)),
    ...max.filter((r) => r.pass === 'first').flatMap((r) => cpuRow(`first sync, ${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, r.cpuMsPerTag, r.beside, r.tagsPerSecond, r.store === 'postgres')),
  ];
  const cpuTable =
    cpuRows.length > 1
      ? `

CPU per tag while each run lasted, of its own process (start-up included), of the registry, of the counting proxy in front of
it (this bench's process) and of the PostgreSQL server (the registry and the server each with the processes below it, from /proc).
They share this machine's ${cores} cores, so ${cores} × 1,000 ms over the total is the most tags a second a run could reach were CPU
all it waited on and the machine its own.

| run | its process ms | registry ms | counting proxy ms | PostgreSQL ms | total ms | ${cores} cores ÷ total, tags/s | measured tags/s |
|---|---:|---:|---:|---:|---:|---:|---:|
${cpuRows.join('\n')}`
      : '';
  return `## 1. Sync throughput: ${int(MAX_TAGS)} tags in ${p.repositories} repositories

\`tagtrail sync --concurrency ${SYNC_CONCURRENCY}\` (the built CLI, a process of its own) against CNCF distribution 2.8 on loopback,
behind the counting proxy; each tag is a distinct small OCI manifest with 15 GitLab CI annotations. Time is sync's own
(\`durationMs\`: catalog listing, tag lists, a HEAD per tag, a GET per new digest, catalog writes); node start-up is left out.
Baseline, same run, same proxy, same concurrency: a plain \`fetch\` loop in its own process, HEAD of every tag
(${heads.map((r) => `${fmt(r.rate, 0)}`).join(', ')} tags/s; mean **${fmt(p.rawHeadRate, 0)}/s**), and HEAD then GET by digest (${fmt(p.rawHeadGetRate, 0)} tags/s),
the least a first sync has to ask of the registry. CPU per tag is the process's own (every thread, start-up included): the loops
took ${heads.map((r) => `${fmt(r.cpuMsPerTag, 2)}`).join(', ')} ms per HEAD and ${fmt(p.raw.find((r) => r.mode === 'head+get')?.cpuMsPerTag ?? NaN, 2)} ms per HEAD+GET; on a loaded machine it is steadier than the rates.

| run | rate | vs raw HEAD | vs raw HEAD+GET | manifest GETs | manifest HEADs | blob GETs | time | CPU per tag | requests goal | result | speed goal |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|
${max.map(row).join('\n')}

The speed goal (performance issue, goal 1): a first sync at ≥ ${SPEED_RATIO_GOAL}× the same run's raw HEAD+GET loop, an unchanged sync at ≥ ${SPEED_RATIO_GOAL}× its raw HEAD loop (the mean of its runs).
Filling the registry: ${p.fill.map((f) => `${int(f.tags)} manifests at ${fmt(f.perSecond, 0)} PUT/s`).join(', ')}.${cpuTable}`;
}

export function memoryMarkdown(p: SyncPart): string {
  const series = (store: 'sqlite' | 'postgres'): SyncRun[] => p.runs.filter((r) => r.pass === 'first' && r.store === store && r.layout === 'deep').sort((a, b) => a.tags - b.tags);
  const lite = series('sqlite');
  const pgs = series('postgres');
  const wide = p.runs.find((r) => r.layout === 'wide');
  const all = p.runs.find((r) => r.layout === 'all');
  const big = lite[lite.length - 1];
  const ratio = (runs: SyncRun[], field: 'peakRssMiB' | 'liveHeapMiB'): number => {
    const a = runs[0];
    const b = runs[runs.length - 1];
    return a && b ? b[field] / a[field] : NaN;
  };
  const goal = ratio(lite, 'peakRssMiB');
  const name = (r: SyncRun): string => `${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${int(r.tags)} tags in ${r.repositories} repositories${r.pass === 'second' ? ', second sync' : ''}`;
  const row = (r: SyncRun): string =>
    `| ${name(r)} | ${fmt(r.peakRssMiB, 1)} | ${fmt(r.liveHeapMiB, 1)} | ${fmt(r.peakHeapMiB, 1)} | ${fmt(r.peakExternalMiB, 1)} | ${r.rssTimelineMiB.map((x) => fmt(x, 0)).join(' / ')} | ${r.catalogMiB === undefined ? '—' : fmt(r.catalogMiB, 1)} | ${fmt(r.tagsPerSecond, 0)} |`;
  const seconds = p.runs.filter((r) => r.pass === 'second');
  const smallLite = lite[0];
  return `## 2. Resident memory of sync as the registry grows

Peak RSS of the \`tagtrail sync\` process (\`process.resourceUsage().maxRSS\` at exit), each a first sync into a fresh catalog,
the registry grown between runs by growing its ${p.repositories} repositories (${int((SYNC_SIZES[0] as number) / p.repositories)} to ${int(MAX_TAGS / p.repositories)} tags each). Inside the process,
every 50 ms: the V8 heap in use, and after each major GC the heap still in use (live objects); RSS from /proc.
${
    MEMORY_ONLY
      ? `This run measured memory alone (\`BENCH_CATALOG_PARTS=memory\`): ${p.sizes.map(int).join(' and ')} tags, SQLite and PostgreSQL (its cache lives in the server, not in this process),
without the throughput runs and the controls of a full run.`
      : `Controls: the same runs into PostgreSQL (its cache lives in the server, not in this process); ${int(MAX_TAGS)} tags spread
over ${LAYOUT_REPOSITORIES.wide} repositories of ${int(MAX_TAGS / LAYOUT_REPOSITORIES.wide)} tags (as small as in the smallest deep run); and the whole registry,
both layouts, ${int(2 * MAX_TAGS)} tags in ${LAYOUT_REPOSITORIES.all} repositories.`
  }

| run | peak RSS MiB | live heap MiB | peak heap MiB | peak buffers MiB | RSS at 25 / 50 / 75 / 100 % MiB | catalog file MiB | tags/s |
|---|---:|---:|---:|---:|---|---:|---:|
${[...lite, ...pgs, ...(wide ? [wide] : []), ...(all ? [all] : []), ...seconds].map(row).join('\n')}

| figure | value | goal | result |
|---|---:|---|---|
| peak RSS, SQLite, ${int(lite[lite.length - 1]?.tags ?? NaN)} / ${int(lite[0]?.tags ?? NaN)} tags | ${fmt(goal, 2)}× | flat: at most ${RSS_RATIO_GOAL}× | ${passMiss(goal <= RSS_RATIO_GOAL)}${goal > RSS_RATIO_GOAL ? ` (grew ${fmt((goal - 1) * 100, 0)} %, ${fmt((RSS_RATIO_GOAL - 1) * 100, 0)} % allowed)` : ''} |
| live heap, SQLite, same runs | ${fmt(ratio(lite, 'liveHeapMiB'), 2)}× | — | — |
| peak RSS, PostgreSQL, ${int(pgs[pgs.length - 1]?.tags ?? NaN)} / ${int(pgs[0]?.tags ?? NaN)} tags | ${fmt(ratio(pgs, 'peakRssMiB'), 2)}× | — | — |
| live heap, PostgreSQL, same runs | ${fmt(ratio(pgs, 'liveHeapMiB'), 2)}× | — | — |${
    MEMORY_ONLY
      ? ''
      : `
| peak RSS, SQLite, ${int(MAX_TAGS)} tags in small repositories / ${int(smallLite?.tags ?? NaN)} tags | ${fmt((wide?.peakRssMiB ?? NaN) / (smallLite?.peakRssMiB ?? NaN), 2)}× | — | — |
| live heap, same runs | ${fmt((wide?.liveHeapMiB ?? NaN) / (smallLite?.liveHeapMiB ?? NaN), 2)}× | — | — |
| peak RSS, SQLite, the whole registry (${int(all?.tags ?? NaN)} tags) / ${int(big?.tags ?? NaN)} tags | ${fmt((all?.peakRssMiB ?? NaN) / (big?.peakRssMiB ?? NaN), 2)}× | — | — |`
  }

SQLite's page cache is native memory inside the RSS; sync sets it to 8 MiB (serve keeps 64 MiB, for search), so it is full early in a run of any size and does not grow with the catalog file.`;
}

