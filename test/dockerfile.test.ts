// The Dockerfile, checked without a container engine: no docker build runs here, so this reads
// the instructions and checks what can be checked from outside: stages, base images, the user,
// the entrypoint, that every file it copies exists and is not excluded from the build context,
// and that the `tagtrail` launcher it writes starts the CLI.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Stage, copySources, parseDockerfile, stageEnv } from './helpers/dockerfile.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function dockerignore(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function ignored(path: string, patterns: readonly string[]): boolean {
  const clean = path.replace(/^\.\//, '').replace(/\/$/, '');
  return patterns.some((p) => clean === p || clean.startsWith(`${p}/`));
}

interface PackageJson {
  version: string;
  engines: { node: string };
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepublish', 'preprepare', 'prepare', 'postprepare'];

/**
 * What `npm ci` runs of our own package.json, and what that needs: the files each lifecycle
 * script names, the entry points of a build script it runs, and the packages those import.
 */
async function lifecycleInputs(pkg: PackageJson): Promise<{ script: string; files: string[]; packages: string[] }[]> {
  const out: { script: string; files: string[]; packages: string[] }[] = [];
  for (const name of INSTALL_SCRIPTS) {
    const command = pkg.scripts?.[name];
    if (!command) continue;
    const files = command.split(/\s+/).filter((w) => /[/.]/.test(w) && existsSync(join(ROOT, w)));
    const packages: string[] = [];
    for (const f of [...files]) {
      const text = await readFile(join(ROOT, f), 'utf8');
      // esbuild's entryPoints: a list of files, or an object of output name → file.
      for (const m of text.matchAll(/entryPoints:\s*\[([^\]]*)\]/g)) for (const e of (m[1] as string).matchAll(/'([^']+)'|"([^"]+)"/g)) files.push((e[1] ?? e[2]) as string);
      for (const m of text.matchAll(/entryPoints:\s*\{([^}]*)\}/g)) for (const e of (m[1] as string).matchAll(/:\s*(?:'([^']+)'|"([^"]+)")/g)) files.push((e[1] ?? e[2]) as string);
      for (const m of text.matchAll(/from\s+'([^'./][^']*)'/g)) if (!(m[1] as string).startsWith('node:')) packages.push(m[1] as string);
    }
    out.push({ script: name, files, packages });
  }
  return out;
}

/**
 * Every stage that runs `npm ci` or `npm install` without --ignore-scripts runs our lifecycle
 * scripts, so it must have copied their inputs in before, and must not leave out the dev
 * dependencies they import. Returns what is wrong, one line each.
 */
async function lifecycleProblems(stages: readonly Stage[], pkg: PackageJson): Promise<string[]> {
  const needs = await lifecycleInputs(pkg);
  const problems: string[] = [];
  for (const stage of stages) {
    const copied: string[] = [];
    for (const i of stage.instructions) {
      if (i.op === 'COPY') {
        const { from, sources } = copySources(i.args);
        if (from === undefined) copied.push(...sources.map((src) => src.replace(/^\.\//, '').replace(/\/$/, '')));
        continue;
      }
      if (i.op !== 'RUN' || !/\bnpm\s+(ci|install|i)\b/.test(i.args) || i.args.includes('--ignore-scripts')) continue;
      for (const need of needs) {
        for (const f of need.files) {
          const present = copied.some((c) => c === '.' || c === f || f.startsWith(`${c}/`));
          if (!present) problems.push(`stage ${stage.name ?? stage.from}: \`${i.args}\` runs the ${need.script} script, which needs ${f}, not copied in before it`);
        }
        if (/--omit[= ]dev|--production\b/.test(i.args)) {
          for (const p of need.packages.filter((x) => pkg.devDependencies?.[x] !== undefined)) {
            problems.push(`stage ${stage.name ?? stage.from}: \`${i.args}\` runs the ${need.script} script, which imports the dev dependency ${p} that --omit=dev leaves out`);
          }
        }
      }
    }
  }
  return problems;
}

const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = stages[stages.length - 1] as Stage;
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

describe('Dockerfile', () => {
  it('builds on Node.js 20, as package.json asks, in named stages', () => {
    expect(pkg.engines.node).toBe('>=20.18.1');
    for (const s of stages) expect(s.from).toMatch(/^node:20(-[a-z0-9.-]+)?$/);
    expect(stages.slice(0, -1).every((s) => s.name !== undefined)).toBe(true);
    const run = stages.flatMap((s) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args));
    expect(run.some((r) => r.includes('npm run build'))).toBe(true);
  });

  it('runs as a user that is not root, set after the last RUN of the final stage', () => {
    const users = final.instructions.map((i, n) => ({ ...i, n })).filter((i) => i.op === 'USER');
    const last = users[users.length - 1];
    expect(last, 'the final stage sets USER').toBeDefined();
    expect(last?.args).not.toMatch(/^(root|0)(:|$)/);
    const lastRun = Math.max(...final.instructions.map((i, n) => (i.op === 'RUN' ? n : -1)));
    expect(last?.n).toBeGreaterThan(lastRun);
  });

  it('has no entrypoint, so a GitLab runner can start the job script with the shell', () => {
    const entrypoints = final.instructions.filter((i) => i.op === 'ENTRYPOINT');
    // The node base image has one; the final stage must clear it, and nothing may set another.
    expect(entrypoints.map((e) => e.args)).toEqual(['[]']);
    // The base keeps /bin/sh: alpine and Debian node images both have it, and nothing removes it.
    expect(final.instructions.some((i) => i.op === 'RUN' && /rm\s.*\/bin\/(sh|busybox)/.test(i.args))).toBe(false);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', async () => {
    const patterns = dockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'));
    const names = new Set(stages.map((s) => s.name));
    let copies = 0;
    for (const s of stages) {
      for (const i of s.instructions.filter((x) => x.op === 'COPY' || x.op === 'ADD')) {
        expect(i.op, 'COPY, not ADD').toBe('COPY');
        const { from, sources } = copySources(i.args);
        copies++;
        if (from !== undefined) {
          expect(names.has(from), `stage ${from} exists`).toBe(true);
          continue;
        }
        for (const src of sources) {
          expect(existsSync(join(ROOT, src)), `${src} exists`).toBe(true);
          expect(ignored(src, patterns), `${src} is not in .dockerignore`).toBe(false);
        }
      }
    }
    expect(copies).toBeGreaterThan(3);
    // What the build must not take from the working tree.
    for (const p of ['node_modules', 'dist', '.git']) expect(ignored(p, patterns), p).toBe(true);
  });

  it('keeps compilers out of the final image', () => {
    expect(final.instructions.some((i) => i.op === 'RUN' && /apk add|apt-get install/.test(i.args))).toBe(false);
    const copied = final.instructions.filter((i) => i.op === 'COPY').map((i) => copySources(i.args));
    expect(copied.filter((c) => c.from !== undefined).map((c) => c.sources.join(' '))).toEqual(expect.arrayContaining(['/src/node_modules', '/src/dist']));
  });

  it('puts a tagtrail launcher on PATH that starts the CLI', async () => {
    const run = final.instructions.find((i) => i.op === 'RUN' && i.args.includes('/usr/local/bin/tagtrail'));
    const m = /printf '([^']*)' > \/usr\/local\/bin\/tagtrail/.exec(run?.args ?? '');
    expect(m, 'the final stage writes /usr/local/bin/tagtrail with printf').not.toBeNull();
    const workdir = final.instructions.find((i) => i.op === 'WORKDIR')?.args as string;
    expect(m?.[1]).toContain(`${workdir}/bin/tagtrail.js`);
    // Write the launcher as the RUN line does, pointed at this checkout instead of the image's
    // WORKDIR, and run it.
    const dir = await mkdtemp(join(tmpdir(), 'tagtrail-dockerfile-'));
    try {
      const launcher = join(dir, 'tagtrail');
      const script = await new Promise<string>((resolve, reject) =>
        execFile('sh', ['-c', `printf '${m?.[1]}'`], (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      await writeFile(launcher, script.replaceAll(workdir, ROOT.replace(/\/$/, '')));
      await chmod(launcher, 0o755);
      const out = await new Promise<string>((resolve, reject) =>
        execFile(launcher, ['--version'], { env: { PATH: process.env.PATH } }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
      );
      expect(out.trim()).toBe(pkg.version);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs npm ci with the lifecycle scripts only where their inputs are, and builds the native module', async () => {
    expect(pkg.scripts?.prepare, 'package.json builds on install').toBeDefined();
    expect(await lifecycleProblems(stages, pkg)).toEqual([]);
    const deps = stages.find((st) => st.name === 'deps');
    expect(deps?.instructions.some((i) => i.op === 'RUN' && /npm rebuild better-sqlite3/.test(i.args)), 'better-sqlite3 is built in the deps stage').toBe(true);
  });

  it('the lifecycle check catches a deps stage that runs prepare without its inputs', async () => {
    // The deps stage as it once was: `npm ci --omit=dev` runs `prepare` (node scripts/build.mjs)
    // with neither scripts/ nor src/ nor esbuild in the stage.
    const broken = parseDockerfile(['FROM node:20-alpine AS deps', 'WORKDIR /src', 'COPY package.json package-lock.json ./', 'RUN npm ci --omit=dev --no-audit --no-fund'].join('\n'));
    const problems = await lifecycleProblems(broken, pkg);
    expect(problems.some((p) => p.includes('needs scripts/build.mjs'))).toBe(true);
    expect(problems.some((p) => p.includes('needs src/cli.ts'))).toBe(true);
    expect(problems.some((p) => p.includes('dev dependency esbuild'))).toBe(true);
  });

  it('serves by default in a container: every interface, the catalog on a volume owned by node', () => {
    const env = stageEnv(final);
    expect(env.TAGTRAIL_LISTEN).toBe('0.0.0.0:8080');
    expect(env.TAGTRAIL_DB).toBe('sqlite:/var/lib/tagtrail/tagtrail.db');
    // Who may read the catalog is the deployment's choice: on 0.0.0.0 serve refuses to start without it.
    expect(env.TAGTRAIL_AUTH).toBeUndefined();
    const volumes = final.instructions.filter((i) => i.op === 'VOLUME').map((i) => i.args);
    expect(volumes).toEqual(['/var/lib/tagtrail']);
    const volumeAt = final.instructions.findIndex((i) => i.op === 'VOLUME');
    const chownAt = final.instructions.findIndex((i) => i.op === 'RUN' && /chown node:node \/var\/lib\/tagtrail/.test(i.args));
    expect(chownAt, 'the data directory is given to node').toBeGreaterThanOrEqual(0);
    expect(chownAt, 'before VOLUME, so a fresh volume keeps the owner').toBeLessThan(volumeAt);
    expect(final.instructions.find((i) => i.op === 'CMD')?.args).toBe('["tagtrail", "serve"]');
    expect(final.instructions.some((i) => i.op === 'EXPOSE' && i.args === '8080')).toBe(true);
  });
});
