// What the corporate-network suites share: a recording forward proxy, and a registry over TLS
// whose certificate a private CA signed (made with openssl), started before a describe's tests and
// stopped after them.
import { afterAll, beforeAll } from 'vitest';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeCertificates, type TestCertificates } from '../helpers/tls.js';

export function useProxyAndTls(dir: () => string): { proxy: () => ForwardProxy; certs: () => TestCertificates; tls: () => TestRegistry } {
  let proxy: ForwardProxy | undefined;
  let certs: TestCertificates | undefined;
  let tls: TestRegistry | undefined;
  beforeAll(async () => {
    proxy = await startForwardProxy();
    certs = await makeCertificates(dir());
    tls = await startRegistry({ tls: { certificate: certs.certificate, key: certs.key } });
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await tls?.stop();
  });
  return { proxy: () => proxy as ForwardProxy, certs: () => certs as TestCertificates, tls: () => tls as TestRegistry };
}
