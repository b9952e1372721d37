// Which statements the PostgreSQL driver keeps prepared: one with parameters from its second
// sending (each connection then binds and executes it by name, without parsing and planning it
// again), never one without parameters (pg sends that as a simple query, which may hold several
// commands), and at most PREPARED_TEXTS texts, so statements of many shapes cannot make a
// connection keep plans without end. Read back from pg_prepared_statements on the connection.
// Reads outside a write transaction are prepared only when asked (a search's best plan can
// depend on its values, which a generic plan would not see).
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PREPARED_PER_SHAPE, PREPARED_TEXTS, openPostgresStore, statement } from '../../src/catalog/postgres.js';
import type { Queryable } from '../../src/catalog/sql/driver.js';
import { useBackend } from './backends.js';

/** The statements prepared on q's connection whose text holds marker. */
async function preparedWith(q: Queryable, marker: string): Promise<string[]> {
  const rows = await q.all<{ statement: string }>("SELECT statement FROM pg_prepared_statements WHERE strpos(statement, ?) > 0 AND statement NOT LIKE '%pg_prepared_statements%'", [marker]);
  return rows.map((r) => r.statement);
}

describe('prepared statements on PostgreSQL', () => {
  const backend = useBackend('postgres');

  // Before the bound is reached by the last case (the names are the module's, for the whole file).
  it('prepares a read outside a write transaction only when asked', () => {
    const text = `SELECT CAST(? AS integer) AS n /* ${randomUUID()} */`;
    for (let i = 0; i < 3; i++) expect(statement(text, [i], undefined, false).name).toBeUndefined();
    expect(statement(text, [1], { prepare: true }, false).name).toMatch(/^tagtrail_[0-9a-f]{32}$/);
    // In a write transaction, the same text keeps that name from its first sending.
    expect(statement(text, [1], undefined, true).name).toBe(statement(text, [1], { prepare: true }, false).name);
    const other = `SELECT CAST(? AS integer) AS n /* ${randomUUID()} */`;
    expect(statement(other, [1], undefined, true).name).toBeUndefined();
    expect(statement(other, [1], undefined, true).name).toMatch(/^tagtrail_/);
    expect(statement(other, [1], undefined, false).name).toBeUndefined();
  });

  it('prepares a statement with parameters from its second sending, and then runs it by name', async () => {
    const store = openPostgresStore((await backend().fresh()).url);
    try {
      await store.driver.write(async (q) => {
        const marker = randomUUID();
        const text = `SELECT CAST(? AS integer) + 1 AS n, '${marker}' AS marker`;
        expect(await q.all(text, [1])).toEqual([{ n: 2, marker }]);
        expect(await preparedWith(q, marker)).toEqual([]);
        expect(await q.all(text, [2])).toEqual([{ n: 3, marker }]);
        expect(await preparedWith(q, marker)).toHaveLength(1);
        expect(await q.all(text, [3])).toEqual([{ n: 4, marker }]);
        expect(await preparedWith(q, marker)).toHaveLength(1);

        // A write too: run() goes by name from its second sending, and its row count stays right.
        await q.run('CREATE TEMP TABLE prepared_rows (n integer)');
        const insert = `INSERT INTO prepared_rows (n) SELECT g FROM generate_series(1, CAST(? AS integer)) g /* ${marker} */`;
        expect(await q.run(insert, [2])).toBe(2);
        expect(await q.run(insert, [3])).toBe(3);
        expect((await preparedWith(q, marker)).filter((s) => s.startsWith('INSERT'))).toHaveLength(1);
      });
    } finally {
      await store.close();
    }
  });

  it('never names a text without parameters, which may hold several commands', async () => {
    const store = openPostgresStore((await backend().fresh()).url);
    try {
      await store.driver.write(async (q) => {
        const marker = randomUUID().replace(/-/g, '');
        const twoCommands = `CREATE TEMP TABLE IF NOT EXISTS t_${marker} (a integer); INSERT INTO t_${marker} VALUES (1)`;
        for (let i = 0; i < 3; i++) await q.run(twoCommands);
        expect(await q.all(`SELECT count(*) AS n FROM t_${marker}`)).toEqual([{ n: 3 }]);
        expect(await preparedWith(q, marker)).toEqual([]);
      });
    } finally {
      await store.close();
    }
  });

  it(`prepares at most ${PREPARED_PER_SHAPE} lengths of one IN list or multi-row VALUES`, async () => {
    const store = openPostgresStore((await backend().fresh()).url);
    try {
      await store.driver.write(async (q) => {
        const marker = randomUUID();
        const values = `valuesmarker${marker.replace(/-/g, '')}`;
        // As a crawl's reconciliations send them: each length comes back in some repository.
        for (let round = 0; round < 2; round++) {
          for (let length = 1; length <= 30; length++) {
            const ids = Array.from({ length }, (_, i) => i + 1);
            const inList = await q.all<{ n: number }>(`SELECT count(*) AS n FROM generate_series(1, 100) g WHERE g IN (${ids.map(() => '?').join(', ')}) /* ${marker} */`, ids);
            expect(inList).toEqual([{ n: length }]);
            const rows = await q.all<{ n: number }>(`SELECT count(*) AS n FROM (VALUES ${ids.map(() => '(CAST(? AS integer), ?)').join(', ')}) v(a, b) /* ${values} */`, ids.flatMap((id) => [id, 'x']));
            expect(rows).toEqual([{ n: length }]);
          }
        }
        expect(await preparedWith(q, marker)).toHaveLength(PREPARED_PER_SHAPE);
        expect(await preparedWith(q, values)).toHaveLength(PREPARED_PER_SHAPE);
        // A statement of another shape is still prepared from its second sending.
        const other = `SELECT CAST(? AS integer) AS n /* ${randomUUID()} */`;
        await q.all(other, [1]);
        await q.all(other, [2]);
        expect(statement(other, [3], undefined, true).name).toMatch(/^tagtrail_/);
      });
    } finally {
      await store.close();
    }
  });

  it(`keeps at most ${PREPARED_TEXTS} texts prepared, however many shapes are sent`, async () => {
    const store = openPostgresStore((await backend().fresh()).url);
    try {
      await store.driver.write(async (q) => {
        const marker = randomUUID();
        const shapes = PREPARED_TEXTS + 50;
        for (let round = 0; round < 2; round++) {
          for (let i = 0; i < shapes; i++) {
            const rows = await q.all<{ n: number }>(`SELECT CAST(? AS integer) + ${i} AS n /* ${marker} */`, [round]);
            expect(rows).toEqual([{ n: round + i }]);
          }
        }
        const named = await preparedWith(q, marker);
        // The bound holds, and it is not met by preparing nothing: most shapes were prepared until it was reached.
        expect(named.length).toBeLessThanOrEqual(PREPARED_TEXTS);
        expect(named.length).toBeGreaterThan(PREPARED_TEXTS / 2);
        const all = await q.all<{ n: number }>('SELECT count(*) AS n FROM pg_prepared_statements');
        expect(Number(all[0]?.n)).toBeLessThanOrEqual(PREPARED_TEXTS);
      });
    } finally {
      await store.close();
    }
  });

  // After the bound was reached by the case above.
  it(`prepares a statement asked to be, even once ${PREPARED_TEXTS} texts are`, async () => {
    const store = openPostgresStore((await backend().fresh()).url);
    try {
      const marker = randomUUID();
      const asked = `SELECT CAST(? AS integer) * 2 AS n, '${marker}' AS marker`;
      expect(statement(`SELECT CAST(? AS integer) AS n /* ${randomUUID()} */`, [1], { prepare: true }, false).name).toMatch(/^tagtrail_/);
      await store.driver.write(async (q) => {
        expect(await q.all(asked, [2], { prepare: true })).toEqual([{ n: 4, marker }]);
        expect(await preparedWith(q, marker)).toHaveLength(1);
      });
    } finally {
      await store.close();
    }
  });
});
