/**
 * One worker process for bench/cluster.ts and bench/scale.ts: ormq, graphile-worker, pg-boss,
 * BullMQ (its PostgreSQL backend) or a raw limit (a plain `pg` claim loop), configured by the JSON
 * in argv[2]. It connects and prints "ready"; then, on stdin, "go" starts its workers, "halt"
 * stops them (connections kept, so a drain can be repeated without a new process) and prints
 * "halted cpu <user ms> <system ms>" (this process's CPU since the go), and "stop" closes
 * everything, prints "stopped" and exits. Each latency probe task prints "lat <ms>".
 */
import { createInterface } from 'node:readline';
import { MikroORM } from '@mikro-orm/postgresql';
import { Queue as BullQueue, Worker as BullWorker, createPostgresBackend } from 'bullmq';
import { run as runGraphile, type Runner } from 'graphile-worker';
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { Cluster, queueEntities } from '../src/index.js';

export interface WorkerConfig {
  system: 'ormq' | 'graphile' | 'pgboss' | 'bullmq' | 'raw' | 'raw-saved';
  url: string;
  /** workers; for raw, connections */
  concurrency: number;
  /** ormq: keep every success (saveLimit 0) instead of ack only (-1); pg-boss, BullMQ: keep each job's return value */
  save?: boolean;
  /** ormq: the saveLimit to save with, instead of 0 (save) or -1 */
  saveLimit?: number;
  /** ormq: record metrics rollups (default true) */
  metrics?: boolean;
  /** ormq: packages per claim */
  bulk?: number;
  /** graphile-worker: localQueue and completion/failure batching */
  batching?: boolean;
  /** raw: packages claimed per statement */
  batch?: number;
  /** raw-saved: the table with ormq_task's columns and indexes that the result rows go to */
  savedTable?: string;
}

/** What every results-keeping drain returns and keeps per task: the same small value for each system. */
export const RESULT = { ok: true };

const cfg = JSON.parse(process.argv[2]!) as WorkerConfig;
const now = () => performance.timeOrigin + performance.now();
const probe = (t0: number) => {
  process.stdout.write(`lat ${now() - t0}\n`);
};

let start: () => Promise<void>;
let halt: () => Promise<void>;
let close: () => Promise<void> = async () => {};

if (cfg.system === 'ormq') {
  const orm = await MikroORM.init({ clientUrl: cfg.url, entities: queueEntities, pool: { min: 1, max: 4 } });
  await orm.em.getConnection().getNativeClient(); // connect before the clock starts
  let cluster: Cluster | undefined;
  start = async () => {
    cluster = new Cluster(orm, {
      name: 'bench',
      workers: cfg.concurrency,
      bulk: cfg.bulk ?? 500,
      saveLimit: cfg.saveLimit ?? (cfg.save ? 0 : -1),
      metrics: cfg.metrics ?? true,
      scheduler: false,
      tasks: { noop: () => (cfg.save ? RESULT : null), latency: probe },
    });
    await cluster.start();
  };
  halt = async () => {
    await cluster?.stop();
    cluster = undefined;
  };
  close = () => orm.close();
} else if (cfg.system === 'graphile') {
  let runner: Runner | undefined;
  start = async () => {
    runner = await runGraphile({
      noHandleSignals: true,
      logger: undefined,
      taskList: {
        noop: async () => {},
        latency: async (payload) => probe((payload as { t0: number }).t0),
      },
      preset: {
        worker: {
          connectionString: cfg.url,
          concurrentJobs: cfg.concurrency,
          maxPoolSize: Math.max(10, cfg.concurrency + 2),
          pollInterval: 1000,
          ...(cfg.batching ? { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } : {}),
        },
      },
    });
  };
  halt = async () => {
    await runner?.stop();
    runner = undefined;
  };
} else if (cfg.system === 'raw' || cfg.system === 'raw-saved') {
  // What the design costs at least: one statement per batch that claims the oldest packages of the
  // key (the same index ormq's claim walks) and deletes them; nothing run, no separate ack. The
  // saved variant also inserts each one's result row, in the same statement, into a table made
  // `like ormq_task including all` (bench/cluster.ts), so it pays for every column and index a
  // saved success pays for in ormq.
  const claim = `select id from ormq_queued where key = $1 order by id limit $2 for update skip locked`;
  const drain =
    cfg.system === 'raw'
      ? {
          name: 'bench_raw_drain',
          text: `delete from ormq_queued where id in (${claim}) returning payload`,
          values: ['bench', cfg.batch ?? 100],
        }
      : {
          name: 'bench_raw_saved_drain',
          text: `with claimed as (delete from ormq_queued where id in (${claim}) returning payload)
                 insert into ${cfg.savedTable} (id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success)
                 select payload->>'id', payload->>'name', payload->>'func', payload->>'hook', payload->'args', payload->'kwargs',
                   $3::jsonb, payload->>'group', $1, (payload->>'enqueued')::timestamptz, now(), now(), true
                 from claimed`,
          values: ['bench', cfg.batch ?? 100, JSON.stringify(RESULT)],
        };
  const clients = Array.from({ length: cfg.concurrency }, () => new pg.Client({ connectionString: cfg.url }));
  await Promise.all(clients.map((c) => c.connect()));
  let running = false;
  let loops: Promise<void>[] = [];
  const loop = async (client: pg.Client) => {
    while (running) {
      const { rowCount } = await client.query(drain);
      // Empty (or every row locked by another connection): look again shortly until halted.
      if (!rowCount) await new Promise((r) => setTimeout(r, 1));
    }
  };
  start = async () => {
    running = true;
    loops = clients.map(loop);
  };
  halt = async () => {
    running = false;
    await Promise.all(loops);
  };
  close = async () => void (await Promise.all(clients.map((c) => c.end())));
} else if (cfg.system === 'bullmq') {
  // BullMQ 6 on its PostgreSQL backend (createPostgresBackend): one Worker per queue; ack only
  // removes each job on completion, results kept leaves it completed with its return_value.
  const connection = { connectionString: cfg.url };
  const opts = { connection, concurrency: cfg.concurrency, autorun: false, ...(cfg.save ? {} : { removeOnComplete: { count: 0 } }) };
  const makeWorkers = () => [
    new BullWorker('noop', async () => (cfg.save ? RESULT : undefined), opts, createPostgresBackend),
    new BullWorker('latency', async (job) => probe((job.data as { t0: number }).t0), opts, createPostgresBackend),
  ];
  let workers: ReturnType<typeof makeWorkers> = [];
  start = async () => {
    workers = makeWorkers();
    for (const w of workers) {
      w.on('error', () => {});
      void w.run();
    }
    await Promise.all(workers.map((w) => w.waitUntilReady()));
  };
  halt = async () => {
    await Promise.all(workers.map((w) => w.close()));
    workers = [];
  };
  // connect (and check the schema) before the clock starts
  const warm = new BullQueue('noop', { connection }, createPostgresBackend);
  await warm.waitUntilReady();
  close = () => warm.close();
} else {
  // pg-boss 12 keeps every completed job (state completed) until its deleteAfterSeconds; ack only
  // completes without an output, results kept completes each job with its own output.
  const boss = new PgBoss({
    connectionString: cfg.url,
    max: Math.max(4, cfg.concurrency + 2),
    schedule: false,
    supervise: false,
    migrate: false,
    useListenNotify: true,
  });
  boss.on('error', () => {});
  await boss.start();
  const polling = { pollingIntervalSeconds: 0.5, localConcurrency: cfg.concurrency };
  start = async () => {
    if (cfg.save) {
      await boss.work('noop', { ...polling, batchSize: 100, burstWhenBatchFull: true, perJobResults: true }, async (jobs) =>
        jobs.map((j) => ({ id: j.id, status: 'completed' as const, output: RESULT })),
      );
    } else {
      await boss.work('noop', { ...polling, batchSize: 100, burstWhenBatchFull: true }, async () => {});
    }
    await boss.work<{ t0: number }>('latency', { ...polling, batchSize: 1 }, async ([job]) => probe(job!.data.t0));
  };
  halt = async () => {
    await boss.offWork('noop', { wait: true });
    await boss.offWork('latency', { wait: true });
  };
  close = () => boss.stop({ graceful: true, timeout: 5000 });
}

process.stdout.write('ready\n');
let cpu = process.cpuUsage();
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'go') {
    cpu = process.cpuUsage();
    await start();
  }
  if (line === 'halt') {
    await halt();
    const used = process.cpuUsage(cpu);
    process.stdout.write(`halted cpu ${(used.user / 1000).toFixed(0)} ${(used.system / 1000).toFixed(0)}\n`);
  }
  if (line === 'stop') {
    await close();
    process.stdout.write('stopped\n');
    process.exit(0);
  }
}
