import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP } from '../../src/oci/mediatypes.js';
import { fmt, percentile } from '../lib.js';


export const sha256hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
export const now = (): number => performance.now();
export const load = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);
export const log = (line: string): void => {
  process.stdout.write(`[catalog ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};
export const passMiss = (ok: boolean): string => (ok ? '**PASS**' : '**MISS**');

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function stats(ms: readonly number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) };
}

/** Runs fn over 0..n-1 with at most `width` at once. */
export async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

/** Deterministic 32-bit hash (lowbias32) and a uniform number in [0, 1) from (k, salt). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
function unit(k: number, salt: number): number {
  return mix32(mix32(k | 0) ^ Math.imul(salt, 0x9e3779b1)) / 4294967296;
}

/** A seeded PRNG for the query mix (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}


// Manifest i comes from pipeline floor(i/2) (an amd64 and an arm64 build); pipelines belong to
// one of 3,000 projects (a few busy, most quiet), run on one of ~300 refs (main and develop most
// often, some release tags) and build a commit of their own. Each manifest carries 15 annotations,
// as `tagtrail annotate` writes them in GitLab CI.
export const T0 = Date.UTC(2025, 0, 1);
const SERVER = 'https://gitlab.example.com';
const PROJECTS = 3000;
const TOPICS = ['login', 'search', 'billing', 'api', 'cache', 'ui', 'deps', 'perf', 'docs', 'auth'];
const FEATURES = Array.from({ length: 298 }, (_, n) => `feature/${TOPICS[n % TOPICS.length]}-${n}`);

export interface Build {
  i: number;
  /** The project path: the repository the image is pushed to. */
  repository: string;
  tag: string;
  /** Push time, ms. */
  at: number;
  pipeline: string;
  commit: string;
  ref: string;
  annotations: Record<string, string>;
}

export function build(i: number): Build {
  const k = Math.floor(i / 2);
  const arm = i % 2 === 1;
  const p = Math.floor(PROJECTS * unit(k, 1) ** 2);
  const path = `group-${p % 89}/project-${p}`;
  const projectUrl = `${SERVER}/${path}`;
  const r = unit(k, 2);
  const isTag = r >= 0.95;
  const ref = r < 0.35 ? 'main' : r < 0.45 ? 'develop' : isTag ? `v${1 + (k % 4)}.${k % 23}.${k % 7}` : (FEATURES[Math.floor(unit(k, 3) * FEATURES.length)] as string);
  const commit = createHash('sha1').update(`commit ${k}`).digest('hex');
  const pipeline = String(4_000_000 + k);
  const job = String(70_000_000 + i);
  const at = T0 + i * 30_000;
  return {
    i,
    repository: path,
    tag: `${commit.slice(0, 8)}-${pipeline}${arm ? '-arm64' : ''}`,
    at,
    pipeline,
    commit,
    ref,
    annotations: {
      'com.gitlab.ci.pipeline_id': pipeline,
      'com.gitlab.ci.pipeline_url': `${projectUrl}/-/pipelines/${pipeline}`,
      'com.gitlab.ci.job_id': job,
      'com.gitlab.ci.job_name': arm ? 'build:arm64' : 'build',
      'com.gitlab.ci.job_url': `${projectUrl}/-/jobs/${job}`,
      'com.gitlab.ci.project_id': String(1000 + p),
      'com.gitlab.ci.project_path': path,
      'com.gitlab.ci.project_url': projectUrl,
      'com.gitlab.ci.commit_sha': commit,
      'com.gitlab.ci.commit_ref_name': ref,
      [isTag ? 'com.gitlab.ci.tag' : 'com.gitlab.ci.branch']: ref,
      'com.gitlab.ci.user_login': `dev${mix32(k) % 400}`,
      'org.opencontainers.image.revision': commit,
      'org.opencontainers.image.source': projectUrl,
      'org.opencontainers.image.created': new Date(at - 90_000).toISOString(),
    },
  };
}

export interface SeedManifest {
  b: Build;
  raw: Buffer;
  digest: string;
  configDigest: string;
}

/** Who pushed build i (every manifest has its pusher, as the webhook records it), and, for every 10th, its verified build report. */
export interface SeedEvidence {
  pushedBy: { userAgent: string; pusher: string };
  verification?: { by: 'gitlab-id-token'; issuer: string; projectPath: string; pipelineId: string; jobId: string; sha: string; ref: string; at: Date };
}

const SEED_PUSHERS = ['buildkit', 'kaniko', 'docker', 'containers', 'jib'];

export function seedEvidence(b: Build): SeedEvidence {
  const pusher = SEED_PUSHERS[mix32(b.i) % SEED_PUSHERS.length] as string;
  const pushedBy = { userAgent: `${pusher}/1.0`, pusher };
  if (b.i % 10 !== 0) return { pushedBy };
  const verification = { by: 'gitlab-id-token' as const, issuer: SERVER, projectPath: b.repository, pipelineId: b.pipeline, jobId: String(70_000_000 + b.i), sha: b.commit, ref: b.ref, at: new Date(b.at + 60_000) };
  return { pushedBy, verification };
}

/** The image manifest of build i for the search catalog: a config and a layer of its own (blobs that exist nowhere). */
export function seedManifest(i: number): SeedManifest {
  const b = build(i);
  const configDigest = `sha256:${sha256hex(`config ${i}`)}`;
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: 1400 + (i % 700) },
    layers: [{ mediaType: OCI_LAYER_GZIP, digest: `sha256:${sha256hex(`layer ${i}`)}`, size: 20_000_000 + ((i * 7919) % 5_000_000) }],
    annotations: b.annotations,
  };
  const raw = Buffer.from(JSON.stringify(manifest));
  return { b, raw, digest: `sha256:${sha256hex(raw)}`, configDigest };
}

/** What ingest hands putManifest for that manifest. */
export function recordOf(m: SeedManifest): ManifestRecord {
  return { digest: m.digest, mediaType: OCI_MANIFEST, raw: m.raw, artifactType: null, configDigest: m.configDigest, annotations: m.b.annotations };
}


export const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en') : 'n/a');
export const secs = (ms: number): string => `${fmt(ms / 1000, 0)} s`;
