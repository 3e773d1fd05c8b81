/**
 * A list's count that stays cheap at a million rows: exact when that is cheap, otherwise the
 * planner's estimate, marked as such.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import type { Where } from './filters.js';
import { db, type Statement } from '../db/run.js';

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
  const rows = await db(em).query(`select count(*) as n from ${from} ${where.sql}`, where.params);
  return Number(rows[0]!.n);
}

async function cappedCount(em: SqlEntityManager, table: string, where: Where, cap: number): Promise<number> {
  const rows = await db(em).query(`select count(*) as n from (select 1 from ${table} ${where.sql} limit ${cap + 1}) s`, where.params);
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
export async function pageCount(
  em: SqlEntityManager,
  table: string,
  where: Where,
  page: { firstPage: boolean; more: boolean; rows: number; planned?: Planned },
): Promise<Count> {
  if (page.firstPage && !page.more) return { value: page.rows, estimated: false };
  return listCount(em, table, where, page.planned);
}
