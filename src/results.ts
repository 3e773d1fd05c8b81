/**
 * Reading results back: one task by id (optionally waiting for it to be saved), and a group's
 * results, count and deletion. Waiting listens on 'ormq_saved', which the cluster notifies with the
 * ids of each saved batch; no polling loop. A waiter holds a row of ormq_wait from before its first
 * look until it has read the task, so saveLimit pruning cannot delete the success under it.
 */
import type { EntityManager } from '@mikro-orm/core';
import { SAVED_CHANNEL } from './db/channels.js';
import { Listener, listenConfig, type ListenConnection } from './db/listener.js';
import { toTask, type TaskRecord } from './rows.js';
import { inSchema, schemaOf } from './table-names.js';
import { db, hostPool, poolDb, type Db } from './db/run.js';
import { ValidationError } from './validate.js';

export interface WaitOptions {
  /** ms to wait for the task to be saved; 0 (default) looks once. Bounded: at most 2^31 - 1. */
  wait?: number;
  /** Where to LISTEN while waiting (a direct connection past a pooler); default the ORM's settings. */
  listenConnection?: ListenConnection;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
}

const TASK_COLUMNS = 'id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, attempt_count';

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new ValidationError({ id: 'must be 32 lowercase hex digits' }, 'task id');
  return id;
}

function checkWait(wait: unknown): number {
  if (wait === undefined) return 0;
  if (typeof wait !== 'number' || !Number.isInteger(wait) || wait < 0 || wait > 2 ** 31 - 1) {
    throw new ValidationError({ wait: 'must be a whole number of ms from 0 to 2147483647' }, 'wait');
  }
  return wait;
}

function checkGroup(group: unknown): string {
  if (typeof group !== 'string' || group === '' || group.length > 100)
    throw new ValidationError({ group: 'must be a non-empty string of at most 100 characters' }, 'group');
  return group;
}

/** One LISTEN connection per database, shared by every waiter in this process and closed when the last leaves. */
interface Hub {
  listener: Listener;
  ready: Promise<void>;
  waiters: Map<string, Set<() => void>>;
}
const hubs = new Map<string, Hub>();

function wakeAll(hub: Hub): void {
  for (const set of hub.waiters.values()) for (const wake of set) wake();
}

async function join(em: EntityManager, id: string, wake: () => void, override?: ListenConnection): Promise<() => void> {
  const config = await listenConfig(em.getConnection(), override);
  const key = JSON.stringify(config, (k, v) => (k === 'password' ? undefined : v));
  let hub = hubs.get(key);
  if (!hub) {
    const waiters = new Map<string, Set<() => void>>();
    const created: Hub = {
      waiters,
      listener: new Listener({
        connection: config,
        channels: [SAVED_CHANNEL],
        onNotify: (_channel, payload) => {
          for (const saved of payload.split(',')) for (const w of waiters.get(saved) ?? []) w();
        },
        // Saves made while disconnected were not heard: everyone looks again.
        onConnect: () => wakeAll(created),
        onError: () => {},
      }),
      ready: Promise.resolve(),
    };
    created.ready = created.listener.start();
    hub = created;
    hubs.set(key, hub);
  }
  const set = hub.waiters.get(id) ?? new Set();
  set.add(wake);
  hub.waiters.set(id, set);
  await hub.ready;
  const joined = hub;
  return () => {
    set.delete(wake);
    if (!set.size) joined.waiters.delete(id);
    if (!joined.waiters.size && hubs.get(key) === joined) {
      hubs.delete(key);
      void joined.listener.stop();
    }
  };
}

async function findTask(em: EntityManager, id: string): Promise<TaskRecord | null> {
  const row = await db(em).queryOne(`select ${TASK_COLUMNS} from ormq_task where id = ?`, [id]);
  return row ? toTask(row) : null;
}

/**
 * How long after its own deadline a wait's row stays live: the last look happens after the
 * deadline, and a busy process may be slow to make it. A waiter that dies leaves its row to expire.
 */
const WAIT_ROW_SLACK_MS = 60_000;

/**
 * Registers a waiter on task `id` before it first looks; returns its row's id. Null on tables from
 * before ormq_wait (schema version 1, a producer deployed before ensureSchema ran): it waits as
 * it did then, without the hold, and the clusters, whose pruning needs the table, say to upgrade.
 */
async function holdWait(pool: Db, id: string, wait: number): Promise<string | null> {
  try {
    const row = await pool.queryOne("insert into ormq_wait (task, until) values ($1, now() + $2 * interval '1 ms') returning id", [
      id,
      wait + WAIT_ROW_SLACK_MS,
    ]);
    return String(row!.id);
  } catch (err) {
    if ((err as { code?: string }).code === '42P01' && /\bormq_wait\b/.test((err as Error).message)) return null;
    throw err;
  }
}

/**
 * The saved task (success or failure), or null: not finished yet, finished but not saved
 * (`save: false`, `saveLimit: -1`), or pruned by `saveLimit` or deleted since. With `wait`, waits up
 * to that many ms for it to be saved; the answer is null if it was not saved by then. A success
 * saved while it waits is not pruned by saveLimit before it has been read here.
 */
export async function fetchTask(em: EntityManager, id: string, options: WaitOptions = {}): Promise<TaskRecord | null> {
  checkId(id);
  const wait = checkWait(options.wait);
  const schema = schemaOf(em, options.schema);
  em = inSchema(em, schema);
  if (wait === 0) return findTask(em, id);
  // The pool under the ORM: a wait's row is written on it, autocommitted, outside any transaction of the host's.
  const pool = poolDb(await hostPool(em), schema);
  const held = await holdWait(pool, id, wait);
  try {
    return await waitFor(em, id, wait, options.listenConnection);
  } finally {
    // Read (or given up): pruning may take it now. Should this fail, the row expires on its own.
    if (held !== null) await pool.execute('delete from ormq_wait where id = $1', [held]).catch(() => {});
  }
}

async function waitFor(em: EntityManager, id: string, wait: number, listenConnection?: ListenConnection): Promise<TaskRecord | null> {
  const found = await findTask(em, id);
  if (found) return found;
  const deadline = Date.now() + wait;
  let wake: () => void = () => {};
  let woken = false;
  const leave = await join(
    em,
    id,
    () => {
      woken = true;
      wake();
    },
    listenConnection,
  );
  try {
    for (;;) {
      // Looked again after LISTEN took effect: a save between the first look and LISTEN is not missed.
      const task = await findTask(em, id);
      if (task) return task;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      if (!woken) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      woken = false;
      wake = () => {};
    }
  } finally {
    leave();
  }
}

/** The saved task's result (a failure's is `{ error, message, stack }`), or null as fetchTask says. */
export async function result(em: EntityManager, id: string, options: WaitOptions = {}): Promise<unknown> {
  const task = await fetchTask(em, id, options);
  return task ? task.result : null;
}

export interface GroupOptions {
  /** true: failures instead of successes. Default false. */
  failures?: boolean;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
}

/** Results of a group's saved successes (or failures), oldest first. */
export async function resultGroup(em: EntityManager, group: string, options: GroupOptions = {}): Promise<unknown[]> {
  const rows = await db(inSchema(em, schemaOf(em, options.schema))).query(
    'select result from ormq_task where "group" = ? and success = ? order by stopped, id',
    [checkGroup(group), options.failures !== true],
  );
  return rows.map((r) => r.result ?? null);
}

/** How many of a group's tasks are saved as successes (or, with `failures`, as failures). */
export async function countGroup(em: EntityManager, group: string, options: GroupOptions = {}): Promise<number> {
  const row = await db(inSchema(em, schemaOf(em, options.schema))).queryOne(
    'select count(*) as n from ormq_task where "group" = ? and success = ?',
    [checkGroup(group), options.failures !== true],
  );
  return Number(row!.n);
}

/** Deletes a group's saved tasks, successes and failures; returns how many. Queued packages stay. */
export async function deleteGroup(em: EntityManager, group: string, options: Pick<GroupOptions, 'schema'> = {}): Promise<number> {
  const row = await db(inSchema(em, schemaOf(em, options.schema))).queryOne(
    'with d as (delete from ormq_task where "group" = ? returning 1) select count(*) as n from d',
    [checkGroup(group)],
  );
  return Number(row!.n);
}
