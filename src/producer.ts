import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { QUEUE_CHANNEL } from './db/channels.js';
import { humanName, newTask } from './names.js';
import { isStorableJson, isStorableText, UNSTORABLE_MESSAGE } from './storable.js';
import type { StoredPackage } from './rows.js';
import { isPlainObject, parseDate, ValidationError } from './validate.js';
import { keyOption } from './queue-key.js';
import type { TaskArgs, TaskName } from './registry.js';
import { inSchema, qualify, schemaOf } from './table-names.js';
import { backoffErrors, maxAttemptsError, retryError, type RetryBackoff } from './retries.js';

export interface EnqueueOptions {
  /** Human-readable name; default four words derived from the id. */
  name?: string;
  group?: string | null;
  /** Registered task called with the saved task after it finishes. */
  hook?: string | null;
  /** Passed to the function as a final options argument when non-empty. */
  kwargs?: Record<string, unknown>;
  /** The queue key: the name of the cluster that should run it. Default 'default'. */
  key?: string;
  /** @deprecated Use `key`: its former name, accepted through 0.1.x; both given and different is an error. */
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
  /** Failed attempts after which the task is not retried; 0 = until it succeeds. Default the cluster's. */
  maxAttempts?: number;
  /**
   * Seconds from a failed attempt to the next (with a backoff: its base). Default: the cluster's
   * backoff, or without one the cluster's `retry` counted from the attempt's claim.
   */
  retry?: number;
  /** Exponential backoff for this task's retries, over the cluster's `retryBackoff`; false: none. */
  retryBackoff?: boolean | RetryBackoff;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
}

/** A built package: the queue key, what the cluster runs, and when it may first be claimed. */
export interface BuiltPackage {
  key: string;
  payload: StoredPackage;
  /** A Date, or seconds from now on the database's clock; null: at once. */
  runAt: Date | number | null;
  /**
   * Take args and kwargs from a stored row instead of the payload, copied by PostgreSQL: the admin's
   * resubmit (a task) and run now (a schedule, whose kwargs the payload's own kwargs extend) never
   * pass large arguments through Node.
   */
  copyArgs?: { task: string } | { schedule: number };
  /** Its id was given by the host: not inserted while a package of that id waits or runs. */
  keyed?: boolean;
}


function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
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
  const built = assemble(func, args, opts, new Date().toISOString());
  checkJson(built.payload);
  return built;
}

const TASK_ID = /^[0-9a-f]{32}$/;

/**
 * buildPackage less the JSON check, which enqueueMany makes once over the whole batch. `enqueued`
 * is the time of the call: one for every task of a batch.
 */
function assemble(func: unknown, args: unknown, opts: unknown, enqueued: string): BuiltPackage {
  if (!isPlainObject(opts)) throw new ValidationError({ options: 'must be an object' }, 'task');
  const options = opts as EnqueueOptions;
  const errors: Record<string, string> = {};
  shortText(errors, 'func', func, 256, true);
  if (!Array.isArray(args)) errors.args = 'must be an array';
  if (options.kwargs !== undefined && !isPlainObject(options.kwargs)) errors.kwargs = 'must be an object';
  shortText(errors, 'name', options.name, 100);
  shortText(errors, 'group', options.group, 100);
  shortText(errors, 'hook', options.hook, 256);
  const key = keyOption(options, errors);
  shortText(errors, key.field, key.value, 100);
  // The queue key goes to PostgreSQL beside the packages' JSON, so it is checked on its own.
  if (typeof key.value === 'string' && !errors[key.field] && !isStorableText(key.value)) errors[key.field] = UNSTORABLE_MESSAGE;
  if (options.timeout !== undefined && options.timeout !== null && !(typeof options.timeout === 'number' && options.timeout > 0)) {
    errors.timeout = 'must be a number of seconds greater than 0';
  }
  if (options.save !== undefined && options.save !== null && typeof options.save !== 'boolean') errors.save = 'must be true or false';
  if (options.id !== undefined && !(typeof options.id === 'string' && TASK_ID.test(options.id))) {
    errors.id = 'must be 32 lowercase hex digits';
  }
  if (options.maxAttempts !== undefined) {
    const e = maxAttemptsError(options.maxAttempts);
    if (e) errors.maxAttempts = e;
  }
  if (options.retry !== undefined) {
    const e = retryError(options.retry);
    if (e) errors.retry = e;
  }
  if (options.retryBackoff !== undefined) Object.assign(errors, backoffErrors(options.retryBackoff));
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
  if (!isEmpty(errors)) throw new ValidationError(errors, 'task');
  let id: string;
  let name: string;
  if (options.id === undefined) {
    ({ id, name } = newTask());
    if (options.name != null) name = options.name;
  } else {
    id = options.id;
    name = options.name ?? humanName(id);
  }
  // Fields at their defaults are left out: most tasks set none of them, and every byte is stored and indexed per task.
  const payload: StoredPackage = { id, name, func: (func as string).trim(), args: args as unknown[], enqueued };
  if (options.kwargs !== undefined && !isEmpty(options.kwargs)) payload.kwargs = options.kwargs;
  if (options.group != null) payload.group = options.group;
  if (options.hook != null) payload.hook = options.hook;
  if (options.timeout != null) payload.timeout = options.timeout;
  if (options.save != null) payload.save = options.save;
  if (options.maxAttempts !== undefined) payload.maxAttempts = options.maxAttempts;
  if (options.retry !== undefined) payload.retry = options.retry;
  if (options.retryBackoff !== undefined) {
    // Only the known fields: the payload is what was checked, not whatever else the object held.
    const b = options.retryBackoff;
    payload.retryBackoff = typeof b === 'boolean' ? b : { ...(b.base !== undefined && { base: b.base }), ...(b.factor !== undefined && { factor: b.factor }), ...(b.max !== undefined && { max: b.max }), ...(b.jitter !== undefined && { jitter: b.jitter }) };
  }
  return { key: (key.value as string | undefined) ?? 'default', payload, runAt, ...(options.id !== undefined && { keyed: true }) };
}

/**
 * The package must be JSON PostgreSQL can store; the error names the field that is not. Each part
 * is written and checked once, so a refusal names its field without a second pass over a large value.
 */
function checkJson(payload: StoredPackage): void {
  const parts = { args: payload.args, kwargs: payload.kwargs ?? {}, options: { ...payload, args: [], kwargs: {} } };
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
 *
 * $1 is the channel and $2 the distinct keys. The batch arrives as parallel arrays zipped by ROWS
 * FROM: $3 the packages as one JSON array, $4 their keys, $5 and $6 their run_at and delay, each
 * empty when no package has one (a shorter array reads as nulls). WITH ORDINALITY comes out in
 * order, so the plain statement needs no sort. Only the admin's resubmit and run now copy args from
 * a stored task or schedule ($7, $8), and a resubmission is inserted linked (src/schema.ts); they get their own statement, so the plain one carries no join
 * and its cost estimate stays far below the point where PostgreSQL would JIT-compile it (which for
 * 10,000 tasks costs more than the insert).
 *
 * A batch with a host-given id ($7, or $9 after the copies' arrays: which packages have one) is
 * inserted keyed, and a package whose id is keyed in the queue already, or earlier in the batch,
 * is left out (ON CONFLICT over the partial ormq_queued_keyed_idx). Only such a batch pays for the
 * conflict check; `inserted` counts what was added.
 */
const insertStatement = (copies: boolean, keyed: boolean) => `with ins as (
    insert into ormq_queued (key, payload, run_at${copies ? ', linked' : ''}${keyed ? ', keyed' : ''})
    select x.key, ${
      copies
        ? `case when x.copy_task is not null then x.payload || jsonb_build_object('args', t.args, 'kwargs', t.kwargs)
           when x.copy_schedule is not null then x.payload || jsonb_build_object('args', s.args, 'kwargs', s.kwargs || coalesce(x.payload->'kwargs', '{}'))
           else x.payload end`
        : 'x.payload'
    },
      coalesce(x.run_at, now() + make_interval(secs => x.delay))${copies ? ', x.copy_task is not null' : ''}${keyed ? ', coalesce(x.keyed, false)' : ''}
    from rows from (jsonb_array_elements($3::jsonb), unnest($4::text[]), unnest($5::timestamptz[]), unnest($6::float8[])${
      copies ? ', unnest($7::char(32)[]), unnest($8::int[])' : ''
    }${keyed ? `, unnest($${copies ? 9 : 7}::boolean[])` : ''}) with ordinality as x(payload, key, run_at, delay${copies ? ', copy_task, copy_schedule' : ''}${keyed ? ', keyed' : ''}, n)${
      copies ? `\n    left join ormq_task t on t.id = x.copy_task left join ormq_schedule s on s.id = x.copy_schedule` : ''
    }
    order by x.n${keyed ? `\n    on conflict ((payload->>'id')) where keyed do nothing` : ''} returning 1
  )
  select (select count(*) from ins) as inserted, (select count(pg_notify($1, k)) from unnest($2::text[]) k) as woke`;
const INSERT_STATEMENTS = [insertStatement(false, false), insertStatement(true, false), insertStatement(false, true), insertStatement(true, true)];

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

/**
 * Wakes the clusters of `keys` once each, at commit: for packages made claimable by an update
 * (released, moved earlier) rather than inserted.
 */
export async function wakeKeys(em: EntityManager, keys: Iterable<unknown>): Promise<void> {
  for (const key of new Set([...keys].map(String))) {
    await (em as SqlEntityManager).execute('select pg_notify(?, ?)', [QUEUE_CHANNEL, key]);
  }
}

/** The packages as one JSON array, written in one pass. */
function serialize(packages: readonly BuiltPackage[]): string {
  return JSON.stringify(packages.map((p) => p.payload));
}

/** One entry per package when any package has one, else none (read as all null). */
function column<T>(packages: readonly BuiltPackage[], value: (p: BuiltPackage) => T | null): (T | null)[] {
  const values = packages.map(value);
  return values.some((v) => v !== null) ? values : [];
}

/**
 * Inserts built packages (and wakes the clusters listening for their keys) through `em`. `text` is
 * the packages' payloads as a JSON array, when the caller has written and checked it already.
 */
export async function insertPackages(em: EntityManager, packages: readonly BuiltPackage[], text = serialize(packages)): Promise<number> {
  if (!packages.length) return 0;
  const keys = packages.map((p) => p.key);
  const parameters: unknown[] = [
    QUEUE_CHANNEL,
    [...new Set(keys)],
    text,
    keys,
    column(packages, (p) => (p.runAt instanceof Date ? p.runAt.toISOString() : null)),
    column(packages, (p) => (typeof p.runAt === 'number' ? p.runAt : null)),
  ];
  const copies = packages.some((p) => p.copyArgs);
  if (copies) {
    parameters.push(
      column(packages, (p) => (p.copyArgs && 'task' in p.copyArgs ? p.copyArgs.task : null)),
      column(packages, (p) => (p.copyArgs && 'schedule' in p.copyArgs ? p.copyArgs.schedule : null)),
    );
  }
  const keyed = packages.some((p) => p.keyed);
  if (keyed) parameters.push(packages.map((p) => p.keyed === true));
  const rows = await bound(em, INSERT_STATEMENTS[(copies ? 1 : 0) + (keyed ? 2 : 0)]!, parameters);
  return Number(rows[0]!.inserted);
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
  const enqueued = new Date().toISOString();
  tasks.forEach((task, i) => {
    try {
      if (!isPlainObject(task)) throw new ValidationError({ task: 'must be an object with func' }, 'task');
      // The task is its own options object: assemble reads only the options' fields.
      const t = task as unknown as { func: unknown; args?: unknown };
      built.push(assemble(t.func, t.args ?? [], task, enqueued));
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

