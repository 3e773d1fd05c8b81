/**
 * The Failed page's view by cause: failures counted per fingerprint of their error (see
 * src/error-groups.ts), served by ormq_task_error_group_idx.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { ERROR_MESSAGE } from '../error-groups.js';
import { db } from '../db/run.js';
import { Where } from './filters.js';

/** Failure groups answered at most; the largest first. */
const GROUP_CAP = 100;

/**
 * Failures of `where` counted by cause (ormq_task.error_group, see src/error-groups.ts), the most
 * frequent first, each with the newest one's func, error and message.
 */
export async function failureGroups(em: SqlEntityManager, where: Where) {
  const w = where.and(new Where().add('error_group is not null'));
  const rows = await db(em).query(
    `with g as materialized (
       select error_group, count(*)::int as n, min(stopped) as first, max(stopped) as last,
              count(*) filter (where id in (select (payload->>'id')::char(32) from ormq_queued where linked and payload->>'id' is not null))::int as retrying
         from ormq_task ${w.sql} group by error_group order by n desc, last desc limit ${GROUP_CAP + 1})
     select g.*, s.func, s.error, s.message from g cross join lateral (
       select func, result->>'error' as error, left(${ERROR_MESSAGE}, 500) as message from ormq_task t
        where t.error_group = g.error_group and not t.success order by t.stopped desc, t.id desc limit 1) s
     order by n desc, last desc`,
    w.params,
  );
  return { rows: rows.slice(0, GROUP_CAP), truncated: rows.length > GROUP_CAP };
}
