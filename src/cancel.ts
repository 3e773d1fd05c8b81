/**
 * Cancelling a task from code, and the admin's Stop and delete of a queued package: a package no
 * live process runs is removed; one a responding process runs is stopped by that process (the
 * control channel's `stop`), which saves it failed with a CancelledError and acks it.
 */
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { responding } from './liveness.js';
import { CancelledError, clipBy, stopPackage, type HeldPackage } from './control.js';
import { cancelRuns } from './iterations.js';
import { db } from './db/run.js';
import { inSchema, schemaOf } from './table-names.js';
import { isStorableText, scrub, UNSTORABLE_MESSAGE } from './storable.js';
import { isPlainObject, ValidationError } from './validate.js';

export type CancelOutcome = 'removed' | 'stopping' | 'not found';

export interface CancelOptions {
  /** Who cancels it, named in the error the stopped task is saved with; at most 150 characters are kept. */
  by?: string | null;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
}

/**
 * SQL: queued row `q` is being run right now: locked by a process that still beats, under a lock
 * that has not expired by that process's own `retry`. Anything else no one runs: a waiting package,
 * a retry waiting for its time, a lock left by a dead process.
 */
const RUNNING = `(q.lock is not null and exists (select 1 from ormq_cluster c where c.id = q.locked_by and ${responding('c')}
  and (c.config->'retry' is null or q.lock > now() - make_interval(secs => (c.config->>'retry')::float8))))`;

export interface CancelPackages {
  /** Named in the stopped tasks' error. */
  by: string | null;
  /** `cancel` from code rather than the admin: the error says "cancelled". */
  fromCode: boolean;
  /**
   * The admin's delete: running packages are deleted too (their process still stops the task, and
   * its result is not saved); otherwise they stay for their process to save the stop and ack them.
   */
  deleteRunning: boolean;
}

/**
 * Cancels the given packages in `tx`: removes those no live process runs, asks the process running
 * each of the others to stop it (delivered at commit; the rows stay locked until then, so no claim
 * or completion changes them meanwhile). Returns the ids removed and the packages asked to stop.
 */
export async function cancelPackages(
  tx: SqlEntityManager,
  ids: readonly number[],
  o: CancelPackages,
): Promise<{ removed: number[]; stopping: HeldPackage[] }> {
  if (!ids.length) return { removed: [], stopping: [] };
  const rows = await db(tx).query(
    `with target as (select q.id, q.locked_by, ${RUNNING} as running from ormq_queued q where q.id in (?) for update of q),
       gone as (delete from ormq_queued q using target t where q.id = t.id and (? or not t.running) returning q.id, q.payload->'iter' as iter)
     select t.id, t.locked_by, t.running, g.iter from target t left join gone g on g.id = t.id`,
    [[...ids], o.deleteRunning],
  );
  const removed: number[] = [];
  const stopping: HeldPackage[] = [];
  const runs: { id: string; n: number }[] = [];
  for (const r of rows) {
    if (r.running === true) stopping.push({ id: Number(r.id), lockedBy: String(r.locked_by) });
    if (r.running !== true || o.deleteRunning) removed.push(Number(r.id));
    const iter = (typeof r.iter === 'string' ? JSON.parse(r.iter) : r.iter) as { id?: unknown; n?: unknown } | null;
    if (iter && typeof iter.id === 'string' && Number.isInteger(iter.n)) runs.push({ id: iter.id, n: iter.n as number });
  }
  // The admin's actor comes from the host's `actor` option: what PostgreSQL cannot store is replaced.
  const kept = clipBy(o.by);
  const by = kept === null ? null : scrub(kept);
  for (const p of stopping) await stopPackage(tx, p, by, o.fromCode);
  // An iteration's run removed here never reports: it counts as cancelled, so the iteration still ends.
  await cancelRuns(tx, runs, new CancelledError(by, o.fromCode).message);
  return { removed, stopping };
}

/**
 * Cancels task `id`: its waiting package is removed (`'removed'`; a retry waiting for its time
 * too, and a package whose process stopped answering), or the process running it is asked to stop
 * it (`'stopping'`: it is saved failed with a CancelledError, as the admin's Stop does, and not
 * retried). `'not found'`: no package of that id is queued (it finished, or was never enqueued).
 * Given an iteration's id, it cancels the iteration's runs still queued: each removed run takes its
 * place in the iteration's list as a CancelledError, and the iteration is saved once its runs end.
 * Given the host's transactional `em`, it takes effect when that transaction commits.
 * The package is looked up by its task id, which only retries and host-chosen ids index: in a
 * long queue this reads the queue.
 */
export async function cancel(em: EntityManager, id: string, options: CancelOptions = {}): Promise<CancelOutcome> {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new ValidationError({ id: 'must be 32 lowercase hex digits' }, 'task id');
  if (!isPlainObject(options as unknown)) throw new ValidationError({ options: 'must be an object' }, 'cancel');
  if (options.by != null && typeof options.by !== 'string') throw new ValidationError({ by: 'must be a string' }, 'cancel');
  // Kept in the stopped task's error, which PostgreSQL must store: refused here rather than by the database (or the cluster that saves it).
  if (!isStorableText(clipBy(options.by) ?? '')) throw new ValidationError({ by: UNSTORABLE_MESSAGE }, 'cancel');
  const scoped = inSchema(em, schemaOf(em, options.schema)) as SqlEntityManager;
  return scoped.transactional(async (tx) => {
    // The task's own package, or the runs of the iteration of that id.
    const found = await db(tx).query(`select id from ormq_queued where payload->>'id' = ? or payload->'iter'->>'id' = ?`, [id, id]);
    const { removed, stopping } = await cancelPackages(
      tx,
      found.map((r) => Number(r.id)),
      { by: options.by ?? null, fromCode: true, deleteRunning: false },
    );
    return stopping.length ? 'stopping' : removed.length ? 'removed' : 'not found';
  });
}
