// CPU time of the processes beside a benchmark's own: the registry and the PostgreSQL server. On
// a machine of few cores they share the CPU with tagtrail, so a rate is bounded by the whole CPU
// an event or a tag costs, not by tagtrail's share alone. Read from /proc (Linux); elsewhere 0.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fmt } from '../lib.js';
import type { PostgresCluster } from '../../test/helpers/postgres.js';

/** Clock ticks per second of /proc's utime and stime: 100 on Linux. */
const TICK_MS = 10;

/** CPU ms (user + system) of process `root` and every process below it, ended ones it reaped included, now. 0 without a root or without /proc. */
export function treeCpuMs(root: number | undefined): number {
  if (root === undefined || !Number.isInteger(root) || root <= 1) return 0;
  // A process reaped during the scan is either missed (its parent read before, itself gone after)
  // or counted twice (itself read before, its parent's cutime after): a backend ends with its
  // connection, so at the end of a run this is likely. Scan again until no process vanished.
  let ms = 0;
  for (let attempt = 0; attempt < 5; attempt++) {
    const scan = scanProcesses();
    if (!scan) return 0;
    const below = (pid: number): boolean => {
      for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = scan.processes.get(p)?.parent, hops++) if (p === root) return true;
      return false;
    };
    const tree = [...scan.processes.keys()].filter(below);
    ms = tree.reduce((sum, pid) => sum + (scan.processes.get(pid)?.ms ?? 0), 0);
    if (scan.unread === 0 && tree.every((pid) => existsSync(`/proc/${pid}`))) break;
  }
  return ms;
}

/** Every process's parent and CPU ms, and how many listed processes could not be read (ended meanwhile); undefined without /proc. */
function scanProcesses(): { processes: Map<number, { parent: number; ms: number }>; unread: number } | undefined {
  const processes = new Map<number, { parent: number; ms: number }>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p));
  } catch {
    return undefined;
  }
  let unread = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name, which may hold spaces and parentheses: state, ppid, …, utime
      // and stime (12th, 13th), then cutime and cstime: the children it reaped. A PostgreSQL backend
      // ends with its connection, and its time then lives on in the postmaster's cutime.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      processes.set(Number(pid), { parent: Number(fields[1]), ms: ticks * TICK_MS });
    } catch {
      unread++;
    }
  }
  return { processes, unread };
}

/** The cluster's postmaster, whose children are its backends (the first line of postmaster.pid); undefined if it cannot be read. */
export function postmasterPid(cluster: Pick<PostgresCluster, 'dataDir'> | undefined): number | undefined {
  if (!cluster) return undefined;
  try {
    const pid = Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU ms from now until the returned function is called: of this process (every thread; while a
 * child process runs, mostly the counting proxy its requests pass through), of the registry and of
 * the database server. databaseMs is undefined without a database pid (postmaster.pid not read),
 * so a table says so rather than print 0.
 */
export function cpuSpent(registryPid: number | undefined, databasePid: number | undefined): () => { processMs: number; registryMs: number; databaseMs: number | undefined } {
  const own = process.cpuUsage();
  const registry = treeCpuMs(registryPid);
  const database = treeCpuMs(databasePid);
  return () => {
    const used = process.cpuUsage(own);
    return {
      processMs: (used.user + used.system) / 1000,
      registryMs: treeCpuMs(registryPid) - registry,
      databaseMs: databasePid === undefined ? undefined : treeCpuMs(databasePid) - database,
    };
  };
}

/**
 * Two table cells: a run's total CPU (ms per event or per tag, every process counted) and the
 * rate this machine's cores allow at that total. '—' for a total missing a part (a server's CPU
 * not read).
 */
export function totalAndCeilingCells(total: number | undefined): string {
  return total === undefined ? '**—** | —' : `**${fmt(total, 2)}** | ${fmt((availableParallelism() * 1000) / total, 0)}`;
}
