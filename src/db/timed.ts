/**
 * The admin's reads under its statement timeout, one round trip per statement. `set local
 * statement_timeout` and the statement go to PostgreSQL in one message, which it runs as one
 * implicit transaction: the timeout holds for that statement alone, and no BEGIN or COMMIT is
 * sent. A read's statements never relied on sharing a transaction (each sees the data as of its
 * own start, as under READ COMMITTED), and a page that needs one asks `transactional`, which sets
 * the same timeout first. At a million tasks BEGIN, the SET and COMMIT were three of a search's six
 * round trips, each costing the server's event loop and PostgreSQL a wake-up (bench/admin.ts).
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { qualify } from '../table-names.js';
import { db, DB, type Db, type Row, type Statement } from './run.js';

interface Result {
  rows: Row[];
  rowCount: number | null;
}

/** The host ORM's pg pool (`getNativeClient()`): a text with several statements answers one result each. */
export interface NativePool {
  query(text: string): Promise<Result | Result[]>;
}

type Batch = (statements: readonly Statement[]) => Promise<Result[]>;

/**
 * An EntityManager whose `execute` sends each statement with the timeout in one round trip, and
 * whose `transactional` sets the timeout before anything else; its other members are those of
 * `em()`, called only when one is used. `db()` of it gives the same reads as a `Db`, whose `all`
 * sends several statements with the timeout in one round trip (an error in one stops the rest);
 * a bound statement (`{ bind: true }`: the admin's resubmit and run now) goes through `em()`,
 * without the timeout, as a write does. Values are inlined as MikroORM's own `execute` inlines them
 * (its platform's `formatQuery`, after the host's `onQuery`), ormq's tables qualified with
 * `schema`; each statement is logged to the ORM's logger as `execute` logs it. `root` is the
 * host's EntityManager, whose platform, configuration and driver every fork shares.
 */
export function timedReads(
  root: SqlEntityManager,
  em: () => SqlEntityManager,
  pool: NativePool,
  timeoutMs: number,
  schema: string | null,
): SqlEntityManager {
  const platform = root.getPlatform();
  const onQuery = root.config.get('onQuery');
  const logger = root.config.getLogger();
  const timeout = `set local statement_timeout = ${Math.trunc(timeoutMs)}`;

  const batch: Batch = async (statements) => {
    const texts = statements.map(([sql, params = []]) => {
      const query = onQuery(qualify(sql, schema), params);
      return platform.formatQuery(query, params as unknown[]);
    });
    const started = Date.now();
    let results: Result[];
    try {
      // A newline ends a trailing `--` comment before the next statement.
      const answer = await pool.query([timeout, ...texts].join(';\n'));
      results = (Array.isArray(answer) ? answer : [answer]).slice(1);
    } catch (err) {
      const took = Date.now() - started;
      for (const query of texts) logger.logQuery({ level: 'error', query, took });
      throw root.getDriver().convertException(err as Error);
    }
    const took = Date.now() - started;
    texts.forEach((query, i) => logger.logQuery({ level: 'info', query, took, results: results[i]!.rows.length }));
    return results;
  };

  const one = async (sql: string, params: readonly unknown[] = []) => (await batch([[sql, params]]))[0]!;
  const execute = async (sql: string, params: readonly unknown[] = [], method: 'all' | 'get' | 'run' = 'all') => {
    const { rows, rowCount } = await one(sql, params);
    if (method === 'get') return rows[0];
    if (method === 'run') return { affectedRows: rowCount ?? rows.length, row: rows[0], rows };
    return rows;
  };
  const text = (sql: Statement[0] | { text: string }) => (typeof sql === 'string' ? sql : sql.text);
  const timed: Db = {
    query: async (sql, params, options) => (options?.bind ? db(em()).query(sql, params, options) : (await one(text(sql), params)).rows),
    queryOne: async (sql, params, options) => (await timed.query(sql, params, options))[0],
    execute: async (sql, params, options) => {
      if (options?.bind) return db(em()).execute(sql, params, options);
      const { rows, rowCount } = await one(text(sql), params);
      return rowCount ?? rows.length;
    },
    all: async (statements) => (await batch(statements)).map((r) => r.rows),
  };

  return new Proxy(root, {
    get(_, prop) {
      if (prop === DB) return timed;
      if (prop === 'execute') return execute;
      const target = em();
      if (prop === 'transactional') {
        return (cb: (tx: SqlEntityManager) => unknown, ...rest: unknown[]) =>
          (target.transactional as (...a: unknown[]) => unknown)(
            async (tx: SqlEntityManager) => {
              await tx.execute(timeout);
              return cb(tx);
            },
            ...rest,
          );
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
