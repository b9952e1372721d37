// Text from a registry or an annotation is shown, never obeyed: a terminal must not take a job
// name for an escape sequence (OSC 52 writes the clipboard, CSI moves the cursor) or a forged
// line. One owner for that rule: every command's output passes through inertOutput(), and values
// set into a line pass through inertText() first. C0 controls, DEL and C1 controls (U+0080 to
// U+009F, which some terminals obey in UTF-8) become visible escapes: \n, \r, \t, else \u00XX.
// The \u00XX form is also a JSON string escape, so filtering JSON output keeps it valid JSON with
// the same values (JSON.stringify already escapes C0, but leaves DEL and C1 raw).
import type { Output } from './runtime.js';

// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function visible(c: string): string {
  return NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A value set into a line of output: every control character escaped, line breaks and tabs included. */
export function inertText(value: string): string {
  return value.replace(ANY_CONTROL, visible);
}

/** A whole output: every control character escaped except the line breaks and tabs of its layout. */
export function inertOutput(text: string): string {
  return text.replace(CONTROL_BUT_LAYOUT, visible);
}

/** An output whose every write is made inert; `control` writes a sequence of our own as is. */
export function inertWriter(out: Output): Output {
  return {
    write: (chunk: string) => out.write(inertOutput(chunk)),
    control: (sequence: string) => out.write(sequence),
    ...(out.isTTY !== undefined ? { isTTY: out.isTTY } : {}),
  };
}

/** Writes a terminal control sequence of our own (a progress redraw), past the inert filter. */
export function writeControl(out: Output, sequence: string): void {
  if (out.control) out.control(sequence);
  else out.write(sequence);
}
