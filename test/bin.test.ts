// bin/tagtrail.js, the installed command: it runs the bundle in dist/, and without one it says
// what is missing and how to fix it instead of a module-resolution stack trace.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, symlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { BIN, gitlabEnv, runBin } from './helpers/cli.js';
import { useRegistry, useTempDir } from './helpers/fixtures.js';
import { run } from './helpers/exec.js';
import { makeImage, pushImage } from './helpers/images.js';
import { ensureBuilt } from './server/serve-process.js';

const work = useTempDir('bin');
const registry = useRegistry();
const realImages = resolve(fileURLToPath(new URL('..', import.meta.url)), '../shared/real-images');

describe('bin/tagtrail.js', () => {
  it('runs the built CLI', async () => {
    ensureBuilt();
    const r = await runBin(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: tagtrail/);
  });

  it('without dist/: names the missing build and `npm run build`, exit 1', async () => {
    // The same file in a checkout that was never built.
    await mkdir(join(work(), 'bin'));
    const bin = join(work(), 'bin', 'tagtrail.js');
    await copyFile(BIN, bin);
    await copyFile(join(dirname(BIN), 'package.json'), join(work(), 'bin', 'package.json'));
    const r = await run(process.execPath, [bin, '--help']).then(
      () => ({ code: 0, stderr: '' }),
      (err: { exitCode: number | null; stderr: string }) => ({ code: err.exitCode, stderr: err.stderr }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: tagtrail is not built: dist/cli.js is missing. Run `npm run build` (npm ci does it too) in the tagtrail checkout.\n');
  });

  it('installed as npm installs it (the packed files, node_modules/.bin/tagtrail a symlink to bin/tagtrail.js): annotate runs', async () => {
    ensureBuilt();
    const root = resolve(dirname(BIN), '..');
    // The files `npm pack` ships (package.json "files"), without running the build again.
    const packed = JSON.parse((await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root })).stdout.toString('utf8')) as { files: { path: string }[] }[];
    const files = (packed[0]?.files ?? []).map((f) => f.path);
    // bin/tagtrail.js is CommonJS only by bin/package.json (the package itself is "type": "module").
    expect(files).toEqual(expect.arrayContaining(['package.json', 'bin/tagtrail.js', 'bin/package.json', 'dist/cli.js', 'dist/annotate/cli.cjs']));
    const installed = join(work(), 'project', 'node_modules', 'tagtrail');
    for (const f of files.filter((p) => p === 'package.json' || p.startsWith('bin/') || p.startsWith('dist/'))) {
      await mkdir(dirname(join(installed, f)), { recursive: true });
      await copyFile(join(root, f), join(installed, f));
    }
    const linked = join(work(), 'project', 'node_modules', '.bin', 'tagtrail');
    await mkdir(dirname(linked), { recursive: true });
    await symlink('../tagtrail/bin/tagtrail.js', linked);

    const image = await makeImage(join(work(), 'installed-img'), { tag: 'v1' });
    const ref = `${registry().host}/bin/installed:v1`;
    await pushImage(image, ref);
    registry().resetRequests();
    const r = await run(process.execPath, [linked, 'annotate', '--dry-run', '--insecure-registry', registry().host, ref], { env: { PATH: process.env.PATH, ...gitlabEnv() } }).then(
      (x) => ({ code: 0, stdout: x.stdout.toString('utf8'), stderr: x.stderr }),
      (err: { exitCode: number | null; stdout: Buffer; stderr: string }) => ({ code: err.exitCode, stdout: err.stdout.toString('utf8'), stderr: err.stderr }),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(ref.split(':')[0]);
    // A dry run writes nothing.
    expect(registry().count({ kind: 'manifest', method: 'PUT' })).toBe(0);
  });

  it('sync on a SQLite catalog: its connection threads start from dist/ and the process ends on its own', async () => {
    ensureBuilt();
    const layout = join(realImages, 'regclient-testrepo');
    if (!existsSync(layout)) throw new Error(`the real images are missing: ${layout} (expected beside the project, in ../shared/real-images)`);
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${registry().host}/bin/app:v1`]);
    const db = join(work(), 'catalog.db');
    // A process that never ends is killed at the timeout, and reports no exit code of its own.
    const r = await runBin(['sync', '--registry', registry().host, '--db', `sqlite:${db}`, '-o', 'json'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const read = new Database(db, { readonly: true });
    try {
      expect(read.prepare('SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ?').all('bin/app')).toEqual([{ name: 'v1' }]);
    } finally {
      read.close();
    }
  }, 90_000);
});
