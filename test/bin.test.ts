// bin/tagtrail.js, the installed command: it runs the bundle in dist/, and without one it says
// what is missing and how to fix it instead of a module-resolution stack trace.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, runBin } from './helpers/cli.js';
import { useTempDir } from './helpers/fixtures.js';
import { run } from './helpers/exec.js';
import { ensureBuilt } from './server/serve-process.js';

const work = useTempDir('bin');

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
});
