// Every process a test starts is stopped, even when the test fails: a registry, `tagtrail serve`
// and a PostgreSQL cluster, each stopped with its whole process group (or, for PostgreSQL, its
// postmaster), and recorded for the run's teardown.
//
// TAGTRAIL_TEST_FORCE_FAIL makes this test fail once everything runs, for scripts/test-leftovers.ts:
//   1     it throws; its onTestFinished hooks must stop what it started;
//   kill  it kills its own worker, so no hook runs; the run's global teardown must stop it all.
// TAGTRAIL_TEST_FORCE_FAIL_REPORT names a file for the pids it started, which the script checks.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { useTempDir } from './helpers/fixtures.js';
import { startPostgres } from './helpers/postgres.js';
import { groupMembers, RUN_DIR_ENV, startTime } from './helpers/process-record.js';
import { startRegistry } from './helpers/registry.js';
import { ensureBuilt, startServe } from './server/serve-process.js';

const work = useTempDir('processes');

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function environOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return '';
  }
}

function failIfForced(started: { groups: number[]; postmasters: number[] }): void {
  const mode = process.env.TAGTRAIL_TEST_FORCE_FAIL;
  if (!mode) return;
  const report = process.env.TAGTRAIL_TEST_FORCE_FAIL_REPORT;
  if (report) {
    const all = [...started.groups, ...started.postmasters];
    const runDir = process.env[RUN_DIR_ENV] ?? '';
    writeFileSync(
      report,
      JSON.stringify({
        mode,
        processes: all.map((pid) => ({ pid, start: startTime(pid), carriesRunDir: runDir !== '' && environOf(pid).includes(`${RUN_DIR_ENV}=${runDir}`) })),
      }),
    );
  }
  if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
  throw new Error(`failing on purpose (TAGTRAIL_TEST_FORCE_FAIL=${mode}) with a registry, tagtrail serve and PostgreSQL running`);
}

describe('processes a test starts', () => {
  it('run in their own process groups, are recorded for the teardown, and stop with everything they started', async () => {
    ensureBuilt();
    const runDir = process.env[RUN_DIR_ENV];
    expect(runDir, 'the global setup passes the run directory to the workers').toBeTruthy();

    const registry = await startRegistry();
    onTestFinished(() => registry.stop());
    const cluster = await startPostgres();
    onTestFinished(() => cluster.stop());
    const serve = await startServe(['--db', `sqlite:${join(work(), 'catalog.db')}`, '--listen', '127.0.0.1:0', '--registry', registry.url, '--reconcile-interval', '0'], {});
    onTestFinished(async () => {
      await serve.stop();
    });
    const postmaster = postmasterPid(cluster.dataDir);
    const groups = [registry.pid, serve.child.pid as number];

    for (const pgid of groups) expect(groupMembers(pgid), `process group ${pgid}`).toContain(pgid);
    const record = readFileSync(join(runDir as string, 'processes'), 'utf8');
    for (const pid of groups) expect(record).toContain(`"kind":"group","pid":${pid},`);
    expect(record).toContain(JSON.stringify({ kind: 'postgres', data: cluster.dataDir }));

    failIfForced({ groups, postmasters: [postmaster] });

    await serve.stop();
    await registry.stop();
    await cluster.stop();
    for (const pgid of groups) expect(groupMembers(pgid), `process group ${pgid}`).toEqual([]);
    expect(startTime(postmaster), 'the postmaster').toBeUndefined();
    const after = readFileSync(join(runDir as string, 'processes'), 'utf8');
    for (const pid of groups) expect(after).toContain(JSON.stringify({ kind: 'group-stopped', pid }));
  });
});
