/**
 * The systems the cluster bench drains, all on one database: ormq (ack only and every result
 * saved, each with and without rollups), graphile-worker, pg-boss and BullMQ on its PostgreSQL
 * backend (ack only and results kept), and the two raw limits. Each knows how to fill its backlog
 * of no-op tasks in bulk, whether any is left, and how to empty its tables. Two more, only when
 * `--systems` names them, drain a backlog that a concurrency limit binds: ormq's `setLimit` per
 * func against pg-boss's `groupConcurrency`.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { Queue as BullQueue, createPostgresBackend } from 'bullmq';
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { enqueue, ensureSchema, queueEntities, setLimit } from '../src/index.js';
import type { WorkerConfig } from './cluster-worker.js';
import { installedVersion } from './stats.js';

export interface System {
  /** for --systems */
  key: string;
  label: string;
  /**
   * the share of the backlog it drains (default all, at least 1,000 tasks): a tenth for a system
   * that commits once per job, a twentieth for BullMQ's statements per job; either would take many
   * minutes over the whole backlog, and a rate does not depend on the backlog's size
   */
  share?: number;
  /** keeps each task's result (for the results-keeping targets) */
  keepsResults?: boolean;
  cfg: Omit<WorkerConfig, 'url' | 'concurrency'>;
  fill(n: number): Promise<void>;
  pending(): Promise<boolean>;
  reset(): Promise<void>;
  enqueueProbe?(t0: number): Promise<unknown>;
  /** ormq_task's rows (for the pruned drain: that it pruned while draining, and down to its limit once stopped) */
  taskRows?(): Promise<number>;
  /** processes × workers to drain with, instead of every shape */
  shapes?: [number, number][];
  /** the raw loops and the limited drains: this shape alone, whichever --shapes the run has */
  fixedShape?: [number, number];
  /** drained only when --systems names it */
  optIn?: boolean;
}

export interface Limited {
  groups: number;
  concurrency: number;
  sleepMs: number;
}

/** The func of a limited drain's group `g` (ormq), and the group's id (pg-boss). */
export const limitedName = (g: number) => `limited-${g}`;

/**
 * The limited drains: the backlog spread evenly over 4 groups, at most 2 of a group at once over
 * every process, each task sleeping 20 ms; so at most 8 run at once, and no drain beats
 * 8 / 20 ms = 400 tasks/s. They drain with 2 processes × 16 workers, four times the limit's room.
 */
export const LIMITED: Limited = { groups: 4, concurrency: 2, sleepMs: 20 };
/** the most tasks/s the limit allows */
export const LIMITED_BOUND = (LIMITED.groups * LIMITED.concurrency * 1000) / LIMITED.sleepMs;
const LIMITED_SHAPE: [number, number] = [2, 16];
const LIMITED_WHAT = `${LIMITED.groups} groups, ≤ ${LIMITED.concurrency} of a group at once, tasks sleeping ${LIMITED.sleepMs} ms`;

export const VERSIONS = {
  'graphile-worker': installedVersion('graphile-worker'),
  'pg-boss': installedVersion('pg-boss'),
  bullmq: installedVersion('bullmq'),
  pg: installedVersion('pg'),
};
const GW = `graphile-worker ${VERSIONS['graphile-worker']}`;
const BOSS = `pg-boss ${VERSIONS['pg-boss']}`;
const BULL = `BullMQ ${VERSIONS.bullmq} (PostgreSQL backend)`;

export const LABELS = {
  ack: 'ormq, ack only (saveLimit -1)',
  saved: 'ormq, every result saved (saveLimit 0)',
  saved250: 'ormq, every result saved, saveLimit 250 (pruned)',
  ackBare: 'ormq, ack only, no rollups (metrics: false)',
  savedBare: 'ormq, every result saved, no rollups (metrics: false)',
  gwBatched: `${GW}, batching (localQueue 500, batch delays 0)`,
  gwDefaults: `${GW}, defaults`,
  boss: `${BOSS}, ack only (batchSize 100; completed rows kept without output)`,
  bossKept: `${BOSS} results kept (output per job)`,
  bull: `${BULL}, ack only (removeOnComplete)`,
  bullKept: `${BULL} results kept (return_value)`,
  raw: 'raw limit: pg loop, 4 connections, delete 100 per statement (skip locked)',
  rawSaved: 'raw saved limit: the raw loop also inserting each result row into a copy of ormq_task',
  rawAcked: 'raw at-least-once limit: the raw loop locking 100 per statement, then deleting them (two commits)',
  rawSavedAcked: 'raw at-least-once saved limit: the at-least-once loop, its delete also inserting the result rows',
  limit: `ormq, concurrency limit: ${LIMITED_WHAT} (a func per group, setLimit concurrency ${LIMITED.concurrency}; ack only)`,
  bossGroup: `${BOSS}, group concurrency: ${LIMITED_WHAT} (group.id per job, groupConcurrency ${LIMITED.concurrency}; batchSize 100, each batch's jobs at once; ack only)`,
};

/** The raw saved limit's table: ormq_task's columns, defaults and indexes, copied from the live schema. */
export const RAW_SAVED_TABLE = 'bench_raw_task';

export interface Peers {
  db: pg.Pool;
  systems: System[];
  /** how many indexes the raw saved table got, beside ormq_task's */
  rawSavedIndexes: { copy: number; ormqTask: number };
  close(): Promise<void>;
}

export async function setUpPeers(url: string, log: (m: string) => void): Promise<Peers> {
  const db = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection the server drops must not end the run; the next query reconnects.
  db.on('error', (e) => log(`bench pool: ${e.message}`));
  const orm = await MikroORM.init({ clientUrl: url, entities: queueEntities, pool: { min: 0, max: 2 } });
  await ensureSchema(orm);
  // The DDL ensureSchema ran (src/schema.ts and its tables), copied at run time: a change to ormq_task's columns or indexes
  // moves the raw saved limit with it.
  await db.query(`drop table if exists ${RAW_SAVED_TABLE}; create table ${RAW_SAVED_TABLE} (like ormq_task including all)`);
  const count = async (t: string) => Number((await db.query('select count(*) c from pg_indexes where tablename = $1', [t])).rows[0].c);
  const rawSavedIndexes = { copy: await count(RAW_SAVED_TABLE), ormqTask: await count('ormq_task') };

  await runMigrations({ connectionString: url });
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url });
  const boss = new PgBoss({ connectionString: url, schedule: false, supervise: false, max: 2 });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue('noop');
  await boss.createQueue('latency', { notify: true });
  await boss.createQueue('limited');
  for (let g = 0; g < LIMITED.groups; g++) await setLimit(orm.em.fork(), limitedName(g), { concurrency: LIMITED.concurrency });
  const bullConnection = { connectionString: url };
  const bullNoop = new BullQueue('noop', { connection: { ...bullConnection, migrate: true } } as never, createPostgresBackend);
  await bullNoop.waitUntilReady();
  const bullLatency = new BullQueue('latency', { connection: bullConnection }, createPostgresBackend);
  await bullLatency.waitUntilReady();

  const ormq = (label: string, save: boolean, metrics = true, saveLimit?: number): System => ({
    key: `${save ? 'ormq-save' : 'ormq'}${saveLimit ?? ''}${metrics ? '' : '-nometrics'}`,
    label,
    keepsResults: save,
    cfg: { system: 'ormq', save, bulk: 500, metrics, ...(saveLimit === undefined ? {} : { saveLimit }) },
    ...(saveLimit === undefined ? {} : { taskRows: async () => Number((await db.query('select count(*) n from ormq_task')).rows[0].n) }),
    fill: (n) => fillOrmq(db, n),
    pending: async () => (await db.query('select exists (select 1 from ormq_queued) as p')).rows[0].p,
    reset: async () => void (await db.query(`truncate ormq_queued, ormq_task, ormq_metric, ${RAW_SAVED_TABLE}`)),
    ...(metrics && !save ? { enqueueProbe: (t0: number) => enqueue(orm.em.fork(), 'latency', [t0], { key: 'bench' }) } : {}),
  });
  const graphile = (label: string, batching: boolean): System => ({
    key: batching ? 'graphile-batched' : 'graphile-defaults',
    // with defaults it commits once per job: a tenth of the backlog, and only its widest shapes, where it is fastest
    ...(batching
      ? {}
      : {
          share: 0.1,
          shapes: [
            [1, 16],
            [2, 16],
          ] as [number, number][],
        }),
    label,
    cfg: { system: 'graphile', batching },
    async fill(n) {
      await db.query(
        `select graphile_worker.add_jobs(array(
           select row('noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, $1)))`,
        [n],
      );
    },
    pending: async () => (await db.query('select exists (select 1 from graphile_worker._private_jobs) as p')).rows[0].p,
    reset: async () => void (await db.query('delete from graphile_worker._private_jobs')),
    enqueueProbe: (t0) => utils.addJob('latency', { t0 }),
  });
  const pgBoss = (label: string, save: boolean): System => ({
    key: save ? 'pgboss-results' : 'pgboss',
    label,
    keepsResults: save,
    cfg: { system: 'pgboss', save },
    async fill(n) {
      for (let i = 0; i < n; i += 5000)
        await boss.insert(
          'noop',
          Array.from({ length: Math.min(5000, n - i) }, () => ({ data: {} })),
        );
    },
    pending: async () =>
      (await db.query("select exists (select 1 from pgboss.job where name = 'noop' and state < 'completed') as p")).rows[0].p,
    reset: async () => void (await db.query('delete from pgboss.job')),
    ...(save ? {} : { enqueueProbe: (t0: number) => boss.send('latency', { t0 }) }),
  });
  const bull = (label: string, save: boolean): System => ({
    key: save ? 'bullmq-results' : 'bullmq',
    share: 0.05,
    label,
    keepsResults: save,
    cfg: { system: 'bullmq', save },
    async fill(n) {
      const opts = { removeOnComplete: !save };
      for (let i = 0; i < n; i += 1000)
        await bullNoop.addBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: 'noop', data: {}, opts })));
    },
    pending: async () =>
      (await db.query("select exists (select 1 from bullmq.job where queue = 'noop' and state in ('waiting', 'active', 'delayed')) as p"))
        .rows[0].p,
    reset: async () => void (await db.query('truncate bullmq.job cascade; truncate bullmq.event')),
    ...(save ? {} : { enqueueProbe: (t0: number) => bullLatency.add('latency', { t0 }, { removeOnComplete: true }) }),
  });
  const raw = (label: string, saved: boolean, acked = false): System => ({
    ...ormq(label, false),
    key: `${saved ? 'raw-saved' : 'raw'}${acked ? '-acked' : ''}`,
    label,
    keepsResults: false,
    cfg: { system: saved ? 'raw-saved' : 'raw', batch: 100, acked, ...(saved ? { savedTable: RAW_SAVED_TABLE } : {}) },
    fixedShape: [1, 4],
    enqueueProbe: undefined,
  });
  // Group g's tasks are every G-th of the backlog, for both: in ormq the func limitedName(g), in pg-boss the group of that id.
  const limited = {
    share: 0.03,
    fixedShape: LIMITED_SHAPE,
    optIn: true,
  };
  const ormqLimit: System = {
    ...ormq(LABELS.limit, false),
    ...limited,
    key: 'ormq-limit',
    cfg: { system: 'ormq', save: false, bulk: 500, metrics: true, limited: LIMITED },
    fill: (n) =>
      fillOrmq(
        db,
        n,
        Array.from({ length: LIMITED.groups }, (_, g) => limitedName(g)),
      ),
    enqueueProbe: undefined,
  };
  const bossGroup: System = {
    ...limited,
    key: 'pgboss-group',
    label: LABELS.bossGroup,
    cfg: { system: 'pgboss', save: false, limited: LIMITED },
    async fill(n) {
      for (let i = 0; i < n; i += 5000)
        await boss.insert(
          'limited',
          Array.from({ length: Math.min(5000, n - i) }, (_, k) => {
            const g = (i + k) % LIMITED.groups;
            return { data: { g }, group: { id: limitedName(g) } };
          }),
        );
    },
    pending: async () =>
      (await db.query("select exists (select 1 from pgboss.job where name = 'limited' and state < 'completed') as p")).rows[0].p,
    reset: async () => void (await db.query('delete from pgboss.job')),
  };

  return {
    db,
    rawSavedIndexes,
    systems: [
      ormq(LABELS.ack, false),
      // the cost of the metrics rollups: each ormq drain again without them, right after it
      ormq(LABELS.ackBare, false, false),
      ormq(LABELS.saved, true),
      ormq(LABELS.savedBare, true, false),
      // the default saveLimit, pruned while it drains: beside the unlimited drain above
      ormq(LABELS.saved250, true, true, 250),
      graphile(LABELS.gwBatched, true),
      graphile(LABELS.gwDefaults, false),
      pgBoss(LABELS.boss, false),
      pgBoss(LABELS.bossKept, true),
      bull(LABELS.bull, false),
      bull(LABELS.bullKept, true),
      raw(LABELS.raw, false),
      raw(LABELS.rawSaved, true),
      raw(LABELS.rawAcked, false, true),
      raw(LABELS.rawSavedAcked, true, true),
      ormqLimit,
      bossGroup,
    ],
    async close() {
      await boss.stop({ graceful: false }).catch(() => {});
      await bullNoop.close().catch(() => {});
      await bullLatency.close().catch(() => {});
      await utils.release();
      await orm.close();
      await db.end();
    },
  };
}

/** A backlog of `n` packages for the cluster named 'bench', in one statement: the funcs in turn (default all no-ops). */
export async function fillOrmq(db: pg.Pool, n: number, funcs: readonly string[] = ['noop']): Promise<void> {
  await db.query(
    `insert into ormq_queued (key, payload)
     select 'bench', jsonb_build_object('id', md5(g::text), 'name', 'bench-' || g, 'func', ($2::text[])[1 + (g - 1) % cardinality($2::text[])],
       'args', '[]'::jsonb, 'kwargs', '{}'::jsonb, 'group', null, 'hook', null, 'timeout', null, 'save', null, 'enqueued', now())
     from generate_series(1, $1) g`,
    [n, funcs],
  );
}
