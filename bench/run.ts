// npm run bench: runs every bench/*.bench.ts in turn (or those named on the command line) and
// writes each one's figures to bench/results/. Figures are ratios against a baseline measured in
// the same run, since the machines are noisy.
//
// `npm run bench -- NAME` runs the benchmarks whose file name contains NAME; `NAME:PART,PART`
// runs only those parts of a benchmark made of parts (catalog:search), by setting
// BENCH_<NAME>_PARTS for it.
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2).map((arg) => {
  const [name = '', parts] = arg.split(':', 2);
  return { name, parts };
});
const files = (await readdir(here)).filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.includes(o.name)))).sort();
let failed = 0;
for (const f of files) {
  const parts = only.find((o) => f.includes(o.name) && o.parts !== undefined)?.parts;
  if (parts !== undefined) process.env[`BENCH_${f.replace(/\.bench\.ts$/, '').toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PARTS`] = parts;
  process.stdout.write(`\n== ${f}${parts !== undefined ? ` (${parts})` : ''}\n`);
  const started = Date.now();
  try {
    const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: () => Promise<void> };
    await mod.default();
    process.stdout.write(`== ${f} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    failed++;
    process.stdout.write(`== ${f} FAILED: ${err instanceof Error ? err.stack : String(err)}\n`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
