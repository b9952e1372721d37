// Loaded with `node --import` (or NODE_OPTIONS=--import=…): writes every module the process loads
// to the file named by RECORD_MODULES_TO, one a line: "esm <url>" as the ESM loader resolves it,
// and at exit "cjs <path>" for each CommonJS module in require's cache (the dependencies of a
// CommonJS package are loaded by require, which the ESM hooks do not see).
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.RECORD_MODULES_TO;
if (out) {
  register(new URL('./record-modules-hooks.mjs', import.meta.url), { data: { out } });
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () => {
    appendFileSync(out, Object.keys(cache).map((file) => `cjs ${file}\n`).join(''));
  });
}
