/**
 * Named statements on a pg pool (the host ORM's own, or any with pg's `query`): the cluster's hot
 * path and its upkeep run through one runner.
 */
import { qualify } from '../table-names.js';

export interface Queryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

/** Runs one of the cluster's statements: qualified with the host's schema, and named unless prepared statements are off. */
export type RunStatement = (statement: { name: string; text: string }, values: unknown[]) => ReturnType<Queryable['query']>;

export function statementRunner(pool: Queryable, schema: string | null, prepared: boolean): RunStatement {
  return (statement, values) => {
    const text = qualify(statement.text, schema);
    // A named statement is prepared once per connection: its name says which schema it was made for.
    const name = schema ? `${statement.name}:${schema}` : statement.name;
    return pool.query(prepared ? { name, text, values } : { text, values });
  };
}

/** A pool that lends a connection of its own (pg's Pool): what a transaction needs. */
export interface Lending extends Queryable {
  connect(): Promise<Queryable & { release(err?: Error | boolean): void }>;
}

/** Runs `work` in one transaction on one connection of `pool`, with statements run as `statementRunner` runs them. */
export async function inTransaction<T>(pool: Lending, schema: string | null, prepared: boolean, work: (run: RunStatement) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query({ text: 'begin' });
    const out = await work(statementRunner(client, schema, prepared));
    await client.query({ text: 'commit' });
    return out;
  } catch (err) {
    await client.query({ text: 'rollback' }).catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}
