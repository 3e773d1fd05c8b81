import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, type ClusterOptions } from '../../src/index.js';
import { newTaskId } from '../../src/names.js';
import { sql, waitFor } from './db.js';
import type { Api } from './suites.js';

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
export async function startClusters(
  orms: MikroORM[],
  options: ClusterOptions = {},
): Promise<{ clusters: Started[]; stop(): Promise<void> }> {
  const clusters = await Promise.all(orms.map((o) => startCluster(o, options)));
  return { clusters, stop: async () => void (await Promise.all(clusters.map((c) => c.cluster.stop()))) };
}

/** Waits until no package is left in ormq_queued: every one run and acked. */
export async function waitForDrained(orm: MikroORM, what: string, timeoutMs?: number): Promise<void> {
  await waitFor(async () => !(await sql(orm, 'select 1 from ormq_queued limit 1')).length, what, timeoutMs);
}

/** Waits until ormq_task holds at least `n` saved tasks; resolves with all of them, in the order they stopped. */
export async function waitForSaved<T = Record<string, unknown>>(orm: MikroORM, n: number, what: string, timeoutMs?: number): Promise<T[]> {
  return waitFor(
    async () => {
      const rows = await sql<T>(orm, 'select * from ormq_task order by stopped, id');
      return rows.length >= n ? rows : null;
    },
    what,
    timeoutMs,
  );
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ProcessRow {
  /** When it last beat; default now. */
  ageMs?: number;
  /** Its heartbeat interval: three missed beats and it is not responding. Default 1 s. */
  beatMs?: number;
  /** How long before now it started; default an hour. */
  startedMs?: number;
  host?: string;
  workers?: number;
  busy?: number;
  done?: number;
  failed?: number;
  /** The running tasks its heartbeat lists. */
  tasks?: unknown[];
}

/** A heartbeat row in ormq_cluster written by hand, as a process of queue key `name` would have left it; returns its id. */
export async function processRow(orm: MikroORM, name: string, o: ProcessRow = {}): Promise<string> {
  const id = newTaskId();
  await sql(
    orm,
    `insert into ormq_cluster (id, name, host, pid, started, heartbeat, beat_ms, state, workers, busy, done, failed, version, tasks)
     values (?, ?, ?, 4242, now() - ? * interval '1 ms', now() - ? * interval '1 ms', ?, 'running', ?, ?, ?, ?, '0.0.1', ?::jsonb)`,
    [
      id,
      name,
      o.host ?? 'gone-host',
      o.startedMs ?? 3_600_000,
      o.ageMs ?? 0,
      o.beatMs ?? 1000,
      o.workers ?? 2,
      o.busy ?? 0,
      o.done ?? 5,
      o.failed ?? 1,
      JSON.stringify(o.tasks ?? []),
    ],
  );
  return id;
}

/** A cluster of queue key `name` beating every 0.1 s, added to `running` for the suite's after.each to stop. */
export async function startInto(running: Started[], orm: MikroORM, name: string, options: Record<string, unknown> = {}): Promise<Started> {
  const s = await startCluster(orm, { name, heartbeat: 0.1, stopTimeout: 10_000, ...options });
  running.push(s);
  return s;
}

/** The Clusters page's data, asserting it answered. */
export async function clustersOf(api: Api): Promise<{ clusters: any[]; keys: any[]; now: string }> {
  const r = await api.get('api/clusters');
  if (r.status !== 200) throw new Error(`api/clusters answered ${r.status}: ${r.text}`);
  return r.json as { clusters: any[]; keys: any[]; now: string };
}
