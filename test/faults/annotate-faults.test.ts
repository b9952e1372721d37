// annotate of a multi-platform index behind token auth, with one fault per scenario injected by
// the proxy on the way. After each run the registry itself is checked: the tag points at the
// original index or at the complete result, never at a child or at a manifest that does not
// exist; every manifest the tag's index lists exists; the image pulls whole. Then the same
// command is run again without faults and must converge on exactly the digest a clean run gives.
// Every run uses --debug, and no Authorization value, token or password may appear in its output.
// (Single faults on a single image are in test/oci/annotate-auth.test.ts.)
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitlabEnv, runBin, runCli } from '../helpers/cli.js';
import { startRecordingServer, type Fault, type FaultRule, type RecordingServer } from '../helpers/fault-proxy.js';
import { useFaultProxy, useRegistry, useTempDir, useTokenIssuer } from '../helpers/fixtures.js';
import { curlManifest, makeIndex, pushImage, skopeoPullToDir, type IndexInfo } from '../helpers/images.js';
import { ensureBuilt } from '../server/serve-process.js';

const USER = 'gitlab-ci-token';
const PASSWORD = 'glcbt-64-faults-token-fedcba9876543210';
const CREDS = `${USER}:${PASSWORD}`;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const issuer = useTokenIssuer({ users: { [USER]: { password: PASSWORD } } });
const registry = useRegistry(() => ({ auth: { tokenIssuer: issuer() } }));
const proxy = useFaultProxy(() => ({ upstream: registry().url }));
const work = useTempDir('annotate-faults');

let index: IndexInfo;
let controlAfter: string;
let other: RecordingServer;

function env(host: string): Record<string, string> {
  return gitlabEnv({ CI_REGISTRY: host, CI_REGISTRY_USER: USER, CI_REGISTRY_PASSWORD: PASSWORD, CI_JOB_TOKEN: PASSWORD });
}

/** The same command every time: fixed annotations, so a clean run's result digest is known. */
function annotate(host: string, repo: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['annotate', `${host}/${repo}:v1`, '--no-ci', '-a', 'com.example.team=payments', '-a', 'com.example.build=42', '--debug', '-o', 'json'], { env: env(host) });
}

async function bearer(repo: string): Promise<string> {
  return issuer().mintToken({ access: [{ type: 'repository', name: repo, actions: ['pull'] }] });
}

async function read(repo: string, reference: string, method?: 'HEAD'): Promise<{ status: number; digest?: string; json: { mediaType?: string; manifests?: { digest: string }[] } }> {
  const r = await curlManifest(`${registry().url}/v2/${repo}/manifests/${reference}`, { accept: [OCI_INDEX, OCI_MANIFEST], auth: { bearer: await bearer(repo) }, ...(method ? { method } : {}) });
  return { status: r.status, ...(r.digest ? { digest: r.digest } : {}), json: r.status === 200 && method === undefined ? JSON.parse(r.body.toString('utf8')) : {} };
}

/** The registry after a run: the tag on the original or on the complete result, and whole. */
async function expectConsistent(repo: string): Promise<string> {
  const tag = await read(repo, 'v1');
  expect(tag.status).toBe(200);
  expect([index.digest, controlAfter]).toContain(tag.digest);
  expect(tag.json.mediaType).toBe(OCI_INDEX);
  for (const d of tag.json.manifests ?? []) expect((await read(repo, d.digest, 'HEAD')).status, d.digest).toBe(200);
  const pulled = await skopeoPullToDir(`${registry().host}/${repo}:v1`, await mkdtemp(join(work(), 'pull-')), CREDS);
  expect(pulled.configDigest).toBe(index.images[0]!.configDigest);
  expect(pulled.layers).toEqual(index.images[0]!.layers.map((l) => l.digest));
  return tag.digest!;
}

function expectNoSecrets(output: string): void {
  const sent = proxy()
    .requests.map((q) => q.headers.authorization)
    .filter((h): h is string => typeof h === 'string');
  for (const h of new Set(sent)) {
    expect(output).not.toContain(h);
    expect(output).not.toContain(h.replace(/^(Bearer|Basic) /, ''));
  }
  expect(output).not.toContain(PASSWORD);
  expect(output).not.toContain(Buffer.from(CREDS).toString('base64'));
}

beforeAll(async () => {
  index = await makeIndex(join(work(), 'index'), { tag: 'v1', attestations: true, platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm', variant: 'v7' }] });
  await pushImage(index, `${registry().host}/faults/control:v1`, { creds: CREDS });
  const clean = await annotate(registry().host, 'faults/control');
  expect(clean.code, clean.stderr).toBe(0);
  controlAfter = (JSON.parse(clean.stdout) as { after: string }).after;
  other = await startRecordingServer(() => ({ status: 201 }));
});

afterAll(async () => {
  await other?.stop();
});

const CHILD = /\/manifests\/sha256:/;
const TAG = /\/manifests\/v1$/;

interface Scenario {
  name: string;
  rules: () => FaultRule[];
  /** Exit codes this fault may end in. */
  codes: number[];
}

const fault = (f: Fault): Fault => f;
const scenarios: Scenario[] = [
  { name: 'reset mid-body on a child manifest GET', rules: () => [{ method: 'GET', path: CHILD, nth: 2, fault: fault({ kind: 'reset', afterBytes: 40 }) }], codes: [0] },
  { name: 'truncated index GET', rules: () => [{ method: 'GET', path: TAG, times: 1, fault: fault({ kind: 'truncate' }) }], codes: [0] },
  { name: 'hang-up on the second child PUT', rules: () => [{ method: 'PUT', path: CHILD, nth: 2, fault: fault({ kind: 'hangup' }) }], codes: [0] },
  { name: '503 on every child PUT, retries run out', rules: () => [{ method: 'PUT', path: CHILD, fault: fault({ kind: 'status', status: 503 }) }], codes: [1] },
  { name: '500 on the tag PUT', rules: () => [{ method: 'PUT', path: TAG, fault: fault({ kind: 'status', status: 500 }) }], codes: [1] },
  { name: 'hang-up on every tag PUT', rules: () => [{ method: 'PUT', path: TAG, fault: fault({ kind: 'hangup' }) }], codes: [1] },
  { name: 'reset after the tag PUT reached the registry', rules: () => [{ method: 'PUT', path: TAG, times: 1, fault: fault({ kind: 'reset', afterBytes: 0 }) }], codes: [0, 1] },
  { name: 'wrong Docker-Content-Digest on the tag PUT', rules: () => [{ method: 'PUT', path: TAG, fault: fault({ kind: 'wrong-digest' }) }], codes: [1] },
  { name: '401 on every tag PUT (token revoked)', rules: () => [{ method: 'PUT', path: TAG, fault: fault({ kind: 'unauthorized' }) }], codes: [1] },
  // distribution answers 500 to a read of a tag that another client is writing at that moment.
  { name: '500 on the first read of the tag (being written)', rules: () => [{ method: 'GET', path: TAG, times: 1, fault: fault({ kind: 'status', status: 500 }) }], codes: [0] },
  { name: '500 on the race check (tag being written)', rules: () => [{ method: 'HEAD', path: TAG, nth: 1, fault: fault({ kind: 'status', status: 500 }) }], codes: [3] },
  { name: '500 once on the read-back', rules: () => [{ method: 'HEAD', path: TAG, nth: 2, fault: fault({ kind: 'status', status: 500 }) }], codes: [0] },
  { name: 'latency of 1.5 s on the race check', rules: () => [{ method: 'HEAD', path: TAG, nth: 1, fault: fault({ kind: 'latency', ms: 1500 }) }], codes: [0] },
  { name: '307 of a child PUT to another host', rules: () => [{ method: 'PUT', path: CHILD, nth: 1, fault: fault({ kind: 'redirect', to: other.url, status: 307 }) }], codes: [0, 1, 3] },
  { name: '307 of the tag PUT to another host', rules: () => [{ method: 'PUT', path: TAG, times: 1, fault: fault({ kind: 'redirect', to: other.url, status: 307 }) }], codes: [1, 3] },
];

describe('annotate an index through faults', () => {
  it.each(scenarios.map((s, i) => [s.name, i] as const))('%s: the registry stays consistent, and a re-run converges', async (_name, i) => {
    const s = scenarios[i]!;
    const repo = `faults/s${i}`;
    await pushImage(index, `${registry().host}/${repo}:v1`, { creds: CREDS });
    proxy().clearRules();
    proxy().reset();
    other.requests.length = 0;
    const handles = s.rules().map((r) => proxy().addRule(r));
    const r = await annotate(proxy().host, repo);
    expect(handles.reduce((n, h) => n + h.applied(), 0), 'the fault was injected').toBeGreaterThan(0);
    expect(s.codes, `exit ${r.code}: ${r.stderr}`).toContain(r.code);
    expect(r.stderr).toContain('debug: -->');
    expectNoSecrets(r.stdout + r.stderr);
    // Credentials never cross to another origin.
    expect(other.requests.every((q) => q.headers.authorization === undefined)).toBe(true);
    if (r.code === 0) expect((await read(repo, (JSON.parse(r.stdout) as { after: string }).after, 'HEAD')).status).toBe(200);
    await expectConsistent(repo);

    proxy().clearRules();
    const again = await annotate(proxy().host, repo);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { after: string }).after).toBe(controlAfter);
    expect(await expectConsistent(repo)).toBe(controlAfter);
  });
});

describe('token realm safety, end to end', () => {
  it('a realm on a metadata address or with another scheme is refused before any request to it', async () => {
    try {
      for (const realm of ['http://169.254.169.254/latest/meta-data/', 'http://[::ffff:169.254.169.254]/token', 'http://metadata.google.internal./token', 'ftp://127.0.0.1/token']) {
        proxy().clearRules();
        // The first request (the GET of the tag) is challenged with the hostile realm.
        proxy().addRule({ method: 'GET', path: /^\/v2\//, fault: { kind: 'unauthorized', wwwAuthenticate: `Bearer realm="${realm}",service="container_registry"` } });
        const r = await annotate(proxy().host, 'faults/control');
        expect(r.code, realm).toBe(1);
        expect(r.stderr).toMatch(/token realm/);
        expect(r.stderr).not.toMatch(/debug: --> GET (http|ftp):\/\/(169|\[|metadata|127\.0\.0\.1\/)/);
        expectNoSecrets(r.stdout + r.stderr);
      }
    } finally {
      proxy().clearRules();
    }
  });

  it('a realm on another host receives the credentials only there, and the registry only the token', async () => {
    proxy().clearRules();
    proxy().reset();
    const before = issuer().issued();
    const r = await annotate(proxy().host, 'faults/control');
    expect(r.code, r.stderr).toBe(0);
    expect(issuer().issued() - before).toBe(1);
    // Basic credentials go to the realm (the issuer), never to the registry behind the proxy.
    expect(proxy().requests.some((q) => q.headers.authorization?.startsWith('Basic '))).toBe(false);
  });
});

describe('a child PUT that fails for good', () => {
  it('stops the other child PUTs and their retries: the run ends on its error, the tag untouched, and a re-run converges', async () => {
    ensureBuilt();
    const repo = 'faults/child-refused';
    await pushImage(index, `${registry().host}/${repo}:v1`, { creds: CREDS });
    proxy().clearRules();
    proxy().reset();
    // The first child PUT is refused outright; the others are asked to come back in 2 s, which
    // would take four retries each (about 8 s) if nothing stopped them.
    const refused = proxy().addRule({ method: 'PUT', path: CHILD, nth: 1, fault: { kind: 'status', status: 400 } });
    proxy().addRule({ method: 'PUT', path: CHILD, fault: { kind: 'status', status: 503, retryAfter: 2 } });
    // The built command, as a process: it has ended only when nothing of the run goes on.
    const r = await runBin(['annotate', `${proxy().host}/${repo}:v1`, '--no-ci', '-a', 'com.example.team=payments', '-a', 'com.example.build=42', '-o', 'json'], { env: env(proxy().host) });
    expect(refused.applied()).toBe(1);
    expect(r.code, r.stderr).toBe(1);
    // The refusal is the run's answer, not the abort it caused in the other PUTs.
    expect(r.stderr).toMatch(/HTTP 400/);
    expect(r.stderr).not.toMatch(/abort/i);
    // One PUT per platform manifest (3): none retried, and nothing written after the failure.
    expect(proxy().count({ method: 'PUT', path: CHILD })).toBe(index.images.length);
    expect(proxy().count({ method: 'PUT', path: TAG })).toBe(0);
    expect(await expectConsistent(repo)).toBe(index.digest);
    expectNoSecrets(r.stdout + r.stderr);

    proxy().clearRules();
    const again = await annotate(proxy().host, repo);
    expect(again.code, again.stderr).toBe(0);
    expect(await expectConsistent(repo)).toBe(controlAfter);
  });
});
