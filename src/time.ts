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
  for (const part of formatter(timeZone).formatToParts(date)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
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

function wallAsUtc(w: WallTime): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.millisecond);
}

/** The zone's offset from UTC, in ms, at an instant. */
function offsetAt(instant: number, timeZone: string): number {
  const w = toWall(new Date(instant), timeZone);
  return wallAsUtc({ ...w, millisecond: new Date(instant).getUTCMilliseconds() }) - instant;
}

/**
 * The instant a wall-clock time names in a zone. A time that occurs twice (clocks going back) gives
 * the earlier instant; a time that never occurs (clocks going forward) moves forward by the gap,
 * so 02:30 on a spring-forward night becomes 03:30.
 */
export function fromWall(w: WallTime, timeZone: string): Date {
  const guess = wallAsUtc(w);
  const day = 86_400_000;
  const before = offsetAt(guess - day, timeZone);
  const after = offsetAt(guess + day, timeZone);
  const candidates = [...new Set([guess - before, guess - after])].filter(
    (t) => wallAsUtc(toWall(new Date(t), timeZone)) === guess,
  );
  if (candidates.length) return new Date(Math.min(...candidates));
  return new Date(guess - before);
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Adds days on the calendar, keeping the time of day. */
export function addDays(date: Date, days: number, timeZone: string): Date {
  const w = toWall(date, timeZone);
  const shifted = new Date(Date.UTC(w.year, w.month - 1, w.day + days));
  return fromWall(
    { ...w, year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, day: shifted.getUTCDate() },
    timeZone,
  );
}

/**
 * Adds months on the calendar, keeping the time of day. A day past the target month's end clamps
 * to that end; a date on its month's last day stays on month ends (31 Jan → 28 Feb → 31 Mar), the
 * end-of-month convention, so a month-end schedule never drifts to the 28th.
 */
export function addMonths(date: Date, months: number, timeZone: string): Date {
  const w = toWall(date, timeZone);
  const index = w.year * 12 + (w.month - 1) + months;
  const year = Math.floor(index / 12);
  const month = (index % 12) + 1;
  const last = daysInMonth(year, month);
  const onMonthEnd = w.day === daysInMonth(w.year, w.month);
  const day = onMonthEnd ? last : Math.min(w.day, last);
  return fromWall({ ...w, year, month, day }, timeZone);
}
