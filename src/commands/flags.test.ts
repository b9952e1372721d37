import { describe, expect, it } from 'vitest';
import { main } from '../cli.js';
import { annotationChanges } from '../gitlab/annotation-set.js';
import { applyAnnotationChanges } from '../oci/annotations.js';
import type { Runtime } from '../runtime.js';
import { parseAsGitLab } from '../../test/helpers/gitlab-dotenv.js';

const NOW = new Date('2026-11-26T10:20:30.456Z');
const ENV = {
  CI_PIPELINE_ID: '1001',
  CI_PIPELINE_IID: '7',
  CI_PIPELINE_URL: 'https://gitlab.example.com/g/app/-/pipelines/1001',
  CI_JOB_ID: '2002',
  CI_JOB_NAME: 'build image',
  CI_PROJECT_URL: 'https://gitlab.example.com/g/app',
  CI_SERVER_URL: 'https://gitlab.example.com',
  CI_COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567',
  CI_COMMIT_REF_NAME: 'main',
  CI_COMMIT_BRANCH: 'main',
  CI_COMMIT_MESSAGE: 'not for annotations',
  CI_JOB_TOKEN: 'glcbt-very-secret-token',
};

async function flags(argv: string[], env: Record<string, string> = ENV): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const rt: Runtime = {
    env,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    readStdin: async () => '',
    fetch: () => Promise.reject(new Error('flags must not touch the network')),
    now: () => NOW,
    cwd: '/',
  };
  const code = await main(['flags', ...argv], rt);
  return { code, out, err };
}

describe('tagtrail flags', () => {
  it('prints buildx flags as shell words by default, with index,manifest levels', async () => {
    const r = await flags([]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('--annotation index,manifest:com.gitlab.ci.pipeline_id=1001 ');
    expect(r.out).toContain(`--annotation 'index,manifest:com.gitlab.ci.job_name=build image'`);
    expect(r.out).toContain('--annotation index,manifest:org.opencontainers.image.created=2026-11-26T10:20:30Z');
    expect(r.out.endsWith('\n')).toBe(true);
    expect(r.out.trimEnd()).not.toContain('\n');
  });

  it('holds exactly what annotate writes into a manifest for the same environment and clock', async () => {
    const input = { env: ENV, now: NOW, annotations: ['com.example.team=payments', 'com.gitlab.ci.job_name=renamed'], remove: ['com.gitlab.ci.pipeline_iid'], ci: true };
    const written = applyAnnotationChanges(undefined, annotationChanges(input));
    const r = await flags(['--output', 'json', '-a', 'com.example.team=payments', '-a', 'com.gitlab.ci.job_name=renamed', '--remove-annotation', 'com.gitlab.ci.pipeline_iid']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ ...written });
    expect(JSON.parse(r.out)).not.toHaveProperty('com.gitlab.ci.pipeline_iid');
    expect(r.out).not.toContain('not for annotations');
  });

  it('takes --levels for buildx and refuses unknown levels with exit 2', async () => {
    const ok = await flags(['--levels', 'manifest,manifest-descriptor', '--no-ci', '-a', 'com.example.a=1']);
    expect(ok.out).toBe('--annotation manifest,manifest-descriptor:com.example.a=1\n');
    const bad = await flags(['--levels', 'index,manifests']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown buildx annotation level "manifests"');
    expect(bad.out).toBe('');
    const other = await flags(['--output', 'labels', '--levels', 'index']);
    expect(other.code).toBe(2);
    expect(other.err).toContain('--levels applies to --output buildx only');
  });

  it('prints buildah, podman and label flags', async () => {
    const base = ['--no-ci', '-a', 'com.example.a=x y'];
    expect((await flags(['--output', 'buildah', ...base])).out).toBe("--annotation 'com.example.a=x y'\n");
    expect((await flags(['--output', 'podman', ...base])).out).toBe("--annotation 'com.example.a=x y'\n");
    expect((await flags(['--output', 'labels', ...base])).out).toBe("--label 'com.example.a=x y'\n");
  });

  it('gives raw arguments with --null and --lines', async () => {
    expect((await flags(['--null', '--no-ci', '-a', 'com.example.a=x\ny'])).out).toBe('--annotation\0index,manifest:com.example.a=x\ny\0');
    expect((await flags(['-0', '--output', 'labels', '--no-ci', '-a', 'com.example.a=1'])).out).toBe('--label\0com.example.a=1\0');
    expect((await flags(['--lines', '--output', 'labels', '--no-ci', '-a', 'com.example.a=1 2'])).out).toBe('--label\ncom.example.a=1 2\n');
    const broken = await flags(['--lines', '--no-ci', '-a', 'com.example.a=x\ny']);
    expect(broken.code).toBe(2);
    expect(broken.err).toContain('line break');
    expect(broken.out).toBe('');
  });

  it('refuses framings that do not fit the format', async () => {
    expect((await flags(['--null', '--lines'])).code).toBe(2);
    const r = await flags(['--output', 'json', '--null']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--null applies to argument lists');
    expect((await flags(['--output', 'dotenv', '--lines'])).code).toBe(2);
  });

  it('prints a dotenv report', async () => {
    const r = await flags(['--output', 'dotenv']);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toContain('TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_ID=1001');
    expect(lines).toContain('TAGTRAIL_ANNOTATION_COM_GITLAB_CI_JOB_NAME=build image');
    expect(lines).toContain('TAGTRAIL_ANNOTATION_ORG_OPENCONTAINERS_IMAGE_CREATED=2026-11-26T10:20:30Z');
    for (const l of lines) expect(l).toMatch(/^[A-Za-z0-9_]+=[^\n]*$/);
    expect(parseAsGitLab(r.out).get('TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_ID')).toBe('1001');
  });

  it('keeps a full branch pipeline within GitLab\'s default 20 variables, naming on stderr what it left out', async () => {
    const full = {
      ...ENV,
      CI_PIPELINE_SOURCE: 'push',
      CI_PROJECT_ID: '42',
      CI_PROJECT_PATH: 'g/app',
      CI_PROJECT_NAME: 'app',
      CI_COMMIT_TIMESTAMP: '2026-11-26T10:00:00+00:00',
      CI_JOB_URL: 'https://gitlab.example.com/g/app/-/jobs/2002',
      GITLAB_USER_ID: '9',
      GITLAB_USER_LOGIN: 'dev',
    };
    const json = JSON.parse((await flags(['--output', 'json'], full)).out) as Record<string, string>;
    expect(Object.keys(json).length).toBe(22);
    const r = await flags(['--output', 'dotenv', '-a', 'com.example.team=pay'], full);
    expect(r.code).toBe(0);
    const vars = parseAsGitLab(r.out);
    expect(vars.size).toBe(20);
    expect(vars.get('TAGTRAIL_ANNOTATION_COM_EXAMPLE_TEAM')).toBe('pay');
    expect(vars.get('TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_URL')).toBe(ENV.CI_PIPELINE_URL);
    expect(vars.get('TAGTRAIL_ANNOTATION_COM_GITLAB_CI_COMMIT_SHA')).toBe(ENV.CI_COMMIT_SHA);
    expect(r.err).toMatch(/holds 20 of 23 variables.*left out: TAGTRAIL_ANNOTATION_ORG_OPENCONTAINERS_IMAGE_REVISION, TAGTRAIL_ANNOTATION_ORG_OPENCONTAINERS_IMAGE_SOURCE, TAGTRAIL_ANNOTATION_ORG_OPENCONTAINERS_IMAGE_URL/);

    const more = await flags(['--output', 'dotenv', '-a', 'com.example.team=pay'], { ...full, TAGTRAIL_DOTENV_MAX_VARIABLES: '50' });
    expect(parseAsGitLab(more.out, { maxVariables: 50, maxBytes: 5120 }).size).toBe(23);
    expect(more.err).toBe('');
    const bad = await flags(['--output', 'dotenv'], { ...full, TAGTRAIL_DOTENV_MAX_VARIABLES: 'many' });
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('TAGTRAIL_DOTENV_MAX_VARIABLES');
  });

  it('refuses bad annotations and secrets with exit 2, naming the key and never the value', async () => {
    const bad = await flags(['-a', 'nodots=1']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('reverse-DNS');
    const secret = await flags(['-a', 'com.example.token=glcbt-very-secret-token']);
    expect(secret.code).toBe(2);
    expect(secret.err).toContain('com.example.token');
    expect(secret.err).not.toContain('glcbt-very-secret-token');
    expect(secret.out).toBe('');
  });

  it('prints nothing, with a warning, outside GitLab CI without --annotation', async () => {
    const r = await flags([], {});
    expect(r.code).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toContain('not a GitLab CI job');
    expect((await flags(['--output', 'json'], {})).out).toBe('{}\n');
  });

  it('refuses arguments', async () => {
    expect((await flags(['registry.example.com/app:1'])).code).toBe(2);
  });
});
