// Run as a program by open.test.ts: opens the catalog at argv[2] (not migrated, so PostgreSQL is
// never connected to), closes it, and prints which database packages this process loaded. pg and
// better-sqlite3 are CommonJS packages, so every load of them lands in the require cache.
import { createRequire } from 'node:module';
import { openStore } from '../../src/catalog/open.js';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: driver-loading.ts DATABASE_URL');
const store = await openStore(url, { migrate: false });
const dialect = store.dialect;
await store.close();
const loaded = Object.keys(createRequire(import.meta.url).cache);
const packages = ['pg', 'better-sqlite3'].filter((name) => loaded.some((file) => file.includes(`/node_modules/${name}/`)));
process.stdout.write(`${JSON.stringify({ dialect, packages })}\n`);
