// The two catalog backends for suites that run against both: SQLite (files in a temp dir) and
// PostgreSQL (a throw-away cluster from helpers/postgres.ts; if it cannot start, the suite fails:
// a skipped PostgreSQL half does not count). Each fresh() is a new, empty, migrated database,
// with a raw SQL door for checks that must not go through the Store.
import Database from 'better-sqlite3';
import pg from 'pg';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { Store } from '../../src/catalog/store.js';
import { openStore } from '../../src/catalog/open.js';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';
import { createDatabase, startPostgres } from '../helpers/postgres.js';

export const BACKENDS = ['sqlite', 'postgres'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Catalog {
  url: string;
  store: Store;
  /** One query, straight to the database; returns the rows. */
  sql(query: string): Promise<Record<string, unknown>[]>;
  /** One statement that writes, behind the store's back (to stage what an older catalog held). */
  exec(statement: string): Promise<void>;
}

export interface Backend {
  name: BackendName;
  fresh(): Promise<Catalog>;
  stop(): Promise<void>;
}

export async function startBackend(name: BackendName): Promise<Backend> {
  const opened: Store[] = [];
  let n = 0;
  if (name === 'sqlite') {
    const dir = await makeTempDir('catalog');
    return {
      name,
      fresh: async () => {
        const path = join(dir, `catalog-${++n}.db`);
        const store = await openStore(`sqlite:${path}`);
        opened.push(store);
        return {
          url: `sqlite:${path}`,
          store,
          sql: async (query) => {
            const db = new Database(path, { readonly: true, fileMustExist: true });
            try {
              return db.prepare(query).all() as Record<string, unknown>[];
            } finally {
              db.close();
            }
          },
          exec: async (statement) => {
            const db = new Database(path, { fileMustExist: true });
            try {
              db.exec(statement);
            } finally {
              db.close();
            }
          },
        };
      },
      stop: async () => {
        for (const s of opened) await s.close().catch(() => undefined);
        await removeTempDir(dir);
      },
    };
  }
  const cluster = await startPostgres();
  return {
    name,
    fresh: async () => {
      const url = await createDatabase(cluster, `catalog_${++n}`);
      const store = await openStore(url);
      opened.push(store);
      return {
        url,
        store,
        sql: async (query) => {
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          try {
            return (await client.query(query)).rows as Record<string, unknown>[];
          } finally {
            await client.end();
          }
        },
        exec: async (statement) => {
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          try {
            await client.query(statement);
          } finally {
            await client.end();
          }
        },
      };
    },
    stop: async () => {
      for (const s of opened) await s.close().catch(() => undefined);
      await cluster.stop();
    },
  };
}

/** A backend for the enclosing describe. */
export function useBackend(name: BackendName): () => Backend {
  let backend: Backend | undefined;
  beforeAll(async () => {
    backend = await startBackend(name);
  });
  afterAll(async () => {
    await backend?.stop();
    backend = undefined;
  });
  return () => {
    if (!backend) throw new Error(`the ${name} backend is not running`);
    return backend;
  };
}

/** Rows of a count(*) query as a number, whichever driver answered. */
export async function countRows(catalog: Catalog, table: string): Promise<number> {
  const rows = await catalog.sql(`SELECT count(*) AS n FROM ${table}`);
  return Number(rows[0]?.n ?? 0);
}
