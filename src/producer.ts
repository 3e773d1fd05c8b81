import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { humanName, newTaskId } from './names.js';
import { isStorableJson, UNSTORABLE_MESSAGE } from './storable.js';
import { toSchedule, type ScheduleRecord, type TaskPackage } from './rows.js';
import { isPlainObject, parseDate, ValidationError, validateSchedule, type ScheduleInput, type TaskNames } from './validate.js';
import type { TaskArgs, TaskName } from './registry.js';
import { inSchema, qualify, schemaOf } from './table-names.js';

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
  /** Not claimed before this time. */
  runAt?: Date;
  /** Not claimed before this many seconds from now (the database's clock). */
  delay?: number;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
}

/** A built package: the queue key, what the cluster runs, and when it may first be claimed. */
export interface BuiltPackage {
  key: string;
  payload: TaskPackage;
  /** A Date, or seconds from now on the database's clock; null: at once. */
  runAt: Date | number | null;
  /**
   * Take args and kwargs from a stored row instead of the payload, copied by PostgreSQL: the admin's
   * resubmit (a task) and run now (a schedule, whose kwargs the payload's own kwargs extend) never
   * pass large arguments through Node.
   */
  copyArgs?: { task: string } | { schedule: number };
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
export function buildPackage(func: unknown, args: unknown = [], opts: unknown = {}): BuiltPackage {
  const built = assemble(func, args, opts);
  checkJson(built.payload);
  return built;
}

/** buildPackage less the JSON check, which enqueueMany makes once over the whole batch. */
function assemble(func: unknown, args: unknown, opts: unknown): BuiltPackage {
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
  let runAt: Date | number | null = null;
  if (options.runAt !== undefined && options.delay !== undefined) errors.runAt = 'cannot be given with delay';
  else if (options.runAt !== undefined) {
    const d = options.runAt instanceof Date ? parseDate(options.runAt) : null;
    if (!d) errors.runAt = 'must be a valid Date from year 1 to 9999';
    else runAt = d;
  } else if (options.delay !== undefined) {
    if (!(typeof options.delay === 'number' && Number.isFinite(options.delay) && options.delay >= 0 && options.delay <= 3e9)) {
      errors.delay = 'must be a number of seconds from 0 to 3,000,000,000';
    } else runAt = options.delay;
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
  return { key: options.cluster ?? 'default', payload, runAt };
}

/**
 * The package must be JSON PostgreSQL can store; the error names the field that is not. Each part
 * is written and checked once, so a refusal names its field without a second pass over a large value.
 */
function checkJson(payload: TaskPackage): void {
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
}

/**
 * Every package in one statement, in order (ids ascending), and one NOTIFY per distinct key.
 * Notifications are delivered at commit, so clusters never wake for packages that were rolled back.
 * A delay in seconds is added to the database's clock, like the claim's own comparison.
 */
const INSERT_PACKAGES = `with input as (
    select e->>'k' as key, e->'p' as payload, n,
      case when e->>'t' is not null then (e->>'t')::timestamptz
           when e->>'d' is not null then now() + make_interval(secs => (e->>'d')::float8) end as run_at,
      (e->>'ct')::char(32) as copy_task, (e->>'cs')::int as copy_schedule
    from jsonb_array_elements($1::jsonb) with ordinality as t(e, n)
  ), ins as (
    insert into ormq_queued (key, payload, run_at)
    select i.key,
      case when i.copy_task is not null then i.payload || jsonb_build_object('args', t.args, 'kwargs', t.kwargs)
           when i.copy_schedule is not null then i.payload || jsonb_build_object('args', s.args, 'kwargs', s.kwargs || (i.payload->'kwargs'))
           else i.payload end,
      i.run_at
    from input i
    left join ormq_task t on t.id = i.copy_task
    left join ormq_schedule s on s.id = i.copy_schedule
    order by i.n returning id
  ), wake as (
    select count(pg_notify($2, key)) as woke from (select distinct key from input) k
  )
  select (select count(*) from ins) as inserted, (select woke from wake) as woke`;

/**
 * Runs one statement with real bind parameters on `em`'s connection, inside its transaction when it
 * is in one. em.execute would escape the values into the SQL text, which for a 10,000-task batch
 * costs more than the insert itself.
 */
async function bound(em: EntityManager, text: string, parameters: unknown[]): Promise<Record<string, unknown>[]> {
  const kysely = (em as SqlEntityManager).getKysely();
  const sql = qualify(text, schemaOf(em));
  const compiled = { sql, parameters, query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] }, queryId: { queryId: 'ormq' } };
  const { rows } = await kysely.executeQuery(compiled as unknown as Parameters<typeof kysely.executeQuery>[0]);
  return rows as Record<string, unknown>[];
}

/** The statement's input: one JSON array, written in one pass. */
function serialize(packages: readonly BuiltPackage[]): string {
  return JSON.stringify(
    packages.map(({ key, payload, runAt, copyArgs }) => ({
      k: key,
      p: payload,
      t: runAt instanceof Date ? runAt.toISOString() : undefined,
      d: typeof runAt === 'number' ? runAt : undefined,
      ct: copyArgs && 'task' in copyArgs ? copyArgs.task : undefined,
      cs: copyArgs && 'schedule' in copyArgs ? copyArgs.schedule : undefined,
    })),
  );
}

/** Inserts built packages (and wakes the clusters listening for their keys) through `em`. */
export async function insertPackages(em: EntityManager, packages: readonly BuiltPackage[], text = serialize(packages)): Promise<number> {
  if (!packages.length) return 0;
  const rows = await bound(em, INSERT_PACKAGES, [text, QUEUE_CHANNEL]);
  return Number(rows[0]!.inserted);
}

/** One package: see insertPackages. */
export async function insertPackage(em: EntityManager, key: string, payload: TaskPackage, runAt: Date | number | null = null): Promise<void> {
  await insertPackages(em, [{ key, payload, runAt }]);
}

/**
 * Adds a task to the queue and returns its id. Given the host's transactional `em`, the package is
 * written in that transaction: it commits, and wakes the clusters, only if the host's work commits.
 * With a registry declared (see `TaskRegistry`), `func` and `args` are checked at compile time.
 */
export async function enqueue<F extends TaskName>(em: EntityManager, func: F, args?: TaskArgs<F>, options: EnqueueOptions = {}): Promise<string> {
  const built = buildPackage(func, args ?? [], options);
  await insertPackages(inSchema(em, schemaOf(em, options.schema)), [built]);
  return built.payload.id;
}

/** One task of `enqueueMany`: enqueue's func and args with its options beside them. */
export type TaskSpec<F extends TaskName = TaskName> = F extends TaskName ? { func: F; args?: TaskArgs<F> } & EnqueueOptions : never;

/**
 * Adds many tasks in one statement and returns their ids, in order. Every task is checked first:
 * one bad task throws a ValidationError naming it (`tasks[3].func`) and nothing is written.
 */
export async function enqueueMany(em: EntityManager, tasks: readonly TaskSpec[], options: { schema?: string } = {}): Promise<string[]> {
  if (!Array.isArray(tasks)) throw new ValidationError({ tasks: 'must be an array' }, 'tasks');
  const built: BuiltPackage[] = [];
  const errors: Record<string, string> = {};
  const fail = (i: number, e: unknown) => {
    if (!(e instanceof ValidationError)) throw e;
    for (const [field, message] of Object.entries(e.errors)) errors[field === 'task' ? `tasks[${i}]` : `tasks[${i}].${field}`] = message;
  };
  tasks.forEach((task, i) => {
    try {
      if (!isPlainObject(task)) throw new ValidationError({ task: 'must be an object with func' }, 'task');
      const { func, args, ...options } = task as unknown as { func: unknown; args?: unknown } & EnqueueOptions;
      built.push(assemble(func, args ?? [], options));
    } catch (e) {
      fail(i, e);
    }
  });
  if (Object.keys(errors).length) throw new ValidationError(errors, 'tasks');
  // One JSON pass for the whole batch; only when it is refused is each task checked to name it.
  let text: string | null = null;
  try {
    text = serialize(built);
  } catch {
    text = null;
  }
  if (text === null || !isStorableJson(text)) {
    built.forEach((b, i) => {
      try {
        checkJson(b.payload);
      } catch (e) {
        fail(i, e);
      }
    });
    throw new ValidationError(Object.keys(errors).length ? errors : { tasks: UNSTORABLE_MESSAGE }, 'tasks');
  }
  await insertPackages(inSchema(em, schemaOf(em, options.schema)), built, text);
  return built.map((b) => b.payload.id);
}

export interface ScheduleOptions {
  /** Registered task names: func and hook must be among them. */
  tasks?: TaskNames;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
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
  const sql = inSchema(em, schemaOf(em, options.schema)) as SqlEntityManager;
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
