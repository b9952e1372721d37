// The resolve hook of record-modules.mjs; runs on the loader's own thread.
import { appendFileSync } from 'node:fs';

let out = '';

export function initialize(data) {
  out = data.out;
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(out, `esm ${resolved.url}\n`);
  return resolved;
}
