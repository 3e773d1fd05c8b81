/**
 * What the claim order says about waiting packages, for the Queued page: the priorities in the
 * queue and, for a package of a serial key, the package it waits behind (see src/cluster/claim-sql.ts).
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { db, type Row } from '../db/run.js';

/**
 * What a waiting package of a serial key waits behind: the first package of that key, which runs
 * (or waits for its retry) before any other of the key starts. Null when it is first itself.
 */
export async function waitsBehind(em: SqlEntityManager, r: Row): Promise<Row | null> {
  if (r.serial === null || r.serial === undefined) return null;
  const [first] = await db(em).query(
    `select id, payload->>'name' as name, lock is not null as running from ormq_queued where serial = ? and id < ? order by id limit 1`,
    [r.serial, r.id],
  );
  return first ? { id: Number(first.id), name: first.name ?? null, running: first.running === true } : null;
}

/**
 * The priorities in the queue, highest first: a walk of the claim index (key, priority desc, id),
 * one probe per key and priority, at most 1,000.
 */
export async function priorities(em: SqlEntityManager): Promise<string[]> {
  const rows = await db(em).query(`with recursive v(k, p, n) as (
      (select key, priority, 1 from ormq_queued order by key, priority desc limit 1)
      union all
      select x.k, x.p, v.n + 1 from v, lateral (
        (select key as k, priority as p from ormq_queued where key = v.k and priority < v.p order by key, priority desc limit 1)
        union all
        (select key, priority from ormq_queued where key > v.k order by key, priority desc limit 1)
        limit 1) x where v.n < 1000
    ) select distinct p from v order by p desc limit 100`);
  return rows.map((r) => String(r.p));
}
