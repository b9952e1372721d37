// Once per test run: a directory in which the helpers record every process group and PostgreSQL
// cluster they start (helpers/process-record.ts), and, at the end, the stop of whatever a failed
// or killed test left running. Only what was recorded is stopped, by its id.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_DIR_ENV, startTime, stopRecorded } from './helpers/process-record.js';

const PREFIX = 'tagtrail-test-run-';
// Where run directories go; scripts/test-leftovers.ts picks its own, to find the run's processes by it.
const PARENT = process.env.TAGTRAIL_TEST_RUN_PARENT || tmpdir();

/** Runs whose test runner is gone (killed before its teardown): stop what they recorded. */
async function stopAbandonedRuns(): Promise<void> {
  for (const name of readdirSync(PARENT)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(PARENT, name);
    let owner: string[];
    try {
      owner = readFileSync(join(dir, 'owner'), 'utf8').trim().split(' ');
    } catch {
      continue;
    }
    const [pid, start] = owner;
    if (startTime(Number(pid)) === start) continue;
    await stopRecorded(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function setup(): Promise<() => Promise<void>> {
  await stopAbandonedRuns();
  const dir = mkdtempSync(join(PARENT, PREFIX));
  writeFileSync(join(dir, 'owner'), `${process.pid} ${startTime(process.pid) ?? ''}\n`);
  // Workers are started after this, and inherit it.
  process.env[RUN_DIR_ENV] = dir;
  return async () => {
    const stopped = await stopRecorded(dir);
    if (stopped.groups.length + stopped.postmasters.length > 0) {
      process.stderr.write(`test teardown: stopped what tests left running: process groups ${stopped.groups.join(', ') || 'none'}; PostgreSQL postmasters ${stopped.postmasters.join(', ') || 'none'}\n`);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
