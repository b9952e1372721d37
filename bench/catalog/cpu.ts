// CPU time of the processes beside a benchmark's own: the registry and the PostgreSQL server. On
// a machine of few cores they share the CPU with tagtrail, so a rate is bounded by the whole CPU
// an event or a tag costs, not by tagtrail's share alone. Read from /proc (Linux); elsewhere 0.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PostgresCluster } from '../../test/helpers/postgres.js';

/** Clock ticks per second of /proc's utime and stime: 100 on Linux. */
const TICK_MS = 10;

/** CPU ms (user + system) of process `root` and every process below it, ended ones it reaped included, now. 0 without a root or without /proc. */
export function treeCpuMs(root: number | undefined): number {
  if (root === undefined || !Number.isInteger(root) || root <= 1) return 0;
  const processes = new Map<number, { parent: number; ms: number }>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p));
  } catch {
    return 0;
  }
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
      // Ended meanwhile.
    }
  }
  const below = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = processes.get(p)?.parent, hops++) if (p === root) return true;
    return false;
  };
  let ms = 0;
  for (const [pid, p] of processes) if (below(pid)) ms += p.ms;
  return ms;
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

/** CPU ms of the registry and of the database server from now until the returned function is called. */
export function besideCpu(registryPid: number | undefined, databasePid: number | undefined): () => { registryMs: number; databaseMs: number } {
  const registry = treeCpuMs(registryPid);
  const database = treeCpuMs(databasePid);
  return () => ({ registryMs: treeCpuMs(registryPid) - registry, databaseMs: treeCpuMs(databasePid) - database });
}
