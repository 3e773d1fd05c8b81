/** A task package: its options checked and built into what is stored in the queue. */
import { humanName, newTask } from './names.js';
import { isStorableJson, isStorableText, UNSTORABLE_MESSAGE } from './storable.js';
import type { StoredPackage } from './rows.js';
import { isPlainObject, parseDate, ValidationError } from './validate.js';
import { keyOption } from './queue-key.js';
import { backoffErrors, maxAttemptsError, retryError, type RetryBackoff } from './retries.js';
import { orderOf } from './queue-order.js';

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
  /** Higher is claimed first, enqueue order within one priority; default 0. */
  priority?: number;
  /** Packages sharing a serial key run one at a time, in enqueue order, across every process. */
  serial?: string | null;
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
  /** Its priority when not 0, and its serial key (src/queue-order.ts). */
  priority?: number;
  serial?: string;
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
export function assemble(func: unknown, args: unknown, opts: unknown, enqueued: string): BuiltPackage {
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
  const order = orderOf(options, errors);
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
    payload.retryBackoff =
      typeof b === 'boolean'
        ? b
        : {
            ...(b.base !== undefined && { base: b.base }),
            ...(b.factor !== undefined && { factor: b.factor }),
            ...(b.max !== undefined && { max: b.max }),
            ...(b.jitter !== undefined && { jitter: b.jitter }),
          };
  }
  return {
    key: (key.value as string | undefined) ?? 'default',
    payload,
    runAt,
    ...(options.id !== undefined && { keyed: true }),
    ...order,
  };
}

/**
 * The package must be JSON PostgreSQL can store; the error names the field that is not. Each part
 * is written and checked once, so a refusal names its field without a second pass over a large value.
 */
export function checkJson(payload: StoredPackage): void {
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
