// Small shared pieces for the benchmarks: timing, percentiles and result files.
import { execFile } from 'node:child_process';
import { trackChild } from '../test/helpers/cleanup.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function median(xs: readonly number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

/** Runs fn n times and returns the wall times in ms. */
export async function timeRuns(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}

export function exec(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args as string[], { env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
    // Killed when the bench ends early (bench/run.ts ends through process.exit on a signal).
    trackChild(child);
  });
}

export async function writeResults(name: string, data: unknown, markdown: string): Promise<void> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const stamped = { measuredAt: new Date().toISOString(), node: process.version, ...(data as object) };
  await writeFile(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(stamped, null, 2)}\n`);
  await writeFile(join(RESULTS_DIR, `${name}.md`), `${markdown.trim()}\n`);
  process.stdout.write(`${markdown.trim()}\n`);
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The machine's load, to be written beside every figure: a figure taken under load above the core count is noisy. */
export function machineLoad(): { loadavg: [number, number, number]; cores: number } {
  const [a = 0, b = 0, c = 0] = loadavg();
  return { loadavg: [round2(a), round2(b), round2(c)], cores: availableParallelism() };
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** One line saying how busy the machine was, for the markdown of a result. */
export function loadLine(before: ReturnType<typeof machineLoad>, after: ReturnType<typeof machineLoad>): string {
  const busy = Math.max(before.loadavg[0], after.loadavg[0]) > before.cores;
  return `Load average (1, 5, 15 min) before: ${before.loadavg.join(', ')}; after: ${after.loadavg.join(', ')}; ${before.cores} cores.${busy ? ' **The 1-minute load was above the core count: the times are noisy, read the ratios as rough.**' : ''}`;
}

/** A progress line that rewrites itself, on a terminal only (logs of CI runs stay clean). */
export function progress(label: string, done: number, total: number): void {
  if (!process.stdout.isTTY) return;
  process.stdout.write(`\r\x1b[K${label}: ${done}/${total}`);
  if (done >= total) process.stdout.write('\n');
}
