// The layering rule: src/oci/ is the OCI client and knows no CI system. It imports nothing from
// src/gitlab/ (nor from the build-details module above both).
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const ociDir = path.join(root, 'src/oci');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** Every module specifier of a file: static imports and exports, and dynamic import(). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

describe('src/oci imports', () => {
  it('finds the imports it checks', () => {
    expect(specifiers(path.join(ociDir, 'inspect.ts'))).toContain('./referrers.js');
  });

  it('imports nothing from src/gitlab or src/details', () => {
    const offending: string[] = [];
    for (const file of tsFiles(ociDir)) {
      for (const spec of specifiers(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(root, path.resolve(path.dirname(file), spec));
        if (target.startsWith('src/gitlab') || target.startsWith('src/details')) offending.push(`${path.relative(root, file)} → ${spec}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
