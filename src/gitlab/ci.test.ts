import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import { annotationChanges, annotationSet } from './annotation-set.js';
import { buildFromAnnotations } from '../details/build.js';
import { ciAnnotations, isGitLabCi } from './ci.js';

const NOW = new Date('2026-11-26T10:20:30.456Z');
const ENV = {
  CI_PIPELINE_ID: '1001',
  CI_PIPELINE_IID: '7',
  CI_PIPELINE_URL: 'https://gitlab.example.com/g/app/-/pipelines/1001',
  CI_PIPELINE_SOURCE: 'push',
  CI_JOB_ID: '2002',
  CI_JOB_NAME: 'build image',
  CI_JOB_URL: 'https://gitlab.example.com/g/app/-/jobs/2002',
  CI_PROJECT_ID: '42',
  CI_PROJECT_PATH: 'g/app',
  CI_PROJECT_URL: 'https://gitlab.example.com/g/app',
  CI_PROJECT_NAME: 'app',
  CI_SERVER_URL: 'https://gitlab.example.com',
  CI_COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567',
  CI_COMMIT_REF_NAME: 'feature/x',
  CI_COMMIT_BRANCH: 'feature/x',
  CI_COMMIT_TIMESTAMP: '2026-11-26T09:00:00+00:00',
  CI_COMMIT_MESSAGE: 'secret plans',
  CI_COMMIT_AUTHOR: 'Dev <dev@example.com>',
  GITLAB_USER_ID: '5',
  GITLAB_USER_LOGIN: 'dev',
  GITLAB_USER_EMAIL: 'dev@example.com',
  CI_JOB_TOKEN: 'glcbt-very-secret-token',
  CI_REGISTRY_PASSWORD: 'glcbt-very-secret-token',
};

describe('ciAnnotations', () => {
  it('detects GitLab CI by pipeline id or server url', () => {
    expect(isGitLabCi({ CI_PIPELINE_ID: '1' })).toBe(true);
    expect(isGitLabCi({ CI_SERVER_URL: 'https://x' })).toBe(true);
    expect(isGitLabCi({ GITLAB_CI: 'true' })).toBe(true);
    expect(isGitLabCi({ CI: 'true' })).toBe(false);
  });

  it('maps the variables and never stamps secrets, messages or e-mail', () => {
    const { set, setIfAbsent } = ciAnnotations(ENV, NOW);
    expect(set['com.gitlab.ci.pipeline_id']).toBe('1001');
    expect(set['com.gitlab.ci.job_name']).toBe('build image');
    expect(set['com.gitlab.ci.branch']).toBe('feature/x');
    expect(set['com.gitlab.ci.tag']).toBeUndefined();
    expect(set['org.opencontainers.image.version']).toBeUndefined();
    expect(set['org.opencontainers.image.title']).toBe('app');
    expect(set['org.opencontainers.image.revision']).toBe(ENV.CI_COMMIT_SHA);
    expect(setIfAbsent['org.opencontainers.image.created']).toBe('2026-11-26T10:20:30Z');
    const all = JSON.stringify({ ...set, ...setIfAbsent });
    for (const s of ['glcbt-very-secret-token', 'secret plans', 'dev@example.com']) expect(all).not.toContain(s);
  });

  it('prefers CI_PROJECT_TITLE, and sets version from a tag', () => {
    const { set } = ciAnnotations({ ...ENV, CI_PROJECT_TITLE: 'My App', CI_COMMIT_TAG: 'v1.2.3', CI_COMMIT_BRANCH: '' }, NOW);
    expect(set['org.opencontainers.image.title']).toBe('My App');
    expect(set['org.opencontainers.image.version']).toBe('v1.2.3');
    expect(set['com.gitlab.ci.branch']).toBeUndefined();
  });

  it('adds nothing outside CI', () => {
    expect(Object.keys(ciAnnotations({ HOME: '/root' }, NOW).set)).toEqual([]);
  });

  it('applies --annotation, --remove-annotation and --no-ci', () => {
    const c = annotationChanges({ env: ENV, now: NOW, annotations: ['com.example.team=payments', 'org.opencontainers.image.created=2020-01-01T00:00:00Z'], remove: ['com.gitlab.ci.job_url'] });
    expect(c.set['com.example.team']).toBe('payments');
    expect(c.set['org.opencontainers.image.created']).toBe('2020-01-01T00:00:00Z');
    expect(c.setIfAbsent?.['org.opencontainers.image.created']).toBeUndefined();
    expect(c.set['com.gitlab.ci.job_url']).toBeUndefined();
    expect(c.remove).toEqual(['com.gitlab.ci.job_url']);
    expect(Object.keys(annotationSet({ env: ENV, now: NOW, ci: false, annotations: ['a.b.c=1'] }))).toEqual(['a.b.c']);
  });

  it('refuses an annotation that carries a secret, without echoing it', () => {
    let err: unknown;
    try {
      annotationChanges({ env: ENV, now: NOW, annotations: ['com.example.x=token glcbt-very-secret-token'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).not.toContain('glcbt');
  });
});

describe('buildFromAnnotations', () => {
  it('derives links from the project URL', () => {
    const b = buildFromAnnotations(annotationSet({ env: { ...ENV, CI_MERGE_REQUEST_IID: '9' }, now: NOW }));
    expect(b.pipeline).toEqual({ id: '1001', url: ENV.CI_PIPELINE_URL });
    expect(b.job).toEqual({ id: '2002', name: 'build image', url: ENV.CI_JOB_URL });
    expect(b.commit?.url).toBe(`https://gitlab.example.com/g/app/-/commit/${ENV.CI_COMMIT_SHA}`);
    expect(b.ref).toEqual({ name: 'feature/x', kind: 'branch', url: 'https://gitlab.example.com/g/app/-/tree/feature/x' });
    expect(b.mergeRequest).toEqual({ iid: '9', url: 'https://gitlab.example.com/g/app/-/merge_requests/9' });
    expect(b.project).toEqual({ path: 'g/app', url: 'https://gitlab.example.com/g/app' });
    expect(b.user).toEqual({ id: '5', login: 'dev' });
  });

  it('links a tag to its tag page and drops non-http project URLs', () => {
    const b = buildFromAnnotations({ 'com.gitlab.ci.tag': 'v1', 'com.gitlab.ci.project_url': 'https://g.example/a', 'com.gitlab.ci.pipeline_id': '3' });
    expect(b.ref).toEqual({ name: 'v1', kind: 'tag', url: 'https://g.example/a/-/tags/v1' });
    expect(b.pipeline?.url).toBe('https://g.example/a/-/pipelines/3');
    const evil = buildFromAnnotations({ 'com.gitlab.ci.commit_sha': 'abc', 'com.gitlab.ci.project_url': 'javascript:alert(1)' });
    expect(evil.commit).toEqual({ sha: 'abc' });
  });
});
