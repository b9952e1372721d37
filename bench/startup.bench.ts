// start-up: `tagtrail --version`, `--help` and `annotate --help` against `node -e 0`, measured in
// the same run. Goal: each at most 1.3× `node -e 0` (median of 15).
//
// Two timers, both median of 15 after 3 warm-up runs:
//  - our own, which runs the four commands in turn, round after round, so a change in the load
//    of a shared machine falls on all of them alike;
//  - hyperfine (-N, no shell), where it is installed; it also gives the CPU time (user + system),
//    which the load disturbs less than wall time.
// The ratios of the goal are those of our own timer, which runs everywhere.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, trackChild } from '../test/helpers/cleanup.js';
import { BIN } from '../test/helpers/cli.js';
import { fmt, loadLine, machineLoad, median, progress, writeResults } from './lib.js';

export const estimatedSeconds = 40;
/** Shows its own progress line on a terminal. */
export const reportsProgress = true;

const RUNS = 15;
const WARMUP = 3;
const GOAL = 1.3;

const COMMANDS: readonly { name: string; args: readonly string[] }[] = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'tagtrail --version', args: [BIN, '--version'] },
  { name: 'tagtrail --help', args: [BIN, '--help'] },
  { name: 'tagtrail annotate --help', args: [BIN, 'annotate', '--help'] },
];

/** Wall time of one run in ms; output goes nowhere, as with hyperfine. */
function timeOnce(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = trackChild(spawn(process.execPath, args as string[], { stdio: 'ignore' }));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`node ${args.join(' ')} exited with ${code}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

async function interleaved(): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = Object.fromEntries(COMMANDS.map((c) => [c.name, []]));
  for (let round = 0; round < WARMUP + RUNS; round++) {
    for (const c of COMMANDS) {
      const ms = await timeOnce(c.args);
      if (round >= WARMUP) times[c.name]?.push(ms);
    }
    progress('startup (own timer)', round + 1, WARMUP + RUNS);
  }
  return times;
}

interface HyperfineFigures {
  medianMs: number;
  cpuMsMean: number;
}

function hasHyperfine(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = trackChild(spawn('hyperfine', ['--version'], { stdio: 'ignore' }));
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

async function withHyperfine(work: string): Promise<Record<string, HyperfineFigures>> {
  const out = join(work, 'hyperfine.json');
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const commands = COMMANDS.map((c) => [process.execPath, ...c.args].map(quote).join(' '));
  if (process.stdout.isTTY) process.stdout.write('startup (hyperfine): running…\n');
  await new Promise<void>((resolve, reject) => {
    const child = trackChild(spawn('hyperfine', ['-N', '--style', 'none', '--warmup', String(WARMUP), '--runs', String(RUNS), '--export-json', out, ...commands], { stdio: 'ignore' }));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`hyperfine exited with ${code}`))));
  });
  const parsed = JSON.parse(await readFile(out, 'utf8')) as { results: { median: number; user: number; system: number }[] };
  return Object.fromEntries(COMMANDS.map((c, i) => {
    const r = parsed.results[i];
    return [c.name, { medianMs: (r?.median ?? NaN) * 1000, cpuMsMean: ((r?.user ?? NaN) + (r?.system ?? NaN)) * 1000 }];
  }));
}

export default async function bench(): Promise<void> {
  const work = await makeTempDir('bench-startup');
  try {
    const loadBefore = machineLoad();
    const own = await interleaved();
    const hyper = (await hasHyperfine()) ? await withHyperfine(work) : undefined;
    const loadAfter = machineLoad();

    const base = median(own['node -e 0'] ?? []);
    const hyperBase = hyper?.['node -e 0'];
    const rows = COMMANDS.map((c) => {
      const ms = median(own[c.name] ?? []);
      const h = hyper?.[c.name];
      return {
        command: c.name,
        medianMs: ms,
        ratio: ms / base,
        hyperfineMedianMs: h?.medianMs,
        hyperfineRatio: h && hyperBase ? h.medianMs / hyperBase.medianMs : undefined,
        cpuMsMean: h?.cpuMsMean,
        cpuRatio: h && hyperBase ? h.cpuMsMean / hyperBase.cpuMsMean : undefined,
      };
    });
    const goalRows = rows.slice(1);
    const met = goalRows.every((r) => r.ratio <= GOAL);
    const data = { goal: GOAL, runs: RUNS, warmup: WARMUP, load: { before: loadBefore, after: loadAfter }, rows, rawMs: own };
    const md = `
# start-up benchmark

Each command as a child process of node ${process.version}, output discarded; median of ${RUNS} runs after ${WARMUP} warm-up runs.
Our own timer runs the commands in turn, round after round; hyperfine ${hyper ? 'ran them one after the other (-N)' : 'is not installed here: its columns are empty'}.
Goal: each tagtrail command at most ${GOAL}× \`node -e 0\` (own timer): **${met ? 'met' : 'missed'}**.

| command | median ms | × node -e 0 | hyperfine median ms | × | CPU ms (user+sys, mean) | × |
|---|---|---|---|---|---|---|
${rows.map((r) => `| \`${r.command}\` | ${fmt(r.medianMs, 0)} | ${fmt(r.ratio, 2)} | ${r.hyperfineMedianMs === undefined ? '' : fmt(r.hyperfineMedianMs, 0)} | ${r.hyperfineRatio === undefined ? '' : fmt(r.hyperfineRatio, 2)} | ${r.cpuMsMean === undefined ? '' : fmt(r.cpuMsMean, 0)} | ${r.cpuRatio === undefined ? '' : fmt(r.cpuRatio, 2)} |`).join('\n')}

${loadLine(loadBefore, loadAfter)}
`;
    await writeResults('startup', data, md);
  } finally {
    await removeTempDir(work);
  }
}
