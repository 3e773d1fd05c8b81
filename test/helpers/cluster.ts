import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, type ClusterOptions } from '../../src/index.js';
import { sql, waitFor } from './db.js';

export interface Started {
  cluster: Cluster;
  logs: { level: string; message: string }[];
}

/** A cluster with a short poll that records what it logs; stop it at the end of the test. */
export async function startCluster(orm: MikroORM, options: ClusterOptions = {}): Promise<Started> {
  const logs: Started['logs'] = [];
  const cluster = new Cluster(orm, { poll: 50, log: (level, message) => logs.push({ level, message }), ...options });
  await cluster.start();
  return { cluster, logs };
}

/** One cluster on each ORM, all with these options; `stop` stops them all. */
export async function startClusters(orms: MikroORM[], options: ClusterOptions = {}): Promise<{ clusters: Started[]; stop(): Promise<void> }> {
  const clusters = await Promise.all(orms.map((o) => startCluster(o, options)));
  return { clusters, stop: async () => void (await Promise.all(clusters.map((c) => c.cluster.stop()))) };
}

/** Waits until no package is left in ormq_queued: every one run and acked. */
export async function waitForDrained(orm: MikroORM, what: string, timeoutMs?: number): Promise<void> {
  await waitFor(async () => !(await sql(orm, 'select 1 from ormq_queued limit 1')).length, what, timeoutMs);
}

/** Waits until ormq_task holds at least `n` saved tasks; resolves with all of them, in the order they stopped. */
export async function waitForSaved<T = Record<string, unknown>>(orm: MikroORM, n: number, what: string, timeoutMs?: number): Promise<T[]> {
  return waitFor(async () => {
    const rows = await sql<T>(orm, 'select * from ormq_task order by stopped, id');
    return rows.length >= n ? rows : null;
  }, what, timeoutMs);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
