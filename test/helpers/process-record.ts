// The record of what a test run started, so that the run's global teardown can stop whatever a
// failed or killed test left behind: by the process IDs written here, never by program name.
//
// globalSetup creates a directory per run and passes it in TAGTRAIL_TEST_RUN_DIR. Each child a
// helper spawns leads its own process group; its pid and start time (from /proc, so a pid the
// kernel gave to another process since is not mistaken for it) are appended to `processes`, and
// a line saying it stopped once it has. A PostgreSQL cluster is recorded by its data directory:
// pg_ctl detaches the postmaster, whose pid is in postmaster.pid.
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const RUN_DIR_ENV = 'TAGTRAIL_TEST_RUN_DIR';
const RECORD = 'processes';

type Entry = { kind: 'group'; pid: number; start: string } | { kind: 'group-stopped'; pid: number } | { kind: 'postgres'; data: string } | { kind: 'postgres-stopped'; data: string };

/** state, process group and start time from /proc/PID/stat; undefined when there is no such process. */
function stat(pid: number): { state: string; pgrp: number; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] as string, pgrp: Number(fields[2]), start: fields[19] as string };
  } catch {
    return undefined;
  }
}

/**
 * Field 22 of /proc/PID/stat (start time in clock ticks since boot); undefined when the process
 * is gone. A zombie counts as gone: it runs nothing, and where no init reaps orphans it stays.
 */
export function startTime(pid: number): string | undefined {
  const s = stat(pid);
  return s && s.state !== 'Z' ? s.start : undefined;
}

function processGroup(pid: number): number | undefined {
  const s = stat(pid);
  return s && s.state !== 'Z' ? s.pgrp : undefined;
}

/** Pids of the live (not zombie) processes in process group pgid. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (processGroup(Number(name)) === pgid) members.push(Number(name));
  }
  return members;
}

function append(entry: Entry): void {
  const dir = process.env[RUN_DIR_ENV];
  // Outside a test run (benchmarks, scripts) nothing is recorded; the helpers still stop their own.
  if (!dir || !existsSync(dir)) return;
  appendFileSync(join(dir, RECORD), `${JSON.stringify(entry)}\n`);
}

export function recordGroup(pid: number): void {
  const start = startTime(pid);
  if (start) append({ kind: 'group', pid, start });
}

export function recordGroupStopped(pid: number): void {
  append({ kind: 'group-stopped', pid });
}

export function recordPostgres(data: string): void {
  append({ kind: 'postgres', data });
}

export function recordPostgresStopped(data: string): void {
  append({ kind: 'postgres-stopped', data });
}

function readRecord(runDir: string): Entry[] {
  let text = '';
  try {
    text = readFileSync(join(runDir, RECORD), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Entry);
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone
  }
}

/**
 * A recorded group is still ours when its leader is the process recorded (same start time), or
 * the leader has exited but members remain (the kernel does not hand out a pid that is still some
 * group's ID).
 */
function stillOurs(pid: number, start: string): boolean {
  const leaderStart = startTime(pid);
  if (leaderStart !== undefined) return leaderStart === start && processGroup(pid) === pid;
  return groupMembers(pid).length > 0;
}

async function waitGone(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !check();
}

function postmasterOf(data: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!(pid > 0)) return undefined;
    // The pid file outlives a crashed postmaster: only a live process started on this data dir counts.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes(data) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export interface StopReport {
  /** Process groups that were still running and were stopped. */
  groups: number[];
  /** Postmaster pids that were still running and were stopped. */
  postmasters: number[];
}

/** Stops every recorded process group and PostgreSQL cluster that has not been stopped already. */
export async function stopRecorded(runDir: string): Promise<StopReport> {
  const entries = readRecord(runDir);
  const stoppedGroups = new Set(entries.flatMap((e) => (e.kind === 'group-stopped' ? [e.pid] : [])));
  const stoppedClusters = new Set(entries.flatMap((e) => (e.kind === 'postgres-stopped' ? [e.data] : [])));
  const groups = entries.flatMap((e) => (e.kind === 'group' && !stoppedGroups.has(e.pid) && stillOurs(e.pid, e.start) ? [e.pid] : []));
  const clusters = entries.flatMap((e) => (e.kind === 'postgres' && !stoppedClusters.has(e.data) ? [e.data] : []));
  const postmasters = clusters.flatMap((data) => {
    const pid = postmasterOf(data);
    return pid ? [pid] : [];
  });

  for (const pgid of groups) signalGroup(pgid, 'SIGTERM');
  // SIGQUIT: PostgreSQL's immediate shutdown; the postmaster ends its backends itself.
  for (const pid of postmasters) process.kill(pid, 'SIGQUIT');
  await waitGone(() => groups.some((g) => groupMembers(g).length > 0) || postmasters.some((p) => startTime(p) !== undefined), 5000);
  for (const pgid of groups) signalGroup(pgid, 'SIGKILL');
  // pg_ctl runs the postmaster in its own session, so its group holds its backends too.
  for (const pid of postmasters) {
    if (startTime(pid) === undefined) continue;
    if (processGroup(pid) === pid) signalGroup(pid, 'SIGKILL');
    else process.kill(pid, 'SIGKILL');
  }
  await waitGone(() => groups.some((g) => groupMembers(g).length > 0), 2000);
  for (const data of clusters) rmSync(dirname(data), { recursive: true, force: true });
  return { groups, postmasters };
}
