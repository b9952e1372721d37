// A command loads only what it uses: `annotate` (its help and a real dry run against a registry)
// never loads the server's or the catalog's packages (hono, pg, better-sqlite3, pino), and the
// fixed answers (--version, --help) do not even load the command line. The modules are
// recorded by test/helpers/record-modules.mjs, loaded into the real bin with NODE_OPTIONS.
import { readFile } from 'node:fs/promises';
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
    expect(r.recorded).toMatch(/dist\/cli\.js/);
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
    expect(r.recorded, 'the annotate command was loaded').toMatch(/dist\/annotate-[A-Z0-9]+\.js/);
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
    expect(r.recorded, 'the node:http client was loaded').toMatch(/dist\/node-http-[A-Z0-9]+\.js/);
    // undici (about 100 ms of CPU to load) is for the commands that use fetch, not this one.
    expect([...r.packages]).toEqual([]);
  });
});
