// Corporate networks, against real parts: distribution served over TLS with a certificate of a
// private CA (made with openssl), and a recording CONNECT/forward proxy. The built CLI runs as a
// process, so it reads its environment as in production. Every command sends its registry
// requests over node:http (src/net/node-http.ts), so each rule is checked with a command that only
// reads (`show`), and with `annotate` and `attach`, which write. The CLI's other client, the fetch
// of GitLab's API, OIDC and --report, keeps the same rules: network-fetch.test.ts.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin } from '../helpers/cli.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { curlManifest, makeImage, pushImage } from '../helpers/images.js';
import { makeCertificates, type TestCertificates } from '../helpers/tls.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ensureBuilt } from '../server/serve-process.js';
import { useProxyAndTls } from './proxy-and-tls.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let writes = 0;
/**
 * Commands on an image, all through node:http: `show` reads; `annotate` and `attach` read and
 * write (a new value each run, so each run writes).
 */
const CLIENTS = [
  ['show (node:http, reads)', (image: string) => ['show', image]],
  ['annotate (node:http)', (image: string) => ['annotate', '--no-ci', '-a', `com.example.network=run-${++writes}`, '-o', 'json', image]],
  // A new referrer each run: a blob check and upload (HEAD, POST, PUT), the referrer and the referrers tag.
  ['attach (node:http)', (image: string) => ['attach', '--no-ci', '-a', `com.example.network=run-${++writes}`, '-o', 'json', image]],
] as const;

describe('a registry served over TLS with a private CA', () => {
  const dir = useTempDir('tls');
  let certs: TestCertificates;
  let registry: TestRegistry | undefined;
  const tlsRegistry = (): TestRegistry => registry as TestRegistry;

  beforeAll(async () => {
    ensureBuilt();
    certs = await makeCertificates(dir());
    registry = await startRegistry({ tls: { certificate: certs.certificate, key: certs.key } });
    const image = await makeImage(join(dir(), 'layout'), { layers: 1 });
    await pushImage(image, `${tlsRegistry().host}/group/app:v1`);
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  it('with TAGTRAIL_CA_FILE, annotate and show work over https on loopback, and curl --cacert reads the result back', async () => {
    const image = `https://${tlsRegistry().host}/group/app:v1`;
    const env = { TAGTRAIL_CA_FILE: certs.caCertificate };
    const annotated = await runBin(['annotate', '--no-ci', '-a', 'com.example.network=tls', '-o', 'json', image], { env });
    expect(annotated.stderr).toBe('');
    expect(annotated.code).toBe(0);
    const after = (JSON.parse(annotated.stdout) as { after: string }).after;

    const back = await curlManifest(`${tlsRegistry().url}/v2/group/app/manifests/v1`, { accept: OCI_MANIFEST, cacert: certs.caCertificate });
    expect(back.status).toBe(200);
    expect(back.digest).toBe(after);
    expect((JSON.parse(back.body.toString('utf8')) as { annotations?: Record<string, string> }).annotations).toMatchObject({ 'com.example.network': 'tls' });

    const shown = await runBin(['show', '-o', 'json', image], { env });
    expect(shown.code).toBe(0);
    expect(JSON.stringify(JSON.parse(shown.stdout))).toContain('com.example.network');
  });

  it('syncs from --registry https://127.0.0.1:PORT with TAGTRAIL_CA_FILE', async () => {
    const db = `sqlite:${join(dir(), 'tls.db')}`;
    const synced = await runBin(['sync', '--registry', `https://${tlsRegistry().host}`, '--db', db, '-o', 'json'], { env: { TAGTRAIL_CA_FILE: certs.caCertificate } });
    expect(synced.stderr).toBe('');
    expect(synced.code).toBe(0);
    expect(JSON.parse(synced.stdout)).toMatchObject({ complete: true, added: 1 });
  });

  it.each(CLIENTS)('%s without TAGTRAIL_CA_FILE fails with exit 1 naming TLS verification and the CA option', async (_name, args) => {
    const res = await runBin(args(`https://${tlsRegistry().host}/group/app:v1`));
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`TLS verification of ${tlsRegistry().host} failed`);
    expect(res.stderr).toContain('TAGTRAIL_CA_FILE');
    expect(res.stderr).toContain('never skips TLS verification');
  });

  it.each(CLIENTS)('%s: a CA file that holds no certificate is refused as input (exit 2)', async (_name, args) => {
    const res = await runBin(args(`https://${tlsRegistry().host}/group/app:v1`), { env: { TAGTRAIL_CA_FILE: certs.key } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('TAGTRAIL_CA_FILE');
    expect(res.stderr).toContain('holds no PEM certificate');
  });

  it.each(CLIENTS)('%s: a loopback registry without https:// is still reached over plain http, and the error says to write https://', async (_name, args) => {
    const res = await runBin(args(`${tlsRegistry().host}/group/app:v1`), { env: { TAGTRAIL_CA_FILE: certs.caCertificate } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('over plain http was refused (HTTP 400)');
    expect(res.stderr).toContain(`https://${tlsRegistry().host}`);
  });

  it('an image written with both http:// and https:// for one registry is refused before any request (exit 2)', async () => {
    const res = await runBin(['annotate', '--no-ci', '-a', 'k=v', '--dry-run', `https://${tlsRegistry().host}/group/app:v1`, `http://${tlsRegistry().host}/group/app:v2`]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${tlsRegistry().host} is named with both http:// and https://`);
  });
});

describe('proxies by curl\'s rules', () => {
  const registry = useRegistry();
  const dir = useTempDir('proxy');
  const net = useProxyAndTls(dir);
  const p = net.proxy;

  beforeAll(async () => {
    ensureBuilt();
    const image = await makeImage(join(dir(), 'layout'), { layers: 1 });
    await pushImage(image, `${registry().host}/group/app:v1`);
    await pushImage(image, `${net.tls().host}/group/app:v1`);
  }, 60_000);

  it.each(CLIENTS)('%s: http_proxy carries http requests, loopback included, as absolute-form requests', async (_name, args) => {
    p().reset();
    registry().resetRequests();
    const res = await runBin(args(`${registry().host}/group/app:v1`), { env: { http_proxy: p().url } });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(p().requests.length).toBeGreaterThan(0);
    expect(p().requests.every((r) => r.target.startsWith(`http://${registry().host}/v2/`))).toBe(true);
    // Every request the registry saw came through the proxy.
    expect(registry().count()).toBe(p().requests.length);
  });

  it.each(CLIENTS)('%s: upper-case HTTP_PROXY is ignored, as curl ignores it', async (_name, args) => {
    p().reset();
    const res = await runBin(args(`${registry().host}/group/app:v1`), { env: { HTTP_PROXY: p().url } });
    expect(res.code).toBe(0);
    expect(p().requests).toEqual([]);
  });

  it.each(CLIENTS)('%s: HTTPS_PROXY tunnels https requests with CONNECT; the CA still verifies the registry through the tunnel', async (_name, args) => {
    p().reset();
    const host = net.tls().host;
    const res = await runBin(args(`https://${host}/group/app:v1`), { env: { HTTPS_PROXY: p().url, TAGTRAIL_CA_FILE: net.certs().caCertificate } });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(p().requests.length).toBeGreaterThan(0);
    expect(p().requests.every((r) => r.method === 'CONNECT' && r.target === host)).toBe(true);
  });

  it.each(CLIENTS)('%s: through a tunnel, the registry\'s certificate is still checked: without the CA, exit 1 naming TLS verification', async (_name, args) => {
    p().reset();
    const host = net.tls().host;
    const res = await runBin(args(`https://${host}/group/app:v1`), { env: { HTTPS_PROXY: p().url } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`TLS verification of ${host} failed`);
    expect(p().requests.some((r) => r.method === 'CONNECT')).toBe(true);
  });

  it.each(CLIENTS)('%s: a proxy URL with user and password sends them as Proxy-Authorization (Basic), on CONNECT and on forwarded requests', async (_name, args) => {
    const withUser = p().url.replace('http://', 'http://builder:p%40ss@');
    const basic = `Basic ${Buffer.from('builder:p@ss').toString('base64')}`;
    p().reset();
    const tunnelled = await runBin(args(`https://${net.tls().host}/group/app:v1`), { env: { https_proxy: withUser, TAGTRAIL_CA_FILE: net.certs().caCertificate } });
    expect(tunnelled.code, tunnelled.stderr).toBe(0);
    p().reset();
    const forwarded = await runBin(args(`${registry().host}/group/app:v1`), { env: { http_proxy: withUser } });
    expect(forwarded.code, forwarded.stderr).toBe(0);
    expect(p().requests.length).toBeGreaterThan(0);
    expect(p().requests.every((r) => r.proxyAuthorization === basic)).toBe(true);
  });

  it.each(CLIENTS)('%s: NO_PROXY listing the host (or its CIDR) bypasses the proxy', async (_name, args) => {
    for (const noProxy of ['127.0.0.1', 'example.com, 127.0.0.0/8', '*']) {
      p().reset();
      const res = await runBin(args(`https://${net.tls().host}/group/app:v1`), { env: { HTTPS_PROXY: p().url, NO_PROXY: noProxy, TAGTRAIL_CA_FILE: net.certs().caCertificate } });
      expect(res.code, noProxy).toBe(0);
      expect(p().requests, noProxy).toEqual([]);
    }
  });

  it.each(CLIENTS)('%s: NO_PROXY naming other hosts leaves loopback on the proxy', async (_name, args) => {
    p().reset();
    const res = await runBin(args(`${registry().host}/group/app:v1`), { env: { http_proxy: p().url, no_proxy: 'localhost,.example.com' } });
    expect(res.code).toBe(0);
    expect(p().requests.length).toBeGreaterThan(0);
  });

  it.each(CLIENTS)('%s: malformed percent-encoding in the proxy credentials is refused as input (exit 2), naming the variable and never the password', async (_name, args) => {
    const password = 'sekr3t-proxy-pw';
    for (const variable of ['HTTPS_PROXY', 'https_proxy', 'http_proxy', 'ALL_PROXY']) {
      const image = variable === 'http_proxy' ? `${registry().host}/group/app:v1` : `https://${net.tls().host}/group/app:v1`;
      const res = await runBin(args(image), { env: { [variable]: `http://us%zzer:${password}@127.0.0.1:3128`, TAGTRAIL_CA_FILE: net.certs().caCertificate } });
      expect(res.code, `${variable}: ${res.stderr}`).toBe(2);
      expect(res.stderr).toContain(`${variable}: the user name or password is not valid percent-encoding`);
      expect(res.stderr).toContain('%25');
      expect(res.stdout + res.stderr).not.toContain(password);
      expect(res.stdout + res.stderr).not.toContain('us%zzer');
    }
  });

  it.each(CLIENTS)('%s: a proxy that is not http or https is refused as input (exit 2)', async (_name, args) => {
    const res = await runBin(args(`${registry().host}/group/app:v1`), { env: { http_proxy: 'socks5://127.0.0.1:1080' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('http_proxy');
  });
});
