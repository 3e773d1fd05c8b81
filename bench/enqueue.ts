/**
 * Bulk enqueue: `enqueueMany` of 10,000 tasks per call against each peer's bulk add of 10,000 jobs
 * per call (graphile-worker `addJobs`, BullMQ `addBulk` on its PostgreSQL backend, pg-boss
 * `insert`), on one database in one run, alternating call by call so all see the same load. For
 * reference, 10,000 single `enqueue` calls in one transaction. Rounds scale with --scale; each call
 * is always 10,000 tasks.
 */
import { loadavg } from 'node:os';
import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { Queue as BullQueue, createPostgresBackend } from 'bullmq';
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import { PgBoss } from 'pg-boss';
import { enqueue, enqueueMany, ensureSchema, queueEntities } from '../src/index.js';
import type { BenchContext, Section } from './run.js';
import { ratioTarget } from './stats.js';
import { VERSIONS } from './systems.js';

const PER_CALL = 10_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg()[0]!.toFixed(1);

export async function run(ctx: BenchContext): Promise<Section> {
  const url = await ctx.createDatabase('ormq_bench_enqueue');
  const db = new pg.Pool({ connectionString: url, max: 1 });
  db.on('error', (e) => ctx.log(`bench pool: ${e.message}`));
  // The tables are made as a deploy's migration would make them, on connections of their own: a
  // backend that has run ensureSchema's DDL (its DO blocks) runs a 10,000-row insert about 50 %
  // slower for the rest of its life (115–125 against 170–190 ms, same build, same database).
  const setup = await MikroORM.init({ clientUrl: url, entities: queueEntities, pool: { min: 0, max: 1 } });
  await ensureSchema(setup);
  await setup.close();
  const orm = await MikroORM.init({ clientUrl: url, entities: queueEntities, pool: { min: 0, max: 2 } });
  await runMigrations({ connectionString: url });
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url });
  const boss = new PgBoss({ connectionString: url, schedule: false, supervise: false, max: 2 });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue('email.send');
  const bull = new BullQueue('email.send', { connection: { connectionString: url, migrate: true } } as never, createPostgresBackend);
  await bull.waitUntilReady();

  const tasks = (round: number) =>
    Array.from({ length: PER_CALL }, (_, i) => ({ to: `user${round}-${i}@example.com`, subject: 'Welcome', n: i }));

  const systems: { label: string; calls: (round: number) => Promise<void>; reset(): Promise<void>; single?: boolean }[] = [
    {
      label: 'ormq enqueueMany (one transaction)',
      calls: async (round) => {
        const specs = tasks(round).map((t) => ({ func: 'email.send', args: [t.to, t.subject], group: 'welcome' }));
        await orm.em.fork().transactional((em) => enqueueMany(em, specs));
      },
      reset: async () => void (await db.query('truncate ormq_queued')),
    },
    {
      label: 'graphile-worker addJobs',
      calls: async (round) => {
        await utils.addJobs(tasks(round).map((t) => ({ identifier: 'email.send', payload: t })));
      },
      reset: async () => void (await db.query('delete from graphile_worker._private_jobs')),
    },
    {
      label: `BullMQ ${VERSIONS.bullmq} addBulk (PostgreSQL backend)`,
      calls: async (round) => {
        await bull.addBulk(tasks(round).map((t) => ({ name: 'email.send', data: t })));
      },
      reset: async () => void (await db.query('truncate bullmq.job cascade; truncate bullmq.event')),
    },
    {
      label: `pg-boss ${VERSIONS['pg-boss']} insert`,
      calls: async (round) => {
        await boss.insert(
          'email.send',
          tasks(round).map((t) => ({ data: t })),
        );
      },
      reset: async () => void (await db.query('delete from pgboss.job')),
    },
    {
      label: 'ormq enqueue × 10,000 (one transaction, for reference)',
      single: true,
      calls: async (round) => {
        await orm.em.fork().transactional(async (em) => {
          for (const t of tasks(round)) await enqueue(em, 'email.send', [t.to, t.subject], { group: 'welcome' });
        });
      },
      reset: async () => void (await db.query('truncate ormq_queued')),
    },
  ];

  const rounds = Math.max(2, Math.round(20 * ctx.scale));
  const times = new Map<string, number[]>(systems.map((s) => [s.label, []]));
  const loads: string[] = [];
  try {
    // One warm-up call each, not counted.
    for (const s of systems) {
      await s.calls(-1);
      await s.reset();
    }
    for (let r = 0; r < rounds; r++) {
      loads.push(load());
      for (const s of systems) {
        if (s.single && r >= Math.max(1, Math.round(rounds / 5))) continue;
        const t0 = performance.now();
        await s.calls(r);
        times.get(s.label)!.push(performance.now() - t0);
        await s.reset();
      }
      ctx.log(`round ${r + 1}/${rounds}, load ${loads.at(-1)}`);
    }
  } finally {
    await boss.stop({ graceful: false }).catch(() => {});
    await bull.close().catch(() => {});
    await utils.release();
    await db.end();
    await orm.close(true);
  }

  const rate = (ms: number) => Math.round(PER_CALL / (ms / 1000));
  const rows = systems.map((s) => {
    const ts = times.get(s.label)!;
    return {
      system: s.label,
      calls: ts.length,
      'median ms per call': Math.round(median(ts)),
      'best ms': Math.round(Math.min(...ts)),
      'tasks/s (median)': rate(median(ts)),
    };
  });
  // Rates, so the ratio reads as ormq's speed over the fastest peer's (the one with the lowest median call).
  const ormq = rate(median(times.get(systems[0]!.label)!));
  const peers = systems
    .filter((s) => !s.single && s !== systems[0])
    .map((s) => ({ label: s.label, rate: rate(median(times.get(s.label)!)) }));
  const fastest = peers.reduce((a, b) => (b.rate > a.rate ? b : a));
  return {
    title: `Bulk enqueue, ${PER_CALL.toLocaleString('en')} tasks per call`,
    rows,
    targets: [
      ratioTarget(
        "enqueueMany ÷ the best peer's bulk add",
        ormq,
        fastest.rate,
        1.5,
        `by the median call: ormq ${ormq}/s; ${peers.map((p) => `${p.label} ${p.rate}/s`).join(', ')}`,
      ),
    ],
    notes: [`Load average (1 min) at each round: ${loads.join(', ')}.`],
  };
}
