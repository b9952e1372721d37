// The GitLab CI template and component as files: they run the same script, name the image of
// this release, declare the inputs the catalog shows, and the script turns its variables into
// exactly the `tagtrail annotate` arguments meant, under a plain POSIX sh (the tagtrail image's
// shell is not bash). gitlab-ci.e2e.test.ts runs both as real pipelines.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TEMPLATE = await readFile(join(ROOT, 'templates', 'tagtrail.gitlab-ci.yml'), 'utf8');
const COMPONENT = await readFile(join(ROOT, 'templates', 'annotate.yml'), 'utf8');
const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The literal block under `script:\n    - |`, dedented. */
function script(yaml: string): string {
  const lines = yaml.split('\n');
  const start = lines.findIndex((l, i) => l === '  script:' && lines[i + 1] === '    - |');
  if (start < 0) throw new Error('no `script: - |` block');
  const body: string[] = [];
  for (const l of lines.slice(start + 2)) {
    if (l !== '' && !l.startsWith('      ')) break;
    body.push(l.slice(6));
  }
  return `${body.join('\n').trimEnd()}\n`;
}

describe('template and component', () => {
  it('run the same script', () => {
    expect(script(COMPONENT)).toBe(script(TEMPLATE));
  });

  it('run in the tagtrail image of this release by default', () => {
    const image = `registry.gitlab.com/tagtrail/tagtrail:${VERSION}`;
    expect(TEMPLATE).toContain(`.tagtrail-annotate:\n  image: ${image}\n`);
    expect(COMPONENT).toMatch(new RegExp(`\\n    image:\\n      type: string\\n      default: ${image.replace(/[.]/g, '\\.')}\\n`));
    expect(COMPONENT).toContain('  image: $[[ inputs.image ]]\n');
  });

  it('leave TAGTRAIL_IMAGE to annotate, whose dotenv report sets it for later jobs', () => {
    for (const f of [TEMPLATE, COMPONENT]) expect(f).not.toMatch(/^\s+TAGTRAIL_IMAGE:/m);
  });

  it('set no global keywords: only jobs at the top level (GitLab\'s template guide)', () => {
    const top = (yaml: string) => [...yaml.matchAll(/^([^\s#][^:]*):/gm)].map((m) => m[1]);
    expect(top(TEMPLATE)).toEqual(['.tagtrail-annotate', 'tagtrail-annotate']);
    expect(top(COMPONENT.slice(COMPONENT.indexOf('\n---\n') + 5))).toEqual(['$[[ inputs.job-name ]]']);
  });

  it('share the rules: merge request pipelines, branch pipelines without an open merge request, tags; never when disabled', () => {
    const rules = (yaml: string) => {
      const at = yaml.indexOf('\n  rules:\n');
      return yaml.slice(at, yaml.indexOf('\n  script:', at));
    };
    expect(rules(COMPONENT)).toBe(rules(TEMPLATE));
    expect(rules(TEMPLATE)).toBe(
      [
        '',
        '  rules:',
        '    - if: $TAGTRAIL_DISABLED == "true" || $TAGTRAIL_DISABLED == "1"',
        '      when: never',
        '    - if: $CI_PIPELINE_SOURCE == "merge_request_event"',
        '    - if: $CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS',
        '      when: never',
        '    - if: $CI_COMMIT_BRANCH',
        '    - if: $CI_COMMIT_TAG',
      ].join('\n'),
    );
    // No catch-all rule: it is what starts the job a second time in merge request pipelines.
    for (const f of [TEMPLATE, COMPONENT]) expect(f).not.toMatch(/^\s+- when: (on_success|always)$/m);
  });

  it('give the ID token an aud that holds the report URL and is never empty, whatever the rules', () => {
    // Parsed, as GitLab reads it: a list whose first entry is the report URL (serve accepts a token
    // whose aud array holds its URL) and whose second is fixed, so aud is never empty. No rule and
    // no variable of the job's own takes part, so rules a user writes in its place change nothing.
    const template = parse(TEMPLATE) as Record<string, { id_tokens?: unknown; variables?: Record<string, unknown> }>;
    const component = parse(COMPONENT.slice(COMPONENT.indexOf('\n---\n') + 5)) as Record<string, { id_tokens?: unknown; variables?: Record<string, unknown> }>;
    for (const job of [template['.tagtrail-annotate'], component['$[[ inputs.job-name ]]']]) {
      expect(job?.id_tokens).toEqual({ TAGTRAIL_ID_TOKEN: { aud: ['$TAGTRAIL_REPORT_URL', 'tagtrail'] } });
      expect(Object.keys(job?.variables ?? {})).not.toContain('TAGTRAIL_ID_TOKEN_AUD');
    }
    expect(component['$[[ inputs.job-name ]]']?.variables?.TAGTRAIL_REPORT_URL).toBe('$[[ inputs.report-url ]]');
    for (const f of [TEMPLATE, COMPONENT]) expect(f).not.toContain('TAGTRAIL_ID_TOKEN_AUD');
  });

  it('declare the component inputs, each with a type, a default and a description, and use each one', () => {
    const spec = COMPONENT.slice(COMPONENT.indexOf('spec:\n'), COMPONENT.indexOf('\n---\n'));
    const names = [...spec.matchAll(/^ {4}([a-z_-]+):$/gm)].map((m) => m[1]);
    expect(names).toEqual(['job-name', 'image', 'stage', 'images', 'annotations', 'mode', 'report-url', 'platforms', 'args', 'dotenv-max-variables']);
    expect(spec).toContain('      options: [annotate, attach]\n');
    for (const n of names) {
      const block = spec.slice(spec.indexOf(`    ${n}:\n`)).split(/\n {4}(?=[a-z])/)[0] as string;
      expect(block, n).toMatch(/\n {6}type: (string|number|boolean|array)\n/);
      expect(block, n).toMatch(/\n {6}default: /);
      expect(block, n).toMatch(/\n {6}description: \S/);
      expect(COMPONENT, n).toContain(`$[[ inputs.${n} ]]`);
    }
    // Every variable the shared script reads is set from an input: none is left to the caller.
    const body = COMPONENT.slice(COMPONENT.indexOf('\n---\n'));
    for (const v of ['TAGTRAIL_IMAGES', 'TAGTRAIL_ANNOTATIONS', 'TAGTRAIL_PLATFORMS', 'TAGTRAIL_MODE', 'TAGTRAIL_ANNOTATE_ARGS', 'TAGTRAIL_DOTENV_MAX_VARIABLES', 'TAGTRAIL_REPORT_URL']) {
      expect(body, v).toMatch(new RegExp(`\\n    ${v}: \\$\\[\\[ inputs\\.[a-z-]+ \\]\\]\\n`));
    }
  });

  it('write the dotenv report the job declares', () => {
    for (const f of [TEMPLATE, COMPONENT]) {
      expect(f).toContain('> tagtrail.env\n');
      expect(f).toMatch(/artifacts:\n {4}reports:\n {6}dotenv: tagtrail\.env\n/);
    }
  });
});

describe('the job script, under POSIX sh', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tagtrail-template-'));
    // A stand-in tagtrail that records its arguments, NUL-separated, and prints a dotenv line.
    await writeFile(join(dir, 'tagtrail'), '#!/bin/sh\nprintf "%s\\0" "$@" > "$ARGS_FILE"\necho TAGTRAIL_DIGEST=sha256:0\n', { mode: 0o755 });
    await writeFile(join(dir, 'job.sh'), script(TEMPLATE));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function job(vars: Record<string, string>): Promise<{ code: number; args: string[]; stdout: string; stderr: string }> {
    const argsFile = join(dir, 'args');
    return new Promise((resolve) => {
      execFile('sh', [join(dir, 'job.sh')], { cwd: dir, env: { PATH: `${dir}:${process.env.PATH}`, ARGS_FILE: argsFile, ...vars } }, async (err, stdout, stderr) => {
        const raw = await readFile(argsFile, 'utf8').catch(() => '');
        await rm(argsFile, { force: true });
        resolve({ code: err ? Number(err.code) : 0, args: raw === '' ? [] : raw.slice(0, -1).split('\0'), stdout, stderr });
      });
    });
  }

  it('passes images, platforms, annotations line by line (trimmed, blank lines skipped), and extra options', async () => {
    const r = await job({
      TAGTRAIL_IMAGES: ' registry.example.com/g/app:1   [::1]:5000/g/app:2\n',
      TAGTRAIL_PLATFORMS: 'linux/amd64 linux/arm64',
      TAGTRAIL_ANNOTATIONS: `com.example.team=pay ments\n\n \t com.example.q="x" 'y' $(touch pwned) \`id\` \\n *  \ncom.example.empty=\n`,
      TAGTRAIL_ANNOTATE_ARGS: '--to-oci',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.args).toEqual([
      'annotate',
      '--output',
      'dotenv',
      'registry.example.com/g/app:1',
      '[::1]:5000/g/app:2',
      '--platform',
      'linux/amd64',
      '--platform',
      'linux/arm64',
      '--annotation',
      'com.example.team=pay ments',
      '--annotation',
      `com.example.q="x" 'y' $(touch pwned) \`id\` \\n *`,
      '--annotation',
      'com.example.empty=',
      '--to-oci',
    ]);
    expect(await readFile(join(dir, 'tagtrail.env'), 'utf8')).toBe('TAGTRAIL_DIGEST=sha256:0\n');
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    expect(r.stdout).toContain('TAGTRAIL_DIGEST=sha256:0');
  });

  it('passes nothing more when the optional variables are empty or unset', async () => {
    const r = await job({ TAGTRAIL_IMAGES: 'registry.example.com/g/app:1' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.args).toEqual(['annotate', '--output', 'dotenv', 'registry.example.com/g/app:1']);
  });

  it('annotates $CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA when TAGTRAIL_IMAGES is unset, and says so when the project has no registry', async () => {
    const r = await job({ CI_REGISTRY_IMAGE: 'registry.example.com/g/app', CI_COMMIT_SHORT_SHA: '0123abcd' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.args).toEqual(['annotate', '--output', 'dotenv', 'registry.example.com/g/app:0123abcd']);
    const none = await job({ CI_COMMIT_SHORT_SHA: '0123abcd' });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no container registry');
    expect(none.args).toEqual([]);
  });

  it('runs attach instead with TAGTRAIL_MODE=attach, and refuses platforms or another mode with exit 2', async () => {
    const r = await job({ TAGTRAIL_IMAGES: 'registry.example.com/g/app:1', TAGTRAIL_MODE: 'attach', TAGTRAIL_ANNOTATIONS: 'com.example.team=pay' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.args).toEqual(['attach', '--output', 'dotenv', 'registry.example.com/g/app:1', '--annotation', 'com.example.team=pay']);
    expect(r.stdout).toContain('keep their digests');

    const platforms = await job({ TAGTRAIL_IMAGES: 'registry.example.com/g/app:1', TAGTRAIL_MODE: 'attach', TAGTRAIL_PLATFORMS: 'linux/amd64' });
    expect(platforms.code).toBe(2);
    expect(platforms.stderr).toContain('TAGTRAIL_PLATFORMS applies to annotate');
    expect(platforms.args).toEqual([]);

    const other = await job({ TAGTRAIL_IMAGES: 'registry.example.com/g/app:1', TAGTRAIL_MODE: 'annotate; touch pwned' });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('TAGTRAIL_MODE');
    expect(other.args).toEqual([]);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });

  it('stops with exit 2 when TAGTRAIL_IMAGES names no image', async () => {
    const r = await job({ TAGTRAIL_IMAGES: '  ' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('TAGTRAIL_IMAGES names no image');
    expect(r.args).toEqual([]);
  });
});
