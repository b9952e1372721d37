// Opening the catalog from its URL. Each dialect's module is imported only when that dialect is
// opened: a SQLite catalog never loads pg, a PostgreSQL one never loads the native better-sqlite3.
import { UsageError } from '../errors.js';
import { redactDatabaseUrl } from './database-url.js';
import type { Store } from './store.js';

export { redactDatabaseUrl };

export const DEFAULT_STORE_URL = 'sqlite:./tagtrail.db';
const DEFAULT_SQLITE_PATH = './tagtrail.db';

type StoreLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };


export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    return { kind: 'sqlite', path: path === '' ? DEFAULT_SQLITE_PATH : path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { kind: 'postgres', url };
  throw new UsageError(`unsupported catalog database URL ${JSON.stringify(redactDatabaseUrl(url))}`, {
    hint: 'use sqlite:PATH (default sqlite:./tagtrail.db), sqlite::memory:, or postgres://user:password@host:port/database (postgresql:// also works)',
  });
}

interface OpenStoreOptions {
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** SQLite only: the page cache, MiB (default 64, for search; see SqliteStoreOptions). */
  sqliteCacheMiB?: number;
}

/** Opens the catalog at `url`: sqlite:PATH, sqlite::memory: or postgres://…; migrates it unless told not to. */
export async function openStore(url: string = DEFAULT_STORE_URL, options: OpenStoreOptions = {}): Promise<Store> {
  const location = parseStoreUrl(url);
  let store: Store;
  if (location.kind === 'sqlite') {
    const { openSqliteStore } = await import('./sqlite.js');
    store = openSqliteStore(location.path, options.sqliteCacheMiB === undefined ? {} : { cacheMiB: options.sqliteCacheMiB });
  } else {
    const { openPostgresStore } = await import('./postgres.js');
    store = openPostgresStore(location.url);
  }
  if (options.migrate !== false) {
    try {
      await store.migrate();
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }
  return store;
}
