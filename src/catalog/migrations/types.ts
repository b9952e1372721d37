// A migration is a version, a name and the statements that take the schema from version-1 to
// version. Versions only grow; a shipped migration is never edited, a later one fixes it.
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

/** Checks the list is strictly increasing from 1, so a typo cannot skip or repeat a version. */
export function checkMigrations(list: readonly Migration[]): readonly Migration[] {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
  return list;
}
