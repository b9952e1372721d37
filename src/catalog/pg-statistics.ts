// Planner statistics that keep up with a catalog growing fast (PostgreSQL).
//
// The planner sizes each table by what its last ANALYZE saw. Autovacuum analyzes a table once 10%
// of it has changed, but it looks at each database only once per autovacuum_naptime (a minute by
// default). A catalog that grows from empty (a first sync, the first events of a new serve)
// outgrows its statistics many times over within that minute, and the planner, believing its
// tables nearly empty, scans where it should look up: the read of an image's terms took 19 ms
// instead of 3 ms in a first sync of 10,000 tags, and the look-up of the tags on a new manifest
// scanned every live tag (first syncs with and without it: docs/catalog.md).
//
// So after writes, at most once per CHECK_INTERVAL_MS, the catalog asks which of its tables have
// grown to twice the rows their statistics counted (and to MIN_ROWS at least), and analyzes
// those, on a connection of the pool's readers. Once a catalog is large, autovacuum's own 10%
// comes long before a doubling, and this hardly ever fires; small tables that are only updated
// (counters) never grow, and are left to autovacuum. ANALYZE reads a fixed sample of each table, and takes a lock that neither
// readers nor writers wait on. It does wait for that lock held by another session (another
// replica's ANALYZE, a VACUUM, CREATE INDEX CONCURRENTLY): for LOCK_WAIT_MS at most, then the
// table is passed over until the next check, so that no check holds a connection, or a close,
// behind another session's work.

/** A catalog table whose statistics are out of date. */
interface StaleTable {
  schema: string;
  table: string;
}

/** At most one check per this long, and only after a write. */
const CHECK_INTERVAL_MS = 1000;
/** A table of fewer rows than this is not analyzed here: so small, it is planned well either way. */
export const MIN_ROWS = 500;
/** How long an ANALYZE waits for its table's lock; below deadlock_timeout, so it never cancels autovacuum's work. */
const LOCK_WAIT_MS = 100;
/** lock_not_available: the lock wait ran out. */
const LOCK_TIMEOUT_CODE = '55P03';

/**
 * The tables of the catalog's schema with at least twice the rows their statistics counted
 * (pg_class.reltuples, which ANALYZE and VACUUM set; -1 for a table never analyzed) and `$1` at
 * least. n_live_tup is the statistics system's running count. Only those the role may analyze
 * (it owns the table or the database, or is a superuser): ANALYZE of another would only warn,
 * in the server's log, on every check until autovacuum came.
 */
export const STALE_TABLES_SQL = `SELECT s.schemaname AS schema, s.relname AS "table"
  FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
  WHERE s.schemaname = current_schema() AND s.n_live_tup >= GREATEST($1, 2 * c.reltuples)
    AND (pg_has_role(c.relowner, 'USAGE') OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE'))
  ORDER BY s.relname`;

const identifier = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * The ANALYZE of one table, named with its schema, waiting LOCK_WAIT_MS at most for its lock: one
 * simple query, whose statements run in one implicit transaction, which SET LOCAL ends with.
 */
export function analyzeStatement(table: StaleTable): string {
  return `SET LOCAL lock_timeout = ${LOCK_WAIT_MS}; ANALYZE ${identifier(table.schema)}.${identifier(table.table)}`;
}

interface StatisticsKeeperOptions {
  /** Runs one query outside any transaction (a simple query when it has no parameters) and returns its rows. */
  query: (sql: string, params?: readonly unknown[]) => Promise<Record<string, unknown>[]>;
  now?: () => number;
  intervalMs?: number;
  minRows?: number;
}

export class StatisticsKeeper {
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly minRows: number;
  private lastCheck = -Infinity;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: StatisticsKeeperOptions) {
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? CHECK_INTERVAL_MS;
    this.minRows = options.minRows ?? MIN_ROWS;
  }

  /**
   * A write transaction committed: checks the tables when the last check is long enough ago and
   * none is running. Never waited for, and never fails the write: statistics are an optimisation
   * (autovacuum still takes them on its own schedule), so a check that fails is dropped.
   */
  wrote(): void {
    if (this.closed || this.running) return;
    const at = this.now();
    if (at - this.lastCheck < this.intervalMs) return;
    this.lastCheck = at;
    this.running = this.check()
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
      });
  }

  /** The check running now, if any, settled: for a close, and for tests. */
  async settled(): Promise<void> {
    await this.running;
  }

  /** No check starts from now on; the one running ends first. */
  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
  }

  private async check(): Promise<void> {
    const rows = await this.options.query(STALE_TABLES_SQL, [this.minRows]);
    const stale = rows.map((r) => ({ schema: String(r.schema), table: String(r.table) }));
    for (const table of stale) {
      if (this.closed) return;
      try {
        await this.options.query(analyzeStatement(table));
      } catch (err) {
        if ((err as { code?: unknown } | null)?.code !== LOCK_TIMEOUT_CODE) throw err;
      }
    }
  }
}
