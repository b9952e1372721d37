// Every export under src/ is imported by some other file (scripts/unused-exports.ts, also run by
// `npm run lint`); and the check finds one that is not.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unusedExports } from '../../scripts/unused-exports.js';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await removeTempDir(d);
});

describe('unused exports', () => {
  it('finds an export no other file imports, and counts named, namespace and re-exported imports', async () => {
    const root = await makeTempDir('unused-exports');
    dirs.push(root);
    mkdirSync(path.join(root, 'src'), { recursive: true });
    mkdirSync(path.join(root, 'test'), { recursive: true });
    writeFileSync(path.join(root, 'src/a.ts'), "export const used = 1;\nexport function ownOnly(): number {\n  return 2;\n}\nexport type Named = string;\nexport const viaNamespace = ownOnly();\n");
    writeFileSync(path.join(root, 'src/b.ts'), "export { type Named } from './a.js';\n");
    writeFileSync(path.join(root, 'test/c.ts'), "import { used } from '../src/a.js';\nimport * as a from '../src/a.js';\nvoid used;\nvoid a.viaNamespace;\n");
    expect(unusedExports(root)).toEqual(['src/a.ts:2 ownOnly']);
  });

  it('finds none in the project', () => {
    expect(unusedExports()).toEqual([]);
  });
});
