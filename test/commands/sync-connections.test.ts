// `tagtrail sync` as the real process: its registry requests go over a few kept-alive
// connections, at most about as many as requests in flight, not a new connection per HEAD (which
// undici's fetch would open: it closes the connection after every HEAD). Connections are told
// apart by the client port the counting proxy saw each request come from.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runBin } from '../helpers/cli.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { putVariants } from '../helpers/variants.js';
import { ensureBuilt } from '../server/serve-process.js';

const TAGS = 30;
const CONCURRENCY = 2;

describe('tagtrail sync over the network', () => {
  const registry = useRegistry();
  const dir = useTempDir('sync-connections');

  it('sends its requests over kept-alive connections, no more of them than requests in flight (and a spare)', async () => {
    ensureBuilt();
    await putVariants(registry().directHost, 'conn-base/app', 'conn/app', TAGS, (i) => ({ 'com.gitlab.ci.pipeline_id': String(1000 + i) }));

    const path = join(dir(), 'catalog.db');
    registry().resetRequests();
    const run = await runBin(['sync', '--registry', registry().host, '--repository', 'conn', '--db', `sqlite:${path}`, '--concurrency', String(CONCURRENCY), '-o', 'json']);
    expect(run.code, run.stderr).toBe(0);

    const heads = registry().requests.filter((r) => r.method === 'HEAD' && r.kind === 'manifest');
    const gets = registry().requests.filter((r) => r.method === 'GET' && r.kind === 'manifest');
    expect(heads).toHaveLength(TAGS);
    expect(gets).toHaveLength(TAGS);
    const connections = new Set(registry().requests.map((r) => r.clientPort));
    expect(connections.size).toBeGreaterThan(0);
    expect(connections.size).toBeLessThanOrEqual(CONCURRENCY + 1);

    // And the crawl is whole: every tag in the catalog.
    const db = new Database(path, { readonly: true });
    try {
      const row = db.prepare("SELECT count(*) AS n FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'conn/app' AND t.deleted_at IS NULL").get() as { n: number };
      expect(row.n).toBe(TAGS);
    } finally {
      db.close();
    }
  });
});
