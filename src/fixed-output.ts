// `tagtrail --version`, `--help` and `<command> --help` print the same text every time. The build
// records what the full command line (commander) prints for each of them, at the width it uses
// when standard output is not a terminal, into dist/fixed-output.json; bin/tagtrail.js prints
// that text without loading the command line parser, so these answers cost little more than
// starting node. Any other arguments, or a terminal of another width, take the full path.
// src/fixed-output.test.ts checks the recorded text against commander's.

/** What one invocation printed and returned. */
interface FixedOutput {
  stdout: string;
  stderr: string;
  code: number;
}

/** The recorded outputs, by argument list as JSON (unambiguous, whatever the arguments hold). */
export type FixedOutputs = Record<string, FixedOutput>;

/** Commander's help width when standard output is not a terminal (and for a terminal without a width). */
export const FIXED_WIDTH = 80;

/** The argument lists whose output is recorded, for a program with these command names. */
export function fixedForms(commands: readonly string[]): string[][] {
  return [['--version'], ['-V'], ['--help'], ['-h'], ...commands.flatMap((c) => [[c, '--help'], [c, '-h']])];
}

export function fixedKey(argv: readonly string[]): string {
  return JSON.stringify(argv);
}

/** The width commander wraps help to on this stream: its columns on a terminal, else 80. */
export function helpWidth(out: { isTTY?: boolean; columns?: number }): number {
  return (out.isTTY ? out.columns : undefined) ?? FIXED_WIDTH;
}

/** The recorded output for these arguments on this stream, or undefined when the full path must answer. */
export function fixedOutputFor(argv: readonly string[], out: { isTTY?: boolean; columns?: number }, recorded: FixedOutputs): FixedOutput | undefined {
  if (argv.length === 0 || argv.length > 2 || helpWidth(out) !== FIXED_WIDTH) return undefined;
  const key = fixedKey(argv);
  return Object.hasOwn(recorded, key) ? recorded[key] : undefined;
}
