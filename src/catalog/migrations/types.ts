// A migration is a version, a name and the statements that take the schema from version-1 to
// version. Versions only grow; a shipped migration is never edited, a later one fixes it.
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

/**
 * Checks the list starts at 1 and strictly increases, so a typo cannot repeat a version or put
 * one out of order. Gaps are allowed: versions are reserved ahead when several changes to the
 * schema are under way at once, and a catalog applies whichever it has not.
 */
export function checkMigrations(list: readonly Migration[]): readonly Migration[] {
  list.forEach((m, i) => {
    const before = i === 0 ? 0 : list[i - 1]!.version;
    if (!Number.isInteger(m.version) || m.version <= before || (i === 0 && m.version !== 1)) {
      throw new Error(`migration ${m.name} has version ${m.version}, expected ${i === 0 ? 1 : `more than ${before}`}`);
    }
  });
  return list;
}
