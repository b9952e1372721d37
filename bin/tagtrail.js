#!/usr/bin/env node
// The CLI is bundled into dist/ (npm ci and npm install build it; so does npm run build). Without
// it, say so and how to fix it: exit 1, like any failure that is not in the command's own input.
//
// CommonJS (bin/package.json), so that `tagtrail annotate`, which a CI job runs on every image it
// builds, loads its own build (dist/annotate/cli.cjs, scripts/build.mjs) by require: one file, and
// node's ES module loader never starts, about 15 ms of CPU less than the shared chunks through it.
'use strict';
const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const dist = join(__dirname, '..', 'dist');
const cli = join(dist, 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('error: tagtrail is not built: dist/cli.js is missing. Run `npm run build` (npm ci does it too) in the tagtrail checkout.\n');
  process.exit(1);
}
const argv = process.argv.slice(2);

// --version and --help print text the build recorded from the full command line, without loading
// it (src/fixed-output.ts); anything else, or a missing record, takes the full path.
if (isFixedForm(argv)) {
  fixedOutput(argv).then((fixed) => {
    if (fixed === undefined) return runFullPath();
    process.stdout.write(fixed.stdout);
    process.stderr.write(fixed.stderr);
    process.exitCode = fixed.code;
  });
} else {
  runFullPath();
}

/**
 * annotate runs from its own build: the same command line in one file. With the command's name
 * first, commander runs nothing else. A dist/ built before that build existed lacks it: the shared
 * build runs annotate just the same.
 */
function runFullPath() {
  const own = join(dist, 'annotate', 'cli.cjs');
  if (argv[0] === 'annotate' && existsSync(own)) return run(require(own).main);
  return import(pathToFileURL(cli).href).then((m) => run(m.main));
}

function run(main) {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

function isFixedForm(args) {
  return args.length > 0 && args.length <= 2 && args.some((a) => ['--version', '-V', '--help', '-h'].includes(a));
}

async function fixedOutput(args) {
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(join(dist, 'fixed-output.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const { fixedOutputFor } = await import(pathToFileURL(join(dist, 'fixed-output.js')).href);
  return fixedOutputFor(args, process.stdout, recorded);
}
