import { Cron } from 'croner';
import { addDays, addMonths } from './time.js';

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

export function isScheduleType(value: unknown): value is ScheduleType {
  return typeof value === 'string' && Object.hasOwn(SCHEDULE_TYPES, value);
}

export interface ScheduleTiming {
  scheduleType: ScheduleType;
  minutes?: number | null;
  cron?: string | null;
  nextRun: Date;
}

export interface NextRunOptions {
  now?: Date;
  /** IANA zone whose wall clock the calendar types keep. Default UTC. */
  timeZone?: string;
  /** true: one step from the current next run (each missed slot runs); false: the first slot after now. */
  catchUp?: boolean;
}

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
  second: 'second must be 0–59', minute: 'minute must be 0–59', hour: 'hour must be 0–23',
  day: 'day of the month must be 1–31', month: 'month must be 1–12 or JAN–DEC', dayOfWeek: 'weekday must be 0–7 or SUN–SAT (0 and 7 are Sunday)',
};

/** croner's message without its class name, in the words of the form's help. */
export function plainCronError(message: string): string {
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

function step(s: ScheduleTiming, from: Date, timeZone: string): Date {
  switch (s.scheduleType) {
    case 'O':
      return from;
    case 'I': {
      const minutes = s.minutes ?? 0;
      if (!Number.isInteger(minutes) || minutes < 1) throw new Error('minutes must be a whole number ≥ 1');
      return new Date(from.getTime() + minutes * 60_000);
    }
    case 'H':
      return new Date(from.getTime() + 3_600_000);
    case 'D':
      return addDays(from, 1, timeZone);
    case 'W':
      return addDays(from, 7, timeZone);
    case 'BW':
      return addDays(from, 14, timeZone);
    case 'M':
      return addMonths(from, 1, timeZone);
    case 'BM':
      return addMonths(from, 2, timeZone);
    case 'Q':
      return addMonths(from, 3, timeZone);
    case 'Y':
      return addMonths(from, 12, timeZone);
    case 'C':
      if (!s.cron) throw new Error('cron is required for Cron schedules');
      return cronAfter(s.cron, from, timeZone);
  }
}

/**
 * The next run a due schedule gets after one scheduler pass. Once schedules keep their time (the
 * scheduler deletes them or sets repeats to 0). With catchUp the result may still be in the past:
 * the scheduler runs such a schedule again, once per missed slot.
 */
export function nextRun(s: ScheduleTiming, options: NextRunOptions = {}): Date {
  const now = options.now ?? new Date();
  const timeZone = options.timeZone ?? 'UTC';
  const catchUp = options.catchUp ?? true;
  if (s.scheduleType === 'O') return s.nextRun;
  if (catchUp) return step(s, s.nextRun, timeZone);
  if (s.scheduleType === 'C') {
    return cronAfter(s.cron ?? '', s.nextRun > now ? s.nextRun : now, timeZone);
  }
  if (s.scheduleType === 'I' || s.scheduleType === 'H') {
    const interval = s.scheduleType === 'H' ? 3_600_000 : (s.minutes ?? 0) * 60_000;
    if (!(interval > 0)) return step(s, s.nextRun, timeZone); // throws the minutes error
    const behind = now.getTime() - s.nextRun.getTime();
    const steps = behind < 0 ? 1 : Math.floor(behind / interval) + 1;
    return new Date(s.nextRun.getTime() + steps * interval);
  }
  // Calendar types: step on the calendar so that wall-clock time and month ends are kept.
  let next = step(s, s.nextRun, timeZone);
  for (let i = 0; next <= now && i < 100_000; i++) next = step(s, next, timeZone);
  return next;
}

/** The next `count` run times after a schedule's next run, for previews. */
export function upcomingRuns(s: ScheduleTiming, count: number, timeZone = 'UTC'): Date[] {
  const runs = [s.nextRun];
  if (s.scheduleType === 'O') return runs;
  while (runs.length < count) runs.push(step(s, runs[runs.length - 1]!, timeZone));
  return runs;
}
