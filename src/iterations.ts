/**
 * Iterations (Django Q's `async_iter`): one func run once per args, and when every run has a final
 * outcome, one saved task whose result is the list of the runs' results, in order. The runs are
 * ordinary packages (`TaskPackage.iter` names the iteration and the run's index) inserted with the
 * iteration's row in one transaction. Each run's final outcome is recorded by the cluster in the
 * transaction that acks it (src/cluster/flows.ts): its result row, and the iteration's `remaining`
 * counted down under that row's lock. Whichever process takes `remaining` to 0 saves the task,
 * in a statement that starts after the other runs' transactions committed (they held the lock), so
 * two runs ending at once in two processes neither lose a result nor save the task twice.
 *
 * A run that fails is retried as any task is; once it fails for good its error takes its place in
 * the list, the other runs go on, and the iteration's task is saved failed: an `IterationError`
 * saying how many runs failed and the first one's error, with every run's result in `results`.
 */
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { SAVED_CHANNEL } from './db/channels.js';
import { ERROR_GROUP } from './error-groups.js';
import { buildPackage, buildTasks, insertPackages, type EnqueueOptions } from './producer.js';
import { db } from './db/run.js';
import type { TaskArgs, TaskName } from './registry.js';
import { inSchema, schemaOf } from './table-names.js';
import { ValidationError } from './validate.js';

/** `$1`… parameters, as the cluster sends these statements. */
const BOUND = { bind: true };

/** Most runs one iteration takes: its row holds every run's args, and its task every result. */
export const MAX_ITER_RUNS = 10_000;

/** What becomes the iteration's task once its runs are done (ormq_iter.task). */
interface IterTask {
  name: string;
  func: string;
  hook: string | null;
  group: string | null;
  kwargs: Record<string, unknown>;
  args: unknown[][];
  enqueued: string;
  save: boolean;
}

/**
 * Enqueues `func` once per entry of `argsList` and returns the iteration's task id: when every run
 * has a final outcome, a task of that id is saved whose result is the list of their results, in
 * `argsList`'s order (`result(em, id, { wait })` waits for it). `name`, `hook`, `group`, `kwargs`,
 * `id` and `save` are the iteration task's; the runs get the rest of enqueue's options (`cluster`,
 * `timeout`, retries, `runAt`/`delay`, `priority`, `serial`), and `kwargs`, `group` too. The runs' own successes are not
 * saved; a run's failure is, as any task's, under its own id. Nothing is written when any input is bad.
 */
export async function enqueueIter<F extends TaskName>(
  em: EntityManager,
  func: F,
  argsList: readonly TaskArgs<F>[],
  options: EnqueueOptions = {},
): Promise<string> {
  if (!Array.isArray(argsList) || argsList.length === 0)
    throw new ValidationError({ args: 'must be a non-empty array of argument arrays' }, 'iteration');
  if (argsList.length > MAX_ITER_RUNS)
    throw new ValidationError({ args: `must hold at most ${MAX_ITER_RUNS} argument arrays, got ${argsList.length}` }, 'iteration');
  const bad = argsList.findIndex((a) => !Array.isArray(a));
  if (bad >= 0) throw new ValidationError({ [`args[${bad}]`]: 'must be an array of arguments' }, 'iteration');
  // The options are checked once, as the iteration's own task, with each field named as enqueue names it.
  const own = buildPackage(func, [], options);
  const { name, hook = null, id: _id, save, ...runOptions } = options;
  void _id;
  const total = argsList.length;
  const id = own.payload.id;
  const label = own.payload.name.slice(0, 100 - ` [${total}/${total}]`.length);
  const specs = argsList.map((args, n) => ({ func, args, ...runOptions, name: `${label} [${n + 1}/${total}]`, save: false }));
  const { built } = buildTasks(specs, 'args');
  built.forEach((b, n) => (b.payload.iter = { id, n }));
  const task: IterTask = {
    name: own.payload.name,
    func: own.payload.func,
    hook: hook ?? null,
    group: own.payload.group ?? null,
    kwargs: own.payload.kwargs ?? {},
    args: argsList as unknown[][],
    enqueued: own.payload.enqueued,
    save: save !== false,
  };
  const scoped = inSchema(em, schemaOf(em, options.schema)) as SqlEntityManager;
  await scoped.transactional(async (tx) => {
    const rows = await db(tx).query(
      'insert into ormq_iter (id, total, remaining, task) values (?, ?, ?, ?::jsonb) on conflict (id) do nothing returning id',
      [id, total, total, JSON.stringify(task)],
    );
    if (!rows.length) throw new ValidationError({ id: 'an iteration of this id is still running' }, 'iteration');
    await insertPackages(tx, built);
  });
  return id;
}

/** A run's final outcome, as the cluster records it. */
export interface RunOutcome {
  iter: string;
  n: number;
  success: boolean;
  result: unknown;
  started: string;
  stopped: string;
}

/** Locks the iterations of a batch's runs in id order, so two processes never wait on each other in a circle. $1 = their ids. */
export const ITER_LOCK = {
  name: 'ormq_iter_lock',
  text: 'select id from ormq_iter where id = any($1::char(32)[]) order by id for update',
};

/**
 * Records final outcomes ($1: a jsonb array of RunOutcome) and counts each iteration down by the
 * runs newly recorded: a run recorded already (it ran twice, at least once) counts once. Returns
 * each iteration's `remaining`.
 */
export const ITER_RECORD = {
  name: 'ormq_iter_record',
  text: `with r as (
      select * from jsonb_to_recordset($1::jsonb) as x(iter char(32), n int, success boolean, result jsonb, started timestamptz, stopped timestamptz)
    ), ins as (
      insert into ormq_iter_result (iter, n, success, result, started, stopped)
      select r.iter, r.n, r.success, r.result, r.started, r.stopped from r join ormq_iter i on i.id = r.iter
      on conflict do nothing returning iter
    )
    update ormq_iter i set remaining = i.remaining - c.n from (select iter, count(*)::int as n from ins group by iter) c
    where i.id = c.iter returning i.id, i.remaining`,
};

/**
 * Saves the task of each finished iteration among $1 (ids) and deletes its rows; $2 = the saving
 * cluster's name. Its own statement, after ITER_RECORD: its snapshot holds every run that another
 * process recorded before this one took the iteration's lock. Returns each task as saved, with
 * `save` (false: not kept, its hook still runs), and tells waiters on SAVED_CHANNEL.
 */
export const ITER_FINISH = {
  name: 'ormq_iter_finish',
  text: `with done as (
      delete from ormq_iter where id = any($1::char(32)[]) and remaining <= 0 returning id, task, total
    ), parts as (
      delete from ormq_iter_result r using done d where r.iter = d.id returning r.*
    ), agg as (
      select iter, jsonb_agg(coalesce(result, 'null'::jsonb) order by n) as results, bool_and(success) as ok,
        count(*) filter (where not success) as failed, min(n) filter (where not success) as first,
        (array_agg(concat_ws(': ', result->>'error', result->>'message') order by n) filter (where not success))[1] as first_error,
        min(started) as started, max(stopped) as stopped
      from parts group by iter
    ), t as (
      select d.id, d.task->>'name' as name, d.task->>'func' as func, d.task->>'hook' as hook, d.task->'args' as args,
        coalesce(d.task->'kwargs', '{}') as kwargs, d.task->>'group' as "group", $2::text as cluster,
        (d.task->>'enqueued')::timestamptz as enqueued, a.started, a.stopped, a.ok as success, coalesce((d.task->>'save')::boolean, true) as save,
        case when a.ok then a.results else jsonb_build_object('error', 'IterationError',
          'message', format('%s of %s runs failed; the first, run %s: %s', a.failed, d.total, a.first + 1, a.first_error),
          'stack', null, 'results', a.results) end as result
      from done d join agg a on a.iter = d.id
    ), saved as (
      insert into ormq_task (id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, attempt_count, error_group)
      select id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, 1, ${ERROR_GROUP} from t where save
      on conflict (id) do nothing returning id
    ), woke as (
      select count(pg_notify('${SAVED_CHANNEL}', ids)) as n from (select string_agg(id::text, ',') as ids from saved) s where ids is not null
    )
    select t.*, (select n from woke) as woke from t`,
};

/**
 * Runs of iterations removed from the queue before they ended (`cancel`, the admin's delete) count
 * as failed with `message`, in the caller's transaction: their iterations still end and are saved.
 * An iteration's hook runs only in a cluster, so one that ends here is saved without it.
 */
export async function cancelRuns(tx: EntityManager, runs: readonly { id: string; n: number }[], message: string): Promise<void> {
  if (!runs.length) return;
  const now = new Date().toISOString();
  const result = { error: 'CancelledError', message, stack: `CancelledError: ${message}` };
  const outcomes: RunOutcome[] = runs.map((r) => ({ iter: r.id, n: r.n, success: false, result, started: now, stopped: now }));
  const run = db(tx);
  await run.query(ITER_LOCK.text, [[...new Set(runs.map((r) => r.id))]], BOUND);
  const counted = await run.query(ITER_RECORD.text, [JSON.stringify(outcomes)], BOUND);
  const done = counted.filter((r) => Number(r.remaining) <= 0).map((r) => String(r.id).trim());
  if (done.length) await run.query(ITER_FINISH.text, [done, null], BOUND);
}
