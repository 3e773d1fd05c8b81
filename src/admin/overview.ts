import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { listCount, Where, type Count } from './list.js';
import type { PageId } from './options.js';

export interface HourCount {
  hour: string;
  /** null when the caller may not view Successful tasks. */
  success: number | null;
  /** null when the caller may not view Failed tasks. */
  failure: number | null;
  /** Present when a count of this hour was extrapolated (over HOUR_CAP results of one outcome). */
  estimated?: true;
}

export interface Overview {
  /** null for a page the caller may not view. */
  counts: Record<PageId, Count | null>;
  /** null unless the caller may view successful or failed tasks; each series only for its own page. */
  hourly: HourCount[] | null;
}

const HOUR = 3_600_000;
/**
 * Results of one outcome counted per hour before the rest of that hour is extrapolated. Counting
 * every row of the last 24 hours took about 566 ms at 1M results in that window; 48 index-only
 * probes of at most this many entries stay near 10 ms whatever the volume (bench/admin.ts).
 */
const HOUR_CAP = 2_000;

/**
 * Per (hour, outcome): the number of results, at most HOUR_CAP + 1, and the oldest of those read
 * newest first. Each probe is a backward index-only range scan of ormq_task_list_idx, stopped early.
 * The integer series lets the planner see 24 hours; a timestamp series is estimated at 1,000 rows,
 * which priced the query above jit_above_cost and spent ~35 ms compiling it.
 */
const HOURLY = `
  select extract(epoch from h.at)::bigint as at, o.success, c.n, extract(epoch from c.edge) * 1000 as edge
    from (select ?::timestamptz + interval '1 hour' * i as at from generate_series(0, 23) i) h
   cross join (select unnest(?::boolean[])) o(success)
   cross join lateral (
     select count(*) as n, min(stopped) as edge from (
       select stopped from ormq_task t
        where t.success = o.success and t.stopped >= h.at and t.stopped < h.at + interval '1 hour'
        order by t.stopped desc limit ${HOUR_CAP + 1}) r) c`;

const COUNTED: Record<PageId, [string, () => Where]> = {
  successful: ['ormq_task', () => new Where().add('success = true')],
  failed: ['ormq_task', () => new Where().add('success = false')],
  scheduled: ['ormq_schedule', () => new Where()],
  queued: ['ormq_queued', () => new Where()],
};

/**
 * The size of each page in `visible`, and successes / failures per hour over the last 24 hours
 * (oldest first) when successful or failed tasks are visible.
 */
export async function overview(em: SqlEntityManager, visible: ReadonlySet<PageId>, now = new Date()): Promise<Overview> {
  const counts = {} as Record<PageId, Count | null>;
  for (const [page, [table, where]] of Object.entries(COUNTED) as [PageId, [string, () => Where]][]) {
    counts[page] = visible.has(page) ? await listCount(em, table, where()) : null;
  }
  if (!visible.has('successful') && !visible.has('failed')) return { counts, hourly: null };
  // UTC hours, so buckets never shift with DST.
  const first = Math.floor(now.getTime() / HOUR) * HOUR - 23 * HOUR;
  const success = visible.has('successful') ? 0 : null;
  const failure = visible.has('failed') ? 0 : null;
  const hourly: HourCount[] = Array.from({ length: 24 }, (_, i) => ({ hour: new Date(first + i * HOUR).toISOString(), success, failure }));
  const outcomes = [success !== null && 'true', failure !== null && 'false'].filter(Boolean).join(',');
  const rows = await em.execute(HOURLY, [new Date(first).toISOString(), `{${outcomes}}`]);
  for (const r of rows) {
    const start = Number(r.at) * 1000;
    const bucket = hourly[(start - first) / HOUR];
    if (!bucket) continue;
    let n = Number(r.n);
    if (n > HOUR_CAP) {
      // The newest HOUR_CAP + 1 results cover [edge, end) of this hour: scale them to the whole of it.
      const end = Math.min(start + HOUR, now.getTime());
      const covered = end - Number(r.edge);
      n = covered > 0 ? Math.max(n, Math.round((n * (end - start)) / covered)) : n;
      bucket.estimated = true;
    }
    bucket[r.success ? 'success' : 'failure'] = n;
  }
  return { counts, hourly };
}
