/**
 * The queue keys as the Clusters page, the overview's attention list and the health check read
 * them: which keys have packages and how long each has waited, which are served, and the options
 * their processes should agree on.
 */
import { db } from '../db/run.js';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { responding } from '../liveness.js';

/** More processes or keys than anyone reads on one page; the rest are left off and said to be. */
export const ROW_CAP = 500;

/**
 * Packages of one key looked at, oldest first, for one that waits. Locked ones (running, or stuck in
 * a process that died) come first in the claim's order, and the walk read them all: 130 ms per key
 * at 300k stuck packages, for every health probe.
 */
const WAIT_WALK = 1_000;

/**
 * Each queue key with packages, from a skip scan of ormq_queued_claim_idx (one index probe per key,
 * not a read of the queue), and the oldest waiting package of each: the first free one among the
 * key's first WAIT_WALK; when all of those are locked, the key's first package (whatever it waits
 * behind has waited at least as long).
 */
const QUEUED_KEYS = `with recursive k as (
    (select key from ormq_queued order by key limit 1)
    union all
    select (select q.key from ormq_queued q where q.key > k.key order by q.key limit 1) from k where k.key is not null)
  select k.key, coalesce(
      (select payload->>'enqueued' from (select lock, payload from ormq_queued q where q.key = k.key order by id limit ${WAIT_WALK}) w where w.lock is null limit 1),
      (select payload->>'enqueued' from ormq_queued q where q.key = k.key
          and exists (select 1 from ormq_queued q2 where q2.key = k.key order by id offset ${WAIT_WALK - 1} limit 1)
        order by id limit 1)) as enqueued
  from k where k.key is not null limit ${ROW_CAP + 1}`;

/** The options the processes of one key should agree on: a difference is flagged as drift. */
export const DRIFT_FIELDS = ['saveLimit', 'retry', 'timeout', 'maxAttempts'] as const;

export interface KeyWait {
  key: string;
  /** ms the oldest waiting package has waited; null when none waits (or its enqueued time is unreadable). */
  oldest: number | null;
}

/** Queue keys with packages, and how long the oldest waiting one of each has waited. */
export async function queuedKeys(em: SqlEntityManager, now: number): Promise<KeyWait[]> {
  const rows = await db(em).query(QUEUED_KEYS);
  return rows.map((r) => {
    const at = typeof r.enqueued === 'string' ? Date.parse(r.enqueued) : NaN;
    return { key: r.key as string, oldest: Number.isNaN(at) ? null : Math.max(0, now - at) };
  });
}

/** Keys whose clusters claim: a running process that beats. */
export async function servedKeys(em: SqlEntityManager): Promise<Set<string>> {
  const rows = await db(em).query(`select distinct name from ormq_cluster c where state = 'running' and ${responding('c')}`);
  return new Set(rows.map((r) => r.name as string));
}
