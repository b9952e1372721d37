// Registry credentials are bound to hosts. A registry (here: the real one behind a proxy that
// rewrites its challenge) that names a token realm on another host must not receive the user
// name and password there, whichever source they came from; and --username or
// TAGTRAIL_REGISTRY_USER are for the command's registry only. The probe realm listens on
// 127.0.0.2: another host name than the registry's 127.0.0.1, not only another port (a realm on the
// registry's own host name and another port, as GitLab's /jwt/auth beside a registry on :5050, is
// allowed, and the issuer of every other test here is exactly that).
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { startRecordingServer, type RecordingServer } from '../helpers/fault-proxy.js';
import { useFaultProxy, useRegistry, useTempDir, useTokenIssuer } from '../helpers/fixtures.js';
import { curlManifest, makeImage, pushImage } from '../helpers/images.js';

const USER = 'deploy-bot';
const PASSWORD = 'binding-secret-7f3a9c21e5';
const CREDS = `${USER}:${PASSWORD}`;
const BASIC = Buffer.from(CREDS).toString('base64');

const issuer = useTokenIssuer({ users: { [USER]: { password: PASSWORD } } });
const registry = useRegistry(() => ({ auth: { tokenIssuer: issuer() } }));
const proxy = useFaultProxy(() => ({ upstream: registry().url }));
const work = useTempDir('credential-binding');

let probe: RecordingServer;
let pushed: string;

beforeAll(async () => {
  probe = await startRecordingServer(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'probe-token' }) }), { host: '127.0.0.2' });
  const image = await makeImage(join(work(), 'img'), { tag: 'v1' });
  pushed = await pushImage(image, `${registry().host}/group/app:v1`, { creds: CREDS });
});

afterAll(async () => {
  await probe?.stop();
});

beforeEach(() => {
  proxy().clearRules();
  proxy().reset();
  probe.requests.length = 0;
});

/** The registry's challenges name the probe as token realm. */
function realmOnProbe(): void {
  proxy().addRule({ fault: { kind: 'unauthorized', wwwAuthenticate: `Bearer realm="${probe.url}/jwt/auth",service="container_registry"` } });
}

const SOURCES: { name: string; args: string[]; env: () => Record<string, string>; stdin?: string }[] = [
  { name: 'TAGTRAIL_REGISTRY_USER', args: [], env: () => ({ TAGTRAIL_REGISTRY_USER: USER, TAGTRAIL_REGISTRY_PASSWORD: PASSWORD }) },
  { name: '--username --password-stdin', args: ['--username', USER, '--password-stdin'], env: () => ({}), stdin: `${PASSWORD}\n` },
  { name: 'CI_REGISTRY_USER', args: [], env: () => gitlabEnv({ CI_REGISTRY: proxy().host, CI_REGISTRY_USER: USER, CI_REGISTRY_PASSWORD: PASSWORD }) },
  { name: 'DOCKER_AUTH_CONFIG', args: [], env: () => ({ DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [proxy().host]: { auth: BASIC } } }) }) },
];

function expectNoSecret(text: string): void {
  expect(text).not.toContain(PASSWORD);
  expect(text).not.toContain(BASIC);
}

describe('Basic credentials go only to a realm on a trusted host', () => {
  it.each(SOURCES)('$name: a realm on another host is refused, naming it, and receives nothing', async (source) => {
    realmOnProbe();
    const r = await runCli(['show', `${proxy().host}/group/app:v1`, ...source.args], { env: source.env(), ...(source.stdin ? { stdin: source.stdin } : {}) });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('token realm host 127.0.0.2');
    expect(r.stderr).toContain('--trusted-realm-host 127.0.0.2');
    expect(probe.requests).toEqual([]);
    expectNoSecret(r.stdout + r.stderr);
  });

  it('--trusted-realm-host names the realm host that may have them', async () => {
    realmOnProbe();
    const r = await runCli(['show', `${proxy().host}/group/app:v1`, '--trusted-realm-host', '127.0.0.2'], { env: { TAGTRAIL_REGISTRY_USER: USER, TAGTRAIL_REGISTRY_PASSWORD: PASSWORD } });
    // The probe's token is no good at the registry; what matters is who received the password.
    expect(r.code).toBe(1);
    expect(probe.requests.length).toBeGreaterThan(0);
    for (const q of probe.requests) expect(q.headers.authorization).toBe(`Basic ${BASIC}`);
  });

  it('a realm on the registry\'s own host name and another port gets them (the issuer), and the command works', async () => {
    const r = await runCli(['show', `${proxy().host}/group/app:v1`, '-o', 'json'], { env: { TAGTRAIL_REGISTRY_USER: USER, TAGTRAIL_REGISTRY_PASSWORD: PASSWORD } });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { digest: string }).digest).toBe(pushed);
    expect(issuer().requests.at(-1)?.user).toBe(USER);
  });
});

describe('explicit credentials are for the command\'s registry', () => {
  let other: RecordingServer;

  beforeAll(async () => {
    // A second registry that asks for Basic auth: whatever it is sent, it records.
    other = await startRecordingServer(() => ({ status: 401, headers: { 'www-authenticate': 'Basic realm="other"' } }));
  });

  afterAll(async () => {
    await other?.stop();
  });

  it('annotate on two registries with one TAGTRAIL_REGISTRY_USER stops before any request (exit 2), the other registry gets nothing', async () => {
    const env = { TAGTRAIL_REGISTRY_USER: USER, TAGTRAIL_REGISTRY_PASSWORD: PASSWORD };
    for (const extra of [{}, { TAGTRAIL_REGISTRY_HOSTS: 'registry.example.com' }]) {
      const r = await runCli(['annotate', `${proxy().host}/group/app:v1`, `${other.host}/group/app:v1`, '-a', 'com.example.team=payments'], { env: { ...env, ...extra } });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('TAGTRAIL_REGISTRY_HOSTS');
      expect(other.requests).toEqual([]);
      expect(proxy().requests).toEqual([]);
      expectNoSecret(r.stdout + r.stderr);
    }
    const tag = await curlManifest(`${registry().url}/v2/group/app/manifests/v1`, {
      method: 'HEAD',
      accept: 'application/vnd.oci.image.manifest.v1+json',
      auth: { bearer: await issuer().mintToken({ access: [{ type: 'repository', name: 'group/app', actions: ['pull'] }] }) },
    });
    expect(tag.digest).toBe(pushed);
  });

  it('with several registries, only those listed in TAGTRAIL_REGISTRY_HOSTS get them', async () => {
    const r = await runCli(['annotate', `${proxy().host}/group/app:v1`, `${other.host}/group/app:v1`, '-a', 'com.example.team=payments', '--dry-run'], {
      env: { TAGTRAIL_REGISTRY_USER: USER, TAGTRAIL_REGISTRY_PASSWORD: PASSWORD, TAGTRAIL_REGISTRY_HOSTS: proxy().host },
    });
    expect(r.code).toBe(1);
    expect(issuer().requests.at(-1)?.user).toBe(USER);
    expect(other.requests.length).toBeGreaterThan(0);
    expect(other.requests.filter((q) => q.headers.authorization !== undefined)).toEqual([]);
  });

  it('listed in TAGTRAIL_REGISTRY_HOSTS, both registries get them: the user said so', async () => {
    const r = await runCli(['annotate', `${proxy().host}/group/app:v1`, `${other.host}/group/app:v1`, '-a', 'com.example.team=payments', '--dry-run'], {
      env: { TAGTRAIL_REGISTRY_USER: USER, TAGTRAIL_REGISTRY_PASSWORD: PASSWORD, TAGTRAIL_REGISTRY_HOSTS: `${proxy().host},${other.host}` },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(other.host);
    expect(other.requests.some((q) => q.headers.authorization === `Basic ${BASIC}`)).toBe(true);
    expect(issuer().requests.at(-1)?.user).toBe(USER);
  });
});
