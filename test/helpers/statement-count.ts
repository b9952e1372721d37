// Counts what goes through a catalog driver: statements, calls that take locks, transactions.
// Shared by the statement-count test and the store-statements benchmark.
import type { Driver, Queryable } from '../../src/catalog/sql/driver.js';

export interface StatementCount {
  statements: number;
  /** Calls that take locks (an empty call sends nothing and is not counted). */
  locks: number;
  transactions: number;
}

/** PostgreSQL round trips of what was counted: each statement, each lock call, and BEGIN (with the catalog lock) and COMMIT of each transaction. */
export function roundTrips(c: StatementCount): number {
  return c.statements + c.locks + 2 * c.transactions;
}

/**
 * Counts what goes through the driver from now on: statements, lock calls, transactions.
 * `show` sees each statement's text and each lock call as it is sent.
 */
export function countStatements(driver: Driver, show: (sql: string) => void = () => {}): StatementCount {
  const count: StatementCount = { statements: 0, locks: 0, transactions: 0 };
  const wrap = (q: Queryable): Queryable => {
    const w: Queryable = {
      ...(q.dialect ? { dialect: q.dialect } : {}),
      all: (sql, params, options) => {
        show(sql);
        count.statements++;
        return q.all(sql, params, options);
      },
      run: (sql, params) => {
        show(sql);
        count.statements++;
        return q.run(sql, params);
      },
    };
    const lock = q.lock;
    if (lock) {
      w.lock = (keys) => {
        // An empty call sends nothing.
        if (keys.length > 0) {
          show(`LOCK ${keys.map((k) => k.level).join(',')}`);
          count.locks++;
        }
        return lock(keys);
      };
    }
    return w;
  };
  const d = driver as { -readonly [K in keyof Driver]: Driver[K] };
  const all = d.all.bind(driver);
  const run = d.run.bind(driver);
  const write = d.write.bind(driver);
  const alongside = d.writeAlongside?.bind(driver);
  d.all = (sql, params, options) => {
    count.statements++;
    return all(sql, params, options);
  };
  d.run = (sql, params) => {
    count.statements++;
    return run(sql, params);
  };
  d.write = (fn) => {
    count.transactions++;
    return write((q) => fn(wrap(q)));
  };
  if (alongside) {
    d.writeAlongside = (fn) => {
      count.transactions++;
      return alongside((q) => fn(wrap(q)));
    };
  }
  return count;
}
