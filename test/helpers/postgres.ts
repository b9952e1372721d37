// A throw-away PostgreSQL cluster for tests: a fresh temp dir, a free loopback port, trust auth,
// the unix socket inside the temp dir; removed completely on stop(). As root it runs as the
// `postgres` user (initdb refuses root). Missing binaries fail loudly: the PostgreSQL half of a
// suite must never be skipped quietly.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from './ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { recordPostgres, recordPostgresStopped } from './process-record.js';

export interface PostgresCluster {
  url: string;
  /** The cluster's data directory; its postmaster.pid names the running postmaster. */
  dataDir: string;
  stop(): Promise<void>;
}

/** Creates another database on a running cluster and returns its URL (names are test-chosen identifiers). */
export async function createDatabase(cluster: Pick<PostgresCluster, 'url'>, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return cluster.url.replace(/\/[^/]+$/, `/${name}`);
}

const FALLBACK_BIN = '/usr/lib/postgresql/15/bin';
const DATABASE = 'tagtrail_test';

function binDir(): string {
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config on PATH
  }
  candidates.push(FALLBACK_BIN);
  const found = candidates.find((d) => d && existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
  if (!found) {
    throw new Error(
      `PostgreSQL server binaries not found (looked for initdb and pg_ctl in ${candidates.join(', ')}); ` +
        'install PostgreSQL 15 (Debian: apt-get install postgresql-15) to run the PostgreSQL catalog tests',
    );
  }
  return found;
}

function postgresIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'tagtrail-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  if (asRoot) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  const exec = (tool: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  let started = false;
  const stop = async () => {
    if (started) {
      started = false;
      try {
        exec('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
      } catch {
        // already down
      }
    }
    rmSync(dir, { recursive: true, force: true });
    recordPostgresStopped(data);
  };
  const onExit = () => {
    if (started) {
      try {
        exec('pg_ctl', ['stop', '-D', data, '-m', 'immediate']);
      } catch {
        // best effort
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    exec('initdb', ['-D', data, '--auth=trust', '-U', 'postgres', '-E', 'UTF8', '--no-locale', '--no-sync']);
    const port = await freePort();
    // Recorded before it starts: pg_ctl detaches the postmaster, so the run's teardown finds it by its data dir.
    recordPostgres(data);
    const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    exec('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', options]);
    started = true;
    const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await admin.end();
    }
    return {
      url: `postgres://postgres@127.0.0.1:${port}/${DATABASE}`,
      dataDir: data,
      stop: async () => {
        process.removeListener('exit', onExit);
        await stop();
      },
    };
  } catch (err) {
    let detail = '';
    try {
      detail = readFileSync(log, 'utf8').slice(-2000);
    } catch {
      // no log yet
    }
    const stderr = (err as { stderr?: string }).stderr ?? '';
    process.removeListener('exit', onExit);
    await stop();
    throw new Error(`cannot start a test PostgreSQL cluster: ${(err as Error).message}\n${stderr}\n${detail}`, { cause: err });
  }
}
