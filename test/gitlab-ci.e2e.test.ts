// The GitLab CI template and the CI/CD component, run as pipelines by gitlab-ci-local in a
// throw-away git repository: a build job pushes a test image to a real registry with skopeo, the
// included tagtrail job annotates it, and a later job reads the dotenv report. The test then
// reads the manifests back with skopeo and compares the annotations with the CI variables
// gitlab-ci-local set, as that job printed them.
//
// gitlab-ci-local runs the jobs in this machine's shell (--force-shell-executor, since the
// tagtrail job names an image), with the built CLI on PATH as `tagtrail`. Run `npm run build`
// first; `npm test` does.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { run } from './helpers/exec.js';
import { useRegistry, useTempDir } from './helpers/fixtures.js';
import { ensureGitlabCiLocal, GITLAB_CI_LOCAL, GITLAB_CI_LOCAL_INSTALL_TIMEOUT } from './helpers/gitlab-ci-local.js';
import { makeImage, makeIndex, sha256, skopeoInspectRaw } from './helpers/images.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'tagtrail.js');
const REMOTE = 'git@gitlab.example.com:group/app.git';

// A pipeline run starts gitlab-ci-local (which validates against GitLab's schema) and node per job.
const PIPELINE_TIMEOUT = 180_000;

const registry = useRegistry();
const work = useTempDir('gitlab-ci');
let tools: string;

// A value no naive quoting survives, for the extra annotations.
const HOSTILE = `payments "q" 'sq' $(touch pwned) \`id\` back\\slash café`;

interface Project {
  dir: string;
  sha: string;
}

/** A git repository with the given files and .gitlab-ci.yml, one commit on main, an origin remote. */
async function makeProject(name: string, ciYaml: string, templates: readonly string[]): Promise<Project> {
  const dir = join(work(), name);
  await mkdir(join(dir, 'templates'), { recursive: true });
  for (const t of templates) await copyFile(join(ROOT, 'templates', t), join(dir, 'templates', t));
  await writeFile(join(dir, '.gitlab-ci.yml'), ciYaml);
  const git = (...args: string[]) => run('git', args, { cwd: dir });
  await git('init', '-q', '-b', 'main');
  await git('config', 'user.name', 'Pipeline Tester');
  await git('config', 'user.email', 'tester@example.com');
  await git('remote', 'add', 'origin', REMOTE);
  await writeFile(join(dir, '.gitignore'), 'layout/\n.gitlab-ci-local/\n*.digest\n');
  await git('add', '-A');
  await git('commit', '-q', '-m', `${name} pipeline`);
  const sha = (await git('rev-parse', 'HEAD')).stdout.toString('utf8').trim();
  return { dir, sha };
}

interface PipelineRun {
  code: number | null;
  output: string;
}

function gitlabCiLocal(project: Project, extra: readonly string[] = []): Promise<PipelineRun> {
  const args = [
    GITLAB_CI_LOCAL,
    ...extra,
    '--shell-executor-no-image',
    '--force-shell-executor',
    '--variable',
    `CI_REGISTRY=${registry().host}`,
    '--variable',
    'CI_REGISTRY_USER=gitlab-ci-token',
    '--variable',
    'CI_REGISTRY_PASSWORD=not-needed-by-this-registry',
  ];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      {
        // HOME: keep this machine's ~/.gitlab-ci-local settings out of the run.
        cwd: project.dir,
        env: { PATH: `${tools}:${process.env.PATH ?? ''}`, HOME: work(), NO_COLOR: '1' },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 240_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

/** KEY=VALUE words the tagtrail job's after_script printed after "seen:". */
function seenVariables(output: string): Record<string, string> {
  const line = /tagtrail-annotate\s*> seen: (.*)$/m.exec(output);
  if (!line) throw new Error(`the tagtrail job printed no variables; pipeline output:\n${output}`);
  return Object.fromEntries((line[1] as string).trim().split(/\s+/).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
}

/** The value a job printed as "NAME=value". */
function printed(output: string, job: string, name: string): string {
  const m = new RegExp(`^${job}\\s*> ${name}=(\\S*)$`, 'm').exec(output);
  if (!m) throw new Error(`${job} printed no ${name}; pipeline output:\n${output}`);
  return m[1] as string;
}

async function manifest(ref: string): Promise<{ digest: string; json: { annotations?: Record<string, string>; manifests?: { digest: string; platform?: { architecture: string } }[] } }> {
  const raw = await skopeoInspectRaw(ref);
  return { digest: sha256(raw), json: JSON.parse(raw.toString('utf8')) };
}

function expectBuildDetails(a: Record<string, string> | undefined, seen: Record<string, string>, sha: string): void {
  expect(a?.['com.gitlab.ci.pipeline_id']).toBe(seen.CI_PIPELINE_ID);
  expect(a?.['com.gitlab.ci.job_id']).toBe(seen.CI_JOB_ID);
  expect(a?.['com.gitlab.ci.job_name']).toBe('tagtrail-annotate');
  expect(a?.['com.gitlab.ci.commit_sha']).toBe(seen.CI_COMMIT_SHA);
  expect(a?.['com.gitlab.ci.commit_ref_name']).toBe(seen.CI_COMMIT_REF_NAME);
  expect(a?.['org.opencontainers.image.revision']).toBe(seen.CI_COMMIT_SHA);
  // What gitlab-ci-local set is what git says: the values were not merely echoed back.
  expect(seen.CI_COMMIT_SHA).toBe(sha);
  expect(seen.CI_COMMIT_REF_NAME).toBe('main');
  expect(seen.CI_PIPELINE_ID).toMatch(/^\d+$/);
  expect(seen.CI_JOB_ID).toMatch(/^\d+$/);
}

const SEEN = `    - 'echo "seen: CI_PIPELINE_ID=$CI_PIPELINE_ID CI_JOB_ID=$CI_JOB_ID CI_COMMIT_SHA=$CI_COMMIT_SHA CI_COMMIT_REF_NAME=$CI_COMMIT_REF_NAME"'`;

// The first run installs gitlab-ci-local under .cache/ (see helpers/gitlab-ci-local.ts).
beforeAll(() => ensureGitlabCiLocal(), GITLAB_CI_LOCAL_INSTALL_TIMEOUT);

beforeAll(async () => {
  tools = join(work(), 'tools');
  await mkdir(tools, { recursive: true });
  await writeFile(join(tools, 'tagtrail'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`, { mode: 0o755 });
});

describe('templates/tagtrail.gitlab-ci.yml, included locally', () => {
  it('annotates $CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA after the build stage and hands the digests on', async () => {
    const yaml = [
      'include:',
      '  - local: templates/tagtrail.gitlab-ci.yml',
      '',
      'variables:',
      '  TAGTRAIL_ANNOTATIONS: |',
      `    com.example.team=${HOSTILE}`,
      '    com.example.empty=',
      '',
      'build:',
      '  stage: build',
      '  script:',
      '    - skopeo --insecure-policy copy --dest-tls-verify=false --digestfile pushed.digest oci:layout:latest "docker://$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"',
      '',
      'tagtrail-annotate:',
      '  after_script:',
      SEEN,
      '',
      'deploy:',
      '  stage: deploy',
      '  script:',
      '    - echo "TAGTRAIL_DIGEST_BEFORE=$TAGTRAIL_DIGEST_BEFORE"',
      '    - echo "TAGTRAIL_DIGEST=$TAGTRAIL_DIGEST"',
      '    - echo "TAGTRAIL_IMAGE=$TAGTRAIL_IMAGE"',
      '',
    ].join('\n');
    const project = await makeProject('template', yaml, ['tagtrail.gitlab-ci.yml']);
    await makeImage(join(project.dir, 'layout'), { seed: 'template' });

    const result = await gitlabCiLocal(project);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/tagtrail-annotate\s+starting shell \(test\)/);

    const seen = seenVariables(result.output);
    const ref = `${registry().host}/group/app:${project.sha.slice(0, 8)}`;
    const after = await manifest(ref);
    expectBuildDetails(after.json.annotations, seen, project.sha);
    expect(after.json.annotations?.['com.example.team']).toBe(HOSTILE);
    expect(after.json.annotations?.['com.example.empty']).toBe('');
    expect(existsSync(join(project.dir, 'pwned'))).toBe(false);

    const pushed = (await readFile(join(project.dir, 'pushed.digest'), 'utf8')).trim();
    expect(printed(result.output, 'deploy', 'TAGTRAIL_DIGEST_BEFORE')).toBe(pushed);
    expect(printed(result.output, 'deploy', 'TAGTRAIL_DIGEST')).toBe(after.digest);
    expect(after.digest).not.toBe(pushed);
    expect(printed(result.output, 'deploy', 'TAGTRAIL_IMAGE')).toBe(`${registry().host}/group/app@${after.digest}`);
  }, PIPELINE_TIMEOUT);

  it('with TAGTRAIL_MODE=attach, keeps the digest and attaches the build details as a referrer', async () => {
    const yaml = [
      'include:',
      '  - local: templates/tagtrail.gitlab-ci.yml',
      '',
      'variables:',
      '  TAGTRAIL_MODE: attach',
      '',
      'build:',
      '  stage: build',
      '  script:',
      '    - skopeo --insecure-policy copy --dest-tls-verify=false --digestfile pushed.digest oci:layout:latest "docker://$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"',
      '',
      'tagtrail-annotate:',
      '  after_script:',
      SEEN,
      '',
      'deploy:',
      '  stage: deploy',
      '  script:',
      '    - echo "TAGTRAIL_DIGEST=$TAGTRAIL_DIGEST"',
      '    - echo "TAGTRAIL_REFERRER=$TAGTRAIL_REFERRER"',
      '',
    ].join('\n');
    const project = await makeProject('attach', yaml, ['tagtrail.gitlab-ci.yml']);
    await makeImage(join(project.dir, 'layout'), { seed: 'attach' });

    const result = await gitlabCiLocal(project);
    expect(result.code, result.output).toBe(0);
    const seen = seenVariables(result.output);
    const pushed = (await readFile(join(project.dir, 'pushed.digest'), 'utf8')).trim();
    const image = await manifest(`${registry().host}/group/app:${project.sha.slice(0, 8)}`);
    expect(image.digest).toBe(pushed);
    expect(image.json.annotations?.['com.gitlab.ci.pipeline_id']).toBeUndefined();
    expect(printed(result.output, 'deploy', 'TAGTRAIL_DIGEST')).toBe(pushed);

    const referrer = printed(result.output, 'deploy', 'TAGTRAIL_REFERRER');
    const listing = await manifest(`${registry().host}/group/app:sha256-${pushed.slice('sha256:'.length)}`);
    expect(listing.json.manifests?.map((m) => m.digest)).toContain(referrer);
    const artifact = await manifest(`${registry().host}/group/app@${referrer}`);
    expect((artifact.json as { subject?: { digest: string } }).subject?.digest).toBe(pushed);
    expectBuildDetails(artifact.json.annotations, seen, project.sha);
  }, PIPELINE_TIMEOUT);

  it('with TAGTRAIL_REPORT_URL, reports the images to serve with the ID token TAGTRAIL_ID_TOKEN', async () => {
    // serve's side is tested in test/server/builds.e2e.test.ts; here a listener records the report.
    const received: { method: string; url: string; authorization: string | undefined; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        received.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"images":[]}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const reportUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // gitlab-ci-local does not mint ID tokens: the job gets one as a variable, as GitLab would set it.
    const idToken = `eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.${'s'.repeat(40)}`;
    try {
      const yaml = [
        'include:',
        '  - local: templates/tagtrail.gitlab-ci.yml',
        '',
        'variables:',
        `  TAGTRAIL_REPORT_URL: ${reportUrl}`,
        '',
        'build:',
        '  stage: build',
        '  script:',
        '    - skopeo --insecure-policy copy --dest-tls-verify=false oci:layout:latest "docker://$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"',
        '',
      ].join('\n');
      const project = await makeProject('report', yaml, ['tagtrail.gitlab-ci.yml']);
      await makeImage(join(project.dir, 'layout'), { seed: 'report' });
      const result = await gitlabCiLocal(project, ['--variable', `TAGTRAIL_ID_TOKEN=${idToken}`]);
      expect(result.code, result.output).toBe(0);
      expect(result.output).not.toContain(idToken.split('.')[2]);
      const image = `${registry().host}/group/app:${project.sha.slice(0, 8)}`;
      const after = await manifest(image);
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ method: 'POST', url: '/api/v1/builds', authorization: `Bearer ${idToken}` });
      expect(JSON.parse(received[0]?.body ?? '')).toEqual({ images: [{ image, digest: after.digest }] });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, PIPELINE_TIMEOUT);

  it('leaves the job out when TAGTRAIL_DISABLED is true', async () => {
    const yaml = [
      'include:',
      '  - local: templates/tagtrail.gitlab-ci.yml',
      '',
      'variables:',
      '  TAGTRAIL_DISABLED: "true"',
      '',
      'build:',
      '  stage: build',
      '  script:',
      '    - echo built',
      '',
    ].join('\n');
    const project = await makeProject('disabled', yaml, ['tagtrail.gitlab-ci.yml']);
    const result = await gitlabCiLocal(project);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/PASS\s+build/);
    expect(result.output).not.toMatch(/tagtrail-annotate\s+starting/);
  }, PIPELINE_TIMEOUT);
});

/** The job names gitlab-ci-local --list puts in the pipeline for these variables. */
async function listed(project: Project, variables: Record<string, string>): Promise<string[]> {
  const r = await gitlabCiLocal(project, ['--list', ...Object.entries(variables).flatMap(([k, v]) => ['--variable', `${k}=${v}`])]);
  expect(r.code, r.output).toBe(0);
  const lines = r.output.split('\n');
  const header = lines.findIndex((l) => /^name\s+description\s+stage/.test(l));
  expect(header, r.output).toBeGreaterThanOrEqual(0);
  // Rows of the table: name, (description), stage, when, …; warnings on stderr come after it.
  return lines
    .slice(header + 1)
    .map((l) => /^(\S+)\s.*\s(on_success|manual|always|delayed)\s/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}

describe('when the job runs (GitLab: avoid duplicate pipelines)', () => {
  it('in branch pipelines without an open merge request, merge request pipelines and tag pipelines; never twice for one push', async () => {
    const yaml = [
      'include:',
      '  - local: templates/tagtrail.gitlab-ci.yml',
      '  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/annotate@$CI_COMMIT_SHA',
      '    inputs:',
      '      job-name: annotate-worker',
      '      stage: deploy',
      '      images: $CI_REGISTRY_IMAGE/worker:$CI_COMMIT_SHORT_SHA',
      '',
      'build:',
      '  stage: build',
      '  script:',
      '    - echo built',
      '',
    ].join('\n');
    const project = await makeProject('rules', yaml, ['tagtrail.gitlab-ci.yml', 'annotate.yml']);
    const both = ['build', 'tagtrail-annotate', 'annotate-worker'];
    // A branch pipeline with no merge request open.
    expect(await listed(project, {})).toEqual(both);
    // A push to a branch with an open merge request: GitLab starts a branch pipeline and a merge
    // request pipeline; the job is in the second only.
    expect(await listed(project, { CI_OPEN_MERGE_REQUESTS: 'group/app!1' })).toEqual(['build']);
    expect(await listed(project, { CI_PIPELINE_SOURCE: 'merge_request_event', CI_MERGE_REQUEST_IID: '1', CI_OPEN_MERGE_REQUESTS: 'group/app!1' })).toEqual(both);
    // A tag pipeline: no branch.
    expect(await listed(project, { CI_COMMIT_TAG: 'v1.0.0', CI_COMMIT_BRANCH: '', CI_COMMIT_REF_NAME: 'v1.0.0' })).toEqual(both);
    // Neither branch, nor tag, nor merge request (say, a pipeline of another kind): not run.
    expect(await listed(project, { CI_COMMIT_BRANCH: '' })).toEqual(['build']);
    expect(await listed(project, { TAGTRAIL_DISABLED: '1' })).toEqual(['build']);
    // A report URL changes no pipeline.
    const report = { TAGTRAIL_REPORT_URL: 'https://tagtrail.example.com' };
    expect(await listed(project, { ...report, CI_OPEN_MERGE_REQUESTS: 'group/app!1' })).toEqual(['build']);
    expect(await listed(project, { ...report, CI_PIPELINE_SOURCE: 'merge_request_event', CI_MERGE_REQUEST_IID: '1', CI_OPEN_MERGE_REQUESTS: 'group/app!1' })).toEqual(both);
    expect(await listed(project, { ...report, CI_COMMIT_BRANCH: '' })).toEqual(['build']);
    expect(await listed(project, { ...report, TAGTRAIL_DISABLED: 'true' })).toEqual(['build']);
  }, PIPELINE_TIMEOUT);
});

describe('a later pipeline that built nothing', () => {
  it('stops with exit 3 naming the pipeline that built the image, and leaves the image as it was', async () => {
    const yaml = [
      'include:',
      '  - local: templates/tagtrail.gitlab-ci.yml',
      '',
      'build:',
      '  stage: build',
      '  rules:',
      '    - if: $BUILD == "yes"',
      '  script:',
      '    - skopeo --insecure-policy copy --dest-tls-verify=false oci:layout:latest "docker://$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"',
      '',
    ].join('\n');
    const project = await makeProject('rerun', yaml, ['tagtrail.gitlab-ci.yml']);
    await makeImage(join(project.dir, 'layout'), { seed: 'rerun' });
    const ref = `${registry().host}/group/app:${project.sha.slice(0, 8)}`;

    const first = await gitlabCiLocal(project, ['--variable', 'BUILD=yes']);
    expect(first.code, first.output).toBe(0);
    const built = await manifest(ref);
    const builder = built.json.annotations?.['com.gitlab.ci.pipeline_id'];
    expect(builder).toMatch(/^\d+$/);

    const later = await gitlabCiLocal(project);
    expect(later.code, later.output).not.toBe(0);
    expect(later.output).toContain(`already carries the build details of pipeline ${builder}`);
    expect(later.output).toMatch(/tagtrail-annotate finished in .* FAIL 3/);
    expect((await manifest(ref)).digest).toBe(built.digest);
  }, PIPELINE_TIMEOUT);
});

describe("the project's own .gitlab-ci.yml", () => {
  it('tests, builds, stamps the image with its own template and checks its component; a version tag also releases', async () => {
    const project = await makeProject('own', await readFile(join(ROOT, '.gitlab-ci.yml'), 'utf8'), ['tagtrail.gitlab-ci.yml', 'annotate.yml']);
    const branch = ['test', 'tagtrail-labels', 'build-image', 'tagtrail-annotate', 'component-check'];
    expect(await listed(project, {})).toEqual(branch);
    expect(await listed(project, { CI_COMMIT_TAG: '0.1.0', CI_COMMIT_BRANCH: '', CI_COMMIT_REF_NAME: '0.1.0' })).toEqual([...branch, 'create-release']);
    // With a merge request open, GitLab's workflow:rules drop the branch pipeline; gitlab-ci-local
    // 4.60 does not apply workflow:rules to the list, but the jobs' own rules still drop the
    // tagtrail jobs (docs/gitlab-ci.md says what it cannot check).
    expect(await listed(project, { CI_OPEN_MERGE_REQUESTS: 'tagtrail/tagtrail!1' })).toEqual(['test', 'tagtrail-labels', 'build-image']);

    const preview = await gitlabCiLocal(project, ['--preview', '--variable', 'CI_COMMIT_TAG=0.1.0', '--variable', 'CI_COMMIT_BRANCH=']);
    expect(preview.code, preview.output).toBe(0);
    expect(preview.output).toMatch(/create-release:[\s\S]*release:\n\s+tag_name: \$CI_COMMIT_TAG/);
    expect(preview.output).toContain('TAGTRAIL_IMAGES: $CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA $CI_REGISTRY_IMAGE:$CI_COMMIT_TAG');
  }, PIPELINE_TIMEOUT);
});

describe('templates/annotate.yml, included as a component of the same project', () => {
  it('annotates the images named by its inputs, in its stage, and only the platforms asked for', async () => {
    const yaml = [
      'include:',
      '  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/annotate@$CI_COMMIT_SHA',
      '    inputs:',
      '      stage: deploy',
      '      images: $CI_REGISTRY_IMAGE:multi $CI_REGISTRY_IMAGE:single',
      '      platforms: linux/arm64',
      '      annotations: |',
      `        com.example.team=${HOSTILE}`,
      '        com.example.channel=stable',
      '',
      'build:',
      '  stage: build',
      '  script:',
      '    - skopeo --insecure-policy copy --all --dest-tls-verify=false oci:layout:multi "docker://$CI_REGISTRY_IMAGE:multi"',
      '    - skopeo --insecure-policy copy --dest-tls-verify=false oci:layout:single "docker://$CI_REGISTRY_IMAGE:single"',
      '',
      'tagtrail-annotate:',
      '  after_script:',
      SEEN,
      '',
      'report:',
      '  stage: .post',
      '  script:',
      '    - echo "TAGTRAIL_DIGEST_2=$TAGTRAIL_DIGEST_2"',
      '',
    ].join('\n');
    const project = await makeProject('component', yaml, ['annotate.yml']);
    const layout = join(project.dir, 'layout');
    await makeIndex(layout, { tag: 'multi', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    await makeImage(layout, { tag: 'single', seed: 'component', platform: { os: 'linux', architecture: 'arm64' } });

    const result = await gitlabCiLocal(project);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/tagtrail-annotate\s+starting shell \(deploy\)/);
    const seen = seenVariables(result.output);

    const index = await manifest(`${registry().host}/group/app:multi`);
    expectBuildDetails(index.json.annotations, seen, project.sha);
    expect(index.json.annotations?.['com.example.team']).toBe(HOSTILE);
    expect(index.json.annotations?.['com.example.channel']).toBe('stable');
    expect(existsSync(join(project.dir, 'pwned'))).toBe(false);
    const children = index.json.manifests ?? [];
    const arm = children.find((m) => m.platform?.architecture === 'arm64');
    const amd = children.find((m) => m.platform?.architecture === 'amd64');
    const armManifest = await manifest(`${registry().host}/group/app@${arm?.digest}`);
    const amdManifest = await manifest(`${registry().host}/group/app@${amd?.digest}`);
    expectBuildDetails(armManifest.json.annotations, seen, project.sha);
    expect(amdManifest.json.annotations?.['com.gitlab.ci.pipeline_id']).toBeUndefined();

    const single = await manifest(`${registry().host}/group/app:single`);
    expectBuildDetails(single.json.annotations, seen, project.sha);
    expect(printed(result.output, 'report', 'TAGTRAIL_DIGEST_2')).toBe(single.digest);
  }, PIPELINE_TIMEOUT);
});

/** The `aud` of TAGTRAIL_ID_TOKEN as GitLab reads it from a template file: a list of expressions. */
async function audExpressions(file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, 'templates', file), 'utf8');
  // The component's jobs follow its spec, after the `---` that ends it.
  const jobs = parse(file === 'annotate.yml' ? text.slice(text.indexOf('\n---\n') + 5) : text) as Record<string, { id_tokens?: { TAGTRAIL_ID_TOKEN?: { aud?: unknown } } }>;
  const aud = jobs[file === 'annotate.yml' ? '$[[ inputs.job-name ]]' : '.tagtrail-annotate']?.id_tokens?.TAGTRAIL_ID_TOKEN?.aud;
  if (!Array.isArray(aud) || !aud.every((a): a is string => typeof a === 'string')) throw new Error(`${file} declares no TAGTRAIL_ID_TOKEN aud list`);
  return aud;
}

/** A branch pipeline ({}), a merge request pipeline and a tag pipeline, as gitlab-ci-local variables. */
const PIPELINES: readonly Record<string, string>[] = [
  {},
  { CI_PIPELINE_SOURCE: 'merge_request_event', CI_MERGE_REQUEST_IID: '1' },
  { CI_COMMIT_TAG: 'v1.0.0', CI_COMMIT_BRANCH: '', CI_COMMIT_REF_NAME: 'v1.0.0' },
];
const TAG_PIPELINE = PIPELINES[2] as Record<string, string>;

describe('the ID token\'s audience (id_tokens: aud)', () => {
  // gitlab-ci-local mints no ID tokens. GitLab expands each aud entry with the job's variables;
  // the job's shell expands them the same way, so each job prints its aud entries as the shell
  // expands them, then stops before annotating anything. `templateJob` adds keys to the included
  // job and `jobs` adds jobs, e.g. rules of the user's own as docs/gitlab-ci.md shows.
  async function audiences(variables: Record<string, string>, componentReportUrl?: string, templateJob: string[] = [], jobs: string[] = []): Promise<Record<string, string[]>> {
    const [templateAud, componentAud] = [await audExpressions('tagtrail.gitlab-ci.yml'), await audExpressions('annotate.yml')];
    const print = (aud: string[]): string[] => aud.map((a) => `    - echo "aud=[${a}]"`);
    const yaml = [
      'include:',
      '  - local: templates/tagtrail.gitlab-ci.yml',
      '  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/annotate@$CI_COMMIT_SHA',
      '    inputs:',
      '      job-name: annotate-worker',
      ...(componentReportUrl ? [`      report-url: ${componentReportUrl}`] : []),
      '',
      'tagtrail-annotate:',
      ...templateJob,
      '  before_script:',
      ...print(templateAud),
      '    - exit 0',
      '',
      'annotate-worker:',
      '  before_script:',
      ...print(componentAud),
      '    - exit 0',
      '',
      ...jobs,
    ].join('\n');
    const project = await makeProject(`aud-${Object.keys(variables).join('-') || 'none'}-${componentReportUrl ? 'report' : 'plain'}-${jobs.length}`, yaml, ['tagtrail.gitlab-ci.yml', 'annotate.yml']);
    const result = await gitlabCiLocal(project, Object.entries(variables).flatMap(([k, v]) => ['--variable', `${k}=${v}`]));
    expect(result.code, result.output).toBe(0);
    const printed: Record<string, string[]> = {};
    for (const m of result.output.matchAll(/^(\S+)\s*> aud=\[(.*)\]$/gm)) (printed[m[1] as string] ??= []).push(m[2] as string);
    return printed;
  }

  it('is never empty: the fixed entry `tagtrail` without a report URL, in branch, merge request and tag pipelines', async () => {
    const server = { CI_SERVER_URL: 'https://gitlab.example.com' };
    for (const pipeline of PIPELINES) {
      expect(await audiences({ ...server, ...pipeline }), JSON.stringify(pipeline)).toEqual({ 'tagtrail-annotate': ['', 'tagtrail'], 'annotate-worker': ['', 'tagtrail'] });
    }
  }, PIPELINE_TIMEOUT);

  it('holds the report URL, as serve checks it, when TAGTRAIL_REPORT_URL or the report-url input is set', async () => {
    const set = { CI_SERVER_URL: 'https://gitlab.example.com', TAGTRAIL_REPORT_URL: 'https://tagtrail.example.com' };
    for (const pipeline of PIPELINES) {
      const got = await audiences({ ...set, ...pipeline }, 'https://tagtrail-component.example.com');
      // A --variable outranks every YAML variable, the component's input-set one included.
      expect(got, JSON.stringify(pipeline)).toEqual({ 'tagtrail-annotate': ['https://tagtrail.example.com', 'tagtrail'], 'annotate-worker': ['https://tagtrail.example.com', 'tagtrail'] });
    }
    expect(await audiences({ CI_SERVER_URL: 'https://gitlab.example.com' }, 'https://tagtrail-component.example.com')).toEqual({ 'tagtrail-annotate': ['', 'tagtrail'], 'annotate-worker': ['https://tagtrail-component.example.com', 'tagtrail'] });
  }, PIPELINE_TIMEOUT);

  it('holds the report URL when the user replaces the rules, as docs/gitlab-ci.md shows', async () => {
    // The two examples of docs/gitlab-ci.md: the included job given `rules: - if: $CI_COMMIT_TAG`,
    // and a job of its own that extends the hidden one with the same rules.
    const ownRules = ['  rules:', '    - if: $CI_COMMIT_TAG'];
    const templateAud = await audExpressions('tagtrail.gitlab-ci.yml');
    const jobs = [
      'annotate-release:',
      '  extends: .tagtrail-annotate',
      ...ownRules,
      '  before_script:',
      ...templateAud.map((a) => `    - echo "aud=[${a}]"`),
      '    - exit 0',
      '',
    ];
    const got = await audiences({ CI_SERVER_URL: 'https://gitlab.example.com', TAGTRAIL_REPORT_URL: 'https://tagtrail.example.com', ...TAG_PIPELINE }, 'https://tagtrail-component.example.com', ownRules, jobs);
    expect(got['tagtrail-annotate']).toEqual(['https://tagtrail.example.com', 'tagtrail']);
    expect(got['annotate-release']).toEqual(['https://tagtrail.example.com', 'tagtrail']);
  }, PIPELINE_TIMEOUT);
});
