// End to end: build reports verified by GitLab. `tagtrail annotate --report` and `attach --report`
// (the real CLI) send ID tokens issued by the GitLab stand-in (RS256, its OIDC discovery and keys)
// to `tagtrail serve --public-url` (the built CLI, a child process) over a real registry, on both
// catalog backends. The browser check runs Chromium (playwright-core).
import { existsSync } from 'node:fs';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { useFaultProxy, useGitlab, useRegistry, useTempDir } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { BACKENDS, type Catalog, useBackend } from '../catalog/backends.js';
import { hex } from '../catalog/seed.js';
import { type ServeProcess, ensureBuilt, startServe } from './serve-process.js';
import { expectMatchesContract } from './api-contract.js';

const CHROMIUM = '/usr/bin/chromium';

interface Verified {
  by: string;
  issuer: string;
  projectPath: string;
  pipelineId: string;
  jobId: string;
  sha: string;
  ref: string;
  at: string;
}
interface Item {
  repository: string;
  tag: string;
  digest: string;
  build: ({ verified?: Verified } & Record<string, unknown>) | null;
}

beforeAll(() => {
  ensureBuilt();
});

describe.each(BACKENDS)('build reports verified by GitLab on %s', (backendName) => {
  const backend = useBackend(backendName);
  const gitlab = useGitlab({ users: [{ username: 'dev' }], projects: [{ path: 'acme/app', repositories: [''] }, { path: 'other/thing', repositories: [''] }] });
  const registry = useRegistry();
  const faults = useFaultProxy(() => ({ upstream: registry().url }));
  const dir = useTempDir('builds');
  let serve: ServeProcess;
  let catalog: Catalog;
  let publicUrl: string;

  beforeAll(async () => {
    catalog = await backend().fresh();
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    serve = await startServe([], {
      TAGTRAIL_LISTEN: `127.0.0.1:${port}`,
      TAGTRAIL_REGISTRY: registry().host,
      TAGTRAIL_DB: catalog.url,
      TAGTRAIL_GITLAB_URL: gitlab().url,
      TAGTRAIL_PUBLIC_URL: publicUrl,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  /** A job's variables and a matching ID token. */
  async function job(overrides: { pipeline?: string; jobId?: string; sha?: string; ref?: string; project?: string } = {}): Promise<{ env: Record<string, string>; token: string; sha: string; pipeline: string; jobId: string }> {
    const sha = overrides.sha ?? hex(20);
    const pipeline = overrides.pipeline ?? String(5000 + Math.floor(Math.random() * 1000));
    const jobId = overrides.jobId ?? String(90000 + Math.floor(Math.random() * 1000));
    const ref = overrides.ref ?? 'main';
    const env = gitlabEnv({ CI_SERVER_URL: gitlab().url, CI_PROJECT_PATH: 'acme/app', CI_PROJECT_URL: `${gitlab().url}/acme/app`, CI_PIPELINE_ID: pipeline, CI_JOB_ID: jobId, CI_COMMIT_SHA: sha, CI_COMMIT_REF_NAME: ref, CI_COMMIT_BRANCH: ref });
    const token = await gitlab().issueIdToken({ project: overrides.project ?? 'acme/app', aud: publicUrl, pipelineId: pipeline, jobId, sha, ref });
    return { env, token, sha, pipeline, jobId };
  }

  async function pushed(name: string, repository: string, tag: string): Promise<string> {
    const image = await makeImage(`${dir()}/${name}`, { tag, layers: 1 });
    return pushImage(image, `${registry().host}/${repository}:${tag}`);
  }

  async function report(token: string | undefined, body: unknown): Promise<Response> {
    return fetch(`${serve.url}/api/v1/builds`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  async function search(query: string): Promise<Item[]> {
    const res = await fetch(`${serve.url}/api/v1/images?${query}`);
    expect(res.status).toBe(200);
    const page = await res.json();
    expectMatchesContract('GET', '/api/v1/images', 200, page);
    return (page as { items: Item[] }).items;
  }

  const verifiedRows = async (digest: string): Promise<number> => (await catalog.sql(`SELECT repository FROM build_verifications WHERE digest = '${digest}'`)).length;

  it('verifies what annotate --report wrote, and shows it in the API, search and the browser', async () => {
    await pushed('a1', 'acme/app', 'v1');
    const j = await job();
    const r = await runCli(['annotate', `${registry().host}/acme/app:v1`, '--report', publicUrl, '-o', 'json'], { env: { ...j.env, TAGTRAIL_ID_TOKEN: j.token } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { after: string; report: { accepted: boolean } };
    expect(out.report).toEqual({ accepted: true });
    // The token is a secret: never printed.
    expect(r.stdout).not.toContain(j.token.split('.')[2]);
    expect(await verifiedRows(out.after)).toBe(1);

    const items = await search('verified=true&repository=acme/app');
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ repository: 'acme/app', tag: 'v1', digest: out.after });
    expect(items[0]?.build?.verified).toMatchObject({ by: 'gitlab-id-token', issuer: gitlab().url, projectPath: 'acme/app', pipelineId: j.pipeline, jobId: j.jobId, sha: j.sha, ref: 'main' });
    expect((await search(`verified=true&commit=${j.sha.slice(0, 10)}`)).map((i) => i.digest)).toEqual([out.after]);
    expect((await search(`verified=true&pipeline=${j.pipeline}&ref=main`)).map((i) => i.digest)).toEqual([out.after]);
    expect(await search('verified=true&pipeline=1')).toEqual([]);
    const detail = (await (await fetch(`${serve.url}/api/v1/images/${out.after}`)).json()) as { build: { verified?: Verified } };
    expectMatchesContract('GET', `/api/v1/images/${out.after}`, 200, detail);
    expect(detail.build.verified?.pipelineId).toBe(j.pipeline);
    const insights = (await (await fetch(`${serve.url}/api/v1/insights`)).json()) as { verified: number };
    expectMatchesContract('GET', '/api/v1/insights', 200, insights);
    expect(insights.verified).toBeGreaterThanOrEqual(1);
    expect(await (await fetch(`${serve.url}/insights`)).text()).toMatch(/data-insight="verified">[1-9]/);

    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: the browser check cannot run`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${serve.url}/r/acme/app/-/tags/v1`);
      const mark = page.locator('[data-verified="gitlab"]').first();
      expect(await mark.textContent()).toContain('Verified by GitLab');
      expect(await mark.textContent()).toContain(gitlab().url);
      await page.goto(`${serve.url}/r/acme/app`);
      const row = page.locator('tr[data-tag="v1"] [data-verified="gitlab"]');
      expect(await row.textContent()).toContain('Verified by GitLab');
      expect(await row.getAttribute('title')).toContain(gitlab().url);
    } finally {
      await browser.close();
    }
  });

  it('verifies an attach --report against the referrer, and the mark does not follow the tag to another digest', async () => {
    const digest = await pushed('b1', 'acme/app/sub', 'v1');
    const j = await job();
    const r = await runCli(['attach', `${registry().host}/acme/app/sub:v1`, '--report', publicUrl, '-o', 'json'], { env: { ...j.env, TAGTRAIL_ID_TOKEN: j.token } });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { referrer: string; report: { accepted: boolean } };
    expect(out.report).toEqual({ accepted: true });
    const items = await search('verified=true&repository=acme/app/sub');
    expect(items.map((i) => i.digest)).toEqual([digest]);
    expect(items[0]?.build?.verified?.jobId).toBe(j.jobId);

    // A later push moves the tag: the new digest is not verified.
    const moved = await pushed('b2', 'acme/app/sub', 'v1');
    await catalog.store.setTag('acme/app/sub', 'v1', moved, new Date());
    expect(await search('verified=true&repository=acme/app/sub')).toEqual([]);
    const now = await search('repository=acme/app/sub&tag=v1');
    expect(now[0]?.digest).toBe(moved);
    expect(now[0]?.build?.verified).toBeUndefined();
  });

  it('answers 401 to a forged signature, another issuer, a wrong audience and an expired token, and fetches and records nothing', async () => {
    const digest = await pushed('c1', 'acme/app', 'c1');
    const j = await job();
    const body = { images: [{ image: `${registry().host}/acme/app:c1`, digest }] };
    const { kid } = decodeProtectedHeader(j.token);
    const forger = await generateKeyPair('RS256');
    const forged = await new SignJWT(decodeJwt(j.token)).setProtectedHeader({ alg: 'RS256', kid: kid as string, typ: 'JWT' }).sign(forger.privateKey);
    const otherIssuer = await gitlab().issueIdToken({ project: 'acme/app', aud: publicUrl, pipelineId: j.pipeline, jobId: j.jobId, sha: j.sha, ref: 'main', extra: { iss: 'https://gitlab.example.com' } });
    const wrongAudience = await gitlab().issueIdToken({ project: 'acme/app', aud: 'https://elsewhere.example.com', pipelineId: j.pipeline, jobId: j.jobId, sha: j.sha, ref: 'main' });
    const expired = await gitlab().issueIdToken({ project: 'acme/app', aud: publicUrl, pipelineId: j.pipeline, jobId: j.jobId, sha: j.sha, ref: 'main', issuedAt: new Date(Date.now() - 3600_000), expiresIn: 300 });
    const manifestReads = (): number => registry().count({ kind: 'manifest' });
    const before = manifestReads();
    for (const [what, token] of [['forged', forged], ['issuer', otherIssuer], ['audience', wrongAudience], ['expired', expired], ['none', undefined]] as const) {
      const res = await report(token, body);
      expect(res.status, what).toBe(401);
    }
    expect(manifestReads()).toBe(before);
    expect(await verifiedRows(digest)).toBe(0);

    // An unknown kid: the keys were fetched within the minute, so they are not fetched again.
    const keyFetches = (): number => gitlab().count((r) => r.path === '/oauth/discovery/keys');
    const fetched = keyFetches();
    expect(fetched).toBeGreaterThanOrEqual(1);
    const unknownKid = await new SignJWT(decodeJwt(j.token)).setProtectedHeader({ alg: 'RS256', kid: 'not-a-published-key', typ: 'JWT' }).sign(forger.privateKey);
    expect((await report(unknownKid, body)).status).toBe(401);
    expect((await report(unknownKid, body)).status).toBe(401);
    expect(keyFetches()).toBe(fetched);
  });

  it('answers 422 naming what disagrees: pipeline, SHA, a repository outside project_path, an unknown digest', async () => {
    const digest = await pushed('d1', 'acme/app', 'd1');
    const j = await job();
    const annotated = await runCli(['annotate', `${registry().host}/acme/app:d1`, '-o', 'json'], { env: j.env });
    const after = (JSON.parse(annotated.stdout) as { after: string }).after;
    expect(after).not.toBe(digest);
    const image = `${registry().host}/acme/app:d1`;
    const cases: [string, string, unknown, RegExp][] = [
      ['pipeline', await gitlab().issueIdToken({ project: 'acme/app', aud: publicUrl, pipelineId: '1', jobId: j.jobId, sha: j.sha, ref: 'main' }), { images: [{ image, digest: after }] }, /pipeline/],
      ['sha', await gitlab().issueIdToken({ project: 'acme/app', aud: publicUrl, pipelineId: j.pipeline, jobId: j.jobId, sha: hex(20), ref: 'main' }), { images: [{ image, digest: after }] }, /commit/],
      ['project', await gitlab().issueIdToken({ project: 'other/thing', aud: publicUrl, pipelineId: j.pipeline, jobId: j.jobId, sha: j.sha, ref: 'main' }), { images: [{ image, digest: after }] }, /project_path/],
      ['digest', j.token, { images: [{ image, digest: `sha256:${'0'.repeat(64)}` }] }, /not in acme\/app/],
    ];
    for (const [what, token, body, names] of cases) {
      const res = await report(token, body);
      expect(res.status, what).toBe(422);
      const answer = (await res.json()) as { error: { message: string } };
      expectMatchesContract('POST', '/api/v1/builds', 422, answer);
      expect(answer.error.message, what).toMatch(names);
    }
    expect(await verifiedRows(after)).toBe(0);
    // The CLI: a refused report is a warning, and the exit code stays the write's.
    const cli = await runCli(['annotate', image, '--report', publicUrl, '-a', 'com.example.note=1', '-o', 'json'], { env: { ...j.env, TAGTRAIL_ID_TOKEN: cases[0]?.[1] as string } });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stderr).toMatch(/warning: the build report .* was not accepted: HTTP 422/);
    expect((JSON.parse(cli.stdout) as { report: { accepted: boolean } }).report.accepted).toBe(false);
  });

  it('accepts the report of a retried job: another job of the same pipeline, commit and ref, and records the retry\'s job', async () => {
    await pushed('r1', 'acme/app', 'r1');
    const first = await job();
    const annotated = await runCli(['annotate', `${registry().host}/acme/app:r1`, '-o', 'json'], { env: first.env });
    expect(annotated.code, annotated.stderr).toBe(0);
    const after = (JSON.parse(annotated.stdout) as { after: string }).after;
    // The retry: same pipeline, commit and ref, a new job id; the image keeps the first job's.
    const retryJob = String(Number(first.jobId) + 1);
    const retry = await gitlab().issueIdToken({ project: 'acme/app', aud: publicUrl, pipelineId: first.pipeline, jobId: retryJob, sha: first.sha, ref: 'main' });
    const res = await report(retry, { images: [{ image: `${registry().host}/acme/app:r1`, digest: after }] });
    expect(res.status, await res.clone().text()).toBe(200);
    const rows = await catalog.sql(`SELECT job_id FROM build_verifications WHERE digest = '${after}'`);
    expect(rows.map((r) => String(r.job_id))).toEqual([retryJob]);
    // Another pipeline's job is still refused.
    const otherPipeline = await gitlab().issueIdToken({ project: 'acme/app', aud: publicUrl, pipelineId: String(Number(first.pipeline) + 1), jobId: retryJob, sha: first.sha, ref: 'main' });
    expect((await report(otherPipeline, { images: [{ image: `${registry().host}/acme/app:r1`, digest: after }] })).status).toBe(422);
  });

  it('takes an aud list, as the CI template writes it: accepted when it holds the public URL, else 401 and nothing recorded', async () => {
    await pushed('l1', 'acme/app', 'l1');
    const j = await job();
    const annotated = await runCli(['annotate', `${registry().host}/acme/app:l1`, '-o', 'json'], { env: j.env });
    expect(annotated.code, annotated.stderr).toBe(0);
    const after = (JSON.parse(annotated.stdout) as { after: string }).after;
    const body = { images: [{ image: `${registry().host}/acme/app:l1`, digest: after }] };
    const withAud = (aud: string[]): Promise<string> => gitlab().issueIdToken({ project: 'acme/app', aud, pipelineId: j.pipeline, jobId: j.jobId, sha: j.sha, ref: 'main' });
    // The template's aud without a report URL, and with another serve's.
    for (const aud of [['', 'tagtrail'], ['https://elsewhere.example.com', 'tagtrail']]) {
      const res = await report(await withAud(aud), body);
      expect(res.status, JSON.stringify(aud)).toBe(401);
    }
    expect(await verifiedRows(after)).toBe(0);
    const res = await report(await withAud([publicUrl, 'tagtrail']), body);
    expect(res.status, await res.clone().text()).toBe(200);
    const rows = await catalog.sql(`SELECT job_id FROM build_verifications WHERE digest = '${after}'`);
    expect(rows.map((r) => String(r.job_id))).toEqual([j.jobId]);
  });

  it('records a report whole or not at all: a registry failure on the second image verifies neither', async () => {
    // A serve of its own that reads the registry through the fault proxy.
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const faulty = await startServe([], { TAGTRAIL_LISTEN: `127.0.0.1:${port}`, TAGTRAIL_REGISTRY: faults().host, TAGTRAIL_DB: catalog.url, TAGTRAIL_GITLAB_URL: gitlab().url, TAGTRAIL_PUBLIC_URL: url, TAGTRAIL_RECONCILE_INTERVAL: '0' });
    try {
      const j = await job();
      const digests: string[] = [];
      for (const tag of ['w1', 'w2']) {
        await pushed(tag, 'acme/app', tag);
        const annotated = await runCli(['annotate', `${registry().host}/acme/app:${tag}`, '-o', 'json'], { env: j.env });
        expect(annotated.code, annotated.stderr).toBe(0);
        digests.push((JSON.parse(annotated.stdout) as { after: string }).after);
      }
      const token = await gitlab().issueIdToken({ project: 'acme/app', aud: url, pipelineId: j.pipeline, jobId: j.jobId, sha: j.sha, ref: 'main' });
      // The second image's manifest reads fine for the checks, then fails when it is recorded.
      const second = new RegExp(`/manifests/${digests[1]!}$`);
      for (let nth = 2; nth <= 6; nth++) faults().addRule({ method: 'GET', path: second, nth, fault: { kind: 'status', status: 500 } });
      const res = await fetch(`${url}/api/v1/builds`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ images: digests.map((digest, i) => ({ image: `${faults().host}/acme/app:w${i + 1}`, digest })) }),
      });
      expect(res.status, await res.clone().text()).toBe(502);
      expect(faults().count((r) => r.method === 'GET' && second.test(r.url))).toBeGreaterThanOrEqual(2);
      expect(await verifiedRows(digests[0]!)).toBe(0);
      expect(await verifiedRows(digests[1]!)).toBe(0);
    } finally {
      await faulty.stop();
    }
  });
});
