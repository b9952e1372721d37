// bin/tagtrail.js, the installed command: it runs the bundle in dist/, and without one it says
// what is missing and how to fix it instead of a module-resolution stack trace.
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { BIN, runBin } from './helpers/cli.js';
import { useRegistry, useTempDir } from './helpers/fixtures.js';
import { run } from './helpers/exec.js';
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
    const r = await run(process.execPath, [bin, '--help']).then(
      () => ({ code: 0, stderr: '' }),
      (err: { exitCode: number | null; stderr: string }) => ({ code: err.exitCode, stderr: err.stderr }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: tagtrail is not built: dist/cli.js is missing. Run `npm run build` (npm ci does it too) in the tagtrail checkout.\n');
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
