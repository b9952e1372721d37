// scripts/system-deps.ts, the check `npm test` and `npm run demo` start with: a missing Debian
// package is installed with apt-get as root, or named with the one command to run otherwise.
// apt-get itself is replaced by a recorder on PATH, so no test installs anything.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dpkgInstalled, ensureSystemPackages, TEST_PACKAGES } from '../scripts/system-deps.js';
import { useTempDir } from './helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'system-deps.ts');
const FAKE = 'tagtrail-no-such-package';
const work = useTempDir('system-deps');
const asRoot = process.getuid?.() === 0;

function capture(): { lines: string[]; write: (l: string) => void } {
  const lines: string[] = [];
  return { lines, write: (l) => lines.push(l) };
}

/** A PATH whose apt-get only records its arguments. */
async function recordingAptGet(): Promise<{ path: string; record: string }> {
  const dir = work();
  const record = join(dir, 'apt-get.calls');
  await writeFile(join(dir, 'apt-get'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${record}'\n`);
  await chmod(join(dir, 'apt-get'), 0o755);
  await chmod(dir, 0o755);
  return { path: `${dir}:${process.env.PATH ?? ''}`, record };
}

function runScript(env: Record<string, string>, asUser?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const node = [process.execPath, '--import', 'tsx', SCRIPT];
  const [file, args] = asUser ? ['runuser', ['-u', asUser, '--', ...node]] : [node[0] as string, node.slice(1)];
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, env: { HOME: work(), ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('dpkgInstalled', () => {
  it('lists what dpkg has installed and leaves out a name it does not know', () => {
    const found = dpkgInstalled(['curl', FAKE]);
    expect(found?.has('curl')).toBe(true);
    expect(found?.has(FAKE)).toBe(false);
  });
});

describe('ensureSystemPackages', () => {
  it('as another user: names the one command to run, and runs nothing', () => {
    const err = capture();
    let installs = 0;
    const r = ensureSystemPackages({ packages: ['curl', FAKE], purpose: 'the test suite', isRoot: () => false, install: () => ++installs, err: err.write, out: err.write });
    expect(r).toEqual({ ok: false, missing: [FAKE], command: `apt-get update && apt-get install -y --no-install-recommends ${FAKE}` });
    expect(installs).toBe(0);
    expect(err.lines.join('\n')).toContain(`sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends ${FAKE}'`);
  });

  it('as root: installs only the missing packages, and checks them again afterwards', () => {
    const out = capture();
    const asked: string[][] = [];
    let present = new Set(['curl']);
    const r = ensureSystemPackages({
      packages: ['curl', FAKE],
      purpose: 'the test suite',
      isRoot: () => true,
      installed: (ps) => new Set(ps.filter((p) => present.has(p))),
      install: (ps) => {
        asked.push([...ps]);
        present = new Set([...present, ...ps]);
        return 0;
      },
      out: out.write,
      err: out.write,
    });
    expect(asked).toEqual([[FAKE]]);
    expect(r).toEqual({ ok: true, installed: [FAKE] });
  });

  it('as root: an install that leaves a package missing is a failure naming it', () => {
    const err = capture();
    const r = ensureSystemPackages({ packages: [FAKE], purpose: 'the test suite', isRoot: () => true, installed: () => new Set(), install: () => 0, out: err.write, err: err.write });
    expect(r.ok).toBe(false);
    expect(err.lines.join('\n')).toMatch(new RegExp(`installing ${FAKE} failed`));
  });

  it('does nothing when everything the suite needs is installed (this machine)', () => {
    const said = capture();
    const r = ensureSystemPackages({ packages: TEST_PACKAGES, purpose: 'the test suite', isRoot: () => false, out: said.write, err: said.write });
    expect(r).toEqual({ ok: true, installed: [] });
    expect(said.lines).toEqual([]);
  });
});

describe('scripts/system-deps.ts as npm test runs it', () => {
  it('without root: prints the command, exits 1, and never runs apt-get', async () => {
    const apt = await recordingAptGet();
    // As root, drop to an unprivileged user so the non-root path is the one taken.
    const r = await runScript({ PATH: apt.path, TAGTRAIL_SYSTEM_PACKAGES: `curl ${FAKE}` }, asRoot ? 'nobody' : undefined);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends ${FAKE}'`);
    expect(existsSync(apt.record)).toBe(false);
  });

  it.runIf(asRoot)('as root: runs apt-get update and install for the missing package, and fails when it is still missing', async () => {
    const apt = await recordingAptGet();
    const r = await runScript({ PATH: apt.path, TAGTRAIL_SYSTEM_PACKAGES: `curl ${FAKE}` });
    expect(await readFile(apt.record, 'utf8')).toBe(`update\ninstall -y --no-install-recommends ${FAKE}\n`);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`installing ${FAKE} failed`);
  });

  it("exits 0 with the suite's own list on a machine that has it all", async () => {
    const r = await runScript({ PATH: process.env.PATH ?? '' });
    expect(r.code, r.stderr).toBe(0);
  });
});
