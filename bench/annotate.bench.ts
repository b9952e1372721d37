// annotate: registry requests and wall time, side by side in one run with
//   - the floor: a raw curl GET and PUT of the same manifest, and
//   - the seed proposal's way: download the image and push it again (skopeo copy out and back),
// plus the index fan-out over a link with 20 ms added latency, and start-up against `node -e 0`.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, gitlabEnv } from '../test/helpers/cli.js';
import { startFaultProxy } from '../test/helpers/fault-proxy.js';
import { makeImage, makeIndex, pushImage, type Platform } from '../test/helpers/images.js';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { exec, fmt, median, timeRuns, writeResults } from './lib.js';
import { makeTempDir, removeTempDir } from '../test/helpers/cleanup.js';

const RUNS = 7;
const OCI = 'application/vnd.oci.image.manifest.v1+json';

function annotateArgs(ref: string, i: number, verify = true): string[] {
  return [BIN, 'annotate', ref, '-a', `com.example.bench.run=${i}`, ...(verify ? [] : ['--no-read-back'])];
}

async function tagtrail(args: string[]): Promise<void> {
  await exec(process.execPath, args, { PATH: process.env.PATH, ...gitlabEnv() });
}

/** The floor: GET the manifest, add one annotation, PUT it back: two requests, two curl processes. */
async function curlFloor(registry: TestRegistry, repo: string, tag: string, work: string, i: number): Promise<void> {
  const file = join(work, 'm.json');
  await exec('curl', ['-sSf', '-H', `Accept: ${OCI}`, '-o', file, `${registry.url}/v2/${repo}/manifests/${tag}`]);
  const m = JSON.parse(await readFile(file, 'utf8')) as { annotations?: Record<string, string> };
  m.annotations = { ...m.annotations, 'com.example.bench.run': String(i) };
  await writeFile(file, JSON.stringify(m));
  await exec('curl', ['-sSf', '-X', 'PUT', '-H', `Content-Type: ${OCI}`, '--data-binary', `@${file}`, `${registry.url}/v2/${repo}/manifests/${tag}`]);
}

/** The proposal's way: pull the whole image and push it again with the annotation. */
async function skopeoRoundTrip(registry: TestRegistry, repo: string, tag: string, work: string, i: number): Promise<void> {
  const dir = join(work, `rt-${repo.replace(/\W/g, "-")}-${i}`);
  const ref = `docker://${registry.host}/${repo}:${tag}`;
  const common = ['--insecure-policy'];
  await exec('skopeo', [...common, 'copy', '--src-tls-verify=false', ref, `oci:${dir}:${tag}`]);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]?.digest.slice(7) ?? '';
  const manifestPath = join(dir, 'blobs', 'sha256', digest);
  const m = JSON.parse(await readFile(manifestPath, 'utf8')) as { annotations?: Record<string, string> };
  m.annotations = { ...m.annotations, 'com.example.bench.run': String(i) };
  await writeFile(manifestPath, JSON.stringify(m));
  // skopeo re-reads the layout; the manifest digest in index.json no longer matches, so write a fresh one.
  const bytes = await readFile(manifestPath);
  const { createHash } = await import('node:crypto');
  const newDigest = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(dir, 'blobs', 'sha256', newDigest), bytes);
  index.manifests = [{ ...index.manifests[0], digest: `sha256:${newDigest}`, size: bytes.length } as { digest: string }];
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  await exec('skopeo', [...common, 'copy', '--dest-tls-verify=false', `oci:${dir}:${tag}`, ref]);
}

function countsOf(registry: TestRegistry): { total: number; manifest: number; blob: number } {
  return {
    total: registry.count(),
    manifest: registry.count({ kind: 'manifest' }),
    blob: registry.count({ kind: 'blob' }) + registry.count({ kind: 'upload' }),
  };
}

const PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 'arm', variant: 'v6' },
  { os: 'linux', architecture: '386' },
  { os: 'linux', architecture: 'ppc64le' },
  { os: 'linux', architecture: 's390x' },
  { os: 'linux', architecture: 'riscv64' },
];

/** A rough guess for `npm run bench` to announce; a full run's measured duration replaces it (bench/results/durations.json). */
export const estimatedSeconds = 180;

export default async function bench(): Promise<void> {
  const work = await makeTempDir('bench');
  const registry = await startRegistry({ logLevel: 'warn' });
  try {
    // ---- requests and wall time for one image, by layer count
    const byLayers: Record<string, unknown>[] = [];
    for (const layers of [1, 10]) {
      const repo = `bench/single-${layers}`;
      const image = await makeImage(join(work, `img-${layers}`), { layers, layerSize: 1024 * 1024, tag: 'v1' });
      for (const tag of ['tt', 'nv', 'floor', 'rt']) await pushImage(image, `${registry.host}/${repo}:${tag}`);

      registry.resetRequests();
      await tagtrail(annotateArgs(`${registry.host}/${repo}:tt`, 0));
      const ttCounts = countsOf(registry);
      registry.resetRequests();
      await tagtrail(annotateArgs(`${registry.host}/${repo}:nv`, 0, false));
      const nvCounts = countsOf(registry);
      registry.resetRequests();
      await curlFloor(registry, repo, 'floor', work, 0);
      const floorCounts = countsOf(registry);
      registry.resetRequests();
      await skopeoRoundTrip(registry, repo, 'rt', work, 0);
      const rtCounts = countsOf(registry);

      const tt = await timeRuns(RUNS, (i) => tagtrail(annotateArgs(`${registry.host}/${repo}:tt`, i + 1)));
      const nv = await timeRuns(RUNS, (i) => tagtrail(annotateArgs(`${registry.host}/${repo}:nv`, i + 1, false)));
      const floor = await timeRuns(RUNS, (i) => curlFloor(registry, repo, 'floor', work, i + 1));
      const rt = await timeRuns(Math.min(RUNS, 3), (i) => skopeoRoundTrip(registry, repo, 'rt', work, i + 1));
      byLayers.push({
        layers,
        layerBytes: 1024 * 1024,
        requests: { tagtrail: ttCounts, tagtrailNoVerify: nvCounts, curlFloor: floorCounts, skopeoRoundTrip: rtCounts },
        wallMsMedian: { tagtrail: median(tt), tagtrailNoVerify: median(nv), curlFloor: median(floor), skopeoRoundTrip: median(rt) },
        ratios: { tagtrailOverFloor: median(tt) / median(floor), noVerifyOverFloor: median(nv) / median(floor), roundTripOverTagtrail: median(rt) / median(tt) },
      });
    }

    // ---- an index of N platform manifests over a link with 20 ms added latency
    const slow = await startFaultProxy({ upstream: registry.url });
    slow.addRule({ fault: { kind: 'latency', ms: 20 } });
    const fanout: Record<string, unknown>[] = [];
    try {
      for (const n of [1, 8]) {
        const repo = `bench/index-${n}`;
        const index = await makeIndex(join(work, `index-${n}`), { platforms: PLATFORMS.slice(0, n), tag: 'v1', image: { layers: 1 } });
        await pushImage(index, `${registry.host}/${repo}:v1`);
        slow.reset();
        await tagtrail(annotateArgs(`${slow.host}/${repo}:v1`, 0, false));
        const requests = slow.count();
        const blobRequests = slow.count({ kind: 'blob' }) + slow.count({ kind: 'upload' });
        const times = await timeRuns(RUNS, (i) => tagtrail(annotateArgs(`${slow.host}/${repo}:v1`, i + 1, false)));
        fanout.push({ platforms: n, requests, requestBound: 2 * n + 6, blobRequests, wallMsMedian: median(times) });
      }
    } finally {
      await slow.stop();
    }
    const n1 = (fanout[0] as { wallMsMedian: number }).wallMsMedian;
    const n8 = (fanout[1] as { wallMsMedian: number }).wallMsMedian;

    // ---- start-up against node itself
    const startRuns = 15;
    const node0 = median(await timeRuns(startRuns, () => exec(process.execPath, ['-e', '0'])));
    const startup: Record<string, number> = {};
    for (const [name, args] of [
      ['--version', ['--version']],
      ['--help', ['--help']],
      ['annotate --help', ['annotate', '--help']],
    ] as const) {
      startup[name] = median(await timeRuns(startRuns, () => exec(process.execPath, [BIN, ...args])));
    }

    const data = { byLayers, fanout: { latencyMs: 20, results: fanout, ratioN8overN1: n8 / n1 }, startup: { nodeE0Ms: node0, commandsMs: startup, ratios: Object.fromEntries(Object.entries(startup).map(([k, v]) => [k, v / node0])) } };
    const rows = byLayers.map((r) => {
      const x = r as { layers: number; requests: Record<string, { total: number; blob: number }>; wallMsMedian: Record<string, number>; ratios: Record<string, number> };
      return `| ${x.layers} × 1 MiB | ${x.requests.tagtrail?.total} / ${x.requests.tagtrailNoVerify?.total} (${(x.requests.tagtrail?.blob ?? 0) + (x.requests.tagtrailNoVerify?.blob ?? 0)} blob) | ${x.requests.curlFloor?.total} | ${x.requests.skopeoRoundTrip?.total} (${x.requests.skopeoRoundTrip?.blob} blob) | ${fmt(x.wallMsMedian.tagtrail ?? NaN, 0)} / ${fmt(x.wallMsMedian.tagtrailNoVerify ?? NaN, 0)} | ${fmt(x.wallMsMedian.curlFloor ?? NaN, 0)} | ${fmt(x.wallMsMedian.skopeoRoundTrip ?? NaN, 0)} | ${fmt(x.ratios.tagtrailOverFloor ?? NaN, 2)}× / ${fmt(x.ratios.noVerifyOverFloor ?? NaN, 2)}× | ${fmt(x.ratios.roundTripOverTagtrail ?? NaN, 1)}× |`;
    });
    const md = `
# annotate benchmark

Median of ${RUNS} runs (skopeo round trip: 3), local CNCF distribution registry, requests counted by a proxy in front of it.
tagtrail runs as a process (node start-up included), as in a CI job; the floor is two curl processes.
tagtrail figures are given as default / \`--no-read-back\` (the default reads the tag back after a wait of at least 250 ms, to catch a concurrent writer).

| image | tagtrail requests | curl floor requests | skopeo out+in requests | tagtrail ms | floor ms | skopeo out+in ms | tagtrail / floor | skopeo / tagtrail (default) |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Index over a link with 20 ms added per request, with \`--no-read-back\` (children fetched and written 4 at a time):

| platforms | requests | bound 2N+6 | blob requests | wall ms |
|---|---|---|---|---|
${fanout.map((f) => { const x = f as { platforms: number; requests: number; requestBound: number; blobRequests: number; wallMsMedian: number }; return `| ${x.platforms} | ${x.requests} | ${x.requestBound} | ${x.blobRequests} | ${fmt(x.wallMsMedian, 0)} |`; }).join('\n')}

N = 8 over N = 1: **${fmt(n8 / n1, 2)}×** (goal: at most 1.5×).

Start-up, median of ${startRuns}: \`node -e 0\` ${fmt(node0, 0)} ms; ${Object.entries(startup).map(([k, v]) => `\`tagtrail ${k}\` ${fmt(v, 0)} ms (${fmt(v / node0, 2)}×)`).join(', ')} (goal: under 2×).

For comparison (not measured here; neither tool is packaged for this machine): crane mutate needs 15 + L requests, regctl 9.
`;
    await writeResults('annotate', data, md);
  } finally {
    await registry.stop();
    await removeTempDir(work);
  }
}
