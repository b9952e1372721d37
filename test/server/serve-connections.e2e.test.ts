// `tagtrail serve` as the real process: the webhook's registry requests go over a kept-alive
// connection. An event for a manifest the catalog has costs a HEAD (does the registry have it in
// that repository?), and undici's fetch closes the connection after every HEAD, so each such event
// opened a connection (over https, a handshake). Connections are told apart by the client port the
// counting proxy saw each request come from.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { EVENTS_MEDIA_TYPE } from '../../src/catalog/events.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { MEDIA } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { putVariants } from '../helpers/variants.js';
import { ensureBuilt, startServe } from './serve-process.js';

const SECRET = `connections-${randomUUID()}`;
const TAGS = 12;

/** One tag push, as distribution notifies it. */
function envelope(host: string, repository: string, tag: string, digest: string, at: Date): string {
  return JSON.stringify({
    events: [
      {
        id: randomUUID(),
        timestamp: at.toISOString(),
        action: 'push',
        target: { mediaType: MEDIA.ociManifest, digest, repository, url: `http://${host}/v2/${repository}/manifests/${digest}`, tag },
        request: { id: randomUUID(), addr: '127.0.0.1:40000', host, method: 'PUT', useragent: 'containers/5.23.1 (github.com/containers/image)' },
        actor: {},
        source: { addr: 'registry:5000', instanceID: randomUUID() },
      },
    ],
  });
}

describe('tagtrail serve over the network', () => {
  const registry = useRegistry();
  const dir = useTempDir('serve-connections');

  it('reads the manifests of webhook events over one kept-alive connection, HEADs included', async () => {
    ensureBuilt();
    // One manifest under every tag: the first event reads it, each later one only checks it is there.
    const digest = (await putVariants(registry().directHost, 'conn-base/app', 'conn/app', TAGS, () => ({ 'com.gitlab.ci.pipeline_id': '1000' })))[0]!;

    const path = join(dir(), 'catalog.db');
    const serve = await startServe([], {
      TAGTRAIL_LISTEN: `127.0.0.1:${await freePort()}`,
      TAGTRAIL_REGISTRY: registry().host,
      TAGTRAIL_DB: `sqlite:${path}`,
      TAGTRAIL_WEBHOOK_SECRET: SECRET,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
    try {
      registry().resetRequests();
      for (let i = 0; i < TAGS; i++) {
        const res = await fetch(`${serve.url}/api/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${SECRET}`, 'content-type': EVENTS_MEDIA_TYPE },
          body: envelope(registry().host, 'conn/app', `v${i}`, digest, new Date(Date.UTC(2026, 0, 1, 0, 0, i))),
        });
        expect(res.status, await res.text()).toBe(200);
      }
    } finally {
      await serve.stop();
    }

    const manifests = registry().requests.filter((r) => r.kind === 'manifest');
    expect(manifests.filter((r) => r.method === 'GET')).toHaveLength(1);
    expect(manifests.filter((r) => r.method === 'HEAD')).toHaveLength(TAGS - 1);
    // One event at a time: one connection, and a spare for a socket the registry closed meanwhile.
    const connections = new Set(registry().requests.map((r) => r.clientPort));
    expect(connections.size).toBeGreaterThan(0);
    expect(connections.size).toBeLessThanOrEqual(2);

    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare("SELECT t.name, t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'conn/app' AND t.deleted_at IS NULL").all() as { name: string; digest: string }[];
      expect(rows).toHaveLength(TAGS);
      expect(new Set(rows.map((r) => r.digest))).toEqual(new Set([digest]));
    } finally {
      db.close();
    }
  });
});
