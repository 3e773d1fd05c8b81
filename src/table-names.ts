/**
 * ormq's tables in the host's schema. Every statement ormq sends names its tables unqualified
 * (`ormq_task`); when a schema is in effect (MikroORM's `schema` option, or ormq's own `schema`
 * option), `qualify` rewrites those names to `"schema".ormq_task` just before the statement is
 * sent. Index names and channel names are not table names and are left alone.
 */
import type { EntityManager } from '@mikro-orm/core';

const TABLE = /\bormq_(?:task|schedule|queued|admin_log|cluster|paused_key|metric|wait|iter_result|iter|limit)\b/g;

/** The schema an `inSchema` EntityManager qualifies with. */
const SCHEMA = Symbol('ormq schema');

const quoted = (schema: string) => `"${schema.replaceAll('"', '""')}"`;

/** A comment, a string literal (`''` inside is a quote), or one of ormq's table names: one pass over a statement. */
const PARTS = /--[^\n]*|'(?:[^']|'')*'|\bormq_(?:task|schedule|queued|admin_log|cluster|paused_key|metric|wait|iter_result|iter|limit)\b/g;

/**
 * `sql` with ormq's table names qualified by `schema`; unchanged when schema is null. A name inside
 * a string literal (`to_regclass('ormq_task')`, `'ormq_queued'::regclass`) gets the prefix with its
 * quotes doubled, so a schema named `o'q` cannot end the literal; comments are left alone.
 */
export function qualify(sql: string, schema: string | null): string {
  if (!schema) return sql;
  const prefix = `${quoted(schema)}.`;
  const inLiteral = prefix.replaceAll("'", "''");
  return sql.replace(PARTS, (part) => {
    if (part.startsWith('--')) return part;
    if (part.startsWith("'")) return part.replace(TABLE, (t) => inLiteral + t);
    return prefix + part;
  });
}

/**
 * A schema name PostgreSQL accepts as an identifier and no statement can misread; throws naming
 * the option otherwise. A `?` is refused: MikroORM's `execute` reads every `?` of a statement as a
 * placeholder, its quoted identifiers included, and would put a value (a search term) inside the
 * name, where a `"` in it ends the identifier.
 */
export function checkSchema(schema: unknown, where = 'schema'): string | null {
  if (schema === undefined || schema === null) return null;
  if (typeof schema !== 'string' || schema === '' || schema.length > 63 || schema.includes('\0') || schema.includes('?')) {
    throw new TypeError(`${where} must be a schema name of 1 to 63 characters without NUL or ? (MikroORM reads ? as a placeholder)`);
  }
  return schema;
}

interface HasConfig {
  config: { get(key: 'schema'): unknown };
}

/**
 * The schema in effect: the explicit option, else the ORM's `schema`, else none (search_path).
 * MikroORM reports 'public' when none was set and then leaves its own SQL unqualified; so does ormq.
 */
export function schemaOf(source: HasConfig | EntityManager, override?: string | null): string | null {
  if (override !== undefined && override !== null) return checkSchema(override);
  const carried = (source as unknown as { [SCHEMA]?: string })[SCHEMA];
  if (carried) return carried;
  const configured = (source as unknown as HasConfig).config?.get('schema');
  return typeof configured === 'string' && configured !== '' && configured !== 'public'
    ? checkSchema(configured, "the ORM's schema option")
    : null;
}

/**
 * `em` whose `execute` qualifies ormq's tables, and whose forks and transactions do too. Other
 * members are the EntityManager's own. With no schema, `em` itself.
 */
export function inSchema<T extends EntityManager>(em: T, schema: string | null): T {
  if (!schema) return em;
  return new Proxy(em, {
    get(target, prop) {
      if (prop === SCHEMA) return schema;
      if (prop === 'execute') {
        return (sql: string, ...rest: unknown[]) =>
          (target as unknown as { execute(...a: unknown[]): unknown }).execute(qualify(sql, schema), ...rest);
      }
      if (prop === 'transactional') {
        return (cb: (tx: EntityManager) => unknown, ...rest: unknown[]) =>
          (target as unknown as { transactional(...a: unknown[]): unknown }).transactional(
            (tx: EntityManager) => cb(inSchema(tx, schema)),
            ...rest,
          );
      }
      if (prop === 'fork') return (...args: unknown[]) => inSchema((target.fork as (...a: unknown[]) => EntityManager)(...args), schema);
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as T;
}
