/**
 * The scale run (`npm run bench -- --only scale`): 1, 2, 4 and 8 ormq cluster processes (4 workers
 * each, every result saved) on one database. Per process count: the drain of a backlog, repeated
 * (`--repeat`, default 3) and given as the median with its spread; the enqueue→start p50 / p99 of
 * single tasks to those processes idle; and where the time goes: the server's WAL (pg_stat_wal
 * deltas), what the database's active backends wait on (pg_stat_activity and pg_locks sampled
 * every 50 ms), and CPU per task in the cluster processes and in their PostgreSQL backends.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { enqueue, ensureSchema, queueEntities } from '../src/index.js';
import type { BenchContext, Section } from './run.js';
import { fmt, percentile, spread } from './stats.js';
import { fillOrmq } from './systems.js';
import { spawnWorkers } from './workers.js';

const DB = 'ormq_bench_scale';
const WORKERS = 4;
const argOf = (name: string) => (process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1] : undefined);
const now = () => performance.timeOrigin + performance.now();

/** CPU (user + system, ms) of a local process from /proc, or null where the server is not local. */
function procCpuMs(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (100 Hz)
  } catch {
    return null;
  }
}

interface Probe {
  walRecords: number;
  walBytes: number;
  walFpi: number;
  samples: number;
  activeBackends: number;
  lockWaits: number;
  waits: Map<string, number>;
  pgCpuMs: number | null;
}

/** Samples the database's backends while `busy()` holds: what they wait on, and their CPU. */
async function watch(db: pg.Pool, busy: () => Promise<boolean>): Promise<Probe> {
  const wal = async () => (await db.query('select wal_records::float8 r, wal_bytes::float8 b, wal_fpi::float8 f from pg_stat_wal')).rows[0];
  const before = await wal();
  const cpuStart = new Map<number, number>();
  const cpuLast = new Map<number, number>();
  const p: Probe = { walRecords: 0, walBytes: 0, walFpi: 0, samples: 0, activeBackends: 0, lockWaits: 0, waits: new Map(), pgCpuMs: 0 };
  const pids = async () =>
    (await db.query('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [DB])).rows.map(
      (r) => r.pid as number,
    );
  for (const pid of await pids()) {
    const c = procCpuMs(pid);
    if (c !== null) cpuStart.set(pid, c);
  }
  while (await busy()) {
    const { rows } = await db.query(
      `select a.pid, a.state, a.wait_event_type, a.wait_event,
              exists (select 1 from pg_locks l where l.pid = a.pid and not l.granted) waiting
       from pg_stat_activity a where a.datname = $1 and a.pid <> pg_backend_pid()`,
      [DB],
    );
    p.samples++;
    for (const r of rows) {
      const c = procCpuMs(r.pid);
      if (c !== null) {
        if (!cpuStart.has(r.pid)) cpuStart.set(r.pid, 0); // a backend that connected during the drain
        cpuLast.set(r.pid, c);
      }
      if (r.state !== 'active') continue;
      p.activeBackends++;
      if (r.waiting) p.lockWaits++;
      const ev = r.wait_event ? `${r.wait_event_type}:${r.wait_event}` : 'running (no wait event)';
      p.waits.set(ev, (p.waits.get(ev) ?? 0) + 1);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const after = await wal();
  p.walRecords = after.r - before.r;
  p.walBytes = after.b - before.b;
  p.walFpi = after.f - before.f;
  p.pgCpuMs = cpuLast.size ? [...cpuLast].reduce((sum, [pid, c]) => sum + c - (cpuStart.get(pid) ?? c), 0) : null;
  return p;
}

export async function run(ctx: BenchContext): Promise<Section> {
  const counts = (argOf('processes') ?? '1,2,4,8').split(',').map(Number);
  if (counts.some((c) => !Number.isInteger(c) || c < 1 || c > 16))
    throw new RangeError(`--processes must be counts in [1, 16], e.g. 1,2,4,8, not ${argOf('processes')}`);
  const repeat = Number(argOf('repeat') ?? 3);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50)
    throw new RangeError(`--repeat must be a whole number in [1, 50], not ${argOf('repeat')}`);
  const url = await ctx.createDatabase(DB);
  const db = new pg.Pool({ connectionString: url, max: 2 });
  db.on('error', (e) => ctx.log(`bench pool: ${e.message}`));
  const orm = await MikroORM.init({ clientUrl: url, entities: queueEntities, pool: { min: 0, max: 2 } });
  await ensureSchema(orm);
  const n = Math.max(2000, Math.round(100_000 * ctx.scale));
  const probes = Math.max(50, Math.round(500 * ctx.scale));
  const pending = async () => (await db.query('select exists (select 1 from ormq_queued) as p')).rows[0].p as boolean;
  const reset = async () => void (await db.query('truncate ormq_queued, ormq_task, ormq_metric'));
  const rows: Section['rows'] = [];
  const rates = new Map<number, number>();
  const bottlenecks = new Map<number, string>();
  try {
    for (const processes of counts) {
      const workers = await spawnWorkers({ system: 'ormq', url, concurrency: WORKERS, save: true, bulk: 500, metrics: true }, processes);
      const drains: number[] = [];
      const seen: Probe[] = [];
      const nodeCpu: number[] = [];
      try {
        for (let r = 0; r < repeat; r++) {
          await reset();
          await fillOrmq(db, n);
          await db.query('vacuum analyze');
          const t0 = now();
          workers.go();
          const deadline = t0 + Math.max(120_000, n);
          seen.push(await watch(db, async () => (await pending()) && now() < deadline));
          const seconds = (now() - t0) / 1000;
          nodeCpu.push((await workers.halt()).reduce((a, b) => a + b, 0));
          if (now() >= deadline) throw new Error(`scale: ${processes} processes did not drain ${n} tasks within ${seconds.toFixed(0)} s`);
          drains.push(n / seconds);
        }
        // enqueue→start to the same processes, idle
        await reset();
        workers.go();
        await new Promise((r) => setTimeout(r, 1500));
        const samples: number[] = [];
        for (let i = 0; i < probes; i++) {
          await enqueue(orm.em.fork(), 'latency', [now()], { key: 'bench' });
          samples.push(await workers.nextLatency());
          await new Promise((r) => setTimeout(r, 5));
        }
        await workers.halt();
        samples.sort((a, b) => a - b);
        const s = spread(drains);
        rates.set(processes, s.median);
        const sum = (f: (p: Probe) => number) => seen.reduce((a, p) => a + f(p), 0);
        const tasks = n * seen.length;
        const waits = new Map<string, number>();
        for (const p of seen) for (const [k, v] of p.waits) waits.set(k, (waits.get(k) ?? 0) + v);
        const active = sum((p) => p.activeBackends) || 1;
        const top = [...waits]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([k, v]) => `${k} ${((v / active) * 100).toFixed(0)} %`);
        bottlenecks.set(processes, top[0] ?? '—');
        const pgCpu = seen.every((p) => p.pgCpuMs !== null) ? sum((p) => p.pgCpuMs!) : null;
        ctx.log(`${processes} processes: median ${fmt(s.median)}/s, p99 ${percentile(samples, 99).toFixed(2)} ms, ${top.join(', ')}`);
        rows.push({
          processes,
          'workers each': WORKERS,
          tasks: n,
          drains: s.n,
          'tasks/s (median)': Math.round(s.median),
          'min–max': `${fmt(s.min)}–${fmt(s.max)}`,
          spread: `±${(s.spreadPct / 2).toFixed(1)} %`,
          'per process': Math.round(s.median / processes),
          'p50 / p99 ms': `${percentile(samples, 50).toFixed(2)} / ${percentile(samples, 99).toFixed(2)}`,
          'WAL B / task': Math.round(sum((p) => p.walBytes) / tasks),
          'WAL rec / task': (sum((p) => p.walRecords) / tasks).toFixed(1),
          'FPI / 1k tasks': ((sum((p) => p.walFpi) / tasks) * 1000).toFixed(1),
          'backends in lock wait': `${((sum((p) => p.lockWaits) / active) * 100).toFixed(0)} %`,
          'active backends waiting on (top 3)': top.join(', '),
          'node CPU ms / 1k tasks': ((nodeCpu.reduce((a, b) => a + b, 0) / tasks) * 1000).toFixed(0),
          'pg CPU ms / 1k tasks': pgCpu === null ? 'n/a (server not local)' : ((pgCpu / tasks) * 1000).toFixed(0),
          'load 1m': loadavg()[0]!.toFixed(2),
        });
      } finally {
        await workers.stop();
        await reset();
      }
    }
  } finally {
    await orm.close();
    await db.end();
  }
  // Where it stops scaling: the first count whose median drain is under 1.1× the previous count's.
  let stops: string | null = null;
  for (let i = 1; i < counts.length; i++) {
    const a = rates.get(counts[i - 1]!) ?? 0;
    const b = rates.get(counts[i]!) ?? 0;
    if (a && b < a * 1.1) {
      stops = `from ${counts[i - 1]} to ${counts[i]} processes the drain went ${fmt(a)} → ${fmt(b)}/s (${((b / a) * 100).toFixed(0)} %); at ${counts[i]}, the share of the active backends' samples in their top state: ${bottlenecks.get(counts[i]!)}`;
      break;
    }
  }
  return {
    title: 'Scale: cluster processes on one database',
    rows,
    notes: [
      `Every result saved (saveLimit 0, rollups on), ${WORKERS} workers and bulk 500 per process, ${fmt(n)} tasks per drain, ${repeat} drains per count; p50 / p99: ${probes} single enqueues, each waited for, to the processes idle.`,
      `Where it stops scaling: ${stops ?? 'it scaled (≥ 1.1× per step) over every count run'}. The machine has ${cpus().length} cores: past that, processes share them with PostgreSQL.`,
      'WAL figures are pg_stat_wal deltas over each drain: server-wide, so another database busy on the same server adds to them. "Backends in lock wait": the share of samples of the database\'s active backends holding an ungranted lock; the wait events are pg_stat_activity\'s, sampled every 50 ms.',
      `Load average 1m/5m/15m at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' / ')}.`,
    ],
  };
}
