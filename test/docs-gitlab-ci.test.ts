// docs/gitlab-ci.md as written: the shell one-liners run verbatim (with stand-ins for docker and
// buildah that record their arguments), and the three recipes load in gitlab-ci-local, whose jobs
// in the tagtrail image run for real and hand the build job a file its `eval` line reads.
// Needs the built CLI (npm run build; npm test does).
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/exec.js';
import { useTempDir } from './helpers/fixtures.js';
import { ensureGitlabCiLocal, GITLAB_CI_LOCAL, GITLAB_CI_LOCAL_INSTALL_TIMEOUT } from './helpers/gitlab-ci-local.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'tagtrail.js');
const DOC = await readFile(join(ROOT, 'docs', 'gitlab-ci.md'), 'utf8');
const REMOTE_INCLUDE = '  - remote: https://gitlab.com/tagtrail/tagtrail/-/raw/0.1.0/templates/tagtrail.gitlab-ci.yml';

const work = useTempDir('docs');
let tools: string;

/** The body of the first fenced block of this language after the heading. */
function blockAfter(heading: string, lang: string): string {
  const at = DOC.indexOf(`${heading}\n`);
  if (at < 0) throw new Error(`docs/gitlab-ci.md has no heading ${heading}`);
  const open = DOC.indexOf(`\`\`\`${lang}\n`, at);
  const close = DOC.indexOf('\n```\n', open);
  return DOC.slice(open + lang.length + 4, close + 1);
}

function sh(file: string, args: readonly string[], env: Record<string, string>, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { PATH: `${tools}:${process.env.PATH}`, ...env }, ...(cwd ? { cwd } : {}), timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

// A GitLab job environment with quoting traps in the free-text variables.
const JOB_ENV = {
  CI_PIPELINE_ID: '9001',
  CI_JOB_ID: '77001',
  CI_JOB_NAME: `build "x" $(touch pwned) 'y'`,
  CI_COMMIT_SHA: '4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39',
  CI_COMMIT_REF_NAME: "feature/it's",
  CI_PROJECT_URL: 'https://gitlab.example.com/group/app',
};

beforeAll(async () => {
  tools = join(work(), 'tools');
  await mkdir(tools, { recursive: true });
  await writeFile(join(tools, 'tagtrail'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`, { mode: 0o755 });
  // docker and buildah stand-ins: record the arguments, NUL-separated.
  for (const tool of ['docker', 'buildah']) {
    await writeFile(join(tools, tool), `#!/bin/sh\nprintf '%s\\0' ${tool} "$@" >> "$ARGS_FILE"\n`, { mode: 0o755 });
  }
});

describe('the one-liners in docs/gitlab-ci.md', () => {
  const snippets = blockAfter('The one-liners (each is run by the test suite, with hostile values, against bash, dash, xargs', 'sh')
    .split('\n\n')
    .map((s) => s.trim())
    .filter(Boolean);

  it('are five', () => {
    expect(snippets).toHaveLength(5);
  });

  it.each(snippets.map((s) => [s.split('\n')[0] as string, s]))('%s', async (_title, snippet) => {
    const dir = join(work(), `snippet-${Math.random().toString(36).slice(2)}`);
    await mkdir(dir);
    const argsFile = join(dir, 'args');
    const format = /--output (\w+)/.exec(snippet)?.[1] as string;
    const want = JSON.parse((await sh(process.execPath, [BIN, 'flags', '--output', 'json'], JOB_ENV)).stdout) as Record<string, string>;
    const flag = format === 'labels' ? '--label' : '--annotation';
    const prefix = format === 'buildx' ? 'index,manifest:' : '';
    const flags = Object.entries(want).flatMap(([k, v]) => [flag, `${prefix}${k}=${v}`]);

    // Snippets that only fill an array get a line that hands the array to buildah.
    const body = snippet.includes('buildah build') || snippet.includes('docker buildx') ? snippet : `${snippet}\nbuildah build "\${args[@]}"`;
    const shell = snippet.startsWith('# POSIX sh') ? 'sh' : 'bash';
    const r = await sh(shell, ['-c', `set -e\n${body}`], { ...JOB_ENV, IMAGE: 'registry.example.com/group/app:1', ARGS_FILE: argsFile }, dir);
    expect(r.code, r.stderr).toBe(0);
    // The run's own clock sets the creation time; every other value must match exactly.
    const clock = (a: string) => a.replace(/(org\.opencontainers\.image\.created=).*/, '$1<run time>');
    const recorded = (await readFile(argsFile, 'utf8')).slice(0, -1).split('\0').map(clock);
    const at = recorded.indexOf(flags[0] as string);
    expect(recorded.slice(at, at + flags.length)).toEqual(flags.map(clock));
    expect(recorded.filter((a) => a === flag)).toHaveLength(flags.length / 2);
    await expect(readFile(join(dir, 'pwned'))).rejects.toThrow();
  });
});

describe('the recipes in docs/gitlab-ci.md', () => {
  // The first run installs gitlab-ci-local under .cache/ (see helpers/gitlab-ci-local.ts).
  beforeAll(() => ensureGitlabCiLocal(), GITLAB_CI_LOCAL_INSTALL_TIMEOUT);

  async function project(name: string, yaml: string): Promise<string> {
    const dir = join(work(), name);
    await mkdir(join(dir, 'templates'), { recursive: true });
    await copyFile(join(ROOT, 'templates', 'tagtrail.gitlab-ci.yml'), join(dir, 'templates', 'tagtrail.gitlab-ci.yml'));
    // gitlab-ci-local would fetch a remote include; the same file, included locally.
    await writeFile(join(dir, '.gitlab-ci.yml'), yaml.replace(REMOTE_INCLUDE, '  - local: templates/tagtrail.gitlab-ci.yml'));
    const git = (...args: string[]) => run('git', args, { cwd: dir });
    await git('init', '-q', '-b', 'main');
    await git('config', 'user.name', 'Docs Tester');
    await git('config', 'user.email', 'docs@example.com');
    await git('remote', 'add', 'origin', 'git@gitlab.example.com:group/app.git');
    await git('add', '-A');
    await git('commit', '-q', '-m', name);
    return dir;
  }

  function gitlabCiLocal(dir: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return sh(process.execPath, [GITLAB_CI_LOCAL, '--shell-executor-no-image', '--force-shell-executor', ...args], { HOME: work(), NO_COLOR: '1' }, dir);
  }

  /** The build job's script lines from the recipe, up to and with its `eval`. */
  function evalLine(yaml: string): string {
    const line = yaml.split('\n').find((l) => l.includes('eval "set -- $(cat '));
    if (!line) throw new Error('the recipe has no eval line');
    return line.replace(/^\s*- /, '');
  }

  it.each([
    { heading: '### docker buildx: born annotated', job: 'tagtrail-flags', file: 'tagtrail.flags', flag: '--annotation', prefix: 'index,manifest:', annotate: false },
    { heading: '### docker build, then annotate', job: undefined, file: undefined, flag: '', prefix: '', annotate: true },
    { heading: '### kaniko, then annotate', job: 'tagtrail-labels', file: 'tagtrail.labels', flag: '--label', prefix: '', annotate: true },
  ])('$heading: loads, and its tagtrail jobs run', async ({ heading, job, file, flag, prefix, annotate }) => {
    const yaml = blockAfter(heading, 'yaml');
    const dir = await project(heading.replace(/\W+/g, '-').replace(/^-|-$/g, ''), yaml);

    const list = await gitlabCiLocal(dir, ['--list']);
    expect(list.code, `${list.stdout}\n${list.stderr}`).toBe(0);
    expect(list.stdout).toMatch(/build-image/);
    if (annotate) expect(list.stdout).toMatch(/tagtrail-annotate\s.*\btest\b/);
    else expect(list.stdout).not.toMatch(/tagtrail-annotate/);
    if (!job || !file) return;

    // The job that prints the flags, for real; then the build job's eval line reads its file.
    const ran = await gitlabCiLocal(dir, ['--job', job]);
    expect(ran.code, `${ran.stdout}\n${ran.stderr}`).toBe(0);
    const r = await sh('sh', ['-c', `${evalLine(yaml)}\nprintf '%s\\0' "$@"`], {}, dir);
    expect(r.code, r.stderr).toBe(0);
    const args = r.stdout.slice(0, -1).split('\0');
    expect(args.length).toBeGreaterThan(10);
    for (let i = 0; i < args.length; i += 2) {
      expect(args[i]).toBe(flag);
      expect(args[i + 1]?.startsWith(prefix)).toBe(true);
    }
    expect(args).toContain(`${prefix}com.gitlab.ci.job_name=${job}`);
    expect(args.some((a) => a.startsWith(`${prefix}com.gitlab.ci.commit_sha=`))).toBe(true);
  }, 180_000);

  it("README's GitLab CI example: loads, builds in one job, and annotates in the template's job, each in its own image", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const at = readme.indexOf('## Use it in GitLab CI\n');
    const open = readme.indexOf('```yaml\n', at);
    const yaml = readme.slice(open + 8, readme.indexOf('\n```\n', open) + 1);
    expect(yaml).toContain(REMOTE_INCLUDE);
    // No image has docker and tagtrail both: no job may run the two.
    expect(yaml).not.toMatch(/tagtrail (annotate|attach)/);
    const dir = await project('readme', yaml);
    const list = await gitlabCiLocal(dir, ['--list']);
    expect(list.code, `${list.stdout}\n${list.stderr}`).toBe(0);
    expect(list.stdout).toMatch(/build-image\s.*\bbuild\b/);
    expect(list.stdout).toMatch(/tagtrail-annotate\s.*\btest\b/);
  }, 180_000);
});
