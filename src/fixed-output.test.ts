// The answers bin/tagtrail.js prints without loading the command line parser are, byte for byte,
// what the full command line prints for the same arguments; other widths and arguments take the
// full path. Needs the build (npm test builds first).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runBin } from '../test/helpers/cli.js';
import { buildProgram, main } from './cli.js';
import { FIXED_WIDTH, fixedForms, fixedKey, fixedOutputFor, helpWidth, type FixedOutputs } from './fixed-output.js';
import type { Runtime } from './runtime.js';

function capture(): { rt: Runtime; out: { stdout: string; stderr: string } } {
  const out = { stdout: '', stderr: '' };
  const rt: Runtime = {
    env: {},
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
    readStdin: async () => '',
    fetch: () => Promise.reject(new Error('help must not touch the network')),
    now: () => new Date(0),
    cwd: '/',
  };
  return { rt, out };
}

const recorded = JSON.parse(readFileSync(new URL('../dist/fixed-output.json', import.meta.url), 'utf8')) as FixedOutputs;
const commands = buildProgram(capture().rt, () => {}).commands.map((c) => c.name());
const forms = fixedForms(commands);

describe('fixed answers (--version, --help, <command> --help)', () => {
  it('are recorded for every command of the program, and only for those forms', () => {
    expect(commands).toEqual(expect.arrayContaining(['annotate', 'attach', 'show', 'flags', 'sync', 'serve']));
    expect(Object.keys(recorded).sort()).toEqual(forms.map(fixedKey).sort());
  });

  it.each(forms.map((f) => [f.join(' '), f] as const))('`%s` recorded equals what commander prints now', async (_name, argv) => {
    // Commander wraps to the width of a terminal; this worker's output is not one.
    expect(helpWidth(process.stdout), 'the test must run with standard output not a terminal').toBe(FIXED_WIDTH);
    const { rt, out } = capture();
    const code = await main(argv, rt);
    expect(recorded[fixedKey(argv)]).toEqual({ ...out, code });
    expect(out.stdout.length).toBeGreaterThan(0);
  });

  it.each([['--version'], ['--help'], ['annotate', '--help'], ['serve', '-h']].map((f) => [f.join(' '), f] as const))('the bin prints the recorded answer to `%s`', async (_name, argv) => {
    const r = await runBin(argv);
    expect(recorded[fixedKey(argv)]).toBeDefined();
    expect({ stdout: r.stdout, stderr: r.stderr, code: r.code }).toEqual(recorded[fixedKey(argv)]);
  });

  it('leaves other arguments and other terminal widths to the full path', () => {
    const pipe = { isTTY: false };
    expect(fixedOutputFor(['--version'], pipe, recorded)?.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(fixedOutputFor(['--version'], { isTTY: true, columns: 80 }, recorded)).toBeDefined();
    expect(fixedOutputFor(['--version'], { isTTY: true, columns: 120 }, recorded)).toBeUndefined();
    expect(fixedOutputFor(['annotate', '--help'], { isTTY: true, columns: 60 }, recorded)).toBeUndefined();
    expect(fixedOutputFor([], pipe, recorded)).toBeUndefined();
    expect(fixedOutputFor(['annotate', '--help', '--debug'], pipe, recorded)).toBeUndefined();
    expect(fixedOutputFor(['annotate --help'], pipe, recorded)).toBeUndefined();
    expect(fixedOutputFor(['help', 'annotate'], pipe, recorded)).toBeUndefined();
    expect(fixedOutputFor(['nope', '--help'], pipe, recorded)).toBeUndefined();
  });
});
