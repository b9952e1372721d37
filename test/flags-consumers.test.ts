// tagtrail flags read by the programs that really consume it: bash (eval into an array), POSIX sh
// (eval into set --), xargs -0, bash mapfile for --lines, and buildah, which takes the flags and
// writes them into an image. The values are chosen to break naive quoting. Runs the built CLI
// (npm run build first; npm test does).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/tagtrail.js', import.meta.url));
const TAGTRAIL = [process.execPath, BIN];

let work: string;
let canary: string;

// Values that break naive quoting. None may run, split, expand or lose a byte.
function hostileValues(): string[] {
  return [
    'two words',
    "it's",
    'say "hi"',
    '$(rm -rf /)',
    `$(touch ${canary}/dollar-paren)`,
    `\`touch ${canary}/backtick\``,
    '${HOME} and $HOME and $((1+1))',
    'line one\nline two\n',
    'back\\slash and a trailing \\',
    "'",
    "''\\''",
    'café ☕ 日本語 🚀',
    '--annotation com.evil.injected=1',
    '--label=com.evil.injected=1',
    '',
    '*',
    '~',
    '!! ; | & > < #not-a-comment',
    'tab\there',
    'carriage\rreturn',
    ' leading and trailing spaces ',
  ];
}

function exec(file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'buffer', env: { PATH: process.env.PATH, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} failed: ${err.message}\n${stderr.toString('utf8')}`));
      else resolve({ stdout, stderr: stderr.toString('utf8') });
    });
  });
}

/** The NUL-separated words a consumer printed back, as an array. */
function nulSplit(b: Buffer): string[] {
  const s = b.toString('utf8');
  expect(s.endsWith('\0') || s === '').toBe(true);
  return s === '' ? [] : s.slice(0, -1).split('\0');
}

// A GitLab job environment whose job name and ref carry quoting traps too: both are free text a
// project chooses.
function jobEnv(): Record<string, string> {
  return {
    CI_PIPELINE_ID: '9001',
    CI_JOB_ID: '77001',
    CI_JOB_NAME: `build: "x" $(touch ${canary}/job-name) 'y'`,
    CI_COMMIT_SHA: '4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39',
    CI_COMMIT_REF_NAME: "feature/it's-$HOME",
    CI_COMMIT_BRANCH: "feature/it's-$HOME",
    CI_PROJECT_URL: 'https://gitlab.example.com/group/app',
    CI_SERVER_URL: 'https://gitlab.example.com',
  };
}

/** -a arguments: one hostile value per key, plus a pinned creation time so runs compare equal. */
function annotationArgs(values: readonly string[]): string[] {
  const args = ['-a', 'org.opencontainers.image.created=2026-11-26T10:20:30Z'];
  values.forEach((v, i) => args.push('-a', `com.example.v${String(i).padStart(2, '0')}=${v}`));
  return args;
}

/** The annotation set as tagtrail computes it, read through JSON (not through any shell). */
async function expectedSet(flagArgs: readonly string[]): Promise<Record<string, string>> {
  const { stdout } = await exec(TAGTRAIL[0] as string, [...TAGTRAIL.slice(1), 'flags', '--output', 'json', ...flagArgs], jobEnv());
  return JSON.parse(stdout.toString('utf8')) as Record<string, string>;
}

function expectedArgv(set: Record<string, string>, flag: string, prefix = ''): string[] {
  return Object.entries(set).flatMap(([k, v]) => [flag, `${prefix}${k}=${v}`]);
}

async function expectNothingRan(): Promise<void> {
  for (const f of ['dollar-paren', 'backtick', 'job-name']) expect(existsSync(join(canary, f)), `${f} must not have been created`).toBe(false);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tagtrail-flags-'));
  canary = join(work, 'canary');
  await exec('mkdir', ['-p', canary]);
  if (!existsSync(join(fileURLToPath(new URL('../dist/', import.meta.url)), 'cli.js'))) throw new Error('dist/cli.js is missing: run npm run build first');
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.each([
  { format: 'buildx', flag: '--annotation', prefix: 'index,manifest:' },
  { format: 'buildah', flag: '--annotation', prefix: '' },
  { format: 'labels', flag: '--label', prefix: '' },
])('tagtrail flags --output $format', ({ format, flag, prefix }) => {
  it('survives bash: eval "args=($(tagtrail flags))", value by value', async () => {
    const args = annotationArgs(hostileValues());
    const want = expectedArgv(await expectedSet(args), flag, prefix);
    expect(want.length).toBeGreaterThan(40);
    const script = 'eval "args=($("$@"))" && printf "%s\\0" "${args[@]}"';
    const { stdout } = await exec('bash', ['-c', script, 'bash', ...TAGTRAIL, 'flags', '--output', format, ...args], jobEnv());
    expect(nulSplit(stdout)).toEqual(want);
    await expectNothingRan();
  });

  it('survives POSIX sh: eval "set -- $(tagtrail flags)"', async () => {
    const args = annotationArgs(hostileValues());
    const want = expectedArgv(await expectedSet(args), flag, prefix);
    const script = 'eval "set -- $("$@")" && printf "%s\\0" "$@"';
    const { stdout } = await exec('sh', ['-c', script, 'sh', ...TAGTRAIL, 'flags', '--output', format, ...args], jobEnv());
    expect(nulSplit(stdout)).toEqual(want);
    await expectNothingRan();
  });

  it('survives xargs -0 with --null', async () => {
    const args = annotationArgs(hostileValues());
    const want = expectedArgv(await expectedSet(args), flag, prefix);
    const script = '"$@" | xargs -0 printf "%s\\0"';
    const { stdout } = await exec('bash', ['-c', `set -o pipefail; ${script}`, 'bash', ...TAGTRAIL, 'flags', '--null', '--output', format, ...args], jobEnv());
    expect(nulSplit(stdout)).toEqual(want);
    await expectNothingRan();
  });

  it('survives bash mapfile with --lines, for values without line breaks', async () => {
    const args = annotationArgs(hostileValues().filter((v) => !/[\r\n]/.test(v)));
    const want = expectedArgv(await expectedSet(args), flag, prefix);
    const script = 'mapfile -t args < <("$@") && printf "%s\\0" "${args[@]}"';
    const { stdout } = await exec('bash', ['-c', script, 'bash', ...TAGTRAIL, 'flags', '--lines', '--output', format, ...args], jobEnv());
    expect(nulSplit(stdout)).toEqual(want);
  });
});

// buildah builds a FROM scratch image with the flags and pushes it to an OCI layout; the test
// reads the manifest annotations and config labels back from the layout's JSON.
describe('buildah takes the flags', () => {
  let storage: string;

  beforeAll(async () => {
    try {
      await exec('buildah', ['--version']);
    } catch {
      throw new Error('buildah is not installed: apt-get install -y --no-install-recommends buildah');
    }
    // Storage of its own, in the test's temp dir (paths without spaces: split on purpose below).
    storage = `--root ${join(work, 'buildah-root')} --runroot ${join(work, 'buildah-run')} --storage-driver vfs`;
    await writeFile(join(work, 'Containerfile'), 'FROM scratch\n');
  });

  // The documented one-liners, as a job would run them, with "$@" standing for `tagtrail flags
  // --output FORMAT ...` and $BUILDAH for `buildah` with the test's storage options.
  const ONE_LINERS = {
    eval: 'eval "set -- $("$@")" && $BUILDAH build --quiet "$@" -t "$TAG" -f "$CONTEXT/Containerfile" "$CONTEXT"',
    xargs: `"$@" --null | xargs -0 sh -c 'exec $BUILDAH build --quiet "$@" -t "$TAG" -f "$CONTEXT/Containerfile" "$CONTEXT"' sh`,
  } as const;

  async function buildAndRead(how: keyof typeof ONE_LINERS, format: 'buildah' | 'labels', tag: string, args: readonly string[]): Promise<{ annotations: Record<string, string>; labels: Record<string, string> }> {
    const layout = join(work, `layout-${tag}`);
    const image = `localhost/tagtrail-flags:${tag}`;
    const script = ['set -e -o pipefail', `${ONE_LINERS[how]} >/dev/null`, '$BUILDAH push --quiet "$TAG" "oci:$LAYOUT:latest"'].join('\n');
    await exec('bash', ['-c', script, 'bash', ...TAGTRAIL, 'flags', '--output', format, ...args], { ...jobEnv(), BUILDAH: `buildah ${storage}`, TAG: image, CONTEXT: work, LAYOUT: layout });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (d: string) => readFile(join(layout, 'blobs', ...d.split(':')), 'utf8');
    const manifest = JSON.parse(await blob((index.manifests[0] as { digest: string }).digest)) as { config: { digest: string }; annotations?: Record<string, string> };
    const config = JSON.parse(await blob(manifest.config.digest)) as { config?: { Labels?: Record<string, string> } };
    return { annotations: manifest.annotations ?? {}, labels: config.config?.Labels ?? {} };
  }

  it.each(['eval', 'xargs'] as const)('writes every annotation of --format buildah into the manifest, byte for byte (%s)', async (how) => {
    const args = annotationArgs(hostileValues());
    const want = await expectedSet(args);
    const { annotations } = await buildAndRead(how, 'buildah', `annotations-${how}`, args);
    for (const [k, v] of Object.entries(want)) expect(annotations[k], k).toBe(v);
    expect(annotations['com.evil.injected']).toBeUndefined();
    await expectNothingRan();
  }, 120_000);

  it.each(['eval', 'xargs'] as const)('writes every label of --format labels into the image config (%s)', async (how) => {
    const args = annotationArgs(hostileValues());
    const want = await expectedSet(args);
    const { labels } = await buildAndRead(how, 'labels', `labels-${how}`, args);
    for (const [k, v] of Object.entries(want)) expect(labels[k], k).toBe(v);
    expect(labels['com.evil.injected']).toBeUndefined();
    await expectNothingRan();
  }, 120_000);
});
