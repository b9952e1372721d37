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

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions by stage: comments dropped, backslash continuations joined. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`cannot read Dockerfile line: ${l}`);
    const op = (m[1] as string).toUpperCase();
    const args = (m[2] as string).trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`cannot read FROM ${args}`);
      stages.push({ from: f[1] as string, ...(f[2] ? { name: f[2] } : {}), instructions: [] });
    } else {
      const stage = stages[stages.length - 1];
      if (!stage) throw new Error(`${op} before the first FROM`);
      stage.instructions.push({ op, args });
    }
  }
  return stages;
}

/** Sources of a COPY without --from: every word but the last, options dropped. */
function copySources(args: string): { from?: string; sources: string[] } {
  const words = args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const rest = words.filter((w) => !w.startsWith('--'));
  return { ...(from ? { from } : {}), sources: rest.slice(0, -1) };
}

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

const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = stages[stages.length - 1] as Stage;
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };

describe('Dockerfile', () => {
  it('builds on Node.js 20, as package.json asks, in named stages', () => {
    expect(pkg.engines.node).toBe('>=20');
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
});
