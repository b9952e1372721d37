// The two backends of the store contract and the records its tests write. Each contract file
// starts its own backends (a SQLite file in a temp dir, a throw-away PostgreSQL cluster).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { sha256Digest } from '../../../src/oci/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../../src/oci/mediatypes.js';
import type { ManifestRecord, Page, Platform } from '../../../src/catalog/types.js';
import { afterAll, beforeAll } from 'vitest';
import type { Store } from '../../../src/catalog/store.js';
import { openStore, parseStoreUrl } from '../../../src/catalog/open.js';
import { createDatabase, startPostgres } from '../../helpers/postgres.js';

/** Runs one statement on the catalog behind the store's back (to stage a pre-migration state). */
export async function rawSql(url: string, sql: string): Promise<void> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'sqlite') {
    const db = new Database(loc.path);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: loc.url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface Backend {
  url: string;
  /** A URL of a new, empty database. */
  fresh(): Promise<string>;
  stop(): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'tagtrail-catalog-'));
  let n = 0;
  return {
    url: `sqlite:${join(dir, 'catalog.db')}`,
    fresh: async () => `sqlite:${join(dir, `fresh-${++n}.db`)}`,
    stop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresBackend(): Promise<Backend> {
  const cluster = await startPostgres();
  let n = 0;
  return {
    url: cluster.url,
    fresh: async () => {
      return createDatabase(cluster, `fresh_${++n}`);
    },
    stop: cluster.stop,
  };
}

// ---------------------------------------------------------------- fixtures

export const CI = 'com.gitlab.ci.';
export const OCI = 'org.opencontainers.image.';
let nonce = 0;

/** A number no other call returns, for records that must differ. */
export function unique(): number {
  return ++nonce;
}

export function sha(s: string): string {
  return sha256Digest(Buffer.from(s));
}

export function image(annotations: Record<string, string> = {}, options: { config?: string; labels?: Record<string, string> } = {}): ManifestRecord {
  const config = options.config ?? sha(`config-${++nonce}`);
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config, size: 2 }, layers: [], annotations, nonce: ++nonce };
  const raw = Buffer.from(`${JSON.stringify(doc, null, 3)}\n`);
  return { digest: sha256Digest(raw), mediaType: OCI_MANIFEST, raw, configDigest: config, annotations, ...(options.labels ? { labels: options.labels } : {}) };
}

export function index(children: { record: ManifestRecord; platform: Platform }[], annotations: Record<string, string> = {}): ManifestRecord {
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c) => ({ mediaType: OCI_MANIFEST, digest: c.record.digest, size: c.record.raw.byteLength, platform: c.platform })),
    annotations,
  };
  const raw = Buffer.from(JSON.stringify(doc));
  return {
    digest: sha256Digest(raw),
    mediaType: OCI_INDEX,
    raw,
    annotations,
    children: children.map((c) => ({ digest: c.record.digest, mediaType: OCI_MANIFEST, size: c.record.raw.byteLength, platform: c.platform, manifest: c.record })),
  };
}

export function t(seconds: number): Date {
  return new Date(Date.UTC(2026, 0, 1) + seconds * 1000);
}

export function hex(n: number): string {
  return sha(`commit-${n}`).slice('sha256:'.length, 'sha256:'.length + 40);
}

export async function allPages<T>(fetch: (cursor?: string) => Promise<Page<T>>): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await fetch(cursor);
    pages++;
    items.push(...page.items);
    cursor = page.nextCursor;
    if (pages > 100) throw new Error('pagination does not end');
  } while (cursor);
  return { items, pages };
}

// ---------------------------------------------------------------- the contract

/** Both backends, for describe.each. */
export const BACKENDS = [
  { name: 'sqlite', start: sqliteBackend },
  { name: 'postgres', start: postgresBackend },
];

export interface ContractStore {
  readonly backend: Backend;
  readonly store: Store;
  /** A repository name of this test's own. */
  repo(s?: string): string;
  /** Opens another store on the backend (closed after the file's tests). */
  open(url?: string): Promise<Store>;
  /** Closes these stores after the file's tests. */
  closeAfter(...stores: Store[]): void;
}

/** Starts a backend and opens a store on it before the tests of the calling describe; closes both after. */
export function useContractStore(start: () => Promise<Backend>): ContractStore {
  let backend: Backend | undefined;
  let store: Store | undefined;
  const opened: Store[] = [];
  let prefix = 0;
  const open = async (url?: string): Promise<Store> => {
    const s = await openStore(url ?? ctx.backend.url);
    opened.push(s);
    return s;
  };
  const ctx: ContractStore = {
    get backend() {
      if (!backend) throw new Error('the backend starts in beforeAll');
      return backend;
    },
    get store() {
      if (!store) throw new Error('the store opens in beforeAll');
      return store;
    },
    repo: (s = 'app') => `group${++prefix}/${s}`,
    open,
    closeAfter: (...stores) => opened.push(...stores),
  };
  beforeAll(async () => {
    backend = await start();
    store = await open();
  });
  afterAll(async () => {
    for (const s of opened) await s.close().catch(() => undefined);
    await backend?.stop();
  });
  return ctx;
}
