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
