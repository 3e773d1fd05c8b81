/**
 * What the four lists share: filters as SQL, keyset cursors and counts that stay cheap at a million
 * rows. Large JSON fields of a detail are fields.ts.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { badRequest } from './http.js';
import { date } from '../rows.js';
import { daysInMonth } from '../time.js';
import { db, type Statement } from '../db/run.js';

/** A WHERE clause under construction: SQL fragments with `?` placeholders and their values. */
export class Where {
  readonly clauses: string[] = [];
  readonly params: unknown[] = [];
  /** A substring search is among the clauses: each candidate row costs a recheck, so counting is capped lower. */
  searching = false;
  add(sql: string, ...params: unknown[]): this {
    this.clauses.push(sql);
    this.params.push(...params);
    return this;
  }
  /** A substring-search clause (ILIKE '%…%'). */
  search(sql: string, ...params: unknown[]): this {
    this.searching = true;
    return this.add(sql, ...params);
  }
  and(other: Where): Where {
    const w = new Where();
    w.clauses.push(...this.clauses, ...other.clauses);
    w.params.push(...this.params, ...other.params);
    w.searching = this.searching || other.searching;
    return w;
  }
  get sql(): string {
    return this.clauses.length ? `where ${this.clauses.join(' and ')}` : '';
  }
}

/** `%`, `_` and `\` typed in a search box are literal; `\` is ILIKE's default escape character. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Reads one optional text filter from a list query or an "all matching" filter object. */
export function textFilter(filter: Record<string, unknown>, name: string, max = 256): string | null {
  const v = filter[name];
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw badRequest(`${name} must be text`, { [name]: 'must be text' });
  if (v.length > max) throw badRequest(`${name} is too long`, { [name]: `must be at most ${max} characters` });
  return v;
}

const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/**
 * An instant PostgreSQL reads as written, checked field by field: Date.parse takes 30 February,
 * year 0 and +23:00, where the database has no year 0, no day past its month's end and offsets up
 * to ±15:59. One anchored pattern without nested repetition: linear in the input.
 */
function isInstant(v: string): boolean {
  const m = ISO_INSTANT.exec(v);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as number[];
  return (
    year! >= 1 && month! >= 1 && month! <= 12 && day! >= 1 && day! <= daysInMonth(year!, month!) &&
    hour! <= 23 && minute! <= 59 && second! <= 59 && offsetHour! <= 15 && offsetMinute! <= 59
  );
}

/** Reads one optional instant (ISO 8601 with a zone) from a list query or a filter object. */
export function timeFilter(filter: Record<string, unknown>, name: string): string | null {
  const v = filter[name];
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || !isInstant(v)) {
    throw badRequest(`${name} must be an ISO 8601 date and time with a zone, e.g. 2024-05-01T12:00:00Z`, { [name]: 'must be an ISO 8601 date and time with a zone' });
  }
  return v;
}

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 50;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 500) throw badRequest('limit must be a whole number from 1 to 500', { limit: 'must be between 1 and 500' });
  return n;
}

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

export interface Count {
  value: number;
  estimated: boolean;
}

/** Counting up to this many rows exactly costs a few ms on an index; beyond it a count is estimated. */
const EXACT_CAP = 10_000;
/**
 * A search's matches are found through the trigram index and each is rechecked in the table:
 * counting 10,000 of them took 55-60 ms at 1M tasks, 1,000 a tenth of that (bench/admin.ts).
 */
const SEARCH_CAP = 1_000;
/** Below this many rows in the table even a full count is cheap. */
const SMALL_TABLE = 100_000;
/**
 * A planner estimate this many times the cap is trusted without counting: counting would read at
 * least the cap's worth of matching rows only to conclude "more than that". At 1M tasks that
 * capped count was most of an unfiltered list's database time (bench/admin.ts).
 */
const TRUSTED_ESTIMATE = 5;

/** What a count decides by: the table's size and the planner's estimate of the rows matching a filter. */
export interface Planned {
  tableRows: number;
  estimate: number;
  /** The exact count of this `where`, when the page's own query collected every match. */
  matched?: number;
}

/**
 * The statements `readPlanned` reads a `Planned` from: the table's size in pg_class and one plan of
 * `where` (nothing read). They go with whatever else a page sends in the same round trip.
 */
export function planStatements(table: string, where: Where): Statement[] {
  return [
    // The name is one of ormq's own (never input), inlined so that it is qualified with the host's schema.
    [`select reltuples::bigint as n, pg_relation_size(oid) as bytes from pg_class where oid = to_regclass('${table}')`],
    [`explain (format json) select 1 from ${table} ${where.sql}`, where.params],
  ];
}

export function readPlanned([size, plan]: Record<string, unknown>[][]): Planned {
  const n = Number(size?.[0]?.n ?? -1);
  // -1: never analysed. Judge by size on disk then, at roughly 200 bytes a row.
  const tableRows = n >= 0 ? n : Math.floor(Number(size?.[0]?.bytes ?? 0) / 200);
  const raw = plan?.[0]?.['QUERY PLAN'];
  const parsed = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan?: { 'Plan Rows'?: number } }[];
  return { tableRows, estimate: Math.round(parsed?.[0]?.Plan?.['Plan Rows'] ?? 0) };
}

/** The table's size and the planner's estimate for `where`, in one round trip on the admin's reads. */
async function planned(em: SqlEntityManager, table: string, where: Where): Promise<Planned> {
  return readPlanned(await db(em).all(planStatements(table, where)));
}

async function exactCount(em: SqlEntityManager, from: string, where: Where): Promise<number> {
  const rows = await em.execute(`select count(*) as n from ${from} ${where.sql}`, where.params);
  return Number(rows[0]!.n);
}

async function cappedCount(em: SqlEntityManager, table: string, where: Where, cap: number): Promise<number> {
  const rows = await em.execute(`select count(*) as n from (select 1 from ${table} ${where.sql} limit ${cap + 1}) s`, where.params);
  return Number(rows[0]!.n);
}

/**
 * A list's count: exact when that is cheap (few matches, or a small table), otherwise the
 * planner's estimate, marked as such. Never an unbounded COUNT(*) over a large table. `known` is
 * the table's size and the estimate for this very `where` when the caller has already asked.
 */
export async function listCount(em: SqlEntityManager, table: string, where: Where, known?: Planned): Promise<Count> {
  if (known?.matched !== undefined) return { value: known.matched, estimated: false };
  const cap = where.searching ? SEARCH_CAP : EXACT_CAP;
  const { tableRows, estimate } = known ?? (await planned(em, table, where));
  if (tableRows < SMALL_TABLE) {
    const n = await cappedCount(em, table, where, EXACT_CAP);
    return { value: n <= EXACT_CAP ? n : await exactCount(em, table, where), estimated: false };
  }
  if (estimate >= TRUSTED_ESTIMATE * cap) return { value: estimate, estimated: true };
  const n = await cappedCount(em, table, where, cap);
  if (n <= cap) return { value: n, estimated: false };
  return { value: Math.max(estimate, cap + 1), estimated: true };
}

/**
 * The count of a list page: a first page that is not full holds every match, so its length is
 * the exact count and no counting query is needed.
 */
async function pageCount(
  em: SqlEntityManager,
  table: string,
  where: Where,
  page: { firstPage: boolean; more: boolean; rows: number; planned?: Planned },
): Promise<Count> {
  if (page.firstPage && !page.more) return { value: page.rows, estimated: false };
  return listCount(em, table, where, page.planned);
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
  return keysetPage(em, list.table, rows!, { limit, keyset: list.keyset, where: filtered, firstPage: !cursor, toRow: list.toRow, planned: readPlanned(plan) });
}

/**
 * The distinct values of an indexed column, at most `limit`, without reading every row: a loose
 * index scan that jumps from one value to the next (a recursive CTE, one index probe per value).
 * `exists` keeps the values that have a row matching `scope` (e.g. success = false).
 */
export async function distinctValues(
  em: SqlEntityManager,
  table: string,
  column: string,
  scope: Where,
  limit = 100,
): Promise<string[]> {
  const scopeSql = scope.clauses.length ? ` and ${scope.clauses.join(' and ')}` : '';
  const rows = await em.execute(
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
