// Lists what a file under src/ exports that no other file imports (src/, test/, bench/, scripts/,
// bin/): an export only its own file uses should not be exported, and one nobody uses should go.
// Run by `npm run lint`; exits 1 when it finds any, so none come back.
//
// It reads import and export statements with the TypeScript parser: named imports count the
// names, `import * as ns` counts each `ns.name` in the importing file, `export * from` counts
// everything, and a dynamic import() counts the names the importing file mentions.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');
const IMPORTERS = ['src', 'test', 'bench', 'scripts', 'bin'];
const CHECKED = 'src';

function files(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'node_modules' || name === 'results' ? [] : files(full);
    return /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [full] : [];
  });
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
}

/** The file a relative specifier names (`./x.js` is `./x.ts` in the sources), or undefined. */
function resolve(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, path.join(base, 'index.ts')];
  return candidates.find((c) => {
    try {
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
}

function hasExport(node: ts.Node): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

/** The names a file exports itself (not re-exports), with their lines. */
function exportsOf(sf: ts.SourceFile): Map<string, number> {
  const out = new Map<string, number>();
  const line = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const e of st.exportClause.elements) out.set(e.name.text, line(e));
      continue;
    }
    if (!hasExport(st)) continue;
    if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) out.set(d.name.text, line(d));
    } else if (
      (ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st)) &&
      st.name
    ) {
      out.set(st.name.text, line(st));
    }
  }
  return out;
}

/** For each file imported by `sf`: the names it uses of it ('*' for all). */
function importsOf(sf: ts.SourceFile): Map<string, Set<string>> {
  const used = new Map<string, Set<string>>();
  const text = sf.getFullText();
  const add = (target: string | undefined, name: string) => {
    if (!target) return;
    const set = used.get(target) ?? new Set<string>();
    set.add(name);
    used.set(target, set);
  };
  const mentioned = (target: string | undefined) => {
    for (const m of text.matchAll(/[A-Za-z_$][\w$]*/g)) add(target, m[0]);
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const target = resolve(sf.fileName, node.moduleSpecifier.text);
      if (ts.isImportDeclaration(node)) {
        const bindings = node.importClause?.namedBindings;
        if (bindings && ts.isNamedImports(bindings)) for (const e of bindings.elements) add(target, (e.propertyName ?? e.name).text);
        if (bindings && ts.isNamespaceImport(bindings)) {
          const ns = bindings.name.text.replace(/\$/g, '\\$');
          for (const m of text.matchAll(new RegExp(`\\b${ns}\\.([A-Za-z_$][\\w$]*)`, 'g'))) add(target, m[1]!);
        }
      } else if (!node.exportClause) {
        add(target, '*');
      } else if (ts.isNamedExports(node.exportClause)) {
        for (const e of node.exportClause.elements) add(target, (e.propertyName ?? e.name).text);
      }
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      mentioned(resolve(sf.fileName, node.arguments[0].text));
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return used;
}

/** `file:line name` of each export under root/src that no other file imports. */
export function unusedExports(root = PROJECT_ROOT): string[] {
  const importers = IMPORTERS.flatMap((d) => files(path.join(root, d)));
  const used = new Map<string, Set<string>>();
  for (const file of importers) {
    for (const [target, names] of importsOf(parse(file))) {
      if (target === file) continue;
      const set = used.get(target) ?? new Set<string>();
      for (const n of names) set.add(n);
      used.set(target, set);
    }
  }
  const found: string[] = [];
  for (const file of files(path.join(root, CHECKED))) {
    if (!file.endsWith('.ts')) continue;
    const names = used.get(file) ?? new Set<string>();
    if (names.has('*')) continue;
    for (const [name, line] of exportsOf(parse(file))) {
      if (!names.has(name)) found.push(`${path.relative(root, file)}:${line} ${name}`);
    }
  }
  return found.sort();
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const found = unusedExports();
  for (const f of found) console.log(f);
  if (found.length > 0) {
    console.log(`${found.length} export(s) no other file imports: un-export what only its own file uses, delete what nothing uses`);
    process.exit(1);
  }
}
