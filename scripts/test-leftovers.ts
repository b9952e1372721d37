// npm run test:leftovers: a failing test, and a test whose worker is killed, must leave nothing
// running. Runs test/processes.test.ts (a registry, `tagtrail serve` and PostgreSQL, then a forced
// failure) together with suites that start the same servers, once per failure mode, and counts
// the processes of that run still alive afterwards. Exit 0 only when the count is 0 both times.
//
// The run's processes are told apart from everyone else's on the machine without names: the run
// directory, which the helpers pass to every child they start, lies under a directory made here,
// so it is in the environment of each of them (and of the PostgreSQL processes, which inherit it).
// A process counts as left over when it did not exist before the run, still runs after it, and
// carries that directory, or is in the session of the test runner.
//
//   npm run test:leftovers [-- test files to run as well]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FORCED = 'test/processes.test.ts';
// Users of the registry, of `tagtrail serve` and of PostgreSQL.
const DEFAULT_SUITES = ['test/helpers/registry.test.ts', 'test/server/insights.e2e.test.ts', 'test/catalog/store.contract.test.ts'];

interface Proc {
  pid: number;
  start: string;
  state: string;
  sid: number;
  cmd: string;
}

function processes(): Proc[] {
  const list: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      list.push({ pid: Number(name), state: fields[0] as string, sid: Number(fields[3]), start: fields[19] as string, cmd });
    } catch {
      // gone meanwhile
    }
  }
  return list;
}

function environ(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return '';
  }
}

interface Outcome {
  mode: string;
  vitestExit: number | null;
  started: { pid: number; start?: string; carriesRunDir: boolean }[];
  leftovers: Proc[];
}

async function runOnce(mode: string, suites: string[]): Promise<Outcome> {
  const parent = mkdtempSync(join(tmpdir(), 'tagtrail-leftovers-'));
  const report = join(parent, 'report.json');
  const before = new Set(processes().map((p) => `${p.pid}:${p.start}`));
  const vitest = spawn(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', FORCED, ...suites], {
    cwd: ROOT,
    // Its own session, so whatever stays in it can be found by session ID too.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, TAGTRAIL_TEST_FORCE_FAIL: mode, TAGTRAIL_TEST_FORCE_FAIL_REPORT: report, TAGTRAIL_TEST_RUN_PARENT: parent },
  });
  const sid = vitest.pid as number;
  const vitestExit = await new Promise<number | null>((resolve) => vitest.once('exit', (code) => resolve(code)));
  // Nothing waits on purpose: whatever still runs now is what the run left behind.
  const leftovers = processes().filter((p) => p.state !== 'Z' && !before.has(`${p.pid}:${p.start}`) && p.pid !== process.pid && (p.sid === sid || environ(p.pid).includes(parent)));
  let started: Outcome['started'] = [];
  try {
    started = (JSON.parse(readFileSync(report, 'utf8')) as { processes: Outcome['started'] }).processes;
  } catch {
    // no report: the forced test did not get as far as starting its servers (reported below)
  }
  rmSync(parent, { recursive: true, force: true });
  return { mode, vitestExit, started, leftovers };
}

const extra = process.argv.slice(2);
const suites = extra.length > 0 ? extra : DEFAULT_SUITES;
let ok = true;
const lines: string[] = [];
for (const mode of ['1', 'kill']) {
  const o = await runOnce(mode, suites);
  const stillRunning = o.started.filter((s) => s.start !== undefined && processes().some((p) => p.pid === s.pid && p.start === s.start && p.state !== 'Z'));
  const problems: string[] = [];
  if (o.vitestExit === 0) problems.push('the run passed, so no test failed');
  if (o.started.length < 3) problems.push(`the forced test reported ${o.started.length} processes started, not 3 (registry, serve, postmaster)`);
  if (o.started.some((s) => !s.carriesRunDir)) problems.push('a started process does not carry the run directory, so leftovers could go uncounted');
  if (stillRunning.length > 0) problems.push(`still running from the forced test: ${stillRunning.map((s) => s.pid).join(', ')}`);
  if (o.leftovers.length > 0) problems.push(`left over:\n${o.leftovers.map((p) => `    ${p.pid} ${p.cmd}`).join('\n')}`);
  ok &&= problems.length === 0;
  lines.push(
    `TAGTRAIL_TEST_FORCE_FAIL=${mode}: vitest exit ${o.vitestExit}; the failing test started ${o.started.length} processes (${o.started.map((s) => s.pid).join(', ')}); ` +
      `processes of the run still running afterwards: ${o.leftovers.length}${problems.length ? `\n  ${problems.join('\n  ')}` : ''}`,
  );
}
process.stdout.write(`\ntest:leftovers (${[FORCED, ...suites].join(', ')})\n${lines.join('\n')}\n${ok ? 'OK: nothing left running' : 'FAILED'}\n`);
process.exitCode = ok ? 0 : 1;
