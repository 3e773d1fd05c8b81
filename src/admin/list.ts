/**
 * What the four lists share: keyset cursors and pages, distinct filter values and times as the API
 * sends them. Their filters as SQL are filters.ts, their counts count.ts, large JSON fields of a
 * detail fields.ts.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { badRequest } from './http.js';
import { date } from '../rows.js';
import { pageCount, planStatements, readPlanned, type Count, type Planned } from './count.js';
import { isInstant, parseLimit, Where } from './filters.js';
import { db, type Statement } from '../db/run.js';

/**
 * A list's order, which is also its cursor: newest first for tasks (stopped, id) and queued
 * packages (id), soonest first for schedules (next_run, id). The id breaks ties between equal
 * timestamps, so a page boundary never loses or repeats a row.
 */
export interface Keyset {
  time?: string;
  id: string;
  dir: 'asc' | 'desc';
  idKind: 'text' | 'int';
}

/** Microseconds matter: a JS Date would round two rows 1 µs apart onto the same cursor. */
export function keyColumn(k: Keyset, alias = ''): string {
  if (!k.time) return '';
  return `, to_char(${alias}${k.time} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as _key_time`;
}

export function orderBy(k: Keyset, alias = ''): string {
  const d = k.dir;
  return k.time ? `order by ${alias}${k.time} ${d}, ${alias}${k.id} ${d}` : `order by ${alias}${k.id} ${d}`;
}

export type Cursor = [string, string | number] | [string | number];

export function cursorOf(k: Keyset, row: Record<string, unknown>): string {
  const id = k.idKind === 'int' ? Number(row[k.id]) : String(row[k.id]).trim();
  const value: Cursor = k.time ? [row._key_time as string, id] : [id];
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const ISO_MICROS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function parseCursor(k: Keyset, raw: unknown): Cursor | null {
  if (raw === undefined || raw === null || raw === '') return null;
  const invalid = () => badRequest('cursor is not valid for this list', { cursor: 'is not valid' });
  if (typeof raw !== 'string' || raw.length > 300) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(value) || value.length !== (k.time ? 2 : 1)) throw invalid();
  const id = value[value.length - 1];
  const idOk = k.idKind === 'int' ? Number.isSafeInteger(id) : typeof id === 'string' && /^[0-9a-f]{32}$/.test(id);
  if (!idOk) throw invalid();
  if (k.time && !(typeof value[0] === 'string' && ISO_MICROS.test(value[0]) && isInstant(value[0]))) throw invalid();
  return value as Cursor;
}

/** Rows after the cursor in the list's order; a row comparison the (time, id) index serves directly. */
export function afterCursor(k: Keyset, cursor: Cursor | null, alias = ''): Where {
  const w = new Where();
  if (!cursor) return w;
  const op = k.dir === 'desc' ? '<' : '>';
  const idCast = k.idKind === 'int' ? '::bigint' : '';
  if (k.time) w.add(`(${alias}${k.time}, ${alias}${k.id}) ${op} (?::timestamptz, ?${idCast})`, cursor[0], cursor[1]);
  else w.add(`${alias}${k.id} ${op} ?${idCast}`, cursor[0]);
  return w;
}

/**
 * One page of a keyset list, from rows fetched with `limit + 1`: the extra row only tells whether
 * a next page exists, and the cursor is the last row shown.
 */
export async function keysetPage<R>(
  em: SqlEntityManager,
  table: string,
  fetched: Record<string, unknown>[],
  list: { limit: number; keyset: Keyset; where: Where; firstPage: boolean; toRow: (row: Record<string, unknown>) => R; planned?: Planned },
): Promise<{ rows: R[]; next: string | null; count: Count }> {
  const more = fetched.length > list.limit;
  const page = fetched.slice(0, list.limit);
  return {
    rows: page.map(list.toRow),
    next: more ? cursorOf(list.keyset, page[page.length - 1]!) : null,
    count: await pageCount(em, table, list.where, { firstPage: list.firstPage, more, rows: page.length, planned: list.planned }),
  };
}

/**
 * A list page read by its keyset: `select` (up to its FROM and joins) narrowed by `where` (read after
 * the limit, so errors come in the query's order) and the query's cursor, `prefix` qualifying the
 * keyset's columns.
 */
export async function keysetList<R>(
  em: SqlEntityManager,
  query: Record<string, string>,
  list: { table: string; keyset: Keyset; select: string; prefix?: string; where: () => Where; toRow: (row: Record<string, unknown>) => R },
): Promise<{ rows: R[]; next: string | null; count: Count }> {
  const limit = parseLimit(query.limit);
  const filtered = list.where();
  const cursor = parseCursor(list.keyset, query.cursor);
  const w = filtered.and(afterCursor(list.keyset, cursor, list.prefix));
  const page: Statement = [`${list.select} ${w.sql} ${orderBy(list.keyset, list.prefix)} limit ${limit + 1}`, w.params];
  // The count's facts come in the same round trip: on a large table a page is nearly always full
  // and counted, and asking costs a plan when it is not.
  const [rows, ...plan] = await db(em).all([page, ...planStatements(list.table, filtered)]);
  return keysetPage(em, list.table, rows!, {
    limit,
    keyset: list.keyset,
    where: filtered,
    firstPage: !cursor,
    toRow: list.toRow,
    planned: readPlanned(plan),
  });
}

/**
 * The distinct values of an indexed column, at most `limit`, without reading every row: a loose
 * index scan that jumps from one value to the next (a recursive CTE, one index probe per value).
 * `exists` keeps the values that have a row matching `scope` (e.g. success = false).
 */
export async function distinctValues(em: SqlEntityManager, table: string, column: string, scope: Where, limit = 100): Promise<string[]> {
  const scopeSql = scope.clauses.length ? ` and ${scope.clauses.join(' and ')}` : '';
  const rows = await db(em).query(
    `with recursive v(x) as (
       (select ${column} from ${table} where ${column} is not null order by ${column} limit 1)
       union all
       select (select t.${column} from ${table} t where t.${column} > v.x order by t.${column} limit 1) from v where v.x is not null
     )
     select x from v where x is not null and exists (select 1 from ${table} t where t.${column} = v.x${scopeSql}) limit ${limit}`,
    scope.params,
  );
  return rows.map((r) => r.x as string);
}

/** PostgreSQL's text of a timestamptz in UTC, the session time zone ormq's reads normally get. */
const PG_UTC = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00$/;

/**
 * A time as `Date#toISOString` writes it. The UTC text is rewritten without a Date (the fraction
 * cut to milliseconds, as Date cuts it): a list page has three times in each of its rows, and
 * parsing them was a tenth of the server's work for a page of tasks.
 */
export const iso = (v: unknown): string | null => {
  if (v === null || v === undefined) return null;
  const m = typeof v === 'string' ? PG_UTC.exec(v) : null;
  if (!m) return date(v).toISOString();
  return `${m[1]}T${m[2]}.${m[3] === undefined ? '000' : m[3].length >= 3 ? m[3].slice(0, 3) : m[3].padEnd(3, '0')}Z`;
};
