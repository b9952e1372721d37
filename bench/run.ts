// npm run bench: runs every bench/*.bench.ts in turn (or those named on the command line) and
// writes each one's figures to bench/results/. Figures are ratios against a baseline measured in
// the same run, since the machines are noisy.
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here)).filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
let failed = 0;
for (const f of files) {
  process.stdout.write(`\n== ${f}\n`);
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
