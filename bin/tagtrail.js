#!/usr/bin/env node
// The CLI is bundled into dist/ (npm ci and npm install build it; so does npm run build). Without
// it, say so and how to fix it: exit 1, like any failure that is not in the command's own input.
import { existsSync, readFileSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('error: tagtrail is not built: dist/cli.js is missing. Run `npm run build` (npm ci does it too) in the tagtrail checkout.\n');
  process.exit(1);
}
const argv = process.argv.slice(2);

// --version and --help print text the build recorded from the full command line, without loading
// it (src/fixed-output.ts); anything else, or a missing record, takes the full path.
const fixed = await fixedOutput(argv);
if (fixed !== undefined) {
  process.stdout.write(fixed.stdout);
  process.stderr.write(fixed.stderr);
  process.exitCode = fixed.code;
} else {
  const { main } = await import(entryFor(argv).href);
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

async function fixedOutput(args) {
  if (args.length === 0 || args.length > 2 || !args.some((a) => ['--version', '-V', '--help', '-h'].includes(a))) return undefined;
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(new URL('../dist/fixed-output.json', import.meta.url), 'utf8'));
  } catch {
    return undefined;
  }
  const { fixedOutputFor } = await import('../dist/fixed-output.js');
  return fixedOutputFor(args, process.stdout, recorded);
}

/**
 * annotate, which a CI job runs on every image it builds, has a build of its own: the same command
 * line in one file, which loads sooner than the chunks the commands share (scripts/build.mjs).
 * With the command's name first, commander runs nothing else. A dist/ built before that build
 * existed lacks it: the shared build runs annotate just the same.
 */
function entryFor(args) {
  if (args[0] !== 'annotate') return cli;
  const own = new URL('../dist/annotate/cli.js', import.meta.url);
  return existsSync(own) ? own : cli;
}
