/**
 * The rows of ormq_metric and how they add up, shared by the cluster (which writes and folds
 * them), the schema's upgrade (which builds the coarse rows of tables from before them) and the
 * Metrics page (which reads them).
 *
 * - A cluster process writes its attempts to minute and hour rows of its own `shard` (1–32767,
 *   from its process id), so two processes' completions never update the same row and never wait
 *   on each other's row locks. Shard 0 holds folded rows.
 * - Upkeep folds the rows of each minute and hour that is over into shard 0, and each folded hour
 *   into the 6-hour and day rows (shard 0 only) in the same statement. So at any moment the
 *   attempts of a span of 6-hour or day buckets are exactly those rows plus the hour rows not
 *   folded yet (shard ≠ 0) in the span: what the Metrics page reads for 7 and 30 days.
 */

/** Minutes a row covers: written by the clusters (minute, hour) and by the fold (6 hours, day). */
export const WRITTEN_SPANS = [1, 60] as const;
const FOLDED_SPANS = [360, 1440] as const;

export const ROLLUP_COLUMNS =
  'span_minutes, bucket, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist';
export const ROLLUP_KEY = 'span_minutes, bucket, key, func, success, shard';
export const ROLLUP_CONFLICT = `on conflict (${ROLLUP_KEY}) do update set`;

/** The sum of two stored histograms (jsonb objects of bucket → count), bucket by bucket. */
const addHist = (a: string, b: string) =>
  `(select coalesce(jsonb_object_agg(k, n), '{}') from (select k, sum(v::bigint) as n from
     (select * from jsonb_each_text(${a}) union all select * from jsonb_each_text(${b})) x(k, v) group by k) y)`;

/** The ON CONFLICT merge of two rollup rows of the same key: counts and sums add, maxima take the larger. */
export const MERGE_ROLLUP = `count = m.count + excluded.count,
        runtime_sum = m.runtime_sum + excluded.runtime_sum, runtime_max = greatest(m.runtime_max, excluded.runtime_max),
        wait_sum = m.wait_sum + excluded.wait_sum, wait_max = greatest(m.wait_max, excluded.wait_max),
        runtime_hist = ${addHist('m.runtime_hist', 'excluded.runtime_hist')},
        wait_hist = ${addHist('m.wait_hist', 'excluded.wait_hist')}`;

/** This process's shard: 1–32767 from its ormq_cluster id (hex), so a restart is most likely another one. */
export function shardOf(processId: string): number {
  const n = Number.parseInt(processId.slice(0, 8), 16);
  return Number.isFinite(n) ? (n % 32767) + 1 : 1;
}

/**
 * The shard of a process's completion lane (src/cluster/saver.ts): its lanes write at once, and each
 * counting into rows of its own keeps them from waiting on each other's row locks. Lane 1 is half
 * the range away from lane 0, so it meets another process's lane 0 no more often than two of those meet.
 */
export function laneShard(processId: string, lane: number): number {
  return ((shardOf(processId) - 1 + lane * 16384) % 32767) + 1;
}

/**
 * CTEs that sum the rows of CTE `src` (ROLLUP_COLUMNS) by span × bucket × key × func × outcome,
 * histograms bucket by bucket, then the upsert of the sums into shard 0 in key order (so two folds
 * lock the rows they share in one order). `returning` is what the insert returns.
 */
function mergeSums(returning: string): string {
  const by = 'span_minutes, bucket, key, func, success';
  return `sums as (
      select ${by}, sum(count) as count, sum(runtime_sum) as runtime_sum, max(runtime_max) as runtime_max,
             sum(wait_sum) as wait_sum, max(wait_max) as wait_max
        from src group by ${by}
    ), hist as (
      select ${by}, which, k, sum(v::bigint) as n
        from src, lateral (select 'r', * from jsonb_each_text(runtime_hist) union all select 'w', * from jsonb_each_text(wait_hist)) e(which, k, v)
       group by ${by}, which, k
    ), hists as (
      select ${by}, jsonb_object_agg(k, n) filter (where which = 'r') as rh, jsonb_object_agg(k, n) filter (where which = 'w') as wh
        from hist group by ${by}
    )
    insert into ormq_metric as m (${ROLLUP_COLUMNS}, shard)
    select s.*, coalesce(h.rh, '{}'), coalesce(h.wh, '{}'), 0
      from sums s left join hists h using (${by})
     order by ${by}
    ${ROLLUP_CONFLICT} ${MERGE_ROLLUP}${returning}`;
}

/**
 * CTE `src`: the hour rows of CTE `rows` as their 6-hour and day rows (UTC), and with `itself` the
 * rows of `rows` as they are too.
 */
const withCoarse = (rows: string, itself: boolean) => {
  const coarse = FOLDED_SPANS.map(
    (
      span,
    ) => `select ${span} as span_minutes, date_bin(make_interval(mins => ${span}), bucket, 'epoch'::timestamptz) as bucket, ${ROLLUP_COLUMNS.split(', ').slice(2).join(', ')}
        from ${rows} where span_minutes = 60`,
  );
  return `src as (${[...(itself ? [`select ${ROLLUP_COLUMNS} from ${rows}`] : []), ...coarse].join('\n      union all ')})`;
};

/** Minutes after its end before a minute or hour row is folded: a batch saved late still lands in its own shard's row. */
const FOLD_AFTER_MINUTES = 2;

/**
 * The fold: moves at most $1 rows of shards ≠ 0 whose minute or hour is over (by FOLD_AFTER_MINUTES)
 * into shard 0, each hour row into its 6-hour and day rows as well; one statement, so a row is
 * either still in its shard or counted in shard 0, never both or neither. SKIP LOCKED: several
 * clusters fold at once without taking the same rows, and a completion writing its shard's row
 * keeps it out of the fold until a later pass. Returns `moved` (on the first row; none when nothing moved).
 */
export const FOLD = {
  name: 'ormq_metric_fold',
  text: `with moved as (
      delete from ormq_metric where ctid in (
        select ctid from ormq_metric
         where shard <> 0 and ((span_minutes = 1 and bucket < now() - make_interval(mins => ${1 + FOLD_AFTER_MINUTES}))
                            or (span_minutes = 60 and bucket < now() - make_interval(mins => ${60 + FOLD_AFTER_MINUTES})))
         limit $1 for update skip locked)
      returning ${ROLLUP_COLUMNS}
    ), ${withCoarse('moved', true)}, ${mergeSums(' returning (select count(*) from moved)::int as moved')}`,
};

/**
 * For tables from before shards (every row of which is shard 0, the column's default): the 6-hour
 * and day rows built from the hour rows, while there is no day row yet. Safe beside a fold: in one
 * snapshot, it reads only the hour rows folded before it (a fold that commits meanwhile has added
 * its own hours to the coarse rows, which the upsert then merges with).
 */
export const BUILD_COARSE = `with hours as (
      select ${ROLLUP_COLUMNS} from ormq_metric
       where span_minutes = 60 and shard = 0 and not exists (select 1 from ormq_metric where span_minutes = 1440)),
    ${withCoarse('hours', false)}, ${mergeSums('')}`;
