/**
 * Checks of bad input: the error they throw, naming each field that is wrong, the parsers of
 * plain fields (text, whole numbers, dates), and the rules a schedule must meet.
 */
import {
  nextRun as computeNextRun,
  parseCron,
  SCHEDULE_TYPES,
  scheduleTypeCode,
  type ScheduleType,
  type ScheduleTypeName,
} from './schedule-rules.js';
import { retryError } from './retries.js';
import { jsonField } from './json-field.js';
import { keyOption } from './queue-key.js';
import { canonicalTimeZone, daysInMonth } from './time.js';

/** Bad input, with one message per field that is wrong. Nothing was written. */
export class ValidationError extends Error {
  readonly errors: Record<string, string>;
  /** `message` replaces the default "Invalid <what>: field: problem; …" where a sentence says it better. */
  constructor(errors: Record<string, string>, what = 'input', message?: string) {
    super(
      message ??
        `Invalid ${what}: ${Object.entries(errors)
          .map(([field, message]) => `${field}: ${message}`)
          .join('; ')}`,
    );
    this.name = 'ValidationError';
    this.errors = errors;
  }
}

export type TaskNames = Iterable<string> | Record<string, unknown>;

export function taskNameSet(tasks: TaskNames | undefined): Set<string> | undefined {
  if (!tasks) return undefined;
  if (typeof (tasks as Iterable<string>)[Symbol.iterator] === 'function') return new Set(tasks as Iterable<string>);
  return new Set(Object.keys(tasks));
}

export interface ScheduleInput {
  name?: string | null;
  func?: string;
  hook?: string | null;
  args?: unknown[] | string;
  kwargs?: Record<string, unknown> | string;
  /** The code ('D') or the name ('Daily'). */
  scheduleType?: ScheduleType | ScheduleTypeName;
  minutes?: number | string | null;
  repeats?: number | string;
  nextRun?: Date | string | null;
  cron?: string | null;
  /** The queue key its runs go to; empty = 'default'. */
  key?: string | null;
  /** @deprecated Use `key`: its former name, accepted through 0.1.x; both given and different is an error. */
  cluster?: string | null;
  intendedDateKwarg?: string | null;
  /** IANA zone of the schedule's wall clock; empty = the cluster's timeZone. */
  timeZone?: string | null;
  /** Each run's maxAttempts (see `EnqueueOptions`); empty = the cluster's. */
  maxAttempts?: number | string | null;
  /** Each run's retry in seconds (see `EnqueueOptions`); empty = the cluster's. */
  retry?: number | string | null;
  /** Each run's priority (see `EnqueueOptions`); empty = 0. */
  priority?: number | string | null;
}

/** A schedule's fields after validation: what is stored. */
export interface ScheduleValues {
  name: string | null;
  func: string;
  hook: string | null;
  args: unknown[];
  kwargs: Record<string, unknown>;
  scheduleType: ScheduleType;
  minutes: number | null;
  repeats: number;
  nextRun: Date;
  cron: string | null;
  /** The queue key its runs go to; null = 'default' (stored in the column \`cluster\`). */
  key: string | null;
  intendedDateKwarg: string | null;
  /** The instant the series counts from: set with next run, and whenever the timing changes. */
  anchor: Date;
  timeZone: string | null;
  /** Each run's maxAttempts; null = the cluster's. */
  maxAttempts: number | null;
  /** Each run's retry in seconds; null = the cluster's. */
  retry: number | null;
  /** Each run's priority. */
  priority: number;
}

export interface ValidateScheduleOptions {
  /** Registered task names: func and hook must be among them when given. */
  tasks?: TaskNames;
  /** The stored schedule, when the input edits it: missing fields keep their stored values. */
  previous?: ScheduleValues;
  /** The zone of schedules without their own: the cluster's. Default UTC. */
  timeZone?: string;
  now?: Date;
}

const INT32_MAX = 2_147_483_647;
const INT32_MIN = -2_147_483_648;

/** An object of fields: not null, not an array. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An optional short string: null, or trimmed text within `max` characters. */
function optionalText(errors: Record<string, string>, field: string, value: unknown, max: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') {
    errors[field] = 'must be text';
    return null;
  }
  const text = value.trim();
  if (text.length > max) errors[field] = `must be at most ${max} characters`;
  return text === '' ? null : text;
}

function integer(errors: Record<string, string>, field: string, value: unknown, min: number, max: number): number | null {
  if (value === undefined || value === null || value === '') return null;
  const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    errors[field] = 'must be a whole number';
    return null;
  }
  if (n < min || n > max) {
    errors[field] = min === 1 ? `must be between 1 and ${max}` : `must be between ${min} and ${max}`;
    return null;
  }
  return n;
}

/**
 * A date PostgreSQL can store and read back: years 1 to 9999. JavaScript accepts years from
 * -271821 to 275760, which the database refuses or cannot parse in ISO form (`+010000-…`).
 */
function storable(d: Date): Date | null {
  if (Number.isNaN(d.getTime())) return null;
  const year = d.getUTCFullYear();
  return year >= 1 && year <= 9999 ? d : null;
}

/** The calendar date an ISO string starts with; JavaScript rolls 30 February over into March. */
const ISO_DATE = /^\s*(\d{4})-(\d{2})-(\d{2})(?!\d)/;

/** A valid date from a Date or a date string, with a year from 1 to 9999; else null. */
export function parseDate(value: unknown): Date | null {
  if (value instanceof Date) return storable(value);
  if (typeof value !== 'string' || value.trim() === '') return null;
  const m = ISO_DATE.exec(value);
  if (m && Number(m[3]) > daysInMonth(Number(m[1]), Number(m[2]))) return null;
  return storable(new Date(value));
}

/**
 * The rules a schedule must meet, shared by `schedule()` and the admin's form. Returns the values
 * to store, or throws a ValidationError naming every field that is wrong.
 */
export function validateSchedule(input: unknown, options: ValidateScheduleOptions = {}): ScheduleValues {
  if (!isPlainObject(input)) throw new ValidationError({ body: 'must be an object of schedule fields' }, 'schedule');
  const raw = input as ScheduleInput;
  const prev = options.previous;
  const has = (key: keyof ScheduleInput) => Object.hasOwn(raw, key) && raw[key] !== undefined;
  const pick = <K extends keyof ScheduleInput>(key: K, stored: unknown) => (has(key) ? raw[key] : stored);
  const errors: Record<string, string> = {};
  const names = taskNameSet(options.tasks);
  const now = options.now ?? new Date();

  const name = optionalText(errors, 'name', pick('name', prev?.name), 100);

  const funcRaw = pick('func', prev?.func);
  let func = '';
  if (typeof funcRaw !== 'string' || funcRaw.trim() === '') errors.func = 'is required';
  else {
    func = funcRaw.trim();
    if (func.length > 256) errors.func = 'must be at most 256 characters';
    else if (names && !names.has(func)) errors.func = `${JSON.stringify(func)} is not a registered task`;
  }

  const hook = optionalText(errors, 'hook', pick('hook', prev?.hook), 256);
  if (hook && names && !names.has(hook) && !errors.hook) errors.hook = `${JSON.stringify(hook)} is not a registered task`;

  const args = jsonField(errors, 'args', pick('args', prev?.args), Array.isArray, 'an array', [] as unknown[]);
  const kwargs = jsonField(errors, 'kwargs', pick('kwargs', prev?.kwargs), isPlainObject, 'an object', {} as Record<string, unknown>);

  const typeRaw = pick('scheduleType', prev?.scheduleType ?? 'O');
  const scheduleType: ScheduleType = scheduleTypeCode(typeRaw) ?? 'O';
  if (!scheduleTypeCode(typeRaw)) {
    errors.scheduleType = `must be one of ${Object.entries(SCHEDULE_TYPES)
      .map(([code, label]) => `${code} (${label})`)
      .join(', ')}`;
  }

  let timeZone = optionalText(errors, 'timeZone', pick('timeZone', prev?.timeZone), 64);
  if (timeZone !== null && !errors.timeZone) {
    // Stored as the runtime spells it.
    const canonical = canonicalTimeZone(timeZone);
    if (canonical === null) errors.timeZone = `must be an IANA time zone such as Europe/Amsterdam, not ${JSON.stringify(timeZone)}`;
    timeZone = canonical;
  }
  const zone = (!errors.timeZone && timeZone) || options.timeZone || 'UTC';

  let minutes = integer(errors, 'minutes', pick('minutes', prev?.minutes), 1, 32_767);
  if (scheduleType === 'I') {
    if (minutes === null && !errors.minutes) errors.minutes = 'is required for Minutes schedules (1 or more)';
  } else if (!has('minutes')) {
    minutes = scheduleType === prev?.scheduleType ? minutes : null;
  }

  const repeatsRaw = pick('repeats', prev?.repeats ?? -1);
  const repeats = integer(errors, 'repeats', repeatsRaw, INT32_MIN, INT32_MAX) ?? -1;

  let cron = optionalText(errors, 'cron', pick('cron', prev?.cron), 100);
  if (scheduleType === 'C') {
    if (!cron) {
      if (!errors.cron) errors.cron = 'is required for Cron schedules';
    } else if (!errors.cron) {
      try {
        // Valid fields can still name no date at all (31 February): the scheduler could never run it.
        if (!parseCron(cron, zone).nextRun(now)) errors.cron = 'never matches a date (e.g. 31 February): it has no next run';
      } catch (e) {
        errors.cron = `is not a valid cron expression: ${(e as Error).message}`;
      }
    }
  } else if (!has('cron')) {
    cron = null;
  }

  const keyGiven = keyOption(raw, errors);
  const key = optionalText(errors, keyGiven.field, keyGiven.given ? keyGiven.value : prev?.key, 100);
  const intendedDateKwarg = optionalText(errors, 'intendedDateKwarg', pick('intendedDateKwarg', prev?.intendedDateKwarg), 100);

  // Omitted, a next run is now (Django Q's default), for Cron the first match after now; on an
  // edit it is kept, unless the timing changed: then the new timing's first slot from now.
  const timingChanged =
    !!prev &&
    (scheduleType !== prev.scheduleType ||
      cron !== prev.cron ||
      timeZone !== prev.timeZone ||
      (scheduleType === 'I' && minutes !== prev.minutes));
  const timingValid = !errors.cron && !errors.scheduleType && !errors.timeZone;
  const firstCron = () => computeNextRun({ scheduleType, cron, nextRun: now }, { now, timeZone: zone, catchUp: false });
  let next: Date | null = null;
  if (has('nextRun') && raw.nextRun !== null && raw.nextRun !== '') {
    next = parseDate(raw.nextRun);
    if (!next) errors.nextRun = 'must be a date and time from year 1 to 9999';
  } else if (prev && !(has('nextRun') && (raw.nextRun === null || raw.nextRun === ''))) {
    next = prev.nextRun;
    if (timingChanged && timingValid) next = scheduleType === 'C' && cron ? firstCron() : prev.nextRun > now ? prev.nextRun : now;
  } else if (scheduleType === 'C') {
    if (cron && timingValid) next = firstCron();
  } else {
    next = now;
  }

  if (next && scheduleType === 'C' && cron && timingValid && !errors.nextRun) {
    // Runs are computed from the next run on; the cron library finds none from year 3000.
    if (!parseCron(cron, zone).nextRun(next)) errors.nextRun = 'is too far ahead: the cron has no run after it';
  }
  const maxAttempts = integer(errors, 'maxAttempts', pick('maxAttempts', prev?.maxAttempts), 0, INT32_MAX);
  const priority = integer(errors, 'priority', pick('priority', prev?.priority), -INT32_MAX - 1, INT32_MAX) ?? 0;
  const retryRaw = pick('retry', prev?.retry);
  let retry: number | null = null;
  if (retryRaw !== undefined && retryRaw !== null && retryRaw !== '') {
    const n = typeof retryRaw === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(retryRaw) ? Number(retryRaw) : retryRaw;
    const problem = retryError(n);
    if (problem) errors.retry = problem;
    else retry = n as number;
  }

  const anchor = prev && !timingChanged && next?.getTime() === prev.nextRun.getTime() ? prev.anchor : next;

  if (Object.keys(errors).length) throw new ValidationError(errors, 'schedule');
  return {
    name,
    func,
    hook,
    args,
    kwargs,
    scheduleType,
    minutes,
    repeats,
    nextRun: next!,
    cron,
    key,
    intendedDateKwarg,
    anchor: anchor!,
    timeZone,
    maxAttempts,
    retry,
    priority,
  };
}
