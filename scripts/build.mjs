// Bundles the CLI into dist/ so start-up reads a handful of files instead of hundreds of modules,
// then records the fixed answers (--version, --help, <command> --help) the bin prints without
// loading the command line parser (src/fixed-output.ts).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

// Chunk names carry content hashes: start from an empty dist/ so no stale chunk stays behind.
rmSync('dist', { recursive: true, force: true });

// commander, which every command loads, goes into the bundle: one ESM chunk loads faster than its
// CommonJS files through node's CommonJS loader. The other packages stay in node_modules; each is
// loaded only by the command that needs it.
const { dependencies } = JSON.parse(readFileSync('package.json', 'utf8'));
const bundled = new Set(['commander']);
const common = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: Object.keys(dependencies).filter((name) => !bundled.has(name)),
  // Bundled CommonJS code calls require() for node's own modules.
  banner: { js: "import { createRequire as __tagtrailCreateRequire } from 'node:module'; const require = __tagtrailCreateRequire(import.meta.url);" },
  sourcemap: true,
  logLevel: 'warning',
};

await build({
  ...common,
  // The SQLite connection threads' code is its own entry: a worker loads it by file (src/catalog/sqlite-thread.ts).
  entryPoints: { cli: 'src/cli.ts', 'fixed-output': 'src/fixed-output.ts', 'sqlite-worker': 'src/catalog/sqlite-worker.ts' },
  outdir: 'dist',
});

// annotate's own build (src/cli-annotate.ts), which bin/tagtrail.js runs for `tagtrail annotate`:
// one file, no chunks, so node loads one module before the first request instead of a dozen (the
// ESM loader resolves, reads and links each in turns of the event loop). The other commands are
// left out: their packages would be loaded with the file. bin/tagtrail.js never sends them here.
const COMMAND = /^\.\/commands\/[a-z-]+\.js$/;
const annotateOnly = {
  name: 'annotate-only',
  setup(b) {
    b.onResolve({ filter: COMMAND }, (args) =>
      args.importer.endsWith('/src/cli.ts') && args.path !== './commands/annotate.js' ? { path: args.path, namespace: 'not-in-annotate-build' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'not-in-annotate-build' }, (args) => ({
      contents: `export async function run() { throw new Error(${JSON.stringify(`${args.path} is not in the build of annotate (dist/annotate/cli.cjs): run it through bin/tagtrail.js`)}); }`,
      loader: 'js',
    }));
  },
};
await build({
  ...common,
  // CommonJS, which bin/tagtrail.js loads by require: no ES module loader to start. Its packages
  // (undici, for --report) stay outside and load on first use.
  format: 'cjs',
  splitting: false,
  banner: {},
  entryPoints: { cli: 'src/cli-annotate.ts' },
  outdir: 'dist/annotate',
  outExtension: { '.js': '.cjs' },
  plugins: [annotateOnly],
});

// In a child whose standard output is a pipe, so commander wraps help as it does for any pipe,
// whatever terminal the build runs in.
const record = `
const { main, buildProgram } = await import('./dist/cli.js');
const { fixedForms, fixedKey } = await import('./dist/fixed-output.js');
const capture = () => {
  const out = { stdout: '', stderr: '' };
  const rt = {
    env: {}, cwd: process.cwd(), now: () => new Date(0),
    stdout: { write: (s) => { out.stdout += s; return true; } },
    stderr: { write: (s) => { out.stderr += s; return true; } },
    readStdin: async () => '', fetch: () => Promise.reject(new Error('no network while recording help')),
  };
  return { out, rt };
};
const commands = buildProgram(capture().rt, () => {}).commands.map((c) => c.name());
const recorded = {};
for (const argv of fixedForms(commands)) {
  const { out, rt } = capture();
  const code = await main(argv, rt);
  recorded[fixedKey(argv)] = { ...out, code };
}
process.stdout.write(JSON.stringify(recorded, null, 1));
`;
const json = execFileSync(process.execPath, ['--input-type=module', '-e', record], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
writeFileSync('dist/fixed-output.json', `${json}\n`);
