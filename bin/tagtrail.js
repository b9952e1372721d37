#!/usr/bin/env node
// The CLI is bundled into dist/ (npm ci and npm install build it; so does npm run build). Without
// it, say so and how to fix it: exit 1, like any failure that is not in the command's own input.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('error: tagtrail is not built: dist/cli.js is missing. Run `npm run build` (npm ci does it too) in the tagtrail checkout.\n');
  process.exit(1);
}
const { main } = await import(cli.href);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
