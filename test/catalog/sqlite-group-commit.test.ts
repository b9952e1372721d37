// Group commit on SQLite's write thread: tag pushes that arrive while the write connection is
// busy run in one transaction, each in a savepoint of its own, and commit once. Each caller still
// gets what its own transaction would have given it: a push that fails is undone alone and fails
// as it would alone, the others are kept. The commits are counted in the WAL file (a commit frame
// each), the rows read back with SQL. Each case holds the write connection with a transaction of
// the main thread while the pushes arrive, so they are all waiting when it is free: no timing.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/catalog/open.js';
import { PUSH_WRITES_IN_FLIGHT } from '../../src/catalog/push-batch.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import type { Store } from '../../src/catalog/store.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { StoreError } from '../../src/errors.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { ciAnnotations, hex, manifestRecord } from './seed.js';
import { walSinceRestart } from './wal-file.js';

function image(n: number): ManifestRecord {
  return manifestRecord(`config-${n}`, { 'com.gitlab.ci.pipeline_id': String(1000 + n), 'org.opencontainers.image.revision': `${n}`.padStart(40, 'c') });
}

/**
 * The transactions committed in a WAL file since its last restart: its frames that carry the
 * current salts and a database size (a commit frame ends each transaction). No checkpoint runs in
 * these small catalogs (far under WAL_CHECKPOINT_PAGES of WAL), so the WAL never restarts during a case.
 */
function walCommits(dbPath: string): number {
  return walSinceRestart(dbPath).commits;
}

/** Holds the write connection with a transaction of the main thread until the returned function is called. */
async function holdWriter(store: Store): Promise<{ release: () => void; done: Promise<unknown> }> {
  let release: () => void = () => undefined;
  let began: () => void = () => undefined;
  const holding = new Promise<void>((resolve) => (began = resolve));
  const done = (store as SqlStore).driver.write(async (q) => {
    await q.all('SELECT 1');
    began();
    await new Promise<void>((resolve) => (release = resolve));
  });
  await holding;
  return { release: () => release(), done };
}

/** Lets the calls made so far reach the write thread (they are posted at the end of this turn). */
const posted = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function sql(path: string, query: string, ...params: unknown[]): Record<string, unknown>[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(query).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

function exec(path: string, statement: string): void {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.exec(statement);
  } finally {
    db.close();
  }
}

const at = (n: number): Date => new Date(Date.UTC(2026, 0, 2, 0, 0, n));

/**
 * Pushes a tag for each of `names` to `repository` (image and time first + i) while the write
 * connection is held, so all of them wait for it; then lets it go. Their outcomes, in order, and
 * the commits written meanwhile.
 */
async function pushWhileHeld(store: Store, path: string, repository: string, names: readonly string[], first: number) {
  const held = await holdWriter(store);
  const before = walCommits(path);
  const pushes = names.map((tag, i) => store.pushTag({ repository, tag, digest: image(first + i).digest, at: at(first + i), manifest: image(first + i) }));
  await posted();
  held.release();
  await held.done;
  const outcomes = await Promise.allSettled(pushes);
  return { outcomes, commits: walCommits(path) - before };
}

describe('tag pushes that wait for the SQLite write connection', () => {
  const dir = useTempDir('group-commit');
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  async function fresh(): Promise<{ store: Store; path: string }> {
    const path = join(dir(), `catalog-${hex(4)}.db`);
    store = await openStore(`sqlite:${path}`);
    // A tag named `boom` cannot be written: the push that tries fails half-way, after its manifest.
    exec(path, `CREATE TRIGGER refuse_boom BEFORE INSERT ON tags WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    return { store, path };
  }

  it('commit once; the one that fails is undone alone and fails as it would alone, the others are kept', async () => {
    const { store, path } = await fresh();
    const names = ['v1', 'v2', 'v3', 'boom', 'v5', 'v6', 'v7', 'v8'];
    const { outcomes, commits } = await pushWhileHeld(store, path, 'group/app', names, 0);

    // One transaction for the eight pushes (each alone would have committed seven).
    expect(commits).toBe(1);
    expect(outcomes.map((o) => o.status)).toEqual(names.map((n) => (n === 'boom' ? 'rejected' : 'fulfilled')));
    for (const [i, o] of outcomes.entries()) if (names[i] !== 'boom') expect(o).toEqual({ status: 'fulfilled', value: { outcome: 'applied', inserted: true } });
    const failed = (outcomes[3] as PromiseRejectedResult).reason as Error;

    // What was kept, read back: seven tags, their manifests and counters; nothing of the push that failed.
    expect(sql(path, `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'group/app' ORDER BY t.name`).map((r) => r.name)).toEqual(names.filter((n) => n !== 'boom').sort());
    expect(sql(path, 'SELECT count(*) AS n FROM manifests WHERE digest = ?', image(3).digest)).toEqual([{ n: 0 }]);
    expect(sql(path, 'SELECT count(*) AS n FROM manifests')).toEqual([{ n: 7 }]);
    expect(sql(path, `SELECT live_tags, build_tags FROM repositories WHERE name = 'group/app'`)).toEqual([{ live_tags: 7, build_tags: 7 }]);
    expect(sql(path, `SELECT count(*) AS n FROM tag_terms tt JOIN tags t ON t.id = tt.tag_id WHERE t.name = 'boom'`)).toEqual([{ n: 0 }]);

    // The same push alone fails the same way, and leaves nothing either.
    const alone = await store.pushTag({ repository: 'group/app', tag: 'boom', digest: image(3).digest, at: at(3), manifest: image(3) }).then(
      () => new Error('the push alone was written'),
      (err: unknown) => err as Error,
    );
    expect(failed).toBeInstanceOf(StoreError);
    expect(alone).toBeInstanceOf(StoreError);
    expect([failed.constructor, failed.message, (failed as StoreError).code]).toEqual([alone.constructor, alone.message, (alone as StoreError).code]);
    expect(sql(path, 'SELECT count(*) AS n FROM manifests WHERE digest = ?', image(3).digest)).toEqual([{ n: 0 }]);
  });

  it('see what the pushes before them in the group wrote: an older event for the same tag, sent later, is superseded', async () => {
    const { store, path } = await fresh();
    const held = await holdWriter(store);
    const before = walCommits(path);
    const newer = store.pushTag({ repository: 'group/order', tag: 'latest', digest: image(20).digest, at: at(20), manifest: image(20) });
    const older = store.pushTag({ repository: 'group/order', tag: 'latest', digest: image(21).digest, at: at(10), manifest: image(21) });
    await posted();
    held.release();
    await held.done;
    expect(await newer).toEqual({ outcome: 'applied', inserted: true });
    expect(await older).toEqual({ outcome: 'superseded', inserted: true });
    expect(walCommits(path) - before).toBe(1);
    expect(sql(path, `SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'group/order'`)).toEqual([{ digest: image(20).digest }]);
  });

  it('a push whose fault shows only at COMMIT: nothing of the group is kept at first, each runs again alone, and only that one fails', async () => {
    const { store, path } = await fresh();
    // A tag named `late` adds a row that breaks a deferred foreign key: the COMMIT fails, not the statement.
    exec(
      path,
      `CREATE TABLE late_check (repository_id INTEGER REFERENCES repositories (id) DEFERRABLE INITIALLY DEFERRED);
       CREATE TRIGGER late_tag AFTER INSERT ON tags WHEN NEW.name = 'late' BEGIN INSERT INTO late_check (repository_id) VALUES (-1); END`,
    );
    const names = ['a1', 'late', 'a3'];
    const { outcomes, commits } = await pushWhileHeld(store, path, 'group/late', names, 30);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreError);
    // Run again one by one: the two that succeed commit once each.
    expect(commits).toBe(2);
    expect(sql(path, `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'group/late' ORDER BY t.name`).map((r) => r.name)).toEqual(['a1', 'a3']);
    expect(sql(path, 'SELECT count(*) AS n FROM late_check')).toEqual([{ n: 0 }]);
    expect(sql(path, 'SELECT count(*) AS n FROM manifests WHERE digest = ?', image(31).digest)).toEqual([{ n: 0 }]);
  });

  it('a push that makes SQLite end the whole transaction: each runs again alone, and only that one fails', async () => {
    const { store, path } = await fresh();
    // A tag named `gone` rolls back the whole transaction it is written in, not only its statement.
    exec(path, `CREATE TRIGGER end_gone BEFORE INSERT ON tags WHEN NEW.name = 'gone' BEGIN SELECT RAISE(ROLLBACK, 'ended'); END`);
    const names = ['b1', 'gone', 'b3'];
    const { outcomes, commits } = await pushWhileHeld(store, path, 'group/gone', names, 50);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreError);
    expect(commits).toBe(2);
    expect(sql(path, `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'group/gone' ORDER BY t.name`).map((r) => r.name)).toEqual(['b1', 'b3']);
    expect(sql(path, 'SELECT count(*) AS n FROM manifests WHERE digest = ?', image(51).digest)).toEqual([{ n: 0 }]);
    // The store goes on: the next push commits.
    expect(await store.pushTag({ repository: 'group/gone', tag: 'b4', digest: image(53).digest, at: at(53), manifest: image(53) })).toEqual({ outcome: 'applied', inserted: true });
  });
});

describe('webhook events that wait for the SQLite write connection', () => {
  const registry = useRegistry();
  const dir = useTempDir('group-commit-webhook');
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  const SECRET = 'webhook-secret-0123456789abcdef';

  function envelope(repository: string, tag: string, digest: string, when: Date): string {
    return JSON.stringify({
      events: [
        {
          id: hex(8),
          timestamp: when.toISOString(),
          action: 'push',
          target: { mediaType: OCI_MANIFEST, size: 500, digest, length: 500, repository, url: `http://registry.invalid/v2/${repository}/manifests/${digest}`, tag },
          request: { id: hex(8), addr: '127.0.0.1:1', host: 'registry', method: 'PUT', useragent: 'buildkit/v0.20.1' },
          actor: {},
          source: { addr: 'registry:5000', instanceID: 'x' },
        },
      ],
    });
  }

  it('read their manifests from the registry, commit together, and answer each request as alone: the refused one 500, the others applied', async () => {
    const path = join(dir(), 'catalog.db');
    store = await openStore(`sqlite:${path}`);
    exec(path, `CREATE TRIGGER refuse_boom BEFORE INSERT ON tags WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    const repository = 'group/hook';
    const tags = ['h1', 'boom', 'h3', 'h4'];
    const images = await makeTempDir('group-commit-images');
    const digests: string[] = [];
    for (const [i, tag] of tags.entries()) {
      digests.push(await pushImage(await makeImage(join(images, tag), { manifestAnnotations: ciAnnotations(hex(20), String(80 + i), 'main'), tag }), `${registry().host}/${repository}:${tag}`));
    }
    const client = new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
    // The store as the app sees it, with the pushes it is handed counted as they are sent. serve
    // sends up to PUSH_WRITES_IN_FLIGHT writes at once (push-batch.ts): these events are fewer, so
    // each goes to the write connection alone, at once, and they wait for it together.
    expect(tags.length).toBeLessThanOrEqual(PUSH_WRITES_IN_FLIGHT);
    let pushesSent = 0;
    let allSent: () => void = () => undefined;
    const sent = new Promise<void>((resolve) => (allSent = resolve));
    const real = store;
    const counting = new Proxy(real, {
      get(target, name, receiver) {
        const value: unknown = Reflect.get(target, name, receiver);
        if ((name !== 'pushTag' && name !== 'pushTags') || typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          pushesSent += name === 'pushTags' ? (args[0] as unknown[]).length : 1;
          if (pushesSent === tags.length) allSent();
          return result;
        };
      },
    });
    const app: Hono = createApp({ store: counting, webhook: { secret: SECRET, client, registry: registry().host } });
    registry().resetRequests();

    // Each event's manifest is read while the write connection is held, so all four writes wait for it.
    const held = await holdWriter(store);
    const before = walCommits(path);
    const answers = tags.map((tag, i) =>
      app.request('/api/v1/events', { method: 'POST', body: envelope(repository, tag, digests[i] as string, at(40 + i)), headers: { 'content-type': 'application/json', authorization: SECRET } }),
    );
    await sent;
    await posted();
    held.release();
    await held.done;
    const responses = await Promise.all(answers);

    expect(responses.map((r) => r.status)).toEqual([200, 500, 200, 200]);
    expect(await responses[1]!.json()).toEqual({ error: { code: 'STORE', message: 'the catalog database failed; see the server log' } });
    for (const r of [responses[0], responses[2], responses[3]]) expect(await r!.json()).toMatchObject({ applied: 1 });
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(tags.length);
    // One commit for the four (the refused one is undone alone): the three kept would commit three times alone.
    expect(walCommits(path) - before).toBe(1);
    expect(sql(path, `SELECT t.name, t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? ORDER BY t.name`, repository)).toEqual(
      [0, 2, 3].map((i) => ({ name: tags[i], digest: digests[i] })).sort((a, b) => String(a.name).localeCompare(String(b.name))),
    );
    expect(sql(path, 'SELECT count(*) AS n FROM manifests WHERE digest = ?', digests[1])).toEqual([{ n: 0 }]);
  });
});
