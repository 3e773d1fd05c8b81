/**
 * The values a batch of finished tasks is completed with (src/cluster/sql.ts COMPLETE, or ACK
 * when none of it is saved): one JSON array for the whole batch, made in one pass over it.
 */
import { nextAttempt, ownMaxAttempts } from '../retries.js';
import type { ResolvedOptions } from './options.js';
import { laneShard } from '../metric-rows.js';
import { rollupRows, type Attempt } from './rollup.js';
import { ACK, COMPLETE } from './sql.js';

export interface Completion extends Attempt {
  qid: number;
  /** The lock of the claim that ran it, as CLAIM returned it. */
  lock: number;
  result: unknown;
  /** Stopped from the admin: acked even though it failed, so it is not retried. */
  cancelled: boolean;
  /** A failure no retry can mend (its function is not registered here): acked at once. */
  final?: boolean;
}

/** The cluster's options a completion reads. */
export type CompletionOptions = Pick<
  ResolvedOptions,
  'name' | 'saveLimit' | 'ackFailures' | 'maxAttempts' | 'metrics' | 'retry' | 'retryBackoff'
>;

/** A finished task as its ormq_task row, as COMPLETE saves it; a hook sees the same row as a TaskRecord. */
export function taskRow(f: Completion, cluster: string) {
  const { pkg } = f;
  return {
    id: pkg.id,
    name: pkg.name,
    func: pkg.func,
    hook: pkg.hook,
    args: pkg.args ?? [],
    kwargs: pkg.kwargs ?? {},
    result: f.result,
    group: pkg.group,
    cluster,
    enqueued: pkg.enqueued,
    started: f.started,
    stopped: f.stopped,
    success: f.success,
  };
}

/**
 * COMPLETE's values for a batch. Every package is acked and counted; a success is saved unless
 * saveLimit is -1 or its package says `save: false`, and each task id is saved once per statement:
 * ON CONFLICT cannot touch the same row twice (two packages can carry one id when a caller chose it).
 */
export function completeValues(batch: readonly Completion[], o: CompletionOptions, processId: string, lane = 0): unknown[] {
  const stored = (f: Completion) => !f.success || (o.saveLimit !== -1 && f.pkg.save !== false);
  const last = new Map(batch.filter(stored).map((f) => [f.pkg.id, f]));
  const input = batch.map((f) => {
    const save = last.get(f.pkg.id) === f;
    // Rows not saved only need what the ack and its attempt count read.
    const row = save
      ? { qid: f.qid, lock: f.lock, ...taskRow(f, o.name), save, cancelled: f.cancelled }
      : { qid: f.qid, lock: f.lock, id: f.pkg.id, success: f.success, save, cancelled: f.cancelled };
    // A failure's own limits and timing; absent, the cluster's ($3, $6).
    return f.success ? row : { ...row, final: f.final === true, max: ownMaxAttempts(f.pkg), ...nextAttempt(f.pkg, o.retryBackoff) };
  });
  const rollups = o.metrics ? rollupRows(batch, o.name, laneShard(processId, lane)) : [];
  return [JSON.stringify(input), o.ackFailures, o.maxAttempts, JSON.stringify(rollups), processId, o.retry];
}

/** The statement and values that complete a batch: ACK when none of it is saved, else COMPLETE. */
export function completion(
  batch: readonly Completion[],
  o: CompletionOptions,
  processId: string,
  lane = 0,
): { statement: { name: string; text: string }; values: unknown[] } {
  if (batch.every((f) => f.success && (o.saveLimit === -1 || f.pkg.save === false))) {
    const rollups = o.metrics ? rollupRows(batch, o.name, laneShard(processId, lane)) : [];
    return {
      statement: ACK,
      values: [
        `{${batch.map((f) => f.qid).join(',')}}`,
        JSON.stringify(rollups),
        `{${[...new Set(batch.map((f) => f.lock))].join(',')}}`,
        processId,
      ],
    };
  }
  return { statement: COMPLETE, values: completeValues(batch, o, processId, lane) };
}
