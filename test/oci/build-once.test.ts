// Build details are written once: a retried job (new CI_JOB_ID) and a later pipeline that shares
// the tag ($CI_COMMIT_SHORT_SHA in tag, MR and scheduled pipelines) must not re-stamp an image.
// Against a real registry; every result is read back with curl. Also: the dotenv reports of
// annotate and attach are read as GitLab reads them, and an unexpanded $VAR in an image is exit 2.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { parseAsGitLab } from '../helpers/gitlab-dotenv.js';
import { curlManifest, makeImage, pushImage } from '../helpers/images.js';

const ACCEPT = ['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json'];
const registry = useRegistry();
const work = useTempDir('build-once');

const pipeline = gitlabEnv();
const retry = gitlabEnv({ CI_JOB_ID: '77002', CI_JOB_URL: 'https://gitlab.example.com/group/app/-/jobs/77002' });
const later = gitlabEnv({
  CI_PIPELINE_ID: '9050',
  CI_PIPELINE_URL: 'https://gitlab.example.com/group/app/-/pipelines/9050',
  CI_PIPELINE_SOURCE: 'merge_request_event',
  CI_JOB_ID: '78000',
});

async function read(repo: string, reference: string): Promise<{ digest: string | undefined; annotations: Record<string, string>; manifests: { digest: string; annotations?: Record<string, string> }[] }> {
  const r = await curlManifest(`${registry().url}/v2/${repo}/manifests/${reference}`, { accept: ACCEPT });
  expect(r.status).toBe(200);
  const json = JSON.parse(r.body.toString('utf8')) as { annotations?: Record<string, string>; manifests?: { digest: string; annotations?: Record<string, string> }[] };
  return { digest: r.digest, annotations: json.annotations ?? {}, manifests: json.manifests ?? [] };
}

async function pushed(repo: string, seed: string): Promise<string> {
  const image = await makeImage(join(work(), seed), { seed, tag: 'v1' });
  await pushImage(image, `${registry().host}/${repo}:v1`);
  return `${registry().host}/${repo}:v1`;
}

describe('annotate writes build details once', () => {
  it('a retry of the same pipeline writes nothing (exit 0, "already annotated by this pipeline"); --annotation values still change', async () => {
    const ref = await pushed('group/once', 'once');
    expect((await runCli(['annotate', ref, '--no-read-back'], { env: pipeline })).code).toBe(0);
    const first = await read('group/once', 'v1');
    expect(first.annotations['com.gitlab.ci.job_id']).toBe('77001');

    registry().resetRequests();
    const again = await runCli(['annotate', ref], { env: retry });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('already annotated by this pipeline');
    expect(registry().count({ method: 'PUT' })).toBe(0);
    const after = await read('group/once', 'v1');
    expect(after.digest).toBe(first.digest);
    expect(after.annotations['com.gitlab.ci.job_id']).toBe('77001');

    const labelled = await runCli(['annotate', ref, '-a', 'com.example.team=payments', '--no-read-back'], { env: retry });
    expect(labelled.code, labelled.stderr).toBe(0);
    const now = await read('group/once', 'v1');
    expect(now.annotations['com.example.team']).toBe('payments');
    expect(now.annotations['com.gitlab.ci.job_id']).toBe('77001');
    expect(now.annotations['org.opencontainers.image.created']).toBe(first.annotations['org.opencontainers.image.created']);
  });

  it('another pipeline stops with exit 3 naming the pipeline that built it, and writes nothing; --overwrite replaces', async () => {
    const ref = await pushed('group/shared', 'shared');
    expect((await runCli(['annotate', ref, '--no-read-back'], { env: pipeline })).code).toBe(0);
    const built = await read('group/shared', 'v1');

    registry().resetRequests();
    const other = await runCli(['annotate', ref, '-o', 'dotenv'], { env: later });
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('pipeline 9001 (https://gitlab.example.com/group/app/-/pipelines/9001)');
    expect(other.stderr).toContain('--overwrite');
    expect(other.stdout).toBe('');
    expect(registry().count({ method: 'PUT' })).toBe(0);
    expect((await read('group/shared', 'v1')).digest).toBe(built.digest);

    const forced = await runCli(['annotate', ref, '--overwrite', '--no-read-back'], { env: later });
    expect(forced.code, forced.stderr).toBe(0);
    const replaced = await read('group/shared', 'v1');
    expect(replaced.annotations['com.gitlab.ci.pipeline_id']).toBe('9050');
    expect(replaced.digest).not.toBe(built.digest);
  });

  it('--no-ci writes no build details, so no pipeline check applies', async () => {
    const ref = await pushed('group/noci', 'noci');
    expect((await runCli(['annotate', ref, '--no-read-back'], { env: pipeline })).code).toBe(0);
    const r = await runCli(['annotate', ref, '--no-ci', '-a', 'com.example.x=1', '--no-read-back'], { env: later });
    expect(r.code, r.stderr).toBe(0);
    expect((await read('group/noci', 'v1')).annotations['com.example.x']).toBe('1');
  });
});

describe('attach writes build details once', () => {
  it('a retry adds no second referrer; another pipeline stops with exit 3; --overwrite adds its own beside', async () => {
    const ref = await pushed('group/attach-once', 'attach-once');
    const first = await runCli(['attach', ref, '-o', 'json', '--no-read-back'], { env: pipeline });
    expect(first.code, first.stderr).toBe(0);
    const subject = (JSON.parse(first.stdout) as { subject: { digest: string } }).subject.digest;
    const tag = `sha256-${subject.slice('sha256:'.length)}`;
    expect((await read('group/attach-once', tag)).manifests).toHaveLength(1);

    registry().resetRequests();
    const again = await runCli(['attach', ref], { env: retry });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('already annotated by this pipeline');
    expect(registry().count({ method: /^(PUT|POST)$/ })).toBe(0);

    const other = await runCli(['attach', ref], { env: later });
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('pipeline 9001');
    expect((await read('group/attach-once', tag)).manifests).toHaveLength(1);

    const forced = await runCli(['attach', ref, '--overwrite', '--no-read-back'], { env: later });
    expect(forced.code, forced.stderr).toBe(0);
    const listed = (await read('group/attach-once', tag)).manifests;
    expect(listed.map((d) => d.annotations?.['com.gitlab.ci.pipeline_id'])).toEqual(['9001', '9050']);
  });
});

describe('dotenv reports, read as GitLab reads them', () => {
  it('annotate of 7 images: 24 variables would break GitLab\'s 20, so the first image and the suffixed ones that fit are kept and the rest named', async () => {
    const refs: string[] = [];
    for (let i = 1; i <= 7; i++) refs.push(await pushed(`group/many${i}`, `many${i}`));
    const r = await runCli(['annotate', ...refs, '-o', 'dotenv', '--no-read-back'], { env: pipeline });
    expect(r.code, r.stderr).toBe(0);
    const vars = parseAsGitLab(r.stdout);
    expect(vars.size).toBe(20);
    const first = await read('group/many1', 'v1');
    expect(vars.get('TAGTRAIL_IMAGE')).toBe(`${registry().host}/group/many1@${first.digest}`);
    expect(vars.get('TAGTRAIL_DIGEST')).toBe(first.digest);
    const fifth = await read('group/many5', 'v1');
    expect(vars.get('TAGTRAIL_IMAGE_5')).toBe(`${registry().host}/group/many5@${fifth.digest}`);
    expect(vars.has('TAGTRAIL_IMAGE_6')).toBe(true);
    expect(vars.has('TAGTRAIL_DIGEST_BEFORE_6')).toBe(false);
    expect(r.stderr).toContain('left out: TAGTRAIL_DIGEST_BEFORE_6, TAGTRAIL_IMAGE_7, TAGTRAIL_DIGEST_7, TAGTRAIL_DIGEST_BEFORE_7');
  });

  it('attach of one image: a report GitLab takes', async () => {
    const ref = await pushed('group/attach-env', 'attach-env');
    const r = await runCli(['attach', ref, '-o', 'dotenv', '--no-read-back'], { env: pipeline });
    expect(r.code, r.stderr).toBe(0);
    const vars = parseAsGitLab(r.stdout);
    expect([...vars.keys()]).toEqual(['TAGTRAIL_IMAGE', 'TAGTRAIL_REFERRER', 'TAGTRAIL_DIGEST', 'TAGTRAIL_DIGEST_BEFORE']);
  });
});

describe('an image reference with an unexpanded variable', () => {
  it.each(['$CI_REGISTRY_IMAGE:latest', '${CI_REGISTRY_IMAGE}:$CI_COMMIT_SHORT_SHA'])('%s: exit 2 naming the variable and the fix, before any request', async (image) => {
    registry().resetRequests();
    for (const cmd of ['annotate', 'attach']) {
      const r = await runCli([cmd, `${registry().host}/group/ok:v1`, image], { env: pipeline });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('$CI_REGISTRY_IMAGE');
      expect(r.stderr).toContain('Expand variable reference');
    }
    expect(registry().count()).toBe(0);
  });
});
