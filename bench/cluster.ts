/**
 * The cluster against today's peers, on one database in one run: drain a bulk-enqueued backlog of
 * no-op tasks with 1, 4 and 16 concurrent workers in one and in two processes (bench/systems.ts
 * lists who), each drain repeated (`--repeat`, default 5, the systems of a shape taking turns) in
 * the same connected processes and reported as the median with its min–max; then the enqueue→start latency of single tasks to an
 * idle worker. Every target is a ratio of medians read in this run (bench/results/latest.json).
 */
import { cpus, loadavg } from 'node:os';
import type { BenchContext, Section } from './run.js';
import type { WorkerConfig } from './cluster-worker.js';
import { fmt, peakAtOnce, percentile, ratioTarget, spread, type Spread, type Target } from './stats.js';
import { LABELS, LIMITED, LIMITED_BOUND, VERSIONS, setUpPeers, type System } from './systems.js';
import { spawnWorkers } from './workers.js';

const now = () => performance.timeOrigin + performance.now();
const argv = process.argv;
const argOf = (name: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : undefined);

/** `--shapes 1x4,2x16`: processes × workers to drain with (default: the six below). */
function shapesArg(): [number, number][] {
  const given = argOf('shapes');
  if (!given)
    return [
      [1, 1],
      [1, 4],
      [1, 16],
      [2, 1],
      [2, 4],
      [2, 16],
    ];
  return given.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new RangeError(`--shapes: "${s}" is not processes x workers, e.g. 2x16`);
    return [Number(m[1]), Number(m[2])];
  });
}

/** One system's drains at one shape, drain by drain. */
interface Measured {
  rates: number[];
  /** pg_stat_wal bytes per task */
  walBytes: number[];
  /** the worker processes' CPU ms per 1,000 tasks */
  cpu: number[];
  /** the pruned drain: ormq_task's rows when drained, and once stopped */
  kept: [number, number][];
  /** a limited drain: the most tasks running at once, over all and of one group */
  peaks: { total: number; group: number }[];
}

export async function run(ctx: BenchContext): Promise<Section> {
  const repeat = Number(argOf('repeat') ?? 5);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50)
    throw new RangeError(`--repeat must be a whole number in [1, 50], not ${argOf('repeat')}`);
  const shapes = shapesArg();
  const pick = argOf('systems')?.split(',');
  const drainRuns = !argv.includes('--no-drain');

  const url = await ctx.createDatabase('ormq_bench_cluster');
  const peers = await setUpPeers(url, ctx.log);
  const known = peers.systems.map((s) => s.key);
  const unknown = pick?.filter((k) => !known.includes(k)) ?? [];
  if (unknown.length) throw new RangeError(`--systems: unknown ${unknown.join(', ')} (the systems are ${known.join(', ')})`);
  const systems = peers.systems.filter((s) => (pick ? pick.includes(s.key) : !s.optIn));

  const full = Math.max(1000, Math.round(100_000 * ctx.scale));
  const rows: Section['rows'] = [];
  const best = new Map<string, Spread>();
  const perShape = new Map<string, Spread>();
  const latency = new Map<string, { p50: number; p99: number }>();
  /** the pruned drain's ormq_task rows per shape, each drain's [when drained, once stopped] */
  const keptRows = new Map<string, [number, number][]>();
  /** a limited drain's peaks, drain by drain: running at once over all, and of one group */
  const peaks = new Map<string, { total: number; group: number }[]>();
  const started = Date.now();
  try {
    // Shape by shape. ormq's own drains (whose ratios to each other are targets: rollups, saveLimit
    // 250) take turns drain by drain, their processes connected at once, so that a machine whose
    // load drifts over the minutes moves both sides of those ratios alike; every other system
    // drains on its own, as the peers' pools together would pass the server's max_connections.
    const fixed = systems.flatMap((s) => (s.fixedShape ? [s.fixedShape] : []));
    const runShapes = [...shapes, ...fixed].filter((a, i, all) => all.findIndex((b) => b[0] === a[0] && b[1] === a[1]) === i);
    for (const [processes, concurrency] of drainRuns ? runShapes : []) {
      const at = (list: [number, number][]) => list.some(([p, c]) => p === processes && c === concurrency);
      const here = systems.filter((system) =>
        system.fixedShape ? at([system.fixedShape]) : at(shapes) && (!system.shapes || at(system.shapes)),
      );
      const turns = new Map<string, System[]>();
      for (const system of here) {
        const family = system.cfg.system === 'ormq' && !system.cfg.limited ? 'ormq' : system.key;
        turns.set(family, [...(turns.get(family) ?? []), system]);
      }
      const measured = new Map<System, Measured>();
      for (const group of turns.values())
        for (const [system, m] of await interleaved(group, processes, concurrency)) measured.set(system, m);
      for (const system of here) {
        const m = measured.get(system)!;
        if (system.cfg.limited) peaks.set(system.label, [...(peaks.get(system.label) ?? []), ...m.peaks]);
        if (!m.rates.length) continue;
        const n = Math.max(1000, Math.round(full * (system.share ?? 1)));
        const s = spread(m.rates);
        perShape.set(`${system.label} ${processes}×${concurrency}`, s);
        if (m.kept.length) keptRows.set(`${processes}×${concurrency}`, m.kept);
        if (s.median > (best.get(system.label)?.median ?? 0)) best.set(system.label, s);
        ctx.log(`${system.label}: ${processes}×${concurrency} → median ${fmt(s.median)}/s (±${(s.spreadPct / 2).toFixed(1)} %)`);
        rows.push({
          system: system.label,
          processes,
          'workers each': concurrency,
          tasks: n,
          drains: s.n,
          'tasks/s (median)': Math.round(s.median),
          'min–max': `${fmt(s.min)}–${fmt(s.max)}`,
          spread: `±${(s.spreadPct / 2).toFixed(1)} %`,
          'WAL B / task': Math.round(spread(m.walBytes).median),
          'node CPU ms / 1k tasks': Math.round(spread(m.cpu).median),
          'task rows: drained → stopped': m.kept.length
            ? `${fmt(spread(m.kept.map((k) => k[0])).median)} → ${fmt(spread(m.kept.map((k) => k[1])).median)}`
            : null,
          'load 1m': loadavg()[0]!.toFixed(2),
        });
      }
    }

    const probes = Math.max(50, Math.round(1000 * ctx.scale));
    for (const system of systems.filter((s) => s.enqueueProbe)) {
      const workers = await spawnWorkers({ ...system.cfg, url, concurrency: 4 } as WorkerConfig, 1);
      workers.go();
      await new Promise((r) => setTimeout(r, 1500)); // let the worker settle into idle
      const samples: number[] = [];
      for (let i = 0; i < probes; i++) {
        await system.enqueueProbe!(now());
        samples.push(await workers.nextLatency());
        await new Promise((r) => setTimeout(r, 5));
      }
      await workers.stop();
      samples.sort((a, b) => a - b);
      const l = { p50: percentile(samples, 50), p99: percentile(samples, 99) };
      latency.set(system.label, l);
      rows.push({
        system: `${system.label}: enqueue→start latency`,
        processes: 1,
        'workers each': 4,
        tasks: probes,
        drains: null,
        'tasks/s (median)': null,
        'min–max': `p50 ${l.p50.toFixed(2)} ms / p99 ${l.p99.toFixed(2)} ms`,
        spread: null,
        'WAL B / task': null,
        'node CPU ms / 1k tasks': null,
        'task rows: drained → stopped': null,
        'load 1m': loadavg()[0]!.toFixed(2),
      });
      await system.reset();
    }
  } finally {
    await peers.close();
  }

  const med = (label: string) => best.get(label)?.median ?? 0;
  const keeping = systems.filter((s) => s.keepsResults && !s.key.startsWith('ormq')).map((s) => s.label);
  const bestKeeper = keeping.reduce((a, b) => (med(b) > med(a) ? b : a), keeping[0] ?? '');
  const shown = (label: string) => (best.has(label) ? `${label} ${fmt(med(label))}/s` : `${label} not run`);
  const targets: Target[] = [
    ratioTarget(
      'every result saved ÷ the best results-keeping peer',
      med(LABELS.saved),
      med(bestKeeper),
      1.5,
      `${shown(LABELS.saved)}; best peer: ${bestKeeper ? shown(bestKeeper) : 'none run'}`,
    ),
    ratioTarget(
      'every result saved ÷ the raw saved limit',
      med(LABELS.saved),
      med(LABELS.rawSaved),
      0.85,
      `${shown(LABELS.saved)}; ${shown(LABELS.rawSaved)}`,
    ),
    ratioTarget(
      'every result saved at saveLimit 250 (pruned) ÷ unlimited (saveLimit 0)',
      med(LABELS.saved250),
      med(LABELS.saved),
      0.9,
      `${shown(LABELS.saved250)}; ${shown(LABELS.saved)}; ormq_task rows when drained → once stopped: ${
        [...keptRows].map(([shape, k]) => `${shape} ${k.map(([a, b]) => `${fmt(a)} → ${fmt(b)}`).join(', ')}`).join('; ') || 'not run'
      }${
        // A pass runs about once a second: a drain shorter than that ends before the first one.
        [...keptRows.values()].flat().some(([drained]) => drained < full)
          ? ''
          : keptRows.size
            ? `; no drain pruned before it ended (each under a pass's second at ${fmt(full)} tasks): this ratio does not measure pruning at this scale`
            : ''
      }`,
    ),
    ratioTarget(
      'ack only ÷ graphile-worker batched',
      med(LABELS.ack),
      med(LABELS.gwBatched),
      1.5,
      `${shown(LABELS.ack)}; ${shown(LABELS.gwBatched)}`,
    ),
    ratioTarget('ack only ÷ the raw limit', med(LABELS.ack), med(LABELS.raw), 0.9, `${shown(LABELS.ack)}; ${shown(LABELS.raw)}`),
    // The raw limits delete at claim time (at most once); these compare with the least an at-least-once queue writes.
    ratioTarget(
      'ack only ÷ the raw at-least-once limit',
      med(LABELS.ack),
      med(LABELS.rawAcked),
      0.9,
      `${shown(LABELS.ack)}; ${shown(LABELS.rawAcked)}`,
    ),
    ratioTarget(
      'every result saved ÷ the raw at-least-once saved limit',
      med(LABELS.saved),
      med(LABELS.rawSavedAcked),
      0.85,
      `${shown(LABELS.saved)}; ${shown(LABELS.rawSavedAcked)}`,
    ),
    rollupTarget('ack only', LABELS.ack, LABELS.ackBare, perShape, shapes),
    rollupTarget('every result saved', LABELS.saved, LABELS.savedBare, perShape, shapes),
    ...latencyTargets(latency),
    ...limitTargets(best, peaks),
  ];
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  return {
    title: 'Cluster: drain and latency, side by side',
    rows,
    targets,
    notes: [
      `Each drain ${repeat}× in the same processes, the systems of a shape taking turns drain by drain; a figure is the median of its drains, with their min–max and half that range as a share of the median (spread). ` +
        `A system's best is its best shape by the median; every ratio below is of those medians.`,
      `Versions that ran (from their package.json): graphile-worker ${VERSIONS['graphile-worker']}, pg-boss ${VERSIONS['pg-boss']}, BullMQ ${VERSIONS.bullmq} on its PostgreSQL backend, pg ${VERSIONS.pg}.`,
      "WAL B / task: pg_stat_wal bytes over each drain (server-wide) per task, median; node CPU: the worker processes' user + system time per 1,000 tasks, median. Where a ratio falls short, these say whether the database (WAL) or the workers (CPU) take the difference.",
      `Raw saved limit's table: ${peers.rawSavedIndexes.copy} indexes, ormq_task ${peers.rawSavedIndexes.ormqTask} (created like ormq_task including all).`,
      ...(peaks.size
        ? [
            `Concurrency-limited drains: the backlog spread evenly over ${LIMITED.groups} groups (ormq: a func each, setLimit concurrency ${LIMITED.concurrency}; pg-boss: group.id, groupConcurrency ${LIMITED.concurrency}), ` +
              `each task sleeping ${LIMITED.sleepMs} ms, so no drain beats ${fmt(LIMITED_BOUND)} tasks/s. Peak at once: the most tasks running at one instant in any drain, ` +
              `counted from each task's start and end on the machine's monotonic clock across the processes; it must not exceed ${LIMITED.groups * LIMITED.concurrency} (${LIMITED.concurrency} of one group). ` +
              [...peaks].map(([label, p]) => `${label}: ${p.map((x) => `${x.total} (of one group ${x.group})`).join(', ')}.`).join(' '),
          ]
        : []),
      `Load average 1m/5m/15m at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' / ')}, ${cpus().length} cores; the section took ${minutes} min.`,
    ],
  };

  /**
   * Each system's processes for one shape, connected before any clock starts; then `repeat` rounds,
   * each filling, draining and halting every system once in turn. Per system: each drain's
   * tasks/s, WAL bytes per task (pg_stat_wal, server-wide), CPU of its worker processes per 1,000
   * tasks, and for the pruned drain ormq_task's rows when drained and once stopped. A system that
   * does not drain in time is left out of the later rounds.
   */
  async function interleaved(here: System[], processes: number, concurrency: number) {
    const db = peers.db;
    const wal = async () => Number((await db.query('select wal_bytes::float8 b from pg_stat_wal')).rows[0].b);
    const out = new Map<System, Measured>(here.map((s) => [s, { rates: [], walBytes: [], cpu: [], kept: [], peaks: [] }]));
    const workers = new Map<System, Awaited<ReturnType<typeof spawnWorkers>>>();
    const stalled = new Set<System>();
    try {
      for (const system of here) workers.set(system, await spawnWorkers({ ...system.cfg, url, concurrency } as WorkerConfig, processes));
      // Round -1 warms each system up (a tenth of its backlog, not counted): the first drain of a
      // fresh process ran at half the speed of the next ones (JIT, caches), which moved a median of three.
      for (let r = -1; r < repeat; r++) {
        for (const system of here) {
          if (stalled.has(system)) continue;
          const whole = Math.max(1000, Math.round(full * (system.share ?? 1)));
          const n = r < 0 ? Math.max(1000, Math.round(whole / 10)) : whole;
          const m = out.get(system)!;
          await system.reset();
          await system.fill(n);
          await db.query('vacuum analyze');
          const wal0 = await wal();
          const t0 = now();
          workers.get(system)!.go();
          const deadline = t0 + Math.max(120_000, n); // a stalled system must not hang the bench
          while ((await system.pending()) && now() < deadline) await new Promise((res) => setTimeout(res, 10));
          const seconds = (now() - t0) / 1000;
          const wal1 = await wal();
          const atEnd = await system.taskRows?.();
          const used = await workers.get(system)!.halt();
          if (system.cfg.limited) m.peaks.push(peakAtOnce(workers.get(system)!.takeSpans()));
          if (now() >= deadline) {
            ctx.log(`${system.label}: ${processes}×${concurrency} did not drain ${n} tasks within ${seconds.toFixed(0)} s; left out`);
            stalled.add(system);
            continue;
          }
          if (r >= 0) {
            m.rates.push(n / seconds);
            m.walBytes.push((wal1 - wal0) / n);
            m.cpu.push((used.reduce((a, b) => a + b, 0) / n) * 1000);
            if (atEnd !== undefined) m.kept.push([atEnd, (await system.taskRows!())!]);
          }
          await system.reset();
        }
      }
    } finally {
      for (const w of workers.values()) await w.stop();
      for (const system of here) await system.reset();
    }
    return out;
  }
}

/** Rollups' cost: per shape the median with rollups over the median without, and the best shape's pair. */
function rollupTarget(
  what: string,
  withRollups: string,
  without: string,
  perShape: Map<string, Spread>,
  shapes: [number, number][],
): Target {
  const pairs = shapes
    .map(([p, c]) => [perShape.get(`${withRollups} ${p}×${c}`), perShape.get(`${without} ${p}×${c}`), `${p}×${c}`] as const)
    .filter(([a, b]) => a && b)
    .map(([a, b, shape]) => ({ shape, ratio: a!.median / b!.median }));
  const name = `drain with rollups ÷ without, ${what}`;
  if (!pairs.length) return { name, target: '≥ 0.97', value: null, met: null, detail: 'not measured: a system was not run' };
  const value = Number(spread(pairs.map((x) => x.ratio)).median.toFixed(3));
  return {
    name,
    target: '≥ 0.97',
    value,
    met: value >= 0.97,
    detail: `median of the shapes' ratios; per shape ${pairs.map((x) => `${x.shape} ${(x.ratio * 100).toFixed(1)} %`).join(', ')}`,
  };
}

/**
 * The concurrency-limited drains: ormq's best median over pg-boss's, at least parity (both drain
 * under the same ceiling, so the ratio says how much of it each reaches), and whether ormq's
 * limit held: the most tasks of one func that ran at once, in any drain, against the limit.
 */
function limitTargets(best: Map<string, Spread>, peaks: Map<string, { total: number; group: number }[]>): Target[] {
  const med = (label: string) => best.get(label)?.median ?? 0;
  const shown = (label: string, short: string) => {
    const p = peaks.get(label);
    if (!best.has(label)) return `${short} not run`;
    const most = p?.length
      ? `, peak at once ${Math.max(...p.map((x) => x.total))} (of one group ${Math.max(...p.map((x) => x.group))})`
      : '';
    return `${short} ${fmt(med(label))}/s = ${((med(label) / LIMITED_BOUND) * 100).toFixed(0)} % of the bound${most}`;
  };
  const detail = `bound ${LIMITED.groups} × ${LIMITED.concurrency} / ${LIMITED.sleepMs} ms = ${fmt(LIMITED_BOUND)} tasks/s; ${shown(LABELS.limit, 'ormq')}; ${shown(LABELS.bossGroup, 'pg-boss')}`;
  const ormqPeaks = peaks.get(LABELS.limit) ?? [];
  const most = ormqPeaks.length ? Math.max(...ormqPeaks.map((x) => x.group)) : null;
  return [
    ratioTarget('concurrency-limited drain ÷ pg-boss group concurrency', med(LABELS.limit), med(LABELS.bossGroup), 1, detail),
    {
      name: 'concurrency limit held: most tasks of one func at once, ormq',
      target: `≤ ${LIMITED.concurrency}`,
      value: most,
      met: most === null ? null : most <= LIMITED.concurrency,
      detail:
        most === null
          ? 'not measured: ormq-limit was not run'
          : `per drain (over all / of one func): ${ormqPeaks.map((x) => `${x.total}/${x.group}`).join(', ')}; over all the limit allows ${LIMITED.groups * LIMITED.concurrency}`,
    },
  ];
}

function latencyTargets(latency: Map<string, { p50: number; p99: number }>): Target[] {
  const ormq = latency.get(LABELS.ack);
  const peers = [...latency]
    .filter(([label]) => label !== LABELS.ack)
    .map(([label, l]) => `${label} ${l.p50.toFixed(2)} / ${l.p99.toFixed(2)} ms`)
    .join('; ');
  const bound = (name: string, key: 'p50' | 'p99', max: number): Target =>
    ormq
      ? {
          name,
          target: `≤ ${max} ms`,
          value: Number(ormq[key].toFixed(2)),
          met: ormq[key] <= max,
          detail: `peers (p50 / p99): ${peers || 'none run'}`,
        }
      : { name, target: `≤ ${max} ms`, value: null, met: null, detail: 'not measured' };
  return [bound('enqueue→start p50, ormq', 'p50', 2.5), bound('enqueue→start p99, ormq', 'p99', 8)];
}
