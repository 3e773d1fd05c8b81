import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { listCount, Where, type Count } from './list.js';
import { responding } from '../cluster/heartbeat.js';
import type { ListPageId, PageId } from './options.js';

export interface HourCount {
  hour: string;
  /** null when the caller may not view Successful tasks. */
  success: number | null;
  /** null when the caller may not view Failed tasks. */
  failure: number | null;
}

export interface Overview {
  /** null for a page the caller may not view. */
  counts: Record<ListPageId, Count | null>;
  /** Cluster processes by heartbeat; null unless the caller may view clusters. */
  clusters: { running: number; notResponding: number } | null;
  /** null unless the caller may view successful or failed tasks; each series only for its own page. */
  hourly: HourCount[] | null;
}

const HOUR = 3_600_000;

/**
 * Attempts per (UTC hour, outcome), from the hour rows of the metrics rollups: exact whatever
 * saveLimit pruned from ormq_task, and 24 rows per key × func × outcome, read by the primary key.
 */
const HOURLY = `
  select extract(epoch from bucket)::bigint as at, success, sum(count) as n
    from ormq_metric where span_minutes = 60 and bucket >= ?::timestamptz and bucket < ?::timestamptz
   group by 1, 2`;

const COUNTED: Record<ListPageId, [string, () => Where]> = {
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
  const counts = {} as Record<ListPageId, Count | null>;
  for (const [page, [table, where]] of Object.entries(COUNTED) as [ListPageId, [string, () => Where]][]) {
    counts[page] = visible.has(page) ? await listCount(em, table, where()) : null;
  }
  let clusters: Overview['clusters'] = null;
  if (visible.has('clusters')) {
    const [c] = await em.execute(`select count(*) filter (where ${responding('c')})::int as live, count(*)::int as n from ormq_cluster c`);
    clusters = { running: Number(c!.live), notResponding: Number(c!.n) - Number(c!.live) };
  }
  if (!visible.has('successful') && !visible.has('failed')) return { counts, clusters, hourly: null };
  // UTC hours, so buckets never shift with DST.
  const first = Math.floor(now.getTime() / HOUR) * HOUR - 23 * HOUR;
  const success = visible.has('successful') ? 0 : null;
  const failure = visible.has('failed') ? 0 : null;
  const hourly: HourCount[] = Array.from({ length: 24 }, (_, i) => ({ hour: new Date(first + i * HOUR).toISOString(), success, failure }));
  const rows = await em.execute(HOURLY, [new Date(first).toISOString(), new Date(first + 24 * HOUR).toISOString()]);
  for (const r of rows) {
    const bucket = hourly[(Number(r.at) * 1000 - first) / HOUR];
    const outcome = r.success ? 'success' : 'failure';
    if (bucket && bucket[outcome] !== null) bucket[outcome] = Number(r.n);
  }
  return { counts, clusters, hourly };
}
