// The fetch of the command line (src/net/dispatcher.ts: GitLab's API, OIDC, --report) by the same
// corporate-network rules as the registry client (network.test.ts, node:http): the roots of
// TAGTRAIL_CA_FILE, and the proxy variables by curl's rules. Since every command sends its
// registry requests over node:http, no command line case reaches this fetch through a registry,
// so it is checked here, in-process, against the same real parts: distribution served over TLS
// with a private CA's certificate, and the recording CONNECT/forward proxy.
import { describe, expect, it } from 'vitest';
import { networkFetch } from '../../src/net/dispatcher.js';
import { isTlsVerificationCode } from '../../src/net/tls-errors.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { useProxyAndTls } from './proxy-and-tls.js';

/** The code of a failed fetch's cause (undici wraps the socket's error). */
function causeCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

describe('the fetch of GitLab\'s API, OIDC and --report on a corporate network', () => {
  const registry = useRegistry();
  const dir = useTempDir('network-fetch');
  const net = useProxyAndTls(dir);
  const p = net.proxy;
  const tlsHost = (): string => net.tls().host;

  it('trusts the CA of TAGTRAIL_CA_FILE, and without it fails on TLS verification', async () => {
    const ok = await networkFetch({ TAGTRAIL_CA_FILE: net.certs().caCertificate })(`https://${tlsHost()}/v2/`);
    expect(ok.status).toBe(200);
    const err = await networkFetch({})(`https://${tlsHost()}/v2/`).then(() => undefined, (e: unknown) => e);
    expect(isTlsVerificationCode(causeCode(err)), String(causeCode(err))).toBe(true);
  });

  it('sends http URLs to http_proxy as absolute-form requests, with Proxy-Authorization from its user and password', async () => {
    p().reset();
    const res = await networkFetch({ http_proxy: p().url.replace('http://', 'http://builder:p%40ss@') })(`http://${registry().host}/v2/`);
    expect(res.status).toBe(200);
    expect(p().requests).toEqual([{ method: 'GET', target: `http://${registry().host}/v2/`, proxyAuthorization: `Basic ${Buffer.from('builder:p@ss').toString('base64')}` }]);
  });

  it('ignores upper-case HTTP_PROXY, as curl does', async () => {
    p().reset();
    expect((await networkFetch({ HTTP_PROXY: p().url })(`http://${registry().host}/v2/`)).status).toBe(200);
    expect(p().requests).toEqual([]);
  });

  it('tunnels https URLs through HTTPS_PROXY with CONNECT, still verifying the registry with the CA', async () => {
    p().reset();
    const res = await networkFetch({ HTTPS_PROXY: p().url, TAGTRAIL_CA_FILE: net.certs().caCertificate })(`https://${tlsHost()}/v2/`);
    expect(res.status).toBe(200);
    expect(p().requests.map((r) => [r.method, r.target])).toEqual([['CONNECT', tlsHost()]]);
    p().reset();
    const err = await networkFetch({ HTTPS_PROXY: p().url })(`https://${tlsHost()}/v2/`).then(() => undefined, (e: unknown) => e);
    expect(isTlsVerificationCode(causeCode(err)), String(causeCode(err))).toBe(true);
    expect(p().requests.map((r) => r.method)).toEqual(['CONNECT']);
  });

  it('goes direct to a host NO_PROXY lists', async () => {
    for (const noProxy of ['127.0.0.1', 'example.com, 127.0.0.0/8', '*']) {
      p().reset();
      const res = await networkFetch({ HTTPS_PROXY: p().url, NO_PROXY: noProxy, TAGTRAIL_CA_FILE: net.certs().caCertificate })(`https://${tlsHost()}/v2/`);
      expect(res.status, noProxy).toBe(200);
      expect(p().requests, noProxy).toEqual([]);
    }
  });
});
