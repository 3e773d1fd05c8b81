/**
 * The one interface ormq's SQL runs through: `query` (the rows), `queryOne` (the first row) and
 * `execute` (how many rows it touched), one statement each with its parameters, and `all` for
 * several. Three sources give it, each for the callers it was measured for:
 *
 * - `db(em)`: on an EntityManager's connection, inside its transaction when it is in one (the
 *   host's `em.transactional`). `?` placeholders, whose values MikroORM's `execute` writes into
 *   the text; with `{ bind: true }`, `$1`… parameters sent beside the text and bound by
 *   PostgreSQL: the producer's insert, where escaping a 10,000-task batch into the text costs more
 *   than the insert itself.
 * - `db(em)` on the admin's request EntityManager (src/db/timed.ts): each statement under the
 *   admin's statement timeout in one round trip, and `all` sends several in one.
 * - `poolDb(pool, …)`: the host pool's pg client, for the cluster: `$1`… parameters, and a
 *   statement given as `{ name, text }` is prepared, parsed and planned once per connection.
 *
 * ormq's tables are named unqualified and qualified with the host's schema on the way out.
 */
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { qualify, schemaOf } from '../table-names.js';

export type Row = Record<string, unknown>;
type Params = readonly unknown[];

/** A statement's text, or a named one: prepared under its name where the source prepares statements. */
type Sql = string | NamedStatement;
interface NamedStatement {
  name: string;
  text: string;
}

/** A statement with its values, for `all`. */
export type Statement = [sql: string, params?: Params];

interface QueryOptions {
  /** `$1`… parameters bound by PostgreSQL instead of `?` values written into the text (an EntityManager's source). */
  bind?: boolean;
}

export interface Db {
  query(sql: Sql, params?: Params, options?: QueryOptions): Promise<Row[]>;
  queryOne(sql: Sql, params?: Params, options?: QueryOptions): Promise<Row | undefined>;
  /** The number of rows the statement inserted, updated or deleted (or returned). */
  execute(sql: Sql, params?: Params, options?: QueryOptions): Promise<number>;
  /** The rows of each statement, in order: in one round trip where the source can (the admin's), else one each. */
  all(statements: readonly Statement[]): Promise<Row[][]>;
}

const textOf = (sql: Sql) => (typeof sql === 'string' ? sql : sql.text);

/** Where an EntityManager carries a source of its own (the admin's timed reads). */
export const DB = Symbol('ormq db');

async function sequential(run: Db, statements: readonly Statement[]): Promise<Row[][]> {
  const out: Row[][] = [];
  for (const [sql, params] of statements) out.push(await run.query(sql, params));
  return out;
}

/**
 * `text` with real bind parameters on `em`'s connection, inside its transaction when it is in one,
 * through the ORM's Kysely (em.execute would escape the values into the text). Kysely runs a
 * compiled query as given; this one is compiled by hand, hence the cast.
 */
function bound(em: SqlEntityManager, text: string, parameters: Params): Promise<{ rows: Row[]; numAffectedRows?: bigint }> {
  const kysely = em.getKysely();
  const sql = qualify(text, schemaOf(em));
  const compiled = { sql, parameters, query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] }, queryId: { queryId: 'ormq' } };
  return kysely.executeQuery(compiled as unknown as Parameters<typeof kysely.executeQuery>[0]) as Promise<{
    rows: Row[];
    numAffectedRows?: bigint;
  }>;
}

/**
 * The statements of `em`, in its transaction when it is in one; an `inSchema` em qualifies ormq's
 * tables. A class, so that a source made per call (one enqueue) is one small object, not four closures.
 */
class EmDb implements Db {
  constructor(private readonly em: SqlEntityManager) {}

  query(sql: Sql, params: Params = [], options?: QueryOptions): Promise<Row[]> {
    if (options?.bind) return bound(this.em, textOf(sql), params).then((r) => r.rows);
    return this.em.execute(textOf(sql), params as unknown[]);
  }

  async queryOne(sql: Sql, params: Params = [], options?: QueryOptions): Promise<Row | undefined> {
    return (await this.query(sql, params, options))[0];
  }

  async execute(sql: Sql, params: Params = [], options?: QueryOptions): Promise<number> {
    if (options?.bind) {
      const { rows, numAffectedRows } = await bound(this.em, textOf(sql), params);
      return numAffectedRows === undefined ? rows.length : Number(numAffectedRows);
    }
    return (await this.em.execute<{ affectedRows: number }>(textOf(sql), params as unknown[], 'run')).affectedRows;
  }

  all(statements: readonly Statement[]): Promise<Row[][]> {
    return sequential(this, statements);
  }
}

/** A source rather than an EntityManager (which has no `queryOne`). */
export const isDb = (x: EntityManager | Db): x is Db => typeof (x as Db).queryOne === 'function';

export function db(em: EntityManager): Db {
  return (em as unknown as { [DB]?: Db })[DB] ?? new EmDb(em as SqlEntityManager);
}

interface PgResult {
  rows: Row[];
  rowCount: number | null;
}

/** A pg pool (the host ORM's `getNativeClient()`, or any with pg's `query`). */
export interface Queryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<PgResult>;
}

/** The host ORM's pg pool under `em`, on which `poolDb` sends: outside any transaction of the host's. */
export async function hostPool(em: EntityManager): Promise<Queryable> {
  return (await em.getConnection().getNativeClient()) as unknown as Queryable;
}

/**
 * The host pool's statements, qualified with the host's schema; a named statement is prepared
 * unless `prepared` is off (a pooler in transaction mode cannot keep them).
 */
export function poolDb(pool: Queryable, schema: string | null, prepared = true): Db {
  const send = (sql: Sql, values: Params = []): Promise<PgResult> => {
    if (typeof sql === 'string') return pool.query({ text: qualify(sql, schema), values: values as unknown[] });
    const text = qualify(sql.text, schema);
    // A named statement is prepared once per connection: its name says which schema it was made for.
    const name = schema ? `${sql.name}:${schema}` : sql.name;
    return pool.query(prepared ? { name, text, values: values as unknown[] } : { text, values: values as unknown[] });
  };
  const run: Db = {
    query: (sql, params) => send(sql, params).then((r) => r.rows),
    queryOne: (sql, params) => send(sql, params).then((r) => r.rows[0]),
    execute: (sql, params) => send(sql, params).then((r) => r.rowCount ?? r.rows.length),
    all: (statements) => sequential(run, statements),
  };
  return run;
}

/** A pool that lends a connection of its own (pg's Pool): what a transaction needs. */
export interface Lending extends Queryable {
  connect(): Promise<Queryable & { release(err?: Error | boolean): void }>;
}

/**
 * Runs `work` in one transaction on one connection of `pool`, its statements sent as `poolDb` sends
 * them; with `discard`, that connection is closed afterwards instead of going back to the pool.
 */
export async function inTransaction<T>(
  pool: Lending,
  schema: string | null,
  prepared: boolean,
  work: (run: Db) => Promise<T>,
  options: { discard?: boolean } = {},
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query({ text: 'begin' });
    const out = await work(poolDb(client, schema, prepared));
    await client.query({ text: 'commit' });
    return out;
  } catch (err) {
    await client.query({ text: 'rollback' }).catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken ?? options.discard === true);
  }
}
