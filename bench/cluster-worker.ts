/**
 * One worker process for bench/cluster.ts: ormq, graphile-worker, pg-boss or the raw limit (a plain
 * `pg` claim-and-delete loop), configured by the JSON
 * in argv[2]. It connects, prints "ready", starts working when it reads "go" on stdin, prints
 * "lat <ms>" for each latency probe task, and stops cleanly on "stop".
 */
import { createInterface } from 'node:readline';
import { MikroORM } from '@mikro-orm/postgresql';
import { run as runGraphile, type Runner } from 'graphile-worker';
import PgBoss from 'pg-boss';
import pg from 'pg';
import { Cluster, queueEntities } from '../src/index.js';

export interface WorkerConfig {
  system: 'ormq' | 'graphile' | 'pgboss' | 'raw';
  url: string;
  /** workers; for raw, connections */
  concurrency: number;
  /** ormq: keep every success (saveLimit 0) instead of ack only (-1) */
  save?: boolean;
  /** ormq: record metrics rollups (default true) */
  metrics?: boolean;
  /** ormq: packages per claim */
  bulk?: number;
  /** graphile-worker: localQueue and completion/failure batching */
  batching?: boolean;
  /** raw: packages deleted per statement */
  batch?: number;
}

const cfg = JSON.parse(process.argv[2]!) as WorkerConfig;
const now = () => performance.timeOrigin + performance.now();
const probe = (t0: number) => {
  process.stdout.write(`lat ${now() - t0}\n`);
};

let start: () => Promise<void>;
let stop: () => Promise<void>;

if (cfg.system === 'ormq') {
  const orm = await MikroORM.init({ clientUrl: cfg.url, entities: queueEntities, pool: { min: 1, max: 4 } });
  const cluster = new Cluster(orm, {
    name: 'bench',
    workers: cfg.concurrency,
    bulk: cfg.bulk ?? 500,
    saveLimit: cfg.save ? 0 : -1,
    metrics: cfg.metrics ?? true,
    scheduler: false,
    tasks: { noop: () => null, latency: probe },
  });
  await orm.em.getConnection().getNativeClient(); // connect before the clock starts
  start = () => cluster.start();
  stop = async () => {
    await cluster.stop();
    await orm.close();
  };
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
  stop = async () => {
    await runner?.stop();
  };
} else if (cfg.system === 'raw') {
  // What the design costs at least: one statement per batch that claims the oldest packages of the
  // key (the same index ormq's claim walks), deletes them and hands back their payloads; no
  // separate ack, no results, nothing run.
  const drain = {
    name: 'bench_raw_drain',
    text: `delete from ormq_queued where id in (
             select id from ormq_queued where key = $1 order by id limit $2 for update skip locked)
           returning payload`,
    values: ['bench', cfg.batch ?? 100],
  };
  const clients = Array.from({ length: cfg.concurrency }, () => new pg.Client({ connectionString: cfg.url }));
  await Promise.all(clients.map((c) => c.connect()));
  let running = false;
  let loops: Promise<void>[] = [];
  const loop = async (client: pg.Client) => {
    while (running) {
      const { rowCount } = await client.query(drain);
      // Empty (or every row locked by another connection): look again shortly until stopped.
      if (!rowCount) await new Promise((r) => setTimeout(r, 1));
    }
  };
  start = async () => {
    running = true;
    loops = clients.map(loop);
  };
  stop = async () => {
    running = false;
    await Promise.all(loops);
    await Promise.all(clients.map((c) => c.end()));
  };
} else {
  const boss = new PgBoss({ connectionString: cfg.url, max: Math.max(4, cfg.concurrency + 2), schedule: false, supervise: false, migrate: false });
  boss.on('error', () => {});
  await boss.start();
  start = async () => {
    for (let i = 0; i < cfg.concurrency; i++) {
      await boss.work('noop', { batchSize: 100, pollingIntervalSeconds: 0.5 }, async () => {});
      await boss.work<{ t0: number }>('latency', { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => probe(job!.data.t0));
    }
  };
  stop = () => boss.stop({ graceful: true, wait: true, timeout: 5000 });
}

process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'go') await start();
  if (line === 'stop') {
    await stop();
    process.stdout.write('stopped\n');
    process.exit(0);
  }
}
