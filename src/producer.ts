import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { humanName, newTaskId } from './names.js';
import { isStorableJson, UNSTORABLE_MESSAGE } from './storable.js';
import { toSchedule, type ScheduleRecord, type TaskPackage } from './rows.js';
import { ValidationError, validateSchedule, type ScheduleInput, type TaskNames } from './validate.js';

/** LISTEN/NOTIFY channels: new packages (payload = queue key) and schedule changes. */
export const QUEUE_CHANNEL = 'ormq_queued';
export const SCHEDULE_CHANNEL = 'ormq_schedule';

export interface EnqueueOptions {
  /** Human-readable name; default four words derived from the id. */
  name?: string;
  group?: string | null;
  /** Registered task called with the saved task after it finishes. */
  hook?: string | null;
  /** Passed to the function as a final options argument when non-empty. */
  kwargs?: Record<string, unknown>;
  /** The queue key: the name of the cluster that should run it. Default 'default'. */
  cluster?: string;
  /** Seconds; default the cluster's timeout. */
  timeout?: number | null;
  /** false: don't save the result on success, whatever the cluster's saveLimit. */
  save?: boolean | null;
  /** Use this task id (32 hex digits) instead of a new one. */
  id?: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shortText(errors: Record<string, string>, field: string, v: unknown, max: number, required = false) {
  if (v === undefined || v === null) {
    if (required) errors[field] = 'is required';
    return;
  }
  if (typeof v !== 'string' || (required && v.trim() === '')) errors[field] = required ? 'must be a non-empty string' : 'must be a string';
  else if (v.length > max) errors[field] = `must be at most ${max} characters`;
}

/** Checks and builds a task package; throws a ValidationError naming each bad field. */
export function buildPackage(func: unknown, args: unknown = [], opts: unknown = {}): { key: string; payload: TaskPackage } {
  const errors: Record<string, string> = {};
  shortText(errors, 'func', func, 256, true);
  if (!Array.isArray(args)) errors.args = 'must be an array';
  if (!isPlainObject(opts)) throw new ValidationError({ options: 'must be an object' }, 'task');
  const options = opts as EnqueueOptions;
  if (options.kwargs !== undefined && !isPlainObject(options.kwargs)) errors.kwargs = 'must be an object';
  shortText(errors, 'name', options.name, 100);
  shortText(errors, 'group', options.group, 100);
  shortText(errors, 'hook', options.hook, 256);
  shortText(errors, 'cluster', options.cluster, 100);
  if (options.timeout !== undefined && options.timeout !== null && !(typeof options.timeout === 'number' && options.timeout > 0)) {
    errors.timeout = 'must be a number of seconds greater than 0';
  }
  if (options.save !== undefined && options.save !== null && typeof options.save !== 'boolean') errors.save = 'must be true or false';
  if (options.id !== undefined && !(typeof options.id === 'string' && /^[0-9a-f]{32}$/.test(options.id))) {
    errors.id = 'must be 32 lowercase hex digits';
  }
  if (Object.keys(errors).length) throw new ValidationError(errors, 'task');
  const id = options.id ?? newTaskId();
  const payload: TaskPackage = {
    id,
    name: options.name ?? humanName(id),
    func: (func as string).trim(),
    args: args as unknown[],
    kwargs: options.kwargs ?? {},
    group: options.group ?? null,
    hook: options.hook ?? null,
    timeout: options.timeout ?? null,
    save: options.save ?? null,
    enqueued: new Date().toISOString(),
  };
  // Each part is written and checked once, so a refusal names its field without a second pass over a large value.
  const parts = { args: payload.args, kwargs: payload.kwargs, options: { ...payload, args: [], kwargs: {} } };
  for (const [field, value] of Object.entries(parts)) {
    let text: string;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      throw new ValidationError({ [field]: `must be JSON-serialisable (${(e as Error).message})` }, 'task');
    }
    if (!isStorableJson(text)) throw new ValidationError({ [field]: UNSTORABLE_MESSAGE }, 'task');
  }
  return { key: options.cluster ?? 'default', payload };
}

const INSERT_PACKAGE =
  'with wake as (select pg_notify(?, ?)) insert into ormq_queued (key, payload) select ?, ?::jsonb from wake returning id';

/** Inserts a built package (and wakes the clusters listening for its key) through `em`. */
export async function insertPackage(em: EntityManager, key: string, payload: TaskPackage): Promise<number> {
  const rows = await (em as SqlEntityManager).execute(INSERT_PACKAGE, [QUEUE_CHANNEL, key, key, JSON.stringify(payload)]);
  return Number(rows[0]!.id);
}

/**
 * Adds a task to the queue and returns its id. Given the host's transactional `em`, the package is
 * written in that transaction: it commits, and wakes the clusters, only if the host's work commits.
 */
export async function enqueue(em: EntityManager, func: string, args: unknown[] = [], options: EnqueueOptions = {}): Promise<string> {
  const { key, payload } = buildPackage(func, args, options);
  await insertPackage(em, key, payload);
  return payload.id;
}

export interface ScheduleOptions {
  /** Registered task names: func and hook must be among them. */
  tasks?: TaskNames;
  /** The zone of a schedule without its own (the cluster's timeZone): a Cron schedule's first run is computed in it. */
  timeZone?: string;
}

const SCHEDULE_COLUMNS =
  'id, name, func, hook, args, kwargs, schedule_type, minutes, repeats, next_run, cron, task, cluster, intended_date_kwarg, anchor, time_zone, paused_repeats, version';

export function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: string })?.code === '23505' || /unique constraint/i.test(String((e as Error)?.message));
}

/**
 * Saves a new schedule, validated by the admin form's rules; errors name their fields. Without a
 * next run it runs now (a Cron schedule at its first match after now).
 */
export async function schedule(em: EntityManager, input: ScheduleInput, options: ScheduleOptions = {}): Promise<ScheduleRecord> {
  const v = validateSchedule(input, options);
  const sql = em as SqlEntityManager;
  if (v.name !== null) {
    const taken = await sql.execute('select 1 from ormq_schedule where name = ?', [v.name]);
    if (taken.length) throw new ValidationError({ name: 'is already used by another schedule' }, 'schedule');
  }
  try {
    const rows = await sql.execute(
      `insert into ormq_schedule (name, func, hook, args, kwargs, schedule_type, minutes, repeats, next_run, cron, cluster, intended_date_kwarg, anchor, time_zone)
       values (?, ?, ?, ?::jsonb, ?::jsonb, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning ${SCHEDULE_COLUMNS}`,
      [v.name, v.func, v.hook, JSON.stringify(v.args), JSON.stringify(v.kwargs), v.scheduleType, v.minutes, v.repeats,
        v.nextRun.toISOString(), v.cron, v.cluster, v.intendedDateKwarg, v.anchor.toISOString(), v.timeZone],
    );
    await sql.execute('select pg_notify(?, ?)', [SCHEDULE_CHANNEL, v.cluster ?? '']);
    return toSchedule(rows[0]!);
  } catch (e) {
    if (isUniqueViolation(e)) throw new ValidationError({ name: 'is already used by another schedule' }, 'schedule');
    throw e;
  }
}

export { SCHEDULE_COLUMNS };
