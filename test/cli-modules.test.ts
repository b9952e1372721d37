// A command loads only what it uses: `annotate` (its help and a real dry run against a registry)
// never loads the server's or the catalog's packages (hono, pg, better-sqlite3, pino), and the
// fixed answers (--version, --help) do not even load the command line. The modules are
// recorded by test/helpers/record-modules.mjs, loaded into the real bin with NODE_OPTIONS.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gitlabEnv, runBin } from './helpers/cli.js';
import { useRegistry, useTempDir } from './helpers/fixtures.js';
import { makeImage, pushImage } from './helpers/images.js';

const RECORDER = fileURLToPath(new URL('./helpers/record-modules.mjs', import.meta.url));
const SERVER_PACKAGES = ['hono', '@hono/node-server', 'pg', 'better-sqlite3', 'pino'];

/** The packages under node_modules/ a recorded run loaded, by name. */
function packagesIn(recorded: string): Set<string> {
  const names = new Set<string>();
  for (const m of recorded.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)) names.add(m[1] as string);
  return names;
}

let runs = 0;
async function runRecorded(dir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; packages: Set<string>; recorded: string }> {
  const file = join(dir, `modules-${++runs}.txt`);
  const r = await runBin(args, { env: { ...env, NODE_OPTIONS: `--import=${RECORDER}`, RECORD_MODULES_TO: file } });
  const recorded = await readFile(file, 'utf8');
  return { ...r, recorded, packages: packagesIn(recorded) };
}

describe('modules a command loads', () => {
  const registry = useRegistry();
  const dir = useTempDir('cli-modules');

  it('the recorder sees each of the server packages when they are loaded (the control)', async () => {
    // A script that loads them all, through the same recorder, proves an absence below means something.
    const file = join(dir(), 'control.txt');
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['--import', RECORDER, '--input-type=module', '-e', SERVER_PACKAGES.map((p) => `await import(${JSON.stringify(p)});`).join('')], {
      env: { PATH: process.env.PATH, RECORD_MODULES_TO: file },
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const packages = packagesIn(await readFile(file, 'utf8'));
    for (const p of SERVER_PACKAGES) expect([...packages], p).toContain(p);
  });

  it.each([['--version'], ['--help'], ['annotate', '--help']].map((f) => [f.join(' '), f] as const))('`%s` prints its recorded answer without commander or any server package', async (_name, args) => {
    const r = await runRecorded(dir(), args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.recorded, 'the recorder ran').toMatch(/dist\/fixed-output\.js/);
    // Not the command line (dist/cli.js, commander bundled into it) nor any package.
    expect(r.recorded).not.toMatch(/dist\/cli\.js/);
    expect([...r.packages]).toEqual([]);
  });

  it('annotate --help with another option takes the full path, still without server packages', async () => {
    const r = await runRecorded(dir(), ['annotate', '--help', '--debug']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: tagtrail annotate');
    expect(r.recorded).toMatch(/dist\/annotate\/cli\.cjs/);
    for (const p of SERVER_PACKAGES) expect([...r.packages], p).not.toContain(p);
  });

  it('a real annotate --dry-run against a registry loads its command and no server package', async () => {
    const image = await makeImage(join(dir(), 'img'), { tag: 'v1' });
    const ref = `${registry().host}/modules/app:v1`;
    await pushImage(image, ref);
    const r = await runRecorded(dir(), ['annotate', '--dry-run', '--insecure-registry', registry().host, ref], gitlabEnv());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(ref.split(':')[0]);
    expect(registry().count({ kind: 'manifest', method: 'GET' }) + registry().count({ kind: 'manifest', method: 'HEAD' })).toBeGreaterThan(0);
    expect(r.recorded, "annotate's own build was loaded").toMatch(/dist\/annotate\/cli\.cjs/);
    for (const p of SERVER_PACKAGES) expect([...r.packages], p).not.toContain(p);
  });

  it('a real annotate (read, race check, write, read-back) goes out on node:http: no package at all, undici included', async () => {
    const image = await makeImage(join(dir(), 'img-write'), { tag: 'v1' });
    const ref = `${registry().host}/modules/write:v1`;
    await pushImage(image, ref);
    registry().resetRequests();
    const r = await runRecorded(dir(), ['annotate', '--insecure-registry', registry().host, ref, '-a', 'com.example.modules=yes'], gitlabEnv());
    expect(r.code, r.stderr).toBe(0);
    expect(registry().count({ kind: 'manifest', method: 'PUT' })).toBe(1);
    // undici (about 100 ms of CPU to load) is for the commands that use fetch, not this one.
    expect([...r.packages]).toEqual([]);
    // Its own build, one file, by require: node loads one module of dist/ before the first
    // request, not the cli and the dozen chunks the commands share, and starts no ES module loader
    // (scripts/build.mjs, src/cli-annotate.ts, bin/tagtrail.js).
    expect(distFiles(r.recorded)).toEqual(['dist/annotate/cli.cjs']);
    expect(r.recorded).toMatch(/^cjs \S+\/dist\/annotate\/cli\.cjs$/m);
    expect(r.recorded).not.toMatch(/^esm \S+\/dist\//m);
  });

  it('the other commands run from the shared build', async () => {
    const r = await runRecorded(dir(), ['show', '--insecure-registry', registry().host, `${registry().host}/modules/none:v1`]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).not.toMatch(/not in the build of annotate/);
    expect(distFiles(r.recorded)).toContain('dist/cli.js');
    expect(distFiles(r.recorded)).not.toContain('dist/annotate/cli.cjs');
  });

  it('annotate --report from its own build loads undici for the report only, and the report arrives', async () => {
    const image = await makeImage(join(dir(), 'img-report'), { tag: 'v1' });
    const ref = `${registry().host}/modules/report:v1`;
    await pushImage(image, ref);
    const received: { path: string; authorization: boolean; body: string }[] = [];
    const serve = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ path: req.url ?? '', authorization: req.headers.authorization === 'Bearer id-token', body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => serve.listen(0, '127.0.0.1', resolve));
    try {
      const port = (serve.address() as AddressInfo).port;
      const r = await runRecorded(dir(), ['annotate', '--insecure-registry', registry().host, ref, '-a', 'com.example.modules=report', '--report', `http://127.0.0.1:${port}`, '-o', 'json'], {
        ...gitlabEnv(),
        TAGTRAIL_ID_TOKEN: 'id-token',
      });
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { after: string; report: { accepted: boolean } };
      expect(out.report).toEqual({ accepted: true });
      expect(received).toHaveLength(1);
      expect(received[0]?.path).toBe('/api/v1/builds');
      expect(received[0]?.authorization).toBe(true);
      expect(JSON.parse(received[0]?.body ?? '{}')).toEqual({ images: [{ image: ref, digest: out.after }] });
      expect(distFiles(r.recorded)).toEqual(['dist/annotate/cli.cjs']);
      expect([...r.packages]).toContain('undici');
    } finally {
      await new Promise((resolve) => serve.close(resolve));
    }
  });
});

/** The files of dist/ a recorded run loaded, relative to the project, each once. */
function distFiles(recorded: string): string[] {
  return [...new Set([...recorded.matchAll(/\/(dist\/\S+\.c?js)$/gm)].map((m) => m[1] as string))].sort();
}
