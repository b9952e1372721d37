// tagtrail annotate against a registry run as GitLab runs its own: token auth through a JWT
// issuer, with faults injected by a proxy in front. Results are read back with curl or skopeo.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gitlabEnv, runBin, runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { curlManifest, makeImage, pushImage, skopeoInspectRaw, type ImageInfo } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenIssuer, type TokenIssuer } from '../helpers/token-issuer.js';

const USER = 'gitlab-ci-token';
const PASSWORD = 'glcbt-64-job-token-0123456789abcdef';
const CREDS = `${USER}:${PASSWORD}`;

let issuer: TokenIssuer;
let registry: TestRegistry;
let proxy: FaultProxy;
let work: string;

/** CI variables as a runner sets them, with the job token as registry password. */
function ciEnv(host: string, password = PASSWORD): Record<string, string> {
  return gitlabEnv({ CI_REGISTRY: host, CI_REGISTRY_USER: USER, CI_REGISTRY_PASSWORD: password, CI_JOB_TOKEN: password });
}

async function tokenFor(repo: string): Promise<string> {
  return issuer.mintToken({ access: [{ type: 'repository', name: repo, actions: ['pull', 'push'] }] });
}

async function manifestAt(repo: string, ref: string): Promise<{ status: number; digest?: string; annotations?: Record<string, string> }> {
  const r = await curlManifest(`${registry.url}/v2/${repo}/manifests/${ref}`, {
    accept: ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json'],
    auth: { bearer: await tokenFor(repo) },
  });
  const json = r.status === 200 ? (JSON.parse(r.body.toString('utf8')) as { annotations?: Record<string, string> }) : {};
  return { status: r.status, ...(r.digest ? { digest: r.digest } : {}), ...(json.annotations ? { annotations: json.annotations } : {}) };
}

async function freshImage(repo: string, tag: string, seed?: string): Promise<ImageInfo> {
  const image = await makeImage(await mkdtemp(join(work, 'img-')), { tag, ...(seed ? { seed } : {}) });
  await pushImage(image, `${registry.host}/${repo}:${tag}`, { creds: CREDS });
  return image;
}

beforeAll(async () => {
  issuer = await startTokenIssuer({ users: { [USER]: { password: PASSWORD } } });
  registry = await startRegistry({ auth: { tokenIssuer: issuer } });
  proxy = await startFaultProxy({ upstream: registry.url });
  work = await mkdtemp(join(tmpdir(), 'tagtrail-auth-'));
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await issuer?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  proxy.clearRules();
  proxy.reset();
});

describe('token auth as GitLab runs it', () => {
  it('logs in with CI_REGISTRY_USER/PASSWORD through the realm, with one token for the whole run', async () => {
    await freshImage('group/auth', 'v1');
    const before = issuer.issued();
    const r = await runCli(['annotate', `${registry.host}/group/auth:v1`], { env: ciEnv(registry.host) });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(issuer.issued() - before).toBe(1);
    expect(issuer.requests.at(-1)).toMatchObject({ user: USER, scopes: ['repository:group/auth:pull,push'] });
    expect((await manifestAt('group/auth', 'v1')).annotations?.['com.gitlab.ci.pipeline_id']).toBe('9001');
  });

  it('wrong credentials: a clear error naming the source, exit 1, no secret in the output', async () => {
    await freshImage('group/wrong', 'v1');
    const r = await runCli(['annotate', `${registry.host}/group/wrong:v1`], { env: ciEnv(registry.host, 'not-the-token-at-all') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refused the credentials from CI_REGISTRY_USER');
    expect(r.stderr).not.toContain('not-the-token-at-all');
    expect((await manifestAt('group/wrong', 'v1')).annotations).toBeUndefined();
  });

  it('no credentials: says how to log in, exit 1', async () => {
    const r = await runCli(['annotate', `${registry.host}/group/auth:v1`], { env: gitlabEnv() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/log in|--username/);
  });

  it('--username with --password-stdin, through the built binary; --debug never shows a secret', async () => {
    await freshImage('group/stdin', 'v1');
    const r = await runBin(['annotate', `${proxy.host}/group/stdin:v1`, '--username', USER, '--password-stdin', '--debug'], { env: gitlabEnv(), stdin: `${PASSWORD}\n` });
    expect(r.stderr).toContain('debug: --> GET');
    expect(r.code).toBe(0);
    const sent = proxy.requests.map((q) => q.headers.authorization).filter((h): h is string => typeof h === 'string');
    expect(sent.length).toBeGreaterThan(0);
    const output = r.stdout + r.stderr;
    for (const h of sent) {
      expect(output).not.toContain(h);
      expect(output).not.toContain(h.replace(/^Bearer /, ''));
    }
    expect(output).not.toContain(PASSWORD);
    expect(output).not.toContain(Buffer.from(CREDS).toString('base64'));
  });
});

describe('faults', () => {
  it('a token that expires mid-run: re-authenticates once on 401 and finishes', async () => {
    await freshImage('group/expire', 'v1');
    // The registry answers the PUT as it would for an expired token.
    const rule = proxy.addRule({ method: 'PUT', path: /\/manifests\//, times: 1, fault: { kind: 'unauthorized' } });
    const before = issuer.issued();
    const r = await runCli(['annotate', `${proxy.host}/group/expire:v1`, '--debug'], { env: ciEnv(proxy.host) });
    expect(r.code).toBe(0);
    expect(rule.applied()).toBe(1);
    expect(r.stderr).toContain('re-authenticating');
    expect(issuer.issued() - before).toBe(2);
    expect((await manifestAt('group/expire', 'v1')).annotations?.['com.gitlab.ci.job_id']).toBe('77001');
  });

  it('a token that really expires between requests is renewed before use', async () => {
    await freshImage('group/expire2', 'v1');
    issuer.setExpiresIn(6);
    try {
      // The HEAD waits past the token's life (6 s, less the client's 5 s safety margin).
      proxy.addRule({ method: 'HEAD', path: /\/manifests\//, times: 1, fault: { kind: 'latency', ms: 1500 } });
      const before = issuer.issued();
      const r = await runCli(['annotate', `${proxy.host}/group/expire2:v1`], { env: ciEnv(proxy.host) });
      expect(r.code).toBe(0);
      expect(issuer.issued() - before).toBe(2);
    } finally {
      issuer.setExpiresIn(300);
    }
  });

  it('429 and 503 with Retry-After are waited out and retried', async () => {
    await freshImage('group/busy', 'v1');
    const r429 = proxy.addRule({ method: 'GET', path: /\/manifests\/v1/, times: 1, fault: { kind: 'status', status: 429, retryAfter: 1 } });
    const r503 = proxy.addRule({ method: 'PUT', path: /\/manifests\//, times: 1, fault: { kind: 'status', status: 503, retryAfter: 1 } });
    const started = Date.now();
    const r = await runCli(['annotate', `${proxy.host}/group/busy:v1`], { env: ciEnv(proxy.host) });
    expect(r.code).toBe(0);
    expect(r429.applied()).toBe(1);
    expect(r503.applied()).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect((await manifestAt('group/busy', 'v1')).annotations?.['com.gitlab.ci.pipeline_id']).toBe('9001');
  });

  it('a 400 is not retried', async () => {
    await freshImage('group/bad', 'v1');
    const rule = proxy.addRule({ method: 'PUT', path: /\/manifests\//, fault: { kind: 'status', status: 400 } });
    const r = await runCli(['annotate', `${proxy.host}/group/bad:v1`], { env: ciEnv(proxy.host) });
    expect(r.code).toBe(1);
    expect(rule.applied()).toBe(1);
  });

  it('a wrong Docker-Content-Digest on the GET is refused, and nothing is written', async () => {
    const image = await freshImage('group/digest', 'v1');
    proxy.addRule({ method: 'GET', path: /\/manifests\/v1/, fault: { kind: 'wrong-digest' } });
    const r = await runCli(['annotate', `${proxy.host}/group/digest:v1`], { env: ciEnv(proxy.host) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('hash to');
    expect(proxy.count({ method: 'PUT' })).toBe(0);
    expect((await manifestAt('group/digest', 'v1')).digest).toBe(image.digest);
  });

  it('a conflict: the tag moved between read and write; exit 3, the other manifest stays', async () => {
    const image = await freshImage('group/race', 'v1');
    const other = await makeImage(await mkdtemp(join(work, 'other-')), { tag: 'v1' });
    // Hold the race-check HEAD while another writer pushes the tag directly to the registry.
    proxy.addRule({ method: 'HEAD', path: /\/manifests\/v1$/, times: 1, fault: { kind: 'latency', ms: 3000 } });
    const pending = runCli(['annotate', `${proxy.host}/group/race:v1`], { env: ciEnv(proxy.host) });
    for (let i = 0; i < 100 && proxy.count({ method: 'HEAD' }) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await pushImage(other, `${registry.host}/group/race:v1`, { creds: CREDS });
    const r = await pending;
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(image.digest);
    expect(r.stderr).toContain(other.digest);
    expect((await manifestAt('group/race', 'v1')).digest).toBe(other.digest);
    expect(proxy.count({ method: 'PUT' })).toBe(0);
  });

  it('refuses a manifest over 4 MiB as the registry\'s problem (exit 1)', async () => {
    await freshImage('group/huge', 'v1');
    const big = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', annotations: { 'com.example.pad': 'x'.repeat(4 * 1024 * 1024) } });
    proxy.addRule({ method: 'GET', path: /\/manifests\/v1/, fault: { kind: 'status', status: 200, body: big, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } } });
    const r = await runCli(['annotate', `${proxy.host}/group/huge:v1`], { env: ciEnv(proxy.host) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('4 MiB');
    expect(proxy.count({ method: 'PUT' })).toBe(0);
  });

  it('refuses a schema 1 manifest clearly, exit 1', async () => {
    await freshImage('group/schema1', 'v1');
    const s1 = JSON.stringify({ schemaVersion: 1, name: 'group/schema1', tag: 'v1', architecture: 'amd64', fsLayers: [], history: [] });
    proxy.addRule({ method: 'GET', path: /\/manifests\/v1/, fault: { kind: 'status', status: 200, body: s1, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' } } });
    const r = await runCli(['annotate', `${proxy.host}/group/schema1:v1`], { env: ciEnv(proxy.host) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('schema 1');
    expect(proxy.count({ method: 'PUT' })).toBe(0);
  });

  it('never sends credentials to another host on a redirect', async () => {
    const { startRecordingServer } = await import('../helpers/fault-proxy.js');
    const other = await startRecordingServer();
    try {
      await freshImage('group/redirect', 'v1');
      proxy.addRule({ method: 'GET', path: /\/manifests\/v1/, times: 1, fault: { kind: 'redirect', to: other.url, status: 307 } });
      await runCli(['annotate', `${proxy.host}/group/redirect:v1`], { env: ciEnv(proxy.host) });
      expect(other.requests.length).toBeGreaterThan(0);
      expect(other.requests.every((q) => q.headers.authorization === undefined)).toBe(true);
    } finally {
      await other.stop();
    }
  });

  it('the image is still whole after all of it', async () => {
    const raw = await skopeoInspectRaw(`${registry.host}/group/busy:v1`, CREDS);
    expect(JSON.parse(raw.toString('utf8')).annotations['com.gitlab.ci.pipeline_id']).toBe('9001');
  });
});
