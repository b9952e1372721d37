// The programs the sync part runs in child processes, built from their TypeScript sources into
// plain JavaScript in the run's work directory: the children run without a TypeScript loader, so
// the memory measured is the CLI's own.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const SOURCES = fileURLToPath(new URL('./programs/', import.meta.url));

export interface ChildPrograms {
  /** For --import: a file: URL. */
  rssHook: string;
  /** A path, for `node PATH …`. */
  rawLoop: string;
}

export async function buildChildPrograms(work: string): Promise<ChildPrograms> {
  const outdir = join(work, 'programs');
  await build({
    entryPoints: [join(SOURCES, 'rss-hook.ts'), join(SOURCES, 'raw-loop.ts')],
    outdir,
    outExtension: { '.js': '.mjs' },
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  return { rssHook: pathToFileURL(join(outdir, 'rss-hook.mjs')).href, rawLoop: join(outdir, 'raw-loop.mjs') };
}
