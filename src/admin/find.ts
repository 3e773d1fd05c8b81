/**
 * `GET api/find?q=`: which pages hold an id or an exact name, so that a search that misses on one
 * page can say where the thing is. Only pages the caller may view are asked.
 */
import { badRequest } from './http.js';
import { taskIdOf } from './task-row.js';
import type { PageId } from './options.js';
import type { RequestContext, Route } from './page.js';
import { db } from '../db/run.js';

interface Found {
  page: PageId;
  /** The object's id on that page (for a name shared by several tasks, the newest one's). */
  id: string | number;
  name?: string | null;
}

const TASK_ID = /^[0-9a-f]{32}$/;
const NUMBER = /^[1-9][0-9]{0,14}$/;

/**
 * Each lookup is one index probe (primary keys, ormq_task_name_idx, ormq_schedule_name_key,
 * ormq_queued_task_idx) except a package by the task id or name in its payload, which has no index
 * of its own outside linked packages: that one reads the queue, under the admin's statement timeout.
 */
async function find(ctx: RequestContext, q: string): Promise<Found[]> {
  const found: Found[] = [];
  const em = ctx.em;
  const taskId = TASK_ID.test(q.toLowerCase()) ? q.toLowerCase() : null;
  const num = NUMBER.test(q) ? Number(q) : null;
  for (const [page, success] of [
    ['successful', true],
    ['failed', false],
  ] as const) {
    if (!(await ctx.can(page, 'view'))) continue;
    const rows = await db(em).query(
      `(select id, name from ormq_task where id = ? and success = ?)
       union all (select id, name from ormq_task where name = ? and success = ? order by stopped desc, id desc limit 1) limit 1`,
      [taskId ?? '', success, q, success],
    );
    for (const r of rows) found.push({ page, id: taskIdOf(r), name: r.name as string });
  }
  if (await ctx.can('queued', 'view')) {
    const rows = await db(em).query(
      `(select id, payload->>'name' as name from ormq_queued where id = ?)
       union all (select id, payload->>'name' as name from ormq_queued where (payload->>'id') = ? and linked)
       union all (select id, payload->>'name' as name from (select id, payload from ormq_queued where (payload->>'id') = ? or (payload->>'name') = ? order by id desc limit 1) x)
       limit 1`,
      [num ?? 0, taskId ?? '', taskId ?? '', q],
    );
    for (const r of rows) found.push({ page: 'queued', id: Number(r.id), name: (r.name as string | null) ?? null });
  }
  if (await ctx.can('scheduled', 'view')) {
    const rows = await db(em).query('select id, name from ormq_schedule where id = ? or name = ? order by (id = ?) desc limit 1', [
      num ?? 0,
      q,
      num ?? 0,
    ]);
    for (const r of rows) found.push({ page: 'scheduled', id: Number(r.id), name: (r.name as string | null) ?? null });
  }
  if (taskId && (await ctx.can('clusters', 'view'))) {
    const rows = await db(em).query('select id, name from ormq_cluster where id = ?', [taskId]);
    for (const r of rows) found.push({ page: 'clusters', id: String(r.id).trim(), name: r.name as string });
  }
  return found;
}

export const findRoute: Route = {
  method: 'GET',
  access: 'any',
  async run(ctx, { query }) {
    const q = typeof query.q === 'string' ? query.q.trim() : '';
    if (!q) throw badRequest('q is required: an id or an exact name', { q: 'is required' });
    if (q.length > 256) throw badRequest('q is too long', { q: 'must be at most 256 characters' });
    return { status: 200, body: { found: await ctx.read((x) => find(x, q)) } };
  },
};
