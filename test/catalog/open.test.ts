// openStore loads only the chosen dialect's driver: a SQLite catalog never loads pg, and a
// PostgreSQL one never loads the native better-sqlite3. Checked in a fresh process, since this
// test process has loaded both.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/exec.js';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
const program = fileURLToPath(new URL('./driver-loading.ts', import.meta.url));

async function driversLoadedFor(url: string): Promise<{ dialect: string; packages: string[] }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', program, url], { cwd: projectRoot });
  return JSON.parse(stdout.toString('utf8')) as { dialect: string; packages: string[] };
}

describe('openStore', () => {
  it('loads better-sqlite3 and not pg for a SQLite catalog', async () => {
    expect(await driversLoadedFor('sqlite::memory:')).toEqual({ dialect: 'sqlite', packages: ['better-sqlite3'] });
  });

  it('loads pg and not better-sqlite3 for a PostgreSQL catalog', async () => {
    // Not migrated: the pool connects lazily, so no server is needed at this address.
    expect(await driversLoadedFor('postgres://tagtrail:secret@127.0.0.1:9/catalog')).toEqual({ dialect: 'postgres', packages: ['pg'] });
  });
});
