/**
 * The Metrics page: per func, over 1 hour to 30 days, the attempts, failures, throughput, runtime
 * and wait percentiles, and a series of successes and failures per step, all read from the metrics
 * rollups (ormq_metric), so they count every attempt whatever saveLimit kept.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { addStored, emptyHistogram, percentile } from '../../histogram.js';
import { badRequest } from '../http.js';
import { Where } from '../filters.js';
import { viewRoute, type PageModule } from '../page.js';
import { db } from '../../db/run.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * Each range, the width of one bar of its chart (bars start on UTC multiples of it) and the rows
 * it reads: minute rows for the last hour, hour rows for a day, and for 7 and 30 days the 6-hour
 * and day rows (28 and 30 a series) with the hour rows not folded into them yet (src/metric-rows.ts).
 * Reading 30 days of hour rows took 202 ms of SQL at the admin bench's seed.
 */
const RANGES = {
  '1h': { span: HOUR, step: MINUTE, rows: 1, folded: false },
  '24h': { span: 24 * HOUR, step: HOUR, rows: 60, folded: false },
  '7d': { span: 7 * 24 * HOUR, step: 6 * HOUR, rows: 360, folded: true },
  '30d': { span: 30 * 24 * HOUR, step: 24 * HOUR, rows: 1440, folded: true },
} as const;
type Range = keyof typeof RANGES;

const PARAMS = { range: 0, func: 256, key: 100 } as const;

interface MetricsQuery {
  range: Range;
  func: string | null;
  key: string | null;
}

/**
 * Strict: an unknown or repeated parameter, a range not in the list, or a func or key longer than
 * its column is a 400 naming the parameter.
 */
function parseMetricsQuery(search: string): MetricsQuery {
  const params = new URLSearchParams(search);
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (!Object.hasOwn(PARAMS, name)) {
      throw badRequest(`Unknown parameter ${JSON.stringify(name.slice(0, 50))} (allowed: range, func, key)`, {
        [name.slice(0, 50)]: 'is not a parameter of metrics',
      });
    }
    if (seen.has(name)) throw badRequest(`${name} is given more than once`, { [name]: 'must be given at most once' });
    seen.add(name);
  }
  const range = params.get('range') ?? '24h';
  if (!Object.hasOwn(RANGES, range)) {
    throw badRequest(`range must be one of ${Object.keys(RANGES).join(', ')}`, {
      range: `must be one of ${Object.keys(RANGES).join(', ')}`,
    });
  }
  const text = (name: 'func' | 'key'): string | null => {
    const v = params.get(name);
    if (v === null) return null;
    if (v === '' || v.length > PARAMS[name])
      throw badRequest(`${name} must be 1 to ${PARAMS[name]} characters`, { [name]: `must be 1 to ${PARAMS[name]} characters` });
    return v;
  };
  return { range: range as Range, func: text('func'), key: text('key') };
}

interface Percentiles {
  p50: number | null;
  p95: number | null;
  max: number | null;
  mean: number | null;
}

interface FuncMetrics {
  func: string;
  runs: number;
  failures: number;
  /** failures / runs, 0..1 */
  failureRate: number;
  /** attempts per minute over the range */
  perMinute: number;
  runtime: Percentiles;
  wait: Percentiles;
}

interface MetricsResult {
  range: Range;
  func: string | null;
  key: string | null;
  from: string;
  to: string;
  /** ms per bar of `series` */
  step: number;
  series: { at: string; success: number; failure: number }[];
  funcs: FuncMetrics[];
  /** keys (cluster names) with attempts in the range, for the key filter */
  keys: string[];
}

type Row = Record<string, unknown>;

/** A json_agg of stored histograms: parsed by the driver, or its text where a host's pg parses json differently. */
const stored = (v: unknown): unknown[] => (typeof v === 'string' ? (JSON.parse(v) as unknown[]) : Array.isArray(v) ? v : []);

function stats(hist: number[], sum: number, max: number, count: number): Percentiles {
  if (!count) return { p50: null, p95: null, max: null, mean: null };
  return { p50: percentile(hist, 0.5, max), p95: percentile(hist, 0.95, max), max, mean: sum / count };
}

export async function metrics(em: SqlEntityManager, q: MetricsQuery, now = new Date()): Promise<MetricsResult> {
  const { span, step, rows, folded } = RANGES[q.range];
  const to = Math.floor(now.getTime() / step) * step + step;
  const from = to - span;
  /** The rows of the range (of one func and key when given), as a subquery `m`, with its parameters. */
  const source = (func: string | null, key: string | null) => {
    const part = (spanMinutes: number, unfolded: boolean) => {
      const w = new Where()
        .add('span_minutes = ?', spanMinutes)
        .add('bucket >= ?::timestamptz', new Date(from).toISOString())
        .add('bucket < ?::timestamptz', new Date(to).toISOString());
      if (unfolded) w.add('shard <> 0');
      if (func !== null) w.add('func = ?', func);
      if (key !== null) w.add('key = ?', key);
      return w;
    };
    const main = part(rows, false);
    if (!folded) return { sql: `(select * from ormq_metric ${main.sql}) m`, params: main.params };
    const rest = part(60, true);
    return {
      sql: `(select * from ormq_metric ${main.sql} union all select * from ormq_metric ${rest.sql}) m`,
      params: [...main.params, ...rest.params],
    };
  };
  const narrowed = source(q.func, q.key);
  const scope = source(null, null);

  // One round trip, one implicit transaction (the admin's `all`), without JIT or parallel workers:
  // the planner's cost estimates of these aggregates over 30 days' 1,920 day rows were large enough
  // to compile the queries or to start two workers (250 ms at a load of 20, of which the workers'
  // own part was 48 ms), either of which took longer than running them.
  const [, , totals, series, keys] = (await db(em).all([
    ['set local jit = off'],
    ['set local max_parallel_workers_per_gather = 0'],
    // Each func's sums, and its rows' histograms as they are stored, added up here: summing them in
    // SQL (each expanded with jsonb_each_text, then grouped by bucket) was most of the page's SQL,
    // 13–16 ms of an hour's 3,840 minute rows at the admin bench's seed against 4 ms for the sums.
    [
      `select func, success, sum(count) as n, sum(runtime_sum) as rs, max(runtime_max) as rm, sum(wait_sum) as ws, max(wait_max) as wm,
              json_agg(runtime_hist) as rh, json_agg(wait_hist) as wh
         from ${narrowed.sql} group by func, success`,
      narrowed.params,
    ],
    [
      `select extract(epoch from date_bin(make_interval(secs => ${step / 1000}), bucket, 'epoch'::timestamptz))::bigint * 1000 as at,
              success, sum(count) as n
         from ${narrowed.sql} group by 1, 2`,
      narrowed.params,
    ],
    [`select distinct key from ${scope.sql} order by key limit 200`, scope.params],
  ])) as Row[][];

  const byFunc = new Map<
    string,
    { runs: number; failures: number; rs: number; rm: number; ws: number; wm: number; rh: number[]; wh: number[] }
  >();
  const entry = (func: string) => {
    let e = byFunc.get(func);
    if (!e) byFunc.set(func, (e = { runs: 0, failures: 0, rs: 0, rm: 0, ws: 0, wm: 0, rh: emptyHistogram(), wh: emptyHistogram() }));
    return e;
  };
  for (const r of totals) {
    const e = entry(r.func as string);
    const n = Number(r.n);
    e.runs += n;
    if (!r.success) e.failures += n;
    e.rs += Number(r.rs);
    e.ws += Number(r.ws);
    e.rm = Math.max(e.rm, Number(r.rm));
    e.wm = Math.max(e.wm, Number(r.wm));
    for (const h of stored(r.rh)) addStored(e.rh, h);
    for (const h of stored(r.wh)) addStored(e.wh, h);
  }
  const minutes = span / MINUTE;
  const funcs: FuncMetrics[] = [...byFunc].map(([func, e]) => ({
    func,
    runs: e.runs,
    failures: e.failures,
    failureRate: e.runs ? e.failures / e.runs : 0,
    perMinute: e.runs / minutes,
    runtime: stats(e.rh, e.rs, e.rm, e.runs),
    wait: stats(e.wh, e.ws, e.wm, e.runs),
  }));
  funcs.sort((a, b) => b.runs - a.runs || (a.func < b.func ? -1 : 1));

  const bars = span / step;
  const out = Array.from({ length: bars }, (_, i) => ({ at: new Date(from + i * step).toISOString(), success: 0, failure: 0 }));
  for (const r of series) {
    const bar = out[(Number(r.at) - from) / step];
    if (bar) bar[r.success ? 'success' : 'failure'] += Number(r.n);
  }
  return {
    range: q.range,
    func: q.func,
    key: q.key,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    step,
    series: out,
    funcs,
    keys: keys.map((k) => k.key as string),
  };
}

export const metricsPage: PageModule = {
  id: 'metrics',
  labels: {},
  routes: {
    // Shared: a wall screen or a team watching one range costs one read at a time.
    '': {
      ...viewRoute(
        'metrics',
        ({ search }) => parseMetricsQuery(search),
        (x, q) => metrics(x.em, q),
      ),
      shared: true,
    },
  },
};
