// Temp dirs and child processes that must not outlive the test worker. Each helper removes its
// own in stop(); this is the net under that, for a test that throws before reaching its stop()
// or a worker that exits while servers still run. The last net, for a worker that is killed, is
// the run's global teardown (test/global-setup.ts), which stops what process-record.ts recorded.
//
// Children are spawned with spawnGroup(): each leads its own process group, and is stopped as a
// group, so whatever it started itself goes with it.
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupMembers, recordGroup, recordGroupStopped, RUN_DIR_ENV } from './process-record.js';

const dirs = new Set<string>();
const children = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Synchronous on purpose: 'exit' handlers cannot wait for promises.
  process.on('exit', () => {
    for (const child of children) signal(child, 'SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A fresh directory under the OS temp dir, removed at worker exit unless removed before. */
export async function makeTempDir(prefix: string): Promise<string> {
  hookExit();
  const dir = await mkdtemp(join(tmpdir(), `tagtrail-${prefix}-`));
  dirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  dirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

/** Whether child was spawned by spawnGroup() and so leads its own process group. */
const groupLeaders = new WeakSet<ChildProcess>();

/** Signals child's process group when it leads one, else child alone. */
function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (groupLeaders.has(child) && child.pid !== undefined) process.kill(-child.pid, sig);
    else child.kill(sig);
  } catch {
    // already gone
  }
}

/**
 * spawn(), with the child leading a new process group (detached), recorded for the run's global
 * teardown and killed at worker exit. The run directory is passed on in the environment, so a
 * child that runs tests or helpers itself records into the same run.
 */
export function spawnGroup(file: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const runDir = process.env[RUN_DIR_ENV];
  const env = { ...(options.env ?? process.env), ...(runDir ? { [RUN_DIR_ENV]: runDir } : {}) };
  const child = spawn(file, args, { ...options, env, detached: true });
  groupLeaders.add(child);
  if (child.pid !== undefined) {
    const pid = child.pid;
    recordGroup(pid);
    child.once('exit', () => {
      // Done only when nothing it started lives on in its group; otherwise the teardown stops the rest.
      if (groupMembers(pid).length === 0) recordGroupStopped(pid);
    });
  }
  trackChild(child);
  return child;
}

/** Kill this child (its group, if it leads one) at worker exit if nobody stopped it before. */
export function trackChild<C extends ChildProcess>(child: C): C {
  hookExit();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * Stops a child and, when it leads one, its process group: SIGTERM, then SIGKILL after graceMs.
 * Resolves once the child has exited.
 */
export function killChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  const done = (): void => {
    children.delete(child);
    // Anything the child started in its group goes with it.
    if (groupLeaders.has(child)) signal(child, 'SIGKILL');
    if (child.pid !== undefined && groupLeaders.has(child)) recordGroupStopped(child.pid);
  };
  if (child.exitCode !== null || child.signalCode !== null) {
    done();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => signal(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
      resolve();
    });
    signal(child, 'SIGTERM');
  });
}
