/**
 * Metrics rollups: what a batch of finished tasks adds to ormq_metric, and the upkeep that folds
 * old minute rows into hour rows and drops hour rows past the retention. The rows are written by
 * the batch's own completion statement (COMPLETE in sql.ts), so a task is counted exactly when its
 * attempt is saved and acked, whatever saveLimit or `save: false` keep of it.
 */
import { bucketOf, emptyHistogram } from '../histogram.js';
import type { TaskPackage } from '../rows.js';
import type { Queryable } from './sql.js';

export interface Attempt {
  pkg: TaskPackage;
  success: boolean;
  /** ISO timestamps, possibly with microseconds */
  started: string;
  stopped: string;
}

export interface RollupRow {
  bucket: string;
  key: string;
  func: string;
  success: boolean;
  count: number;
  runtime_sum: number;
  runtime_max: number;
  wait_sum: number;
  wait_max: number;
  runtime_hist: number[];
  wait_hist: number[];
}

const MINUTE = 60_000;

/** ms since the epoch, keeping the microseconds Date.parse drops. NaN when unreadable. */
function msOf(iso: unknown): number {
  if (typeof iso !== 'string') return NaN;
  const ms = Date.parse(iso);
  const micros = /\.\d{3}(\d{1,3})(?:Z|[+-]\d\d:?\d\d)$/.exec(iso);
  return micros ? ms + Number(micros[1]!.padEnd(3, '0')) / 1000 : ms;
}

/** A clock step between producer and cluster must not make a wait negative or unreadable. */
const duration = (from: number, to: number) => (Number.isFinite(from) && Number.isFinite(to) ? Math.max(0, to - from) : 0);

/**
 * One row per minute (of `stopped`, UTC) × key × func × outcome, sorted by that key: concurrent
 * clusters upserting the same rows then lock them in the same order and cannot deadlock.
 */
export function rollupRows(attempts: readonly Attempt[], key: string): RollupRow[] {
  const rows = new Map<string, RollupRow>();
  for (const a of attempts) {
    const started = msOf(a.started);
    const stopped = msOf(a.stopped);
    const runtime = duration(started, stopped);
    const wait = duration(msOf(a.pkg.enqueued), started);
    const bucket = new Date(Math.floor(stopped / MINUTE) * MINUTE).toISOString();
    // as the task row stores it: varchar(256)
    const func = String(a.pkg.func ?? '').slice(0, 256);
    const id = JSON.stringify([bucket, func, a.success]);
    let row = rows.get(id);
    if (!row) {
      row = { bucket, key, func, success: a.success, count: 0, runtime_sum: 0, runtime_max: 0, wait_sum: 0, wait_max: 0, runtime_hist: emptyHistogram(), wait_hist: emptyHistogram() };
      rows.set(id, row);
    }
    row.count++;
    row.runtime_sum += runtime;
    row.runtime_max = Math.max(row.runtime_max, runtime);
    row.wait_sum += wait;
    row.wait_max = Math.max(row.wait_max, wait);
    row.runtime_hist[bucketOf(runtime)]!++;
    row.wait_hist[bucketOf(wait)]!++;
  }
  const order = (r: RollupRow) => [r.bucket, r.func, r.success ? 1 : 0] as const;
  return [...rows.values()].sort((x, y) => {
    const [a, b] = [order(x), order(y)];
    return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] - b[2];
  });
}

/** Elementwise sum of two histograms of the same fixed buckets. */
const addHist = (a: string, b: string) =>
  `array(select x + y from unnest(${a}, ${b}) with ordinality u(x, y, i) order by i)`;

/** The ON CONFLICT merge of two rollup rows of the same key: counts and sums add, maxima take the larger. */
export const MERGE_ROLLUP = `count = m.count + excluded.count,
        runtime_sum = m.runtime_sum + excluded.runtime_sum, runtime_max = greatest(m.runtime_max, excluded.runtime_max),
        wait_sum = m.wait_sum + excluded.wait_sum, wait_max = greatest(m.wait_max, excluded.wait_max),
        runtime_hist = ${addHist('m.runtime_hist', 'excluded.runtime_hist')},
        wait_hist = ${addHist('m.wait_hist', 'excluded.wait_hist')}`;

export const ROLLUP_COLUMNS = 'bucket, span_minutes, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist';
export const ROLLUP_CONFLICT = 'on conflict (bucket, span_minutes, key, func, success) do update set';

/** Minute rows are kept this long before they are folded into hour rows. */
export const MINUTE_ROWS_HOURS = 48;
/** Rows one upkeep statement handles at most: a pass never holds many locks for long. */
const UPKEEP_LIMIT = 5_000;

/**
 * Folds the oldest minute rows of whole hours older than MINUTE_ROWS_HOURS into their hour rows.
 * SKIP LOCKED lets several clusters fold at once, each taking other rows; the hour rows are upserted
 * in key order, as the completion statement does, so they never deadlock. $1 = hours, $2 = limit.
 */
const FOLD = {
  name: 'ormq_metric_fold',
  text: `with picked as (
      select ctid from ormq_metric
       where span_minutes = 1 and bucket < date_trunc('hour', now() - make_interval(hours => $1), 'UTC')
       order by bucket limit $2 for update skip locked
    ), moved as (
      delete from ormq_metric d using picked p where d.ctid = p.ctid returning d.*
    ), sums as (
      select date_trunc('hour', bucket, 'UTC') as hour, key, func, success, sum(count) as count,
             sum(runtime_sum) as runtime_sum, max(runtime_max) as runtime_max, sum(wait_sum) as wait_sum, max(wait_max) as wait_max
        from moved group by 1, 2, 3, 4
    ), cells as (
      select date_trunc('hour', bucket, 'UTC') as hour, key, func, success, i, sum(r)::int as r, sum(w)::int as w
        from moved, unnest(runtime_hist, wait_hist) with ordinality u(r, w, i) group by 1, 2, 3, 4, 5
    ), hists as (
      select hour, key, func, success, array_agg(r order by i) as runtime_hist, array_agg(w order by i) as wait_hist
        from cells group by 1, 2, 3, 4
    ), merged as (
      insert into ormq_metric as m (${ROLLUP_COLUMNS})
      select s.hour, 60, s.key, s.func, s.success, s.count, s.runtime_sum, s.runtime_max, s.wait_sum, s.wait_max, h.runtime_hist, h.wait_hist
        from sums s join hists h using (hour, key, func, success)
       order by s.hour, s.key, s.func, s.success
      ${ROLLUP_CONFLICT} ${MERGE_ROLLUP}
      returning 1
    )
    select (select count(*) from moved)::int as moved, (select count(*) from merged)::int as merged`,
};

/** Drops rows (hours, and minutes a lagging fold left) older than the retention. $1 = days, $2 = limit. */
const RETAIN = {
  name: 'ormq_metric_retain',
  text: `delete from ormq_metric where ctid in (
      select ctid from ormq_metric where bucket < now() - make_interval(days => $1) limit $2 for update skip locked)`,
};

/** One bounded upkeep pass: how many minute rows it folded and how many old rows it dropped. */
export async function metricsUpkeep(pool: Queryable, retentionDays: number, limit = UPKEEP_LIMIT): Promise<{ folded: number; dropped: number }> {
  const fold = await pool.query({ ...FOLD, values: [MINUTE_ROWS_HOURS, limit] });
  const retain = await pool.query({ ...RETAIN, values: [retentionDays, limit] });
  return { folded: Number(fold.rows[0]?.moved ?? 0), dropped: retain.rowCount ?? 0 };
}

/** ms between upkeep passes; a pass that hit its limit is followed by another one at once. */
const UPKEEP_EVERY = 10 * MINUTE;

/** Runs metricsUpkeep rarely in the background of a cluster; stop() waits for a running pass. */
export class MetricsUpkeep {
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | null = null;
  #stopped = false;

  constructor(
    private readonly pool: Queryable,
    private readonly retentionDays: number,
    private readonly onError: (err: Error) => void,
  ) {}

  start(firstAfter = MINUTE): void {
    this.#stopped = false;
    this.#schedule(firstAfter);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#pass = metricsUpkeep(this.pool, this.retentionDays).then(
        ({ folded, dropped }) => this.#schedule(folded >= UPKEEP_LIMIT || dropped >= UPKEEP_LIMIT ? 1000 : UPKEEP_EVERY),
        (err: Error) => {
          this.onError(err);
          this.#schedule(UPKEEP_EVERY);
        },
      );
    }, ms);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#pass;
  }
}
