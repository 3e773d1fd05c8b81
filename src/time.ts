/**
 * Wall-clock arithmetic in an IANA time zone with nothing but Intl: the calendar schedule types keep
 * their local time of day across DST changes.
 */

export interface WallTime {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

/**
 * The zone as the runtime spells it ('europe/amsterdam' → 'Europe/Amsterdam'), or null when it is
 * not an IANA zone. Checked without the formatter cache, which then only ever sees canonical names:
 * spellings are unbounded.
 */
export function canonicalTimeZone(timeZone: string): string | null {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      // Year 0 (a western zone's wall clock at the start of year 1 UTC) is formatted as 1 BC.
      era: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a RangeError naming the zone when it is not a zone this runtime knows. */
export function assertTimeZone(timeZone: string): void {
  try {
    formatter(timeZone);
  } catch {
    throw new RangeError(`timeZone: unknown time zone ${JSON.stringify(timeZone)}`);
  }
}

export function toWall(date: Date, timeZone: string): WallTime {
  const parts: Record<string, number> = {};
  let bc = false;
  for (const part of formatter(timeZone).formatToParts(date)) {
    if (part.type === 'era') bc = part.value === 'BC';
    else if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  if (bc) parts.year = 1 - parts.year!;
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
    millisecond: date.getUTCMilliseconds(),
  };
}

/** 400 Gregorian years are exactly 146,097 days: shifting by them keeps every date's weekday and leap day. */
const FOUR_CENTURIES = 146_097 * 86_400_000;

/** Date.UTC, except that it reads years 0 to 99 as themselves instead of as 1900 to 1999. */
export function utc(year: number, month0: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  if (year >= 100) return Date.UTC(year, month0, day, hour, minute, second, ms);
  return Date.UTC(year + 400, month0, day, hour, minute, second, ms) - FOUR_CENTURIES;
}

function wallAsUtc(w: WallTime): number {
  return utc(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.millisecond);
}

/** The zone's offset from UTC, in ms, at an instant. */
function offsetAt(instant: number, timeZone: string): number {
  const w = toWall(new Date(instant), timeZone);
  return wallAsUtc({ ...w, millisecond: new Date(instant).getUTCMilliseconds() }) - instant;
}

/**
 * The instant a wall-clock time names in a zone. A time that occurs twice (clocks going back) gives
 * the earlier instant, so it runs once; a time that never occurs (clocks going forward) gives the
 * first instant after the gap: 02:30 on a spring-forward night becomes 03:00.
 */
export function fromWall(w: WallTime, timeZone: string): Date {
  const guess = wallAsUtc(w);
  const day = 86_400_000;
  const before = offsetAt(guess - day, timeZone);
  const after = offsetAt(guess + day, timeZone);
  const candidates = [...new Set([guess - before, guess - after])].filter((t) => wallAsUtc(toWall(new Date(t), timeZone)) === guess);
  if (candidates.length) return new Date(Math.min(...candidates));
  return new Date(gapEnd(guess - after, guess - before, timeZone));
}

/**
 * The instant a zone's offset changes between `lo` (old offset) and `hi` (new offset): the first
 * valid wall time after a gap. Bisection to the millisecond: about 22 steps for an hour's gap.
 */
function gapEnd(lo: number, hi: number, timeZone: string): number {
  const old = offsetAt(lo, timeZone);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(mid, timeZone) === old) lo = mid;
    else hi = mid;
  }
  return hi;
}

export function daysInMonth(year: number, month: number): number {
  return new Date(utc(year, month, 0)).getUTCDate();
}

/** Adds days on the calendar, keeping the time of day. */
export function addDays(date: Date, days: number, timeZone: string): Date {
  const w = toWall(date, timeZone);
  const shifted = new Date(utc(w.year, w.month - 1, w.day + days));
  return fromWall({ ...w, year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, day: shifted.getUTCDate() }, timeZone);
}
