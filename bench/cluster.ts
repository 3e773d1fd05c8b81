/**
 * The cluster against graphile-worker and pg-boss, on one database in one run: drain a bulk-enqueued
 * backlog of no-op tasks with 1, 4 and 16 concurrent workers in one and in two processes, and the
 * enqueue→start latency of single tasks to an idle worker. Beside them, the raw limit: a plain `pg`
 * loop draining the same backlog on 4 connections, 100 packages per statement. Every worker runs in a child process
 * (bench/cluster-worker.ts) that has connected before the clock starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MikroORM } from '@mikro-orm/postgresql';
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import PgBoss from 'pg-boss';
import pg from 'pg';
import { enqueue, ensureSchema, queueEntities } from '../src/index.js';
import type { BenchContext, Section } from './run.js';
import type { WorkerConfig } from './cluster-worker.js';

const workerScript = fileURLToPath(new URL('./cluster-worker.ts', import.meta.url));
const now = () => performance.timeOrigin + performance.now();

interface Workers {
  go(): void;
  stop(): Promise<void>;
  nextLatency(): Promise<number>;
}

async function spawnWorkers(cfg: WorkerConfig, processes: number): Promise<Workers> {
  const children: ChildProcess[] = [];
  const latencies: number[] = [];
  let waiting: ((ms: number) => void) | null = null;
  const ready: Promise<void>[] = [];
  const stopped: Promise<void>[] = [];
  for (let i = 0; i < processes; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    const lines = createInterface({ input: child.stdout! });
    let onReady!: () => void;
    let onStopped!: () => void;
    ready.push(new Promise((r) => (onReady = r)));
    stopped.push(new Promise((r) => (onStopped = r)));
    lines.on('line', (line) => {
      if (line === 'ready') onReady();
      else if (line === 'stopped') onStopped();
      else if (line.startsWith('lat ')) {
        const ms = Number(line.slice(4));
        if (waiting) {
          const w = waiting;
          waiting = null;
          w(ms);
        } else latencies.push(ms);
      }
    });
    child.once('exit', () => {
      onReady();
      onStopped();
    });
  }
  await Promise.all(ready);
  return {
    go: () => children.forEach((c) => c.stdin!.write('go\n')),
    async stop() {
      children.forEach((c) => c.stdin!.write('stop\n'));
      await Promise.race([Promise.all(stopped), new Promise((r) => setTimeout(r, 15_000))]);
      children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
    },
    nextLatency: () => (latencies.length ? Promise.resolve(latencies.shift()!) : new Promise((r) => (waiting = r))),
  };
}

interface System {
  /** for --systems: ormq, ormq-save, ormq-nometrics, ormq-save-nometrics, raw, graphile-batched, graphile-defaults, pgboss */
  key: string;
  label: string;
  /** drains a tenth of the backlog: it polls, or commits once per job, and would take many minutes */
  slow?: boolean;
  cfg: Omit<WorkerConfig, 'url' | 'concurrency'>;
  fill(n: number): Promise<void>;
  pending(): Promise<boolean>;
  reset(): Promise<void>;
  enqueueProbe(t0: number): Promise<unknown>;
  /** processes × workers to drain with, instead of every shape */
  shapes?: [number, number][];
  /** drain only: it has no worker to time a single task's start */
  noLatency?: boolean;
}

const ACK = 'ormq, ack only (saveLimit -1)';
const SAVED = 'ormq, every result saved (saveLimit 0)';
const ACK_BARE = 'ormq, ack only, no rollups (metrics: false)';
const SAVED_BARE = 'ormq, every result saved, no rollups (metrics: false)';

/** The installed version of a package, from its own package.json (its exports may not list the file). */
function installedVersion(name: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.resolve(name))); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === name) return pkg.version ?? 'unknown';
  }
  return 'unknown';
}

const RAW_LABEL = 'raw limit: pg loop, 4 connections, delete 100 per statement (skip locked)';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function run(ctx: BenchContext): Promise<Section> {
  const url = await ctx.createDatabase('ormq_bench_cluster');
  const db = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection the server drops must not end the run; the next query reconnects.
  db.on('error', (e) => ctx.log(`bench pool: ${e.message}`));
  const orm = await MikroORM.init({ clientUrl: url, entities: queueEntities, pool: { min: 0, max: 2 } });
  await ensureSchema(orm);
  await runMigrations({ connectionString: url });
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url });
  const boss = new PgBoss({ connectionString: url, schedule: false, supervise: false, max: 2 });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue('noop');
  await boss.createQueue('latency');

  const ormqSystem = (label: string, save: boolean, metrics = true): System => ({
    key: `${save ? 'ormq-save' : 'ormq'}${metrics ? '' : '-nometrics'}`,
    label,
    cfg: { system: 'ormq', save, bulk: 500, metrics },
    async fill(n) {
      await db.query(
        `insert into ormq_queued (key, payload)
         select 'bench', jsonb_build_object('id', md5(g::text), 'name', 'bench-' || g, 'func', 'noop', 'args', '[]'::jsonb,
           'kwargs', '{}'::jsonb, 'group', null, 'hook', null, 'timeout', null, 'save', null, 'enqueued', now())
         from generate_series(1, $1) g`,
        [n],
      );
    },
    pending: async () => (await db.query('select exists (select 1 from ormq_queued) as p')).rows[0].p,
    reset: async () => void (await db.query('truncate ormq_queued, ormq_task, ormq_metric')),
    enqueueProbe: (t0) => enqueue(orm.em.fork(), 'latency', [t0], { key: 'bench' }),
  });
  const graphileSystem = (label: string, batching: boolean): System => ({
    key: batching ? 'graphile-batched' : 'graphile-defaults',
    slow: !batching,
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
  const pgBossSystem: System = {
    key: 'pgboss',
    slow: true,
    label: 'pg-boss (batchSize 100)',
    cfg: { system: 'pgboss' },
    async fill(n) {
      for (let i = 0; i < n; i += 5000) {
        await boss.insert(Array.from({ length: Math.min(5000, n - i) }, () => ({ name: 'noop', data: {} })));
      }
    },
    pending: async () =>
      (await db.query("select exists (select 1 from pgboss.job where name = 'noop' and state in ('created', 'retry', 'active')) as p")).rows[0].p,
    reset: async () => void (await db.query('delete from pgboss.job')),
    enqueueProbe: (t0) => boss.send('latency', { t0 }),
  };

  // `--systems ormq,graphile-batched` narrows a run; `--no-drain` measures latency only.
  const pick = process.argv.includes('--systems') ? process.argv[process.argv.indexOf('--systems') + 1]!.split(',') : null;
  const drainRuns = !process.argv.includes('--no-drain');
  const systems = [
    ormqSystem(ACK, false),
    // the cost of the metrics rollups: each ormq drain again without them, right after it
    ormqSystem(ACK_BARE, false, false),
    ormqSystem(SAVED, true),
    ormqSystem(SAVED_BARE, true, false),
    graphileSystem('graphile-worker, batching (localQueue 500, batch delays 0)', true),
    graphileSystem('graphile-worker, defaults', false),
    pgBossSystem,
    { ...ormqSystem(RAW_LABEL, false), key: 'raw', label: RAW_LABEL, cfg: { system: 'raw', batch: 100 }, shapes: [[1, 4]], noLatency: true },
  ].filter((s) => !pick || pick.includes(s.key));

  const full = Math.max(1000, Math.round(100_000 * ctx.scale));
  const rows: Section['rows'] = [];
  const best: Record<string, number> = {};
  const shapes: [number, number][] = [
    [1, 1],
    [1, 4],
    [1, 16],
    [2, 1],
    [2, 4],
    [2, 16],
  ];
  try {
    // Shape by shape, every system in turn: a drift in the machine's load then touches them alike.
    for (const [processes, concurrency] of drainRuns ? shapes : []) {
      for (const system of systems) {
        if (system.shapes && !system.shapes.some(([p, c]) => p === processes && c === concurrency)) continue;
        const n = system.slow ? Math.max(1000, Math.round(full / 10)) : full;
        await system.reset();
        await system.fill(n);
        await db.query('vacuum analyze');
        const workers = await spawnWorkers({ ...system.cfg, url, concurrency } as WorkerConfig, processes);
        const t0 = now();
        workers.go();
        while (await system.pending()) await new Promise((r) => setTimeout(r, 10));
        const seconds = (now() - t0) / 1000;
        await workers.stop();
        const rate = Math.round(n / seconds);
        best[system.label] = Math.max(best[system.label] ?? 0, rate);
        ctx.log(`${system.label}: ${processes}×${concurrency} → ${rate}/s`);
        const load = loadavg()[0]!.toFixed(2);
        rows.push({ system: system.label, processes, 'workers each': concurrency, tasks: n, seconds: seconds.toFixed(2), 'tasks/s': rate, 'load 1m': load });
        await system.reset();
      }
    }

    const probes = Math.max(50, Math.round(1000 * ctx.scale));
    for (const system of systems.filter((s) => (s.key === 'ormq' || !s.key.startsWith('ormq')) && !s.noLatency)) {
      const count = system === pgBossSystem ? Math.min(probes, 40) : probes;
      const workers = await spawnWorkers({ ...system.cfg, url, concurrency: 4 } as WorkerConfig, 1);
      workers.go();
      await new Promise((r) => setTimeout(r, 1500)); // let the worker settle into idle
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        await system.enqueueProbe(now());
        samples.push(await workers.nextLatency());
        await new Promise((r) => setTimeout(r, 5));
      }
      await workers.stop();
      samples.sort((a, b) => a - b);
      rows.push({
        system: `${system.label}: enqueue→start latency`,
        processes: 1,
        'workers each': 4,
        tasks: count,
        seconds: `p50 ${percentile(samples, 50).toFixed(2)} ms / p99 ${percentile(samples, 99).toFixed(2)} ms`,
        'tasks/s': null,
        'load 1m': loadavg()[0]!.toFixed(2),
      });
      await system.reset();
    }
  } finally {
    await boss.stop({ graceful: false, wait: false }).catch(() => {});
    await utils.release();
    await orm.close();
    await db.end();
  }

  const gw = best['graphile-worker, batching (localQueue 500, batch delays 0)'] ?? 0;
  const ack = best[ACK] ?? 0;
  const saved = best[SAVED] ?? 0;
  const ackBare = best[ACK_BARE] ?? 0;
  const savedBare = best[SAVED_BARE] ?? 0;
  const ratio = (withRollups: number, without: number) => (without ? `${((withRollups / without) * 100).toFixed(1)} %` : 'not run');
  // Each shape drains with and without rollups one after the other, so these pairs saw the same load.
  const pairs: string[] = [];
  for (const [withRollups, bare] of [[ACK, ACK_BARE], [SAVED, SAVED_BARE]] as const) {
    for (const r of rows.filter((x) => x.system === withRollups)) {
      const b = rows.find((x) => x.system === bare && x.processes === r.processes && x['workers each'] === r['workers each']);
      if (b) pairs.push(`${withRollups === ACK ? 'ack' : 'saved'} ${r.processes}×${r['workers each']} ${((Number(r['tasks/s']) / Number(b['tasks/s'])) * 100).toFixed(0)} %`);
    }
  }
  const raw = best[RAW_LABEL] ?? 0;
  // graphile-worker never keeps results: each of its shapes is ack only.
  const gwAckBest = Math.max(gw, best['graphile-worker, defaults'] ?? 0);
  const times = (a: number, b: number, target: number) =>
    a && b ? `${(a / b).toFixed(2)}× (target ≥ ${target}×: ${a / b >= target ? 'met' : 'MISSED'})` : 'not measured (a system was not run)';
  return {
    title: 'Cluster: drain and latency, side by side',
    rows,
    notes: [
      `Best drain rates: ormq ack-only ${ack}/s, ormq saving results ${saved}/s, graphile-worker batched ${gw}/s.`,
      `Raw limit ${raw}/s. ormq ack-only over the raw limit: ${times(ack, raw, 0.9)}; over graphile-worker batched: ${times(ack, gw, 1.5)}. ` +
        `ormq saving every result over graphile-worker's ack-only best (${gwAckBest}/s): ${times(saved, gwAckBest, 1)}.`,
      `Versions that ran (from their package.json): graphile-worker ${installedVersion('graphile-worker')}, pg-boss ${installedVersion('pg-boss')}, pg ${installedVersion('pg')}.`,
      `Metrics rollups: best drain with rollups / without, ack only ${ratio(ack, ackBare)}, saving results ${ratio(saved, savedBare)}` +
        (pairs.length ? `; per shape ${pairs.join(', ')}` : '') +
        ` (target ≥ 95 %; load average 1m/5m/15m at the end ${loadavg().map((l) => l.toFixed(2)).join(' / ')}, ${cpus().length} cores).`,
    ],
  };
}
