// annotate over a realistic link: every request through a proxy that adds 20 ms and limits the
// link to 100 Mbit/s per direction (test/helpers/shaped-link.ts), for a 200 MiB image in 10
// layers and an index of 4 such platforms. Side by side, in the same run and through the same link:
//  (a) the seed's way of rewriting a manifest: skopeo copy out to an OCI layout and back in
//      (--all for the index), against tagtrail's default (race check, write, pause, read-back);
//      goal: tagtrail at most 0.03× of skopeo out+in;
//  (b) the floor: a curl GET of the manifest and a curl PUT of the new one, plus `node -e 0`,
//      against `tagtrail --no-read-back`; goal: at most 1.5× that floor.
// The cost of the read-back (default minus --no-read-back) is reported with the pause the rule
// in src/oci/annotate.ts chose.
//
// Sizes, for a smoke run (such a run's files are not results to keep): BENCH_ANNOTATE_LINK_MIB
// (per image, default 200), BENCH_ANNOTATE_LINK_PLATFORMS (default 4), BENCH_ANNOTATE_LINK_RUNS
// (rounds of tagtrail, curl and node -e 0, default 9), BENCH_ANNOTATE_LINK_SKOPEO_RUNS (default 1: a round trip
// moves the whole image), BENCH_ANNOTATE_LINK_LATENCY_MS (20), BENCH_ANNOTATE_LINK_MBIT (100).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, gitlabEnv } from '../test/helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../test/helpers/fault-proxy.js';
import { makeImage, makeIndex, pushImage, type Platform } from '../test/helpers/images.js';
import { startRegistry } from '../test/helpers/registry.js';
import { exec, fmt, loadLine, machineLoad, median, progress, writeResults } from './lib.js';
import { makeTempDir, removeTempDir } from '../test/helpers/cleanup.js';

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${process.env[name]}`);
  return v;
};
const MIB = num('BENCH_ANNOTATE_LINK_MIB', 200);
const PLATFORMS = Math.round(num('BENCH_ANNOTATE_LINK_PLATFORMS', 4));
const RUNS = Math.round(num('BENCH_ANNOTATE_LINK_RUNS', 9));
const SKOPEO_RUNS = Math.round(num('BENCH_ANNOTATE_LINK_SKOPEO_RUNS', 1));
const LATENCY_MS = num('BENCH_ANNOTATE_LINK_LATENCY_MS', 20);
const MBIT = num('BENCH_ANNOTATE_LINK_MBIT', 100);
const LAYERS = 10;
const GOAL_VS_SKOPEO = 0.03;
const GOAL_VS_FLOOR = 1.5;
/** The pause rule of src/oci/annotate.ts: twice the PUT, at least 250 ms, at most 2 s. */
const PAUSE_RULE = { minMs: 250, maxMs: 2000 };

// Two skopeo directions over the link per round trip, plus generating and pushing the images.
export const estimatedSeconds = 480;
/** Shows its own progress line on a terminal. */
export const reportsProgress = true;

const ALL_PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 'ppc64le' },
  { os: 'linux', architecture: 's390x' },
  { os: 'linux', architecture: '386' },
];

const OCI_TYPES = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

async function elapsed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const HAS_BASH = spawnSync('bash', ['-c', 'times'], { stdio: 'ignore' }).status === 0;

/**
 * Runs a command and returns its CPU time (user + system) in ms: under bash, whose `times` reads
 * getrusage of its children. CPU time suffers less from a loaded machine than wall time. NaN
 * without bash.
 */
async function cpuTimed(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  if (!HAS_BASH) {
    await exec(file, args, env);
    return NaN;
  }
  // --norc: bash takes a socket on standard input (execFile's pipes) without SHLVL in the
  // environment for a run by rshd, and would otherwise read ~/.bashrc, counted in the figures.
  const { stdout } = await exec('bash', ['--norc', '-c', '"$@" >/dev/null || exit $?; times', 'bash', file, ...args], env);
  const children = stdout.trim().split('\n').at(-1) ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return seconds.length === 2 ? ((seconds[0] ?? NaN) + (seconds[1] ?? NaN)) * 1000 : NaN;
}

/** The environment of every node process measured: a CI job's, and nothing of the benchmark's own (NODE_EXTRA_CA_CERTS costs node tens of ms). */
const NODE_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...gitlabEnv() };

function tagtrail(ref: string, host: string, run: string, readBack: boolean): Promise<number> {
  const args = [BIN, 'annotate', '--insecure-registry', host, ref, '-a', `com.example.bench.run=${run}`, ...(readBack ? [] : ['--no-read-back'])];
  return cpuTimed(process.execPath, args, NODE_ENV);
}

/** The floor: GET the manifest, add one annotation, PUT it back: two requests, two curl processes. Returns their CPU time. */
async function curlFloor(url: string, file: string, run: string): Promise<number> {
  const headers = `${file}.headers`;
  const getCpu = await cpuTimed('curl', ['-sSf', '-H', `Accept: ${OCI_TYPES}`, '-D', headers, '-o', file, url]);
  const type = /^content-type:\s*([^\r\n;]+)/im.exec(await readFile(headers, 'utf8'))?.[1]?.trim() ?? 'application/vnd.oci.image.manifest.v1+json';
  const m = JSON.parse(await readFile(file, 'utf8')) as { annotations?: Record<string, string> };
  m.annotations = { ...m.annotations, 'com.example.bench.run': run };
  await writeFile(file, JSON.stringify(m));
  return getCpu + (await cpuTimed('curl', ['-sSf', '-X', 'PUT', '-H', `Content-Type: ${type}`, '--data-binary', `@${file}`, url]));
}

/** Wall and CPU time of one run. */
async function both(fn: () => Promise<number>): Promise<{ wall: number; cpu: number }> {
  let cpu = NaN;
  const wall = await elapsed(async () => {
    cpu = await fn();
  });
  return { wall, cpu };
}

/** The seed's way: copy the whole image out, annotate the top manifest in the layout, copy it back. */
async function skopeoRoundTrip(ref: string, tag: string, dir: string, all: boolean, run: string): Promise<{ outMs: number; inMs: number }> {
  const layout = `oci:${dir}:${tag}`;
  const common = ['--insecure-policy', 'copy', '--retry-times', '0', ...(all ? ['--all'] : [])];
  const outMs = await elapsed(() => exec('skopeo', [...common, '--src-tls-verify=false', `docker://${ref}`, layout]));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
  const top = index.manifests[0];
  if (!top) throw new Error(`skopeo wrote no manifest for ${ref}`);
  const m = JSON.parse(await readFile(join(dir, 'blobs', 'sha256', top.digest.slice(7)), 'utf8')) as { annotations?: Record<string, string> };
  m.annotations = { ...m.annotations, 'com.example.bench.run': run };
  const bytes = Buffer.from(JSON.stringify(m));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(dir, 'blobs', 'sha256', hex), bytes);
  index.manifests = [{ ...top, digest: `sha256:${hex}`, size: bytes.length }];
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  const inMs = await elapsed(() => exec('skopeo', [...common, '--dest-tls-verify=false', layout, `docker://${ref}`]));
  return { outMs, inMs };
}

interface Subject {
  name: string;
  repo: string;
  all: boolean;
}

/** Where a run's time went, from the link's own records: its requests' span, and the read-back pause. */
function linkTimes(link: FaultProxy, repo: string, tag: string): { spanMs: number; readBackMs?: number } {
  const rs = link.requests;
  const first = Math.min(...rs.map((r) => r.receivedAt));
  const last = Math.max(...rs.map((r) => r.endedAt ?? r.receivedAt));
  const onTag = (method: string) => rs.filter((r) => r.method === method && r.kind === 'manifest' && r.repository === repo && r.reference === tag);
  const put = onTag('PUT').at(-1);
  const readBack = onTag('HEAD').filter((r) => put !== undefined && r.receivedAt > put.receivedAt).at(-1);
  return { spanMs: last - first, ...(put?.endedAt !== undefined && readBack?.endedAt !== undefined ? { readBackMs: readBack.endedAt - put.endedAt } : {}) };
}

/**
 * Round trips one after another: the longest chain of requests in which each reached the link
 * only after the one before it had ended. Unlike times, a loaded machine does not move it.
 */
function sequentialRounds(link: FaultProxy): number {
  const rs = [...link.requests].sort((a, b) => a.receivedAt - b.receivedAt);
  const depth: number[] = [];
  rs.forEach((r, i) => {
    let before = 0;
    for (let j = 0; j < i; j++) if ((rs[j]?.endedAt ?? Infinity) <= r.receivedAt) before = Math.max(before, depth[j] ?? 0);
    depth.push(before + 1);
  });
  return Math.max(0, ...depth);
}

async function measure(link: FaultProxy, subject: Subject, work: string): Promise<Record<string, unknown>> {
  const ref = (tag: string): string => `${link.host}/${subject.repo}:${tag}`;
  link.reset();
  await tagtrail(ref('tt'), link.host, 'count', true);
  const requestsDefault = link.count();
  link.reset();
  await tagtrail(ref('nv'), link.host, 'count', false);
  const requestsNoReadBack = link.count();
  // Keep-alive: a fan-out that reuses the connections of the one before opens no new ones.
  const connectionsNoReadBack = new Set(link.requests.map((r) => r.connection)).size;
  const roundsNoReadBack = sequentialRounds(link);

  // Round after round, each kind once, so a change in the machine's load falls on all alike.
  const runs = { node: [] as number[], tagtrailDefault: [] as number[], tagtrailNoReadBack: [] as number[], curl: [] as number[] };
  const cpu = { node: [] as number[], tagtrailDefault: [] as number[], tagtrailNoReadBack: [] as number[], curl: [] as number[] };
  const network = { defaultSpan: [] as number[], readBack: [] as number[], noReadBackSpan: [] as number[], noReadBackFirstRequest: [] as number[] };
  const floorFile = join(work, 'floor.json');
  const record = (kind: keyof typeof runs, t: { wall: number; cpu: number }): void => {
    runs[kind].push(t.wall);
    cpu[kind].push(t.cpu);
  };
  for (let i = 0; i < RUNS; i++) {
    record('node', await both(() => cpuTimed(process.execPath, ['-e', '0'], NODE_ENV)));
    link.reset();
    record('tagtrailDefault', await both(() => tagtrail(ref('tt'), link.host, String(i), true)));
    const d = linkTimes(link, subject.repo, 'tt');
    network.defaultSpan.push(d.spanMs);
    if (d.readBackMs !== undefined) network.readBack.push(d.readBackMs);
    link.reset();
    const started = performance.now();
    record('tagtrailNoReadBack', await both(() => tagtrail(ref('nv'), link.host, String(i), false)));
    network.noReadBackSpan.push(linkTimes(link, subject.repo, 'nv').spanMs);
    // The process side: from spawning (bash, then node) to its first request reaching the link.
    network.noReadBackFirstRequest.push(Math.min(...link.requests.map((r) => r.receivedAt)) - started);
    record('curl', await both(() => curlFloor(`${link.url}/v2/${subject.repo}/manifests/floor`, floorFile, String(i))));
    progress(`${subject.name}: tagtrail, tagtrail --no-read-back, curl, node -e 0`, i + 1, RUNS);
  }

  const skopeo: { outMs: number; inMs: number }[] = [];
  for (let i = 0; i < SKOPEO_RUNS; i++) {
    const dir = join(work, `rt-${subject.name}-${i}`);
    skopeo.push(await skopeoRoundTrip(ref('rt'), 'rt', dir, subject.all, String(i)));
    await rm(dir, { recursive: true, force: true });
    progress(`${subject.name}: skopeo out + in`, i + 1, SKOPEO_RUNS);
  }
  const skopeoMs = median(skopeo.map((x) => x.outMs + x.inMs));
  const dMs = median(runs.tagtrailDefault);
  const nvMs = median(runs.tagtrailNoReadBack);
  const nodeMs = median(runs.node);
  const floorMs = median(runs.curl) + nodeMs;
  return {
    subject: subject.name,
    requests: { default: requestsDefault, noReadBack: requestsNoReadBack },
    connections: { noReadBack: connectionsNoReadBack },
    sequentialRounds: { noReadBack: roundsNoReadBack },
    ms: {
      node: nodeMs,
      tagtrailDefault: dMs,
      tagtrailNoReadBack: nvMs,
      curlFloor: median(runs.curl),
      floorWithNode: floorMs,
      skopeoOut: median(skopeo.map((x) => x.outMs)),
      skopeoIn: median(skopeo.map((x) => x.inMs)),
      skopeoOutIn: skopeoMs,
      defaultNetworkSpan: median(network.defaultSpan),
      noReadBackNetworkSpan: median(network.noReadBackSpan),
      noReadBackFirstRequest: median(network.noReadBackFirstRequest),
      readBack: median(network.readBack),
    },
    cpuMs: { node: median(cpu.node), tagtrailDefault: median(cpu.tagtrailDefault), tagtrailNoReadBack: median(cpu.tagtrailNoReadBack), curlFloor: median(cpu.curl) },
    raw: { wall: runs, cpu, ...network, skopeo },
    readBackCostMs: dMs - nvMs,
    ratios: {
      defaultOverSkopeo: dMs / skopeoMs,
      noReadBackOverFloor: nvMs / floorMs,
      defaultOverFloor: dMs / floorMs,
      defaultWithoutPauseOverSkopeo: (dMs - median(network.readBack)) / skopeoMs,
      noReadBackOverFloorCpu: median(cpu.tagtrailNoReadBack) / (median(cpu.curl) + median(cpu.node)),
    },
  };
}

export default async function bench(): Promise<void> {
  const work = await makeTempDir('bench-link');
  const registry = await startRegistry({ logLevel: 'warn' });
  let link: FaultProxy | undefined;
  try {
    const layerSize = Math.round((MIB * 1024 * 1024) / LAYERS);
    if (process.stdout.isTTY) process.stdout.write(`annotate-link: making a ${MIB} MiB image and an index of ${PLATFORMS}…\n`);
    const image = await makeImage(join(work, 'image'), { layers: LAYERS, layerSize, tag: 'v1' });
    const index = await makeIndex(join(work, 'index'), { platforms: ALL_PLATFORMS.slice(0, PLATFORMS), tag: 'v1', image: { layers: LAYERS, layerSize } });
    // Pushed straight to the registry: setting up is not part of any figure.
    for (const tag of ['tt', 'nv', 'floor', 'rt']) {
      await pushImage(image, `${registry.directHost}/bench/image:${tag}`);
      await pushImage(index, `${registry.directHost}/bench/index:${tag}`);
    }
    await rm(join(work, 'image'), { recursive: true, force: true });
    await rm(join(work, 'index'), { recursive: true, force: true });

    link = await startFaultProxy({ upstream: `http://${registry.directHost}`, link: { latencyMs: LATENCY_MS, bitsPerSecond: MBIT * 1_000_000 } });
    const loadBefore = machineLoad();
    const results = [];
    for (const subject of [
      { name: 'image', repo: 'bench/image', all: false },
      { name: 'index', repo: 'bench/index', all: true },
    ]) {
      results.push({ ...(await measure(link, subject, work)), load: machineLoad() });
    }
    const loadAfter = machineLoad();

    type R = { subject: string; requests: { default: number; noReadBack: number }; connections: { noReadBack: number }; sequentialRounds: { noReadBack: number }; ms: Record<string, number>; cpuMs: Record<string, number>; readBackCostMs: number; ratios: Record<string, number> };
    const rows = results as unknown as R[];
    const pause = PAUSE_RULE.minMs;
    const data = {
      link: { latencyMs: LATENCY_MS, mbit: MBIT },
      sizes: { mibPerImage: MIB, layers: LAYERS, platforms: PLATFORMS, runs: RUNS, skopeoRuns: SKOPEO_RUNS },
      goals: { defaultOverSkopeo: GOAL_VS_SKOPEO, noReadBackOverFloor: GOAL_VS_FLOOR },
      load: { before: loadBefore, after: loadAfter },
      results,
    };
    const verdict = (v: number, goal: number): string => `${fmt(v, 3)}× (${v <= goal ? 'met' : 'missed'})`;
    const ms = (v: number | undefined): string => fmt(v ?? NaN, 0);
    const md = `
# annotate over a shaped link

Every request through a proxy that adds ${LATENCY_MS} ms and limits the link to ${MBIT} Mbit/s per direction (shared by concurrent transfers).
Image: ${MIB} MiB in ${LAYERS} layers of random data; index: ${PLATFORMS} such platforms (${MIB * PLATFORMS} MiB).
tagtrail (default and \`--no-read-back\`), the curl floor and \`node -e 0\` ran in turn, ${RUNS} rounds, medians; skopeo out + in: ${SKOPEO_RUNS === 1 ? 'one run' : `median of ${SKOPEO_RUNS} runs`}.
tagtrail and \`node -e 0\` run in one environment (PATH and a GitLab job's variables); each measured command runs under \`bash --norc\` for its CPU time.
skopeo copies back into the registry it read from, so the way in finds every blob there and moves only the manifests.

| subject | (a) tagtrail default / skopeo out + in (goal ≤ ${GOAL_VS_SKOPEO}) | (b) \`--no-read-back\` / (curl GET + PUT + node -e 0) (goal ≤ ${GOAL_VS_FLOOR}) | default / floor | (a) without the read-back |
|---|---|---|---|---|
${rows.map((r) => `| ${r.subject} | ${verdict(r.ratios.defaultOverSkopeo ?? NaN, GOAL_VS_SKOPEO)} | ${verdict(r.ratios.noReadBackOverFloor ?? NaN, GOAL_VS_FLOOR)} | ${fmt(r.ratios.defaultOverFloor ?? NaN, 2)}× | ${fmt(r.ratios.defaultWithoutPauseOverSkopeo ?? NaN, 3)}× |`).join('\n')}

Times in ms (medians):

| subject | tagtrail default (requests) | its requests' span | its read-back (PUT answered → HEAD answered) | \`--no-read-back\` (requests, connections, sequential round trips) | its first request after the start | its requests' span | curl GET + PUT | node -e 0 | skopeo out / in |
|---|---|---|---|---|---|---|---|---|---|
${rows.map((r) => `| ${r.subject} | ${ms(r.ms.tagtrailDefault)} (${r.requests.default}) | ${ms(r.ms.defaultNetworkSpan)} | ${ms(r.ms.readBack)} | ${ms(r.ms.tagtrailNoReadBack)} (${r.requests.noReadBack}, ${r.connections.noReadBack}, ${r.sequentialRounds.noReadBack}) | ${ms(r.ms.noReadBackFirstRequest)} | ${ms(r.ms.noReadBackNetworkSpan)} | ${ms(r.ms.curlFloor)} | ${ms(r.ms.node)} | ${ms(r.ms.skopeoOut)} / ${ms(r.ms.skopeoIn)} |`).join('\n')}

CPU time (user + system, median; bash's \`times\`). On a shared virtual machine this moves too (steal and frequency), so read it beside the wall times, not instead of them:

| subject | tagtrail default | \`--no-read-back\` | curl GET + PUT | node -e 0 | \`--no-read-back\` / (curl + node -e 0) |
|---|---|---|---|---|---|
${rows.map((r) => `| ${r.subject} | ${ms(r.cpuMs.tagtrailDefault)} | ${ms(r.cpuMs.tagtrailNoReadBack)} | ${ms(r.cpuMs.curlFloor)} | ${ms(r.cpuMs.node)} | ${fmt(r.ratios.noReadBackOverFloorCpu ?? NaN, 2)}× |`).join('\n')}

A run's requests' span is from its first request reaching the link to its last answer, taken by the proxy; the rest of the run is the process: node's start, loading the command, work between requests. Its first request after the start is from spawning it (under bash) to that request reaching the link; its connections are the client connections the link saw in one run (keep-alive reuse keeps them few); its sequential round trips are the longest chain of its requests in which each reached the link only after the one before had ended.
The read-back is the pause (on this link the rule's floor, ${pause} ms: twice a PUT of ~${2 * LATENCY_MS} ms is less) plus one HEAD of the tag.
The floor of (b) is two requests for the index too, while tagtrail also rewrites each platform manifest below it.

${loadLine(loadBefore, loadAfter)}
`;
    await writeResults(`annotate-link${MIB === 200 && PLATFORMS === 4 ? '' : `-${MIB}mib-${PLATFORMS}p`}`, data, md);
  } finally {
    await link?.stop();
    await registry.stop();
    await removeTempDir(work);
  }
}
