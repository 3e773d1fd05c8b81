/**
 * Schedule writes: create, edit, pause, resume, run now and delete. `schedule()` and the admin both
 * write through here, so a schedule is validated by one set of rules, a taken name is refused the
 * same way everywhere (a `ValidationError` on `name`), every change bumps `version`, and the
 * schedulers of the clusters a change touches are woken once each.
 */
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { SCHEDULE_CHANNEL } from './db/channels.js';
import { date, toSchedule, type ScheduleRecord } from './rows.js';
import type { ScheduleType } from './schedule-rules.js';
import { inSchema, schemaOf } from './table-names.js';
import type { TaskArgs, TaskName } from './registry.js';
import { ValidationError, validateSchedule, type ScheduleInput, type ScheduleValues, type TaskNames } from './validate.js';
import { db } from './db/run.js';

type Row = Record<string, unknown>;

export const SCHEDULE_COLUMNS =
  'id, name, func, hook, args, kwargs, schedule_type, minutes, repeats, next_run, cron, task, cluster, intended_date_kwarg, anchor, time_zone, paused_repeats, version, max_attempts, retry, priority';

const NAME_TAKEN = 'is already used by another schedule';

function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: string })?.code === '23505' || /unique constraint/i.test(String((e as Error)?.message));
}

/** A stored row as the validated values an edit starts from. */
export function scheduleValues(r: Row): ScheduleValues {
  return {
    name: (r.name as string | null) ?? null,
    func: r.func as string,
    hook: (r.hook as string | null) ?? null,
    args: r.args as unknown[],
    kwargs: r.kwargs as Record<string, unknown>,
    scheduleType: r.schedule_type as ScheduleType,
    minutes: r.minutes === null || r.minutes === undefined ? null : Number(r.minutes),
    repeats: Number(r.repeats),
    nextRun: date(r.next_run),
    cron: (r.cron as string | null) ?? null,
    key: (r.cluster as string | null) ?? null,
    intendedDateKwarg: (r.intended_date_kwarg as string | null) ?? null,
    anchor: date(r.anchor ?? r.next_run),
    timeZone: (r.time_zone as string | null) ?? null,
    maxAttempts: r.max_attempts === null || r.max_attempts === undefined ? null : Number(r.max_attempts),
    retry: r.retry === null || r.retry === undefined ? null : Number(r.retry),
    priority: Number(r.priority ?? 0),
  };
}

/** A schedule's own retry settings, as each run's package carries them (left out when the cluster's apply). */
export function retryOptions(s: { maxAttempts: number | null; retry: number | null; priority?: number }): {
  maxAttempts?: number;
  retry?: number;
  priority?: number;
} {
  return {
    ...(s.maxAttempts !== null && { maxAttempts: s.maxAttempts }),
    ...(s.retry !== null && { retry: s.retry }),
    ...(s.priority && { priority: s.priority }),
  };
}

/** Wakes the scheduler of each cluster once; null is the default cluster's (''). Delivered at commit. */
export async function notifySchedulers(em: SqlEntityManager, clusters: Iterable<unknown>): Promise<void> {
  for (const c of new Set([...clusters].map((v) => (v as string | null) ?? ''))) {
    await db(em).query('select pg_notify(?, ?)', [SCHEDULE_CHANNEL, c]);
  }
}

const INSERT = `insert into ormq_schedule (name, func, hook, args, kwargs, schedule_type, minutes, repeats, next_run, cron, cluster,
  intended_date_kwarg, anchor, time_zone, max_attempts, retry, priority) values (?, ?, ?, ?::jsonb, ?::jsonb, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning ${SCHEDULE_COLUMNS}`;

/** Repeats set to 0 pause the schedule and keep the count it had, as Pause does; any other value ends the pause. */
const UPDATE = `update ormq_schedule set name = ?, func = ?, hook = ?, args = ?::jsonb, kwargs = ?::jsonb, schedule_type = ?, minutes = ?,
  repeats = ?, next_run = ?, cron = ?, cluster = ?, intended_date_kwarg = ?, anchor = ?, time_zone = ?,
  max_attempts = ?, retry = ?, priority = ?, paused_repeats = case when ?::int = 0 then coalesce(paused_repeats, nullif(repeats, 0)) end, version = version + 1
  where id = ? returning ${SCHEDULE_COLUMNS}`;

const params = (v: ScheduleValues) => [
  v.name,
  v.func,
  v.hook,
  JSON.stringify(v.args),
  JSON.stringify(v.kwargs),
  v.scheduleType,
  v.minutes,
  v.repeats,
  v.nextRun.toISOString(),
  v.cron,
  v.key,
  v.intendedDateKwarg,
  v.anchor.toISOString(),
  v.timeZone,
  v.maxAttempts,
  v.retry,
  v.priority,
];

/**
 * Writes validated values: a new schedule, or over schedule `id` (whose stored key is
 * `previousKey`, woken too when the key changes). A name another schedule has, checked
 * first or lost to a concurrent write, is a ValidationError on `name`. Returns the stored row.
 */
export async function saveSchedule(
  em: SqlEntityManager,
  v: ScheduleValues,
  id: number | null = null,
  previousKey?: string | null,
): Promise<Row> {
  if (v.name !== null) {
    const taken = await db(em).query('select 1 from ormq_schedule where name = ? and id <> ?', [v.name, id ?? 0]);
    if (taken.length) throw new ValidationError({ name: NAME_TAKEN }, 'schedule');
  }
  let rows: Row[];
  try {
    rows = await db(em).query(id === null ? INSERT : UPDATE, id === null ? params(v) : [...params(v), v.repeats, id]);
  } catch (e) {
    if (isUniqueViolation(e)) throw new ValidationError({ name: NAME_TAKEN }, 'schedule');
    throw e;
  }
  await notifySchedulers(em, id === null ? [v.key] : [previousKey, v.key]);
  return rows[0]!;
}

/** The stored schedule, locked for an edit in `em`'s transaction; undefined when it does not exist. */
export async function lockSchedule(em: SqlEntityManager, id: number): Promise<Row | undefined> {
  return db(em).queryOne(`select ${SCHEDULE_COLUMNS} from ormq_schedule where id = ? for update`, [id]);
}

/** Rows of schedules a change applies to: their id and cluster at least. */
export interface ScheduleOptions {
  /** Registered task names: func and hook must be among them. */
  tasks?: TaskNames;
  /**
   * A schedule of the same name already exists: 'error' (default) refuses it (a ValidationError on
   * `name`); 'keep' leaves it as it is; 'update' writes this declaration over it: func, hook, args,
   * kwargs, key, intended-date kwarg, maxAttempts, retry and timing. Its next run moves only when the timing changed
   * or `nextRun` is given, and its repeats (and a pause set in the admin) stay. For schedules
   * declared at every start-up.
   */
  ifExists?: 'error' | 'keep' | 'update';
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
  /** The zone of a schedule without its own (the cluster's timeZone): a Cron schedule's first run is computed in it. */
  timeZone?: string;
}

/** `schedule`'s input with func, hook and args checked against the declared task registry. */
export type ScheduleSpec<F extends TaskName = TaskName> = Omit<ScheduleInput, 'func' | 'hook' | 'args'> & {
  func: F;
  hook?: TaskName | null;
  /** The function's parameters, or the same as JSON text. */
  args?: TaskArgs<F> | string;
};

/** The timing columns: when one of them changes, an updated declaration's next run moves. */
const TIMING = ['schedule_type', 'minutes', 'cron', 'time_zone'];
const DECLARED = ['func', 'hook', 'args', 'kwargs', ...TIMING, 'cluster', 'intended_date_kwarg', 'max_attempts', 'retry', 'priority'];
const both = (cols: string[]) =>
  `(${cols.map((c) => `s.${c}`).join(', ')}) is distinct from (${cols.map((c) => `excluded.${c}`).join(', ')})`;

/**
 * One statement whatever the name finds: the insert, the update of a declaration that changed, or
 * (neither written) the stored row. $moveNext: nextRun was given, so it is the next run.
 */
const UPSERT = (update: boolean) => `with w as (
  ${INSERT.replace('insert into ormq_schedule', 'insert into ormq_schedule as s').replace(/ returning .*$/s, '')}
  on conflict (name) do ${
    update
      ? `update set ${DECLARED.map((c) => `${c} = excluded.${c}`).join(', ')},
    next_run = case when ?::boolean or ${both(TIMING)} then excluded.next_run else s.next_run end,
    anchor = case when ?::boolean or ${both(TIMING)} then excluded.anchor else s.anchor end,
    version = s.version + 1
  where ${both(DECLARED)} or (?::boolean and s.next_run is distinct from excluded.next_run)`
      : 'nothing'
  }
  returning ${SCHEDULE_COLUMNS}, true as written)
select * from w union all select ${SCHEDULE_COLUMNS}, false from ormq_schedule where name = ? and not exists (select 1 from w)`;

/**
 * Saves a schedule, validated by the admin form's rules; errors name their fields. Without a next
 * run it runs now (a Cron schedule at its first match after now). With a declared registry, `func`
 * and `hook` must be registered names and `args` the function's parameters.
 */
export async function schedule<F extends TaskName>(
  em: EntityManager,
  input: ScheduleSpec<F>,
  options: ScheduleOptions = {},
): Promise<ScheduleRecord> {
  const ifExists = options.ifExists ?? 'error';
  if (!['error', 'keep', 'update'].includes(ifExists))
    throw new ValidationError({ ifExists: "must be 'error', 'keep' or 'update'" }, 'options');
  const v = validateSchedule(input as ScheduleInput, options);
  const tx = inSchema(em, schemaOf(em, options.schema)) as SqlEntityManager;
  if (ifExists === 'error') return toSchedule(await saveSchedule(tx, v));
  if (v.name === null)
    throw new ValidationError({ name: `is required with ifExists: '${ifExists}' (it is what finds the schedule)` }, 'schedule');
  const given = input.nextRun !== undefined && input.nextRun !== null && input.nextRun !== '';
  const extra = ifExists === 'update' ? [given, given, given] : [];
  const row = await db(tx).queryOne(UPSERT(ifExists === 'update'), [...params(v), ...extra, v.name]);
  if (row!.written) await notifySchedulers(tx, [v.key]);
  return toSchedule(row!);
}
