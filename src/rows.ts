/**
 * Plain objects for ormq's rows, as the producer API, the cluster's hooks and the admin's JSON
 * return them. Raw SQL results keep timestamps and bigints as strings; these functions type them.
 */
import type { ScheduleType } from './schedule-rules.js';
import type { RetryBackoff } from './retries.js';
import type { ScheduleValues } from './validate.js';

export interface TaskRecord {
  id: string;
  name: string;
  func: string;
  hook: string | null;
  args: unknown[];
  kwargs: Record<string, unknown>;
  result: unknown;
  group: string | null;
  cluster: string | null;
  enqueued: Date;
  started: Date;
  stopped: Date;
  success: boolean;
  attemptCount: number;
}

/** A stored schedule: its validated fields plus what the database keeps. */
export interface ScheduleRecord extends ScheduleValues {
  id: number;
  /** id of the last task this schedule created ("Last run") */
  task: string | null;
  /** optimistic lock: bumped by every change */
  version: number;
  /** while paused (repeats 0): the repeats it had, which resume restores */
  pausedRepeats: number | null;
  /** @deprecated Use `key`: the same value under its former name, through 0.1.x. */
  cluster: string | null;
}

/**
 * A task package as the cluster runs it and `QueuedRecord` gives it. ormq_queued.payload stores it
 * with kwargs, group, hook, timeout and save left out when they are at their defaults ({} and
 * null): see `StoredPackage` and `packageOf`.
 */
export interface TaskPackage {
  id: string;
  name: string;
  func: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  group: string | null;
  hook: string | null;
  /** seconds; null = the cluster's timeout */
  timeout: number | null;
  /** false: a success is not saved whatever saveLimit says */
  save: boolean | null;
  enqueued: string;
  /** the schedule that created it, if any */
  schedule?: number;
  /** its own maxAttempts, over the cluster's (absent: the cluster's) */
  maxAttempts?: number;
  /** seconds from a failure to its next attempt, or the backoff's base (absent: the cluster's) */
  retry?: number;
  /** its own backoff, over the cluster's retryBackoff (absent: the cluster's) */
  retryBackoff?: boolean | RetryBackoff;
  /** a step of a chain, with the steps after it (src/chains.ts) */
  chain?: ChainPlace & { rest: NextStep[] };
  /** a run of an iteration: the iteration's task id and this run's index (src/iterations.ts) */
  iter?: { id: string; n: number };
}

/** Where a chain step stands: the chain's id (its first step's), its step (from 1) of `steps`, and every step's task id. */
export interface ChainPlace {
  id: string;
  step: number;
  steps: number;
  ids: string[];
  /** Set on the saved step whose final failure stopped the chain. */
  stopped?: true;
}

/**
 * A chain step not enqueued yet: its queue key, its package, its runAt (an ISO time) or delay
 * (seconds), and its priority and serial key (queue columns, not payload fields).
 */
export interface NextStep {
  key: string;
  payload: StoredPackage;
  runAt?: string;
  delay?: number;
  priority?: number;
  serial?: string;
}

type Defaulted = 'kwargs' | 'group' | 'hook' | 'timeout' | 'save';

/** A package as stored in ormq_queued.payload: the fields at their defaults may be absent. */
export type StoredPackage = Omit<TaskPackage, Defaulted> & Partial<Pick<TaskPackage, Defaulted>>;

/** A stored package with its defaults filled in. */
export function packageOf(stored: StoredPackage): TaskPackage {
  return {
    ...stored,
    kwargs: stored.kwargs ?? {},
    group: stored.group ?? null,
    hook: stored.hook ?? null,
    timeout: stored.timeout ?? null,
    save: stored.save ?? null,
  };
}

export interface QueuedRecord {
  id: number;
  key: string;
  payload: TaskPackage;
  lock: Date | null;
}

type Row = Record<string, unknown>;

/** PostgreSQL's text of a timestamptz: '0001-01-01 00:00:00+00', an offset of hours, maybe minutes. */
const PG_TIME = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::(\d\d))?$/;
// Made ISO first: Date's own parser reads the years 1 to 99 of that text as 19xx or 20xx.
export const date = (v: unknown): Date => {
  if (v instanceof Date) return v;
  const m = typeof v === 'string' ? PG_TIME.exec(v) : null;
  return new Date(m ? `${m[1]}T${m[2]}${m[3]}:${m[4] ?? '00'}` : (v as string));
};
// node-postgres parses jsonb already: a string here is a JSON string value, not JSON text.
const json = <T>(v: unknown): T => v as T;

export function toTask(r: Row): TaskRecord {
  return {
    id: String(r.id).trim(),
    name: r.name as string,
    func: r.func as string,
    hook: (r.hook as string | null) ?? null,
    args: json(r.args),
    kwargs: json(r.kwargs),
    result: r.result === undefined ? null : json(r.result),
    group: (r.group as string | null) ?? null,
    cluster: (r.cluster as string | null) ?? null,
    enqueued: date(r.enqueued),
    started: date(r.started),
    stopped: date(r.stopped),
    success: r.success as boolean,
    attemptCount: Number(r.attempt_count),
  };
}

export function toSchedule(r: Row): ScheduleRecord {
  return {
    id: Number(r.id),
    name: (r.name as string | null) ?? null,
    func: r.func as string,
    hook: (r.hook as string | null) ?? null,
    args: json(r.args),
    kwargs: json(r.kwargs),
    scheduleType: r.schedule_type as ScheduleType,
    minutes: r.minutes === null ? null : Number(r.minutes),
    repeats: Number(r.repeats),
    nextRun: date(r.next_run),
    cron: (r.cron as string | null) ?? null,
    task: r.task === null ? null : String(r.task).trim(),
    key: (r.cluster as string | null) ?? null,
    cluster: (r.cluster as string | null) ?? null,
    intendedDateKwarg: (r.intended_date_kwarg as string | null) ?? null,
    anchor: date(r.anchor ?? r.next_run),
    timeZone: (r.time_zone as string | null) ?? null,
    version: Number(r.version),
    pausedRepeats: r.paused_repeats === null || r.paused_repeats === undefined ? null : Number(r.paused_repeats),
    maxAttempts: r.max_attempts === null || r.max_attempts === undefined ? null : Number(r.max_attempts),
    retry: r.retry === null || r.retry === undefined ? null : Number(r.retry),
    priority: Number(r.priority ?? 0),
  };
}
