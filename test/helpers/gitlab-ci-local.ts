// gitlab-ci-local, which runs .gitlab-ci.yml pipelines on this machine, for the suites that test
// the CI template and the docs' recipes. It is not a dependency of the project: it builds a
// native module (re2) that made every `npm ci` minutes slower. The first suite that needs it
// installs this pinned version under .cache/ (gitignored) with npm; later runs reuse it.
// Concurrent workers take turns through a lock directory; the install is moved into place only
// when complete, so a half-installed copy is never used.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GITLAB_CI_LOCAL_VERSION = '4.60.0';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL_DIR = join(ROOT, '.cache', `gitlab-ci-local-${GITLAB_CI_LOCAL_VERSION}`);
const LOCK_DIR = `${INSTALL_DIR}.lock`;
/** The script to run with node. */
export const GITLAB_CI_LOCAL = join(INSTALL_DIR, 'node_modules', 'gitlab-ci-local', 'src', 'index.js');

/** Generous: it compiles re2 on a cold machine. Suites use it as their beforeAll timeout. */
export const GITLAB_CI_LOCAL_INSTALL_TIMEOUT = 15 * 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function npmInstall(prefix: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', prefix, `gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION}`];
    const child = spawn('npm', args, { cwd: prefix, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm install gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION} failed (exit ${code}):\n${output}`))));
  });
}

async function install(): Promise<void> {
  const staging = `${INSTALL_DIR}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  // re2's install script builds its native module; npm asks that install scripts be allowed by name.
  await writeFile(join(staging, 'package.json'), `${JSON.stringify({ private: true, allowScripts: { re2: true } }, null, 2)}\n`);
  try {
    await npmInstall(staging);
    if (!existsSync(join(staging, 'node_modules', 'gitlab-ci-local', 'src', 'index.js'))) throw new Error(`npm installed no gitlab-ci-local into ${staging}`);
    await rm(INSTALL_DIR, { recursive: true, force: true });
    await rename(staging, INSTALL_DIR);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The path of gitlab-ci-local's entry script, installing it first when this checkout has none. */
export async function ensureGitlabCiLocal(): Promise<string> {
  await mkdir(join(ROOT, '.cache'), { recursive: true });
  for (;;) {
    if (existsSync(GITLAB_CI_LOCAL)) return GITLAB_CI_LOCAL;
    try {
      await mkdir(LOCK_DIR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another worker (or run) installs it; wait for it, or take over if it died.
      const owner = Number(await readFile(join(LOCK_DIR, 'pid'), 'utf8').catch(() => '0'));
      if (owner > 0 && !alive(owner)) await rm(LOCK_DIR, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    try {
      await writeFile(join(LOCK_DIR, 'pid'), String(process.pid));
      if (!existsSync(GITLAB_CI_LOCAL)) await install();
    } finally {
      await rm(LOCK_DIR, { recursive: true, force: true });
    }
  }
}
