import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { attention, type AttentionItem } from './attention.js';
import { listCount, type Count } from './count.js';
import type { ListPageId } from './options.js';
import { isListPage, type PageModule, type RequestContext } from './page.js';
import { db } from '../db/run.js';

interface HourCount {
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
  /** What needs an operator now, worst first; each item only for those who may view the page it links to. */
  attention: AttentionItem[];
  /**
   * When the admin reads from a read replica of the host's ORM: how far behind the primary it is,
   * in seconds (0 when it has replayed all it received; null when it cannot say). null on the primary.
   */
  replica: { lagSeconds: number | null } | null;
}

/** A replica's lag: nothing to replay is 0, however long ago the primary last wrote. */
const REPLICA_LAG = `select case when not pg_is_in_recovery() then null
    when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
    else extract(epoch from now() - pg_last_xact_replay_timestamp()) end::float8 as lag`;

const HOUR = 3_600_000;

/**
 * Attempts per (UTC hour, outcome), from the hour rows of the metrics rollups: exact whatever
 * saveLimit pruned from ormq_task, and 24 rows per key × func × outcome, read by the primary key.
 */
const HOURLY = `
  select extract(epoch from bucket)::bigint as at, success, sum(count) as n
    from ormq_metric where span_minutes = 60 and bucket >= ?::timestamptz and bucket < ?::timestamptz
   group by 1, 2`;

/**
 * Each page the caller may view says its part: a list page its row count (under `counts`), another
 * page what its `overview` returns (under its id); others get null. Successes and failures per hour
 * over the last 24 hours (oldest first) come with them, each series only for its page's viewers.
 */
export async function overview(ctx: RequestContext, pages: readonly PageModule[], now = new Date()): Promise<Overview> {
  const out: Record<string, unknown> = {};
  const counts: Record<string, Count | null> = {};
  const series: Record<'success' | 'failure', boolean> = { success: false, failure: false };
  for (const page of pages) {
    const visible = await ctx.can(page.id, 'view');
    if (isListPage(page)) {
      counts[page.id] = visible ? await listCount(ctx.em, page.table, page.where({}, ctx)) : null;
      if (page.hourly && visible) series[page.hourly] = true;
    } else if (page.overview) out[page.id] = visible ? await page.overview(ctx) : null;
  }
  out.attention = await attention(ctx, pages);
  out.counts = counts;
  out.hourly = series.success || series.failure ? await hourly(ctx.em, series, now) : null;
  if (ctx.replica) {
    const row = await db(ctx.em).queryOne(REPLICA_LAG);
    out.replica = { lagSeconds: row?.lag === null || row?.lag === undefined ? null : Math.max(0, Number(row.lag)) };
  } else out.replica = null;
  return out as unknown as Overview;
}

async function hourly(em: SqlEntityManager, series: Record<'success' | 'failure', boolean>, now: Date): Promise<HourCount[]> {
  // UTC hours, so buckets never shift with DST.
  const first = Math.floor(now.getTime() / HOUR) * HOUR - 23 * HOUR;
  const success = series.success ? 0 : null;
  const failure = series.failure ? 0 : null;
  const hours: HourCount[] = Array.from({ length: 24 }, (_, i) => ({ hour: new Date(first + i * HOUR).toISOString(), success, failure }));
  const rows = await db(em).query(HOURLY, [new Date(first).toISOString(), new Date(first + 24 * HOUR).toISOString()]);
  for (const r of rows) {
    const bucket = hours[(Number(r.at) * 1000 - first) / HOUR];
    const outcome = r.success ? 'success' : 'failure';
    if (bucket && bucket[outcome] !== null) bucket[outcome] = Number(r.n);
  }
  return hours;
}
