import { Cron } from 'croner';
import { daysInMonth, fromWall, toWall, utc } from './time.js';

/** Django Q's schedule types, with the codes stored in `ormq_schedule.schedule_type`. */
export const SCHEDULE_TYPES = {
  O: 'Once',
  I: 'Minutes',
  H: 'Hourly',
  D: 'Daily',
  W: 'Weekly',
  BW: 'Biweekly',
  M: 'Monthly',
  BM: 'Bimonthly',
  Q: 'Quarterly',
  Y: 'Yearly',
  C: 'Cron',
} as const;

export type ScheduleType = keyof typeof SCHEDULE_TYPES;
/** A type's name as the admin shows it: 'Daily', 'Cron', … */
export type ScheduleTypeName = (typeof SCHEDULE_TYPES)[ScheduleType];

export function isScheduleType(value: unknown): value is ScheduleType {
  return typeof value === 'string' && Object.hasOwn(SCHEDULE_TYPES, value);
}

const CODES = new Map<string, ScheduleType>(
  Object.entries(SCHEDULE_TYPES).flatMap(([code, name]) => [
    [code.toLowerCase(), code as ScheduleType],
    [name.toLowerCase(), code as ScheduleType],
  ]),
);

/** The stored code of a type given by code or by name ('D', 'Daily', 'daily' → 'D'); null when neither. */
export function scheduleTypeCode(value: unknown): ScheduleType | null {
  return typeof value === 'string' ? (CODES.get(value.trim().toLowerCase()) ?? null) : null;
}

export interface ScheduleTiming {
  scheduleType: ScheduleType | ScheduleTypeName;
  minutes?: number | null;
  cron?: string | null;
  nextRun: Date;
  /** The instant the series counts from; default nextRun. */
  anchor?: Date | null;
  /** The schedule's own IANA zone; default the options' timeZone. */
  timeZone?: string | null;
}

export interface NextRunOptions {
  now?: Date;
  /** IANA zone whose wall clock the calendar types keep, for schedules without their own. Default UTC. */
  timeZone?: string;
  /**
   * true: the next slot after the current next run, so each missed slot runs (the most recent
   * `maxCatchUp` of them); false: the first slot after now. Cron always takes the first match after now.
   */
  catchUp?: boolean;
  /** With catchUp: at most this many missed slots run; older ones are skipped. Default 100. */
  maxCatchUp?: number;
}

/** How many missed slots a schedule catching up runs at most, unless the cluster says otherwise. */
export const DEFAULT_MAX_CATCH_UP = 100;

/** Parses a cron expression the way the scheduler will run it. Throws with a message on a bad one. */
export function parseCron(expression: string, timeZone = 'UTC'): Cron {
  const fields = expression.trim().split(/\s+/);
  const nickname = /^@(yearly|annually|monthly|weekly|daily|hourly)$/i.test(expression.trim());
  if (!nickname && (fields.length < 5 || fields.length > 6)) {
    throw new Error('expected 5 fields (minute hour day month weekday), or 6 with seconds first');
  }
  try {
    return new Cron(expression.trim(), { timezone: timeZone, paused: true });
  } catch (e) {
    throw new Error(plainCronError((e as Error).message));
  }
}

const CRON_RANGES: Record<string, string> = {
  second: 'second must be 0–59',
  minute: 'minute must be 0–59',
  hour: 'hour must be 0–23',
  day: 'day of the month must be 1–31',
  month: 'month must be 1–12 or JAN–DEC',
  dayOfWeek: 'weekday must be 0–7 or SUN–SAT (0 and 7 are Sunday)',
};

/** croner's message without its class name, in the words of the form's help. */
function plainCronError(message: string): string {
  const m = message.replace(/^CronPattern:\s*/, '');
  const range = /^Invalid value for (\w+)/.exec(m);
  if (range && CRON_RANGES[range[1]!]) return CRON_RANGES[range[1]!]!;
  if (/illegal stepping/i.test(m)) return 'a step (*/N) must be a whole number of 1 or more';
  const badRange = /illegal range: '([^']*)'/i.exec(m);
  if (badRange) return `${JSON.stringify(badRange[1])} is not a range (write from-to, e.g. 1-5)`;
  const chars = /entry (\d) \((.*)\) contains illegal characters/i.exec(m);
  if (chars) return `field ${chars[1]} (${JSON.stringify(chars[2])}) has characters a cron field cannot hold`;
  if (/configuration format/i.test(m)) return 'expected 5 fields (minute hour day month weekday), or 6 with seconds first';
  return m.replace(/^./, (c) => c.toLowerCase());
}

function cronAfter(expression: string, after: Date, timeZone: string): Date {
  const next = parseCron(expression, timeZone).nextRun(after);
  if (!next) throw new Error(`cron ${JSON.stringify(expression)} has no run after ${after.toISOString()}`);
  return next;
}

const DAY_PERIODS: Partial<Record<ScheduleType, number>> = { D: 1, W: 7, BW: 14 };
const MONTH_PERIODS: Partial<Record<ScheduleType, number>> = { M: 1, BM: 2, Q: 3, Y: 12 };

/**
 * A schedule's series: slot k is the anchor plus k periods, and `after(t)` is the index of the
 * first slot later than t. Both are arithmetic: the index is estimated from the elapsed time and
 * corrected by a step or two, so any distance costs the same.
 */
interface Series {
  at(k: number): Date;
  after(t: Date): number;
}

function intervalSeries(anchor: number, interval: number): Series {
  return {
    at: (k) => new Date(anchor + k * interval),
    after: (t) => Math.max(0, Math.floor((t.getTime() - anchor) / interval) + 1),
  };
}

function calendarSeries(anchor: Date, timeZone: string, unit: 'day' | 'month', period: number): Series {
  const a = toWall(anchor, timeZone);
  const at = (k: number): Date => {
    if (unit === 'day') {
      const date = new Date(utc(a.year, a.month - 1, a.day + k * period));
      return fromWall({ ...a, year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() }, timeZone);
    }
    const index = a.year * 12 + (a.month - 1) + k * period;
    const year = Math.floor(index / 12);
    const month = (index % 12) + 1;
    return fromWall({ ...a, year, month, day: Math.min(a.day, daysInMonth(year, month)) }, timeZone);
  };
  const estimate = (t: Date): number => {
    if (unit === 'day') return Math.floor((t.getTime() - anchor.getTime()) / (period * 86_400_000));
    const w = toWall(t, timeZone);
    return Math.floor((w.year * 12 + w.month - (a.year * 12 + a.month)) / period);
  };
  return {
    at,
    after(t) {
      // DST offsets and month lengths put the estimate at most one slot off either way.
      let k = Math.max(0, estimate(t));
      if (at(k) <= t) k++;
      if (at(k) <= t) k++;
      if (k > 0 && at(k - 1) > t) k--;
      if (k > 0 && at(k - 1) > t) k--;
      return k;
    },
  };
}

function series(s: ScheduleTiming, timeZone: string): Series {
  const type = typeOf(s);
  const anchor = s.anchor ?? s.nextRun;
  if (type === 'I' || type === 'H') {
    const minutes = type === 'H' ? 60 : (s.minutes ?? 0);
    if (!Number.isInteger(minutes) || minutes < 1) throw new Error('minutes must be a whole number ≥ 1');
    return intervalSeries(anchor.getTime(), minutes * 60_000);
  }
  if (DAY_PERIODS[type]) return calendarSeries(anchor, timeZone, 'day', DAY_PERIODS[type]);
  if (MONTH_PERIODS[type]) return calendarSeries(anchor, timeZone, 'month', MONTH_PERIODS[type]);
  throw new Error(`${SCHEDULE_TYPES[type]} schedules have no series of slots`);
}

function typeOf(s: ScheduleTiming): ScheduleType {
  const type = scheduleTypeCode(s.scheduleType);
  if (!type) throw new Error(`unknown schedule type ${JSON.stringify(s.scheduleType)}`);
  return type;
}

function zoneOf(s: ScheduleTiming, options: NextRunOptions): string {
  return s.timeZone || options.timeZone || 'UTC';
}

/** Slot k of a schedule's series: its anchor plus k periods, in its zone. Not for Once and Cron. */
export function runAt(s: ScheduleTiming, k: number, options: Pick<NextRunOptions, 'timeZone'> = {}): Date {
  return series(s, zoneOf(s, options)).at(k);
}

/**
 * The slot the scheduler runs for a due schedule: its next run, unless that is older than the most
 * recent `maxCatchUp` slots, which are all that catch-up replays.
 */
export function dueRun(s: ScheduleTiming, options: NextRunOptions = {}): Date {
  const type = typeOf(s);
  if (type === 'O' || type === 'C' || options.catchUp === false) return s.nextRun;
  const now = options.now ?? new Date();
  const max = options.maxCatchUp ?? DEFAULT_MAX_CATCH_UP;
  const x = series(s, zoneOf(s, options));
  const first = x.after(now) - max;
  return first > 0 && x.at(first) > s.nextRun ? x.at(first) : s.nextRun;
}

/**
 * The next run a due schedule gets after one scheduler pass. Once schedules keep their time (the
 * scheduler deletes them or sets repeats to 0). Cron takes the first match after now. With catchUp
 * the result may still be in the past: the scheduler runs such a schedule again, once per missed
 * slot, for at most the most recent `maxCatchUp` slots.
 */
export function nextRun(s: ScheduleTiming, options: NextRunOptions = {}): Date {
  const now = options.now ?? new Date();
  const timeZone = zoneOf(s, options);
  const type = typeOf(s);
  if (type === 'O') return s.nextRun;
  if (type === 'C') {
    if (!s.cron) throw new Error('cron is required for Cron schedules');
    return cronAfter(s.cron, s.nextRun > now ? s.nextRun : now, timeZone);
  }
  const x = series(s, timeZone);
  if (options.catchUp === false) return x.at(x.after(s.nextRun > now ? s.nextRun : now));
  const from = dueRun(s, { ...options, now, timeZone });
  return x.at(x.after(from));
}

/**
 * A schedule's first `count` runs from its next run on, as the scheduler will run them; fewer when
 * the series ends first: a cron with no later match (the cron library looks no further than year
 * 3000), or a run past year 9999, which PostgreSQL cannot store.
 */
export function upcomingRuns(s: ScheduleTiming, count: number, timeZone = 'UTC'): Date[] {
  const runs = [s.nextRun];
  const type = typeOf(s);
  if (type === 'O') return runs;
  const zone = s.timeZone || timeZone;
  let next: (i: number) => Date;
  if (type === 'C') {
    if (!s.cron) throw new Error('cron is required for Cron schedules');
    const cron = s.cron;
    next = () => cronAfter(cron, runs[runs.length - 1]!, zone);
  } else {
    const x = series(s, zone);
    const k = x.after(s.nextRun);
    next = (i) => x.at(k + i);
  }
  for (let i = 0; runs.length < count; i++) {
    let run: Date;
    try {
      run = next(i);
    } catch {
      break;
    }
    if (!(run.getUTCFullYear() <= 9999)) break;
    runs.push(run);
  }
  return runs;
}
