/**
 * Bulk enqueue: `enqueueMany` of 10,000 tasks per call against graphile-worker's `addJobs` of
 * 10,000 jobs per call, on one database in one run, alternating so both see the same load. For
 * reference, 10,000 single `enqueue` calls in one transaction. Rounds scale with --scale; each call
 * is always 10,000 tasks.
 */
import { loadavg } from 'node:os';
import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import { enqueue, enqueueMany, ensureSchema, queueEntities } from '../src/index.js';
import type { BenchContext, Section } from './run.js';

const PER_CALL = 10_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg()[0]!.toFixed(1);

export async function run(ctx: BenchContext): Promise<Section> {
  const url = await ctx.createDatabase('ormq_bench_enqueue');
  const db = new pg.Pool({ connectionString: url, max: 1 });
  db.on('error', (e) => ctx.log(`bench pool: ${e.message}`));
  const orm = await MikroORM.init({ clientUrl: url, entities: queueEntities, pool: { min: 0, max: 2 } });
  await ensureSchema(orm);
  await runMigrations({ connectionString: url });
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url });

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
  const ormq = median(times.get(systems[0]!.label)!);
  const gw = median(times.get(systems[1]!.label)!);
  const ratio = gw / ormq;
  return {
    title: `Bulk enqueue, ${PER_CALL.toLocaleString('en')} tasks per call`,
    rows,
    notes: [
      `enqueueMany vs addJobs (median per call): ${ratio.toFixed(2)}× graphile-worker's rate; target ≥ 1.5× (${ratio >= 1.5 ? 'met' : 'missed'}).`,
      `Load average (1 min) at each round: ${loads.join(', ')}.`,
    ],
  };
}
