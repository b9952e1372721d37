// npm run demo: the registry browser on real data, in one command.
//
//   1. starts a registry (Debian's docker-registry, CNCF distribution) on a free loopback port,
//      installing it with apt-get first when it is missing and this runs as root (system-deps.ts);
//   2. pushes sample images: single-platform builds, a multi-platform index, an image with only
//      config labels and one with no build details at all;
//   3. syncs them into a SQLite catalog, annotates them with `tagtrail annotate` under GitLab-like
//      CI variables, and syncs again (so each annotated tag also shows its earlier digest);
//   4. runs `tagtrail serve` on 127.0.0.1:8080 (or the next free port) and prints the URL.
//
// Everything lives under .tagtrail-demo/ (or $TAGTRAIL_DEMO_DIR) and starts afresh on each run.
// The server takes 127.0.0.1:8080 or the next free port ($TAGTRAIL_DEMO_PORT to start elsewhere).
// Ctrl-C stops the server and the registry.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ImageInfo, type IndexInfo, makeImage, makeIndex } from '../test/helpers/images.js';
import { LOOPBACK, freePort } from '../test/helpers/ports.js';
import { ensureSystemPackages } from './system-deps.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DATA = resolve(ROOT, process.env.TAGTRAIL_DEMO_DIR || '.tagtrail-demo');
const SHOWN = relative(process.cwd(), DATA) || '.';
const FIRST_PORT = Number(process.env.TAGTRAIL_DEMO_PORT || 8080);
const BIN = join(ROOT, 'bin', 'tagtrail.js');
const DB = `sqlite:${join(DATA, 'catalog.db')}`;
const GITLAB = 'https://gitlab.example.com';
const REGISTRY_BINARIES = ['/usr/bin/docker-registry', '/usr/sbin/docker-registry'];

const children: ChildProcess[] = [];

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n`);
  stopAll();
  process.exit(1);
}

function stopAll(): void {
  for (const child of children.reverse()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}

// ---------------------------------------------------------------- ports

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function firstFreePort(from: number, count: number): Promise<number> {
  for (let port = from; port < from + count; port++) if (await canListen(port)) return port;
  return freePort();
}

// ---------------------------------------------------------------- the registry

function findRegistry(): string | undefined {
  const found = REGISTRY_BINARIES.find((p) => existsSync(p));
  if (found) return found;
  const which = spawnSync('sh', ['-c', 'command -v docker-registry'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? which.stdout.trim() : undefined;
}

function ensureRegistryInstalled(): string {
  const existing = findRegistry();
  if (existing) return existing;
  const result = ensureSystemPackages({ packages: ['docker-registry'], purpose: 'the demo', err: (line) => process.stderr.write(`demo: ${line}\n`) });
  if (!result.ok) {
    stopAll();
    process.exit(1);
  }
  const installed = findRegistry();
  if (!installed) fail("Debian's docker-registry is needed and its program was not found on PATH");
  return installed;
}

async function startRegistry(binary: string): Promise<string> {
  const port = await freePort();
  const storage = join(DATA, 'registry');
  await mkdir(storage, { recursive: true });
  // JSON is YAML; distribution reads it as its configuration.
  const config = {
    version: '0.1',
    log: { level: 'warn', formatter: 'text', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true } },
    http: { addr: `${LOOPBACK}:${port}`, secret: randomBytes(16).toString('hex') },
  };
  const configPath = join(DATA, 'registry.yml');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const log = createWriteStream(join(DATA, 'registry.log'));
  const child = spawn(binary, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const url = `http://${LOOPBACK}:${port}`;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) fail(`docker-registry exited with ${child.exitCode}; see ${SHOWN}/registry.log`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.ok) return `${LOOPBACK}:${port}`;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  fail(`docker-registry did not answer on /v2/ within 10 s; see ${SHOWN}/registry.log`);
}

// ---------------------------------------------------------------- pushing, over the registry API

async function pushBlob(host: string, repository: string, layout: string, digest: string): Promise<void> {
  const base = `http://${host}/v2/${repository}/blobs`;
  const head = await fetch(`${base}/${digest}`, { method: 'HEAD' });
  if (head.ok) return;
  const start = await fetch(`${base}/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 202 || !location) throw new Error(`starting an upload to ${repository}: HTTP ${start.status}`);
  const target = new URL(location, `http://${host}`);
  target.searchParams.set('digest', digest);
  const body = await readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  const put = await fetch(target, { method: 'PUT', body: new Uint8Array(body), headers: { 'Content-Type': 'application/octet-stream' } });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`uploading ${digest} to ${repository}: HTTP ${put.status}`);
}

async function pushManifest(host: string, repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': mediaType } });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`pushing ${repository}:${reference}: HTTP ${res.status}`);
}

async function pushSingle(host: string, repository: string, image: ImageInfo, reference: string): Promise<void> {
  for (const digest of [image.configDigest, ...image.layers.map((l) => l.digest)]) await pushBlob(host, repository, image.dir, digest);
  await pushManifest(host, repository, reference, image.mediaType, image.manifestBytes);
}

/** Pushes an image or an index (its platform manifests by digest first) under `tag`. */
async function push(host: string, repository: string, tag: string, image: ImageInfo | IndexInfo): Promise<void> {
  if ('images' in image) {
    for (const child of image.images) await pushSingle(host, repository, child, child.digest);
    await pushManifest(host, repository, tag, image.mediaType, image.indexBytes);
  } else {
    await pushSingle(host, repository, image, tag);
  }
}

// ---------------------------------------------------------------- the tagtrail CLI

function tagtrail(args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } });
  if (r.status !== 0) fail(`tagtrail ${args[0]} failed (exit ${r.status ?? 'signal'}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The variables a GitLab runner sets for a job, for one made-up pipeline. */
function ciEnv(project: string, n: number, ref: { branch?: string; tag?: string; mr?: string; name: string }, user: string): Record<string, string> {
  const url = `${GITLAB}/${project}`;
  const pipeline = String(48000 + n);
  const job = String(910000 + n * 3);
  const sha = (n * 2654435761).toString(16).padStart(8, '0').slice(0, 8) + randomBytes(16).toString('hex');
  return {
    GITLAB_CI: 'true',
    CI_SERVER_URL: GITLAB,
    CI_PROJECT_ID: String(100 + project.length),
    CI_PROJECT_PATH: project,
    CI_PROJECT_NAME: project.split('/').pop() as string,
    CI_PROJECT_URL: url,
    CI_PIPELINE_ID: pipeline,
    CI_PIPELINE_IID: String(n),
    CI_PIPELINE_URL: `${url}/-/pipelines/${pipeline}`,
    CI_PIPELINE_SOURCE: ref.mr ? 'merge_request_event' : 'push',
    CI_JOB_ID: job,
    CI_JOB_NAME: 'build-image',
    CI_JOB_URL: `${url}/-/jobs/${job}`,
    CI_COMMIT_SHA: sha,
    CI_COMMIT_SHORT_SHA: sha.slice(0, 8),
    CI_COMMIT_REF_NAME: ref.name,
    ...(ref.branch ? { CI_COMMIT_BRANCH: ref.branch } : {}),
    ...(ref.tag ? { CI_COMMIT_TAG: ref.tag } : {}),
    ...(ref.mr ? { CI_MERGE_REQUEST_IID: ref.mr } : {}),
    CI_COMMIT_TIMESTAMP: new Date().toISOString(),
    GITLAB_USER_ID: String(user.length),
    GITLAB_USER_LOGIN: user,
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  // Whatever ends this process ends the registry and the server with it.
  process.on('exit', stopAll);
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) fail('dist/cli.js is missing: run `npm run build` first (npm run demo does)');
  const binary = ensureRegistryInstalled();
  await rm(DATA, { recursive: true, force: true });
  await mkdir(DATA, { recursive: true });

  say('Starting a local registry…');
  const host = await startRegistry(binary);
  say(`  ${host} (docker-registry, data in ${SHOWN}/registry)`);

  say('Pushing sample images…');
  const layouts = join(DATA, 'layouts');
  const api = 'demo/shop/api';
  const web = 'demo/shop/web';
  const legacy = 'demo/tools/legacy-batch';
  const labelled = 'demo/tools/report';
  type Sample = { repository: string; tag: string; env?: Record<string, string>; extra?: string[] };
  const samples: Sample[] = [];
  const builds: [string, { branch?: string; tag?: string; mr?: string; name: string }, string][] = [
    ['main-101', { branch: 'main', name: 'main' }, 'amira'],
    ['main-102', { branch: 'main', name: 'main' }, 'jonas'],
    ['main-103', { branch: 'main', name: 'main' }, 'amira'],
    ['mr-57', { mr: '57', name: 'feature/checkout-retry' }, 'li.wei'],
    ['1.4.0', { tag: 'v1.4.0', name: 'v1.4.0' }, 'jonas'],
  ];
  let n = 1;
  for (const [tag, ref, user] of builds) {
    const image = await makeImage(join(layouts, `api-${tag}`), { tag, seed: `api-${tag}` });
    await push(host, api, tag, image);
    samples.push({ repository: api, tag, env: ciEnv('shop/api', n++, ref, user), extra: ['-a', 'com.example.team=payments'] });
  }
  // latest moves: first to build 102, then (below) to build 103, so it has a history.
  await push(host, api, 'latest', await makeImage(join(layouts, 'api-latest-1'), { tag: 'latest', seed: 'api-latest-1' }));

  const index = await makeIndex(join(layouts, 'web-2.0.0'), { tag: '2.0.0', image: { seed: 'web-2.0.0' } });
  await push(host, web, '2.0.0', index);
  samples.push({ repository: web, tag: '2.0.0', env: ciEnv('shop/web', n++, { tag: 'v2.0.0', name: 'v2.0.0' }, 'amira'), extra: ['-a', 'com.example.team=storefront'] });
  const webMain = await makeIndex(join(layouts, 'web-main'), { tag: 'main', image: { seed: 'web-main' } });
  await push(host, web, 'main', webMain);
  samples.push({ repository: web, tag: 'main', env: ciEnv('shop/web', n++, { branch: 'main', name: 'main' }, 'li.wei'), extra: ['-a', 'com.example.team=storefront'] });

  await push(host, legacy, 'latest', await makeImage(join(layouts, 'legacy'), { tag: 'latest', seed: 'legacy' }));
  await push(
    host,
    labelled,
    '0.9',
    await makeImage(join(layouts, 'report'), {
      tag: '0.9',
      seed: 'report',
      labels: { 'org.opencontainers.image.source': `${GITLAB}/tools/report`, 'org.opencontainers.image.revision': 'd3adb33fd3adb33fd3adb33fd3adb33fd3adb33f', 'org.opencontainers.image.version': '0.9' },
    }),
  );
  say(`  ${api}, ${web} (linux/amd64 + linux/arm64), ${labelled} (config labels only), ${legacy} (no build details)`);

  say(`Syncing the registry into the catalog (${SHOWN}/catalog.db)…`);
  tagtrail(['sync', '--registry', `http://${host}`, '--db', DB]);

  say('Annotating with `tagtrail annotate`, as GitLab CI jobs would…');
  for (const s of samples) tagtrail(['annotate', `${host}/${s.repository}:${s.tag}`, ...(s.extra ?? [])], s.env);
  tagtrail(['annotate', `${host}/${api}:latest`, '-a', 'com.example.team=payments'], ciEnv('shop/api', 2, { branch: 'main', name: 'main' }, 'jonas'));
  tagtrail(['sync', '--registry', `http://${host}`, '--db', DB]);
  // A newer build takes over latest: the tag page lists the digests it pointed at before.
  await push(host, api, 'latest', await makeImage(join(layouts, 'api-latest-2'), { tag: 'latest', seed: 'api-latest-2' }));
  tagtrail(['annotate', `${host}/${api}:latest`, '-a', 'com.example.team=payments'], ciEnv('shop/api', 3, { branch: 'main', name: 'main' }, 'amira'));
  tagtrail(['sync', '--registry', `http://${host}`, '--db', DB]);

  const port = await firstFreePort(FIRST_PORT, 20);
  say('Starting `tagtrail serve`…');
  const serveLog = createWriteStream(join(DATA, 'serve.log'));
  const serve = spawn(
    process.execPath,
    [BIN, 'serve', '--db', DB, '--registry', `http://${host}`, '--listen', `${LOOPBACK}:${port}`, '--gitlab-url', GITLAB, '--reconcile-interval', '15'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } },
  );
  children.push(serve);
  serve.stderr?.pipe(serveLog);
  const url = await new Promise<string>((resolve) => {
    let buffered = '';
    serve.stdout?.on('data', (chunk: Buffer) => {
      serveLog.write(chunk);
      buffered += chunk.toString('utf8');
      for (const line of buffered.split('\n')) {
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'listening' && entry.url) resolve(entry.url);
        } catch {
          // a partial line
        }
      }
    });
    serve.once('exit', (code) => fail(`tagtrail serve exited with ${code ?? 'a signal'}; see ${SHOWN}/serve.log`));
  });

  say('');
  say(`  The registry browser is running: ${url}/`);
  say('');
  say('  Try: the repository demo/shop/api; a search for v1.4.0, 48001, com.example.team=payments or a');
  say('  commit prefix; the tag demo/shop/api:latest and its earlier digests; demo/tools/legacy-batch,');
  say(`  which has no build details. Links go to ${GITLAB}, the made-up GitLab of the sample pipelines.`);
  say('');
  say(`  Push more to ${host} (e.g. skopeo copy … docker://${host}/demo/x:1 --dest-tls-verify=false) and annotate`);
  say(`  it with ./bin/tagtrail.js annotate ${host}/demo/x:1; the browser picks it up within 15 s.`);
  say('');
  say('  Press Ctrl-C to stop the server and the registry.');

  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  say('\nStopping…');
  serve.removeAllListeners('exit');
  stopAll();
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((resolve) => c.once('exit', resolve)) : undefined)));
}

main().catch((err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)));
