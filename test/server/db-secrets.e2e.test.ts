// Hostile surroundings: secrets in database URLs, a catalog file others can read, and JSON a
// browser might sniff as HTML. Against `tagtrail serve` and `tagtrail sync` (child processes), a
// real PostgreSQL, a real registry and SQLite files read with fs.stat.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/cleanup.js';
import { runCli } from '../helpers/cli.js';
import { useRegistry } from '../helpers/fixtures.js';
import { BACKENDS, useBackend } from '../catalog/backends.js';
import { hex } from '../catalog/seed.js';
import { type ServeProcess, ensureBuilt, startServe } from './serve-process.js';

const SECRET = `nosniff-secret-${hex(16)}`;
const registry = useRegistry();

beforeAll(() => {
  ensureBuilt();
});

describe('secrets in a PostgreSQL URL', () => {
  const backend = useBackend('postgres');

  it('password, sslpassword and sslkey in the query are never printed nor logged', async () => {
    const catalog = await backend().fresh();
    const [password, sslpassword, sslkey] = [`pw-${hex(8)}`, `sslpw-${hex(8)}`, `/nonexistent/key-${hex(8)}.pem`];
    // The test cluster trusts local connections: the password is sent and ignored, and serve starts.
    const url = `${catalog.url}?password=${password}&sslpassword=${sslpassword}`;
    const serve = await startServe([], { TAGTRAIL_LISTEN: '127.0.0.1:0', TAGTRAIL_DB: url, TAGTRAIL_RECONCILE_INTERVAL: '0' });
    try {
      const logged = serve.stdout.join('\n');
      expect(logged).toContain('password=***&sslpassword=***');
      expect(logged).not.toContain(password);
      expect(logged).not.toContain(sslpassword);
    } finally {
      await serve.stop();
    }
    // sslkey names a file the driver reads: its failure names the path, which must not show either.
    const r = await runCli(['sync', '--registry', registry().host, '--db', `${catalog.url}?sslkey=${encodeURIComponent(sslkey)}&password=${password}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cannot connect to the catalog database');
    for (const s of [password, sslkey, encodeURIComponent(sslkey), 'key-']) expect(r.stderr + r.stdout).not.toContain(s);
  });
});

describe('a new SQLite catalog', () => {
  it('is created with mode 0600, and so are its -wal and -shm files', async () => {
    const dir = await makeTempDir('private-catalog');
    const path = join(dir, 'catalog.db');
    const serve = await startServe([], { TAGTRAIL_LISTEN: '127.0.0.1:0', TAGTRAIL_DB: `sqlite:${path}`, TAGTRAIL_RECONCILE_INTERVAL: '0' });
    try {
      for (const file of [path, `${path}-wal`, `${path}-shm`]) expect((statSync(file).mode & 0o777).toString(8), file).toBe('600');
    } finally {
      await serve.stop();
    }
  });
});

describe.each(BACKENDS)('JSON answers carry X-Content-Type-Options: nosniff, on %s', (backendName) => {
  const backend = useBackend(backendName);
  let serve: ServeProcess;

  beforeAll(async () => {
    const catalog = await backend().fresh();
    serve = await startServe([], {
      TAGTRAIL_LISTEN: '127.0.0.1:0',
      TAGTRAIL_DB: catalog.url,
      TAGTRAIL_REGISTRY: registry().host,
      TAGTRAIL_WEBHOOK_SECRET: SECRET,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it('API answers, errors and probes', async () => {
    const requests: [string, RequestInit, number][] = [
      ['/healthz', {}, 200],
      ['/readyz', {}, 200],
      ['/api/v1/repositories', {}, 200],
      ['/api/v1/images?limit=1', {}, 200],
      ['/api/v1/openapi.json', {}, 200],
      ['/api/v1/images/not-a-digest', {}, 400],
      [`/api/v1/images/sha256:${'0'.repeat(64)}`, {}, 404],
      ['/api/v1/no-such-endpoint', {}, 404],
      ['/api/v1/events', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }, 401],
      ['/api/v1/events', { method: 'POST', body: 'not json', headers: { 'content-type': 'application/json', authorization: SECRET } }, 400],
    ];
    for (const [path, init, status] of requests) {
      const res = await fetch(`${serve.url}${path}`, init);
      await res.arrayBuffer();
      expect(res.status, path).toBe(status);
      expect(res.headers.get('content-type'), path).toContain('json');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });
});
