/**
 * A list's filters as SQL: the WHERE clause under construction and the checks of each kind of filter
 * value a list query or an "all matching" filter object carries.
 */
import { badRequest } from './http.js';
import { daysInMonth } from '../time.js';

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
export function isInstant(v: string): boolean {
  const m = ISO_INSTANT.exec(v);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = m
    .slice(1)
    .map((x) => (x === undefined ? 0 : Number(x))) as number[];
  return (
    year! >= 1 &&
    month! >= 1 &&
    month! <= 12 &&
    day! >= 1 &&
    day! <= daysInMonth(year!, month!) &&
    hour! <= 23 &&
    minute! <= 59 &&
    second! <= 59 &&
    offsetHour! <= 15 &&
    offsetMinute! <= 59
  );
}

/** Reads one optional instant (ISO 8601 with a zone) from a list query or a filter object. */
export function timeFilter(filter: Record<string, unknown>, name: string): string | null {
  const v = filter[name];
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || !isInstant(v)) {
    throw badRequest(`${name} must be an ISO 8601 date and time with a zone, e.g. 2024-05-01T12:00:00Z`, {
      [name]: 'must be an ISO 8601 date and time with a zone',
    });
  }
  return v;
}

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 50;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 500)
    throw badRequest('limit must be a whole number from 1 to 500', { limit: 'must be between 1 and 500' });
  return n;
}
