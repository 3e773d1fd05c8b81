/**
 * One worker process for bench/cluster.ts and bench/scale.ts: ormq, graphile-worker, pg-boss,
 * BullMQ (its PostgreSQL backend) or a raw limit (a plain `pg` claim loop), configured by the JSON
 * in argv[2]. It connects and prints "ready"; then, on stdin, "go" starts its workers, "halt"
 * stops them (connections kept, so a drain can be repeated without a new process) and prints
 * "halted cpu <user ms> <system ms>" (this process's CPU since the go), and "stop" closes
 * everything, prints "stopped" and exits. Each latency probe task prints "lat <ms>". A limited
 * drain's tasks each sleep and record when they ran; "halt" prints them first as "spans <json>".
 */
import { createInterface } from 'node:readline';
import { MikroORM } from '@mikro-orm/postgresql';
import { Queue as BullQueue, Worker as BullWorker, createPostgresBackend } from 'bullmq';
import { run as runGraphile, type Runner } from 'graphile-worker';
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { Cluster, queueEntities } from '../src/index.js';
import { limitedName, type Limited } from './systems.js';

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
  /**
   * raw, raw-saved: claim at least once, as a queue must: one statement locks the batch and commits,
   * a second deletes it (and saves its result rows) once it has "run"; a crash between the two
   * leaves the batch to be claimed again when its lock is old. Without it the delete is the claim.
   */
  acked?: boolean;
  /**
   * A drain that a concurrency limit binds: tasks of `groups` funcs (ormq, each limited by setLimit)
   * or pg-boss groups (`groupConcurrency`), each sleeping `sleepMs`; at most `concurrency` of a
   * group at once, over every process.
   */
  limited?: Limited;
}

/** What every results-keeping drain returns and keeps per task: the same small value for each system. */
export const RESULT = { ok: true };

const cfg = JSON.parse(process.argv[2]!) as WorkerConfig;
const now = () => performance.timeOrigin + performance.now();
const probe = (t0: number) => {
  process.stdout.write(`lat ${now() - t0}\n`);
};

/**
 * A limited drain's task: sleeps, and records [group, start, end] in µs of CLOCK_MONOTONIC
 * (process.hrtime), which every process on the machine reads alike, so the bench can count how
 * many ran at once across processes.
 */
const spans: number[] = [];
const micros = () => Number(process.hrtime.bigint() / 1000n);
const limitedTask = async (group: number) => {
  const t0 = micros();
  await new Promise((r) => setTimeout(r, cfg.limited!.sleepMs));
  spans.push(group, t0, micros());
};
const groups = Array.from({ length: cfg.limited?.groups ?? 0 }, (_, g) => g);

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
      tasks: {
        noop: () => (cfg.save ? RESULT : null),
        latency: probe,
        ...Object.fromEntries(groups.map((g) => [limitedName(g), () => limitedTask(g)])),
      },
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
  // key (the same index ormq's claim walks) and deletes them; nothing run, no separate ack: at most
  // once. The saved variant also inserts each one's result row, in the same statement, into a table
  // made `like ormq_task including all` (bench/cluster.ts), so it pays for every column and index a
  // saved success pays for in ormq. `acked`: the same at least once, a committed lock and then the
  // delete (and the saved rows) in a second statement: the least a queue that survives a crash
  // mid-task writes.
  const claim = `select id from ormq_queued where key = $1${cfg.acked ? ' and lock is null' : ''} order by id limit $2 for update skip locked`;
  /** The result rows of CTE `from`'s packages, the result given as parameter `result`. */
  const save = (
    from: string,
    result: string,
  ) => `insert into ${cfg.savedTable} (id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success)
                 select payload->>'id', payload->>'name', payload->>'func', payload->>'hook', payload->'args', payload->'kwargs',
                   ${result}::jsonb, payload->>'group', 'bench', (payload->>'enqueued')::timestamptz, now(), now(), true
                 from ${from}`;
  const saved = cfg.system === 'raw-saved';
  const batch = cfg.batch ?? 100;
  const steps: { name: string; text: string; values: unknown[] }[] = cfg.acked
    ? [
        {
          name: 'bench_raw_lock',
          text: `update ormq_queued set lock = now() where id in (${claim}) returning id, payload`,
          values: ['bench', batch],
        },
      ]
    : saved
      ? [
          {
            name: 'bench_raw_saved_drain',
            text: `with claimed as (delete from ormq_queued where id in (${claim}) returning payload) ${save('claimed', '$3')}`,
            values: ['bench', batch, JSON.stringify(RESULT)],
          },
        ]
      : [{ name: 'bench_raw_drain', text: `delete from ormq_queued where id in (${claim}) returning payload`, values: ['bench', batch] }];
  const ack = saved
    ? {
        name: 'bench_raw_saved_ack',
        text: `with done as (delete from ormq_queued where id = any($1::bigint[]) returning payload) ${save('done', '$2')}`,
      }
    : { name: 'bench_raw_ack', text: 'delete from ormq_queued where id = any($1::bigint[])' };
  const drain = {
    async run(client: pg.Client): Promise<number> {
      const { rows, rowCount } = await client.query(steps[0]!);
      if (cfg.acked && rowCount)
        await client.query({ ...ack, values: saved ? [rows.map((r) => r.id), JSON.stringify(RESULT)] : [rows.map((r) => r.id)] });
      return rowCount ?? 0;
    },
  };
  const clients = Array.from({ length: cfg.concurrency }, () => new pg.Client({ connectionString: cfg.url }));
  await Promise.all(clients.map((c) => c.connect()));
  let running = false;
  let loops: Promise<void>[] = [];
  const loop = async (client: pg.Client) => {
    while (running) {
      const rowCount = await drain.run(client);
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
    if (cfg.limited) {
      // Every fetch loop takes what its groups' room allows (up to 100) and runs that batch's jobs at once.
      await boss.work<{ g: number }>(
        'limited',
        { ...polling, batchSize: 100, burstWhenBatchFull: true, groupConcurrency: cfg.limited.concurrency },
        async (jobs) => void (await Promise.all(jobs.map((j) => limitedTask(j.data.g)))),
      );
      return;
    }
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
    if (cfg.limited) await boss.offWork('limited', { wait: true });
    else {
      await boss.offWork('noop', { wait: true });
      await boss.offWork('latency', { wait: true });
    }
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
    if (spans.length) process.stdout.write(`spans ${JSON.stringify(spans.splice(0))}\n`);
    const used = process.cpuUsage(cpu);
    process.stdout.write(`halted cpu ${(used.user / 1000).toFixed(0)} ${(used.system / 1000).toFixed(0)}\n`);
  }
  if (line === 'stop') {
    await close();
    process.stdout.write('stopped\n');
    process.exit(0);
  }
}
