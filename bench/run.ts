// npm run bench: runs every bench/*.bench.ts in turn (or those named on the command line) and
// writes each one's figures to bench/results/. Figures are ratios against a baseline measured in
// the same run, since the machines are noisy.
//
// `npm run bench -- NAME` runs the benchmarks whose file name contains NAME; `NAME:PART,PART`
// runs only those parts of a benchmark made of parts (catalog:search), by setting
// BENCH_<NAME>_PARTS for it.
//
// Before it starts, a run says how long it will take: each benchmark's duration in its last full
// run (bench/results/durations.json), else the estimate the benchmark exports (estimatedSeconds).
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The variable naming a benchmark's parts: catalog.bench.ts → BENCH_CATALOG_PARTS. */
const partsVariable = (file: string): string => `BENCH_${file.replace(/\.bench\.ts$/, '').toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PARTS`;
const only = process.argv.slice(2).map((arg) => {
  const [name = '', parts] = arg.split(':', 2);
  return { name, parts };
});
const files = (await readdir(here)).filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.includes(o.name)))).sort();
/** reportsProgress: the benchmark shows its own progress line (lib.ts progress()); others get a heartbeat. */
type BenchModule = { default: () => Promise<void>; estimatedSeconds?: number; reportsProgress?: boolean };
// Sizes set through BENCH_* variables make a run shorter than the next full one: not a fair estimate.
const sized = Object.keys(process.env).some((k) => k.startsWith('BENCH_'));
const DURATIONS = join(here, 'results', 'durations.json');
const durations = JSON.parse(await readFile(DURATIONS, 'utf8').catch(() => '{}')) as Record<string, number>;
// Set before the modules are imported: a benchmark reads its parts when it loads (catalog/settings.ts).
for (const f of files) {
  const parts = only.find((o) => f.includes(o.name) && o.parts !== undefined)?.parts;
  if (parts !== undefined) process.env[partsVariable(f)] = parts;
}
const modules = new Map<string, BenchModule>();
let expected = 0;
let unknown: string[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as BenchModule;
  modules.set(f, mod);
  const partial = only.some((o) => f.includes(o.name) && o.parts !== undefined);
  const seconds = partial ? mod.estimatedSeconds : (durations[f] ?? mod.estimatedSeconds);
  if (seconds === undefined) unknown = [...unknown, f];
  else expected += seconds;
}
const known = files.length > unknown.length ? `about ${formatDuration(expected)}${unknown.length > 0 ? ` plus ${unknown.join(', ')} (no estimate)` : ''}` : 'no estimate';
process.stdout.write(`Running ${files.length} benchmark${files.length === 1 ? '' : 's'} (${files.join(', ')}): ${known}; environment variables can make them smaller (bench/results/README.md).\n`);

// A signal's default action ends the process without its 'exit' handlers, which are what stop the
// registries, PostgreSQL clusters, child processes and temporary directories the benchmarks start
// (test/helpers/cleanup.ts, postgres.ts). Ending through process.exit() runs them.
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.once(sig, () => {
    process.stdout.write(`\n== ${sig}: stopping what the benchmarks started\n`);
    process.exit(code);
  });
}

let failed = 0;
for (const f of files) {
  const parts = only.find((o) => f.includes(o.name) && o.parts !== undefined)?.parts;
  process.stdout.write(`\n== ${f}${parts !== undefined ? ` (${parts})` : ''}\n`);
  const started = Date.now();
  const mod = modules.get(f);
  // On a terminal, a part without a progress line of its own says every 15 s that it still runs.
  const expectedSeconds = durations[f] ?? mod?.estimatedSeconds;
  const heartbeat = process.stdout.isTTY && !mod?.reportsProgress
    ? setInterval(() => process.stdout.write(`== ${f}: ${Math.round((Date.now() - started) / 1000)} s so far${expectedSeconds !== undefined ? ` (about ${formatDuration(expectedSeconds)} in all)` : ''}\n`), 15_000)
    : undefined;
  try {
    await mod?.default();
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`== ${f} done in ${seconds.toFixed(1)} s\n`);
    // Only a full run at the default sizes is a fair estimate for the next one.
    if (parts === undefined && !sized) {
      durations[f] = Math.round(seconds);
      await writeFile(DURATIONS, `${JSON.stringify(durations, null, 2)}\n`);
    }
  } catch (err) {
    failed++;
    process.stdout.write(`== ${f} FAILED: ${err instanceof Error ? err.stack : String(err)}\n`);
  } finally {
    clearInterval(heartbeat);
  }
}
process.exitCode = failed > 0 ? 1 : 0;

function formatDuration(seconds: number): string {
  return seconds < 120 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}
