/**
 * Metrics rollups: what a batch of finished tasks adds to ormq_metric, and the upkeep that folds
 * the shards of past minutes and hours (src/metric-rows.ts), drops minute rows after 48 hours and
 * rows past the retention. The rows are written by the batch's own completion statement (COMPLETE
 * in sql.ts), so a task is counted exactly when its attempt is saved and acked, whatever saveLimit
 * or `save: false` keep of it.
 *
 * Each attempt goes into its minute row and its hour row at once: the hour rows are the minute rows
 * folded as they are written, so a day reads 24 rows a series instead of 1,440, and dropping old
 * minute rows loses nothing. Both are this process's shard's rows: before shards, two processes'
 * acks updated the same rows and each waited for the other's commit (2–9 % of a drain).
 */
import { bucketOf, type StoredHistogram } from '../histogram.js';
import { FOLD, WRITTEN_SPANS } from '../metric-rows.js';
import type { TaskPackage } from '../rows.js';
import type { Db } from '../db/run.js';

export interface Attempt {
  pkg: TaskPackage;
  success: boolean;
  /** ISO timestamps, possibly with microseconds */
  started: string;
  stopped: string;
  /** The same instants in ms since the epoch, when the caller has them: then nothing is parsed. */
  startedMs?: number;
  stoppedMs?: number;
}

interface RollupRow {
  span_minutes: number;
  shard: number;
  bucket: string;
  key: string;
  func: string;
  success: boolean;
  count: number;
  runtime_sum: number;
  runtime_max: number;
  wait_sum: number;
  wait_max: number;
  runtime_hist: StoredHistogram;
  wait_hist: StoredHistogram;
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
 * One row per span × bucket (of `stopped`, UTC) × key × func × outcome of this process's `shard`,
 * sorted as COMPLETE upserts them (should two processes ever share a shard, they lock the rows
 * they share in the same order and cannot deadlock).
 */
export function rollupRows(attempts: readonly Attempt[], key: string, shard: number): RollupRow[] {
  const rows = new Map<string, RollupRow>();
  // Most attempts of a batch share their minute, func and outcome, and a bulk enqueue their
  // enqueued time: the rows and the parsed time of the attempt before are reused.
  let current: RollupRow[] = [];
  let minute = NaN;
  let success: boolean | null = null;
  let rawFunc: unknown;
  let enqueued: unknown;
  let enqueuedMs = NaN; // msOf(undefined)
  for (const a of attempts) {
    const stopped = a.stoppedMs ?? msOf(a.stopped);
    if (!Number.isFinite(stopped)) continue; // the cluster's own clock: never, but a count is not worth a lost save
    const started = a.startedMs ?? msOf(a.started);
    if (a.pkg.enqueued !== enqueued) {
      enqueued = a.pkg.enqueued;
      enqueuedMs = msOf(enqueued);
    }
    const runtime = duration(started, stopped);
    const wait = duration(enqueuedMs, started);
    const r = bucketOf(runtime);
    const w = bucketOf(wait);
    const thisMinute = Math.floor(stopped / MINUTE) * MINUTE;
    if (thisMinute !== minute || a.success !== success || a.pkg.func !== rawFunc || !current.length) {
      minute = thisMinute;
      success = a.success;
      rawFunc = a.pkg.func;
      // as the task row stores it: varchar(256)
      const func = String(a.pkg.func ?? '').slice(0, 256);
      current = WRITTEN_SPANS.map((span) => {
        const width = span * MINUTE;
        const start = Math.floor(stopped / width) * width;
        const id = `${span} ${start} ${a.success} ${func}`;
        let row = rows.get(id);
        if (!row) {
          const bucket = new Date(start).toISOString();
          row = {
            span_minutes: span,
            shard,
            bucket,
            key,
            func,
            success: a.success,
            count: 0,
            runtime_sum: 0,
            runtime_max: 0,
            wait_sum: 0,
            wait_max: 0,
            runtime_hist: {},
            wait_hist: {},
          };
          rows.set(id, row);
        }
        return row;
      });
    }
    for (const row of current) {
      row.count++;
      row.runtime_sum += runtime;
      row.runtime_max = Math.max(row.runtime_max, runtime);
      row.wait_sum += wait;
      row.wait_max = Math.max(row.wait_max, wait);
      row.runtime_hist[r] = (row.runtime_hist[r] ?? 0) + 1;
      row.wait_hist[w] = (row.wait_hist[w] ?? 0) + 1;
    }
  }
  const order = (r: RollupRow) => [r.span_minutes, r.bucket, r.func, r.success ? 1 : 0] as const;
  return [...rows.values()].sort((x, y) => {
    const [a, b] = [order(x), order(y)];
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return 0;
  });
}

export { MERGE_ROLLUP, ROLLUP_COLUMNS, ROLLUP_CONFLICT } from '../metric-rows.js';

/** Minute rows are kept this long; their attempts are in the hour rows as well. */
const MINUTE_ROWS_HOURS = 48;
/** Rows one upkeep statement deletes at most: a pass never holds many locks for long. */
const UPKEEP_LIMIT = 5_000;

/**
 * Drops minute rows older than $1 hours, then rows of either span older than $2 days, at most $3
 * rows each; SKIP LOCKED lets several clusters do it at once. Both are range scans of the key.
 */
const DROP_MINUTES = {
  name: 'ormq_metric_drop_minutes',
  text: `delete from ormq_metric where ctid in (
      select ctid from ormq_metric where span_minutes = 1 and bucket < now() - make_interval(hours => $1)
       limit $2 for update skip locked)`,
};
const RETAIN = {
  name: 'ormq_metric_retain',
  text: `delete from ormq_metric where ctid in (
      select ctid from ormq_metric where span_minutes = any('{1,60,360,1440}') and bucket < now() - make_interval(days => $1)
       limit $2 for update skip locked)`,
};

/**
 * One bounded upkeep pass: how many shard rows it folded, how many minute rows past 48 hours and
 * how many rows past the retention it dropped.
 */
export async function metricsUpkeep(
  db: Db,
  retentionDays: number,
  limit = UPKEEP_LIMIT,
): Promise<{ folded: number; minutes: number; retained: number }> {
  const fold = await db.queryOne(FOLD, [limit]);
  const minutes = await db.execute(DROP_MINUTES, [MINUTE_ROWS_HOURS, limit]);
  const retained = await db.execute(RETAIN, [retentionDays, limit]);
  return { folded: Number(fold?.moved ?? 0), minutes, retained };
}

/**
 * ms between upkeep passes; a pass that hit its limit is followed by another one at once. Every
 * minute, so that the minute rows of an hour are in at most a few shards each when the page reads them.
 */
const UPKEEP_EVERY = MINUTE;

/** Runs metricsUpkeep rarely in the background of a cluster; stop() waits for a running pass. */
export class MetricsUpkeep {
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | null = null;
  #stopped = false;

  constructor(
    private readonly db: Db,
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
      this.#pass = metricsUpkeep(this.db, this.retentionDays).then(
        ({ folded, minutes, retained }) => this.#schedule(Math.max(folded, minutes, retained) >= UPKEEP_LIMIT ? 1000 : UPKEEP_EVERY),
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
