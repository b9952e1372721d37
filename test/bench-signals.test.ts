// `npm run bench` stopped by a signal ends through its exit handlers (bench/run.ts): what the
// benchmark started must go with it, its child processes and its temporary directory alike. The
// run gets a temporary directory of its own (TMPDIR), which every process it starts inherits:
// after it ends, no process may still carry it, and nothing may be left in it.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { killChild, spawnGroup } from './helpers/cleanup.js';
import { BIN } from './helpers/cli.js';
import { useTempDir } from './helpers/fixtures.js';
import { ensureBuilt } from './server/serve-process.js';

const projectRoot = fileURLToPath(new URL('..', import.meta.url));

/** Pids of the processes whose environment holds `entry`, but `except`, and whose command line matches `started` when given. */
function carrying(entry: string, except: number, started?: (argv: string[]) => boolean): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === except || pid === process.pid) continue;
    let environ = '';
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue; // gone, or a zombie
    }
    if (!environ.split('\0').includes(entry)) continue;
    let argv: string[] = [];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!started || started(argv)) found.push(pid);
  }
  return found;
}

describe('a benchmark run ended by SIGTERM', () => {
  const dir = useTempDir('bench-signal');

  it('stops the child processes the benchmark started and removes its temporary directory', async () => {
    const tmp = dir();
    const entry = `TMPDIR=${tmp}`;
    // The start-up benchmark runs the built command.
    ensureBuilt();
    const bench = spawnGroup(process.execPath, ['--import', 'tsx', 'bench/run.ts', 'startup'], { cwd: projectRoot, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => killChild(bench));
    let output = '';
    bench.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    bench.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => bench.once('exit', () => resolve()));
    // Once the benchmark runs, and a command it times is running (it starts node after node) ...
    const timed = (argv: string[]): boolean => argv.includes(BIN) || argv[1] === '-e';
    for (;;) {
      if (bench.exitCode !== null) throw new Error(`the benchmark ended (exit code ${bench.exitCode}) before it started a process:\n${output}`);
      if (output.includes('== startup.bench.ts') && carrying(entry, bench.pid as number, timed).length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // ... the run alone gets the signal, as from `kill PID`.
    process.kill(bench.pid as number, 'SIGTERM');
    await exited;
    expect(bench.exitCode, output).toBe(143);
    expect(carrying(entry, bench.pid as number, timed)).toEqual([]);
    expect(readdirSync(tmp).filter((f) => f.startsWith('tagtrail-bench-'))).toEqual([]);
  });
});
