import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { listCount, Where, type Count } from './list.js';
import type { PageId } from './options.js';

export interface Overview {
  counts: Record<PageId, Count>;
  hourly: { hour: string; success: number; failure: number }[];
}

const HOUR = 3_600_000;

/** Each page's size, and successes / failures per hour over the last 24 hours (oldest first). */
export async function overview(em: SqlEntityManager, now = new Date()): Promise<Overview> {
  const counts = {
    successful: await listCount(em, 'ormq_task', new Where().add('success = true')),
    failed: await listCount(em, 'ormq_task', new Where().add('success = false')),
    scheduled: await listCount(em, 'ormq_schedule', new Where()),
    queued: await listCount(em, 'ormq_queued', new Where()),
  };
  const first = Math.floor(now.getTime() / HOUR) * HOUR - 23 * HOUR;
  const hourly = Array.from({ length: 24 }, (_, i) => ({ hour: new Date(first + i * HOUR).toISOString(), success: 0, failure: 0 }));
  // One range scan of ormq_task_list_idx per outcome; hours are UTC hours so buckets never shift with DST.
  for (const success of [true, false]) {
    const rows = await em.execute(
      `select floor(extract(epoch from stopped) / 3600)::bigint as h, count(*) as n
         from ormq_task where success = ? and stopped >= ? group by 1`,
      [success, new Date(first).toISOString()],
    );
    for (const r of rows) {
      const bucket = hourly[Number(r.h) - first / HOUR];
      if (bucket) bucket[success ? 'success' : 'failure'] += Number(r.n);
    }
  }
  return { counts, hourly };
}
