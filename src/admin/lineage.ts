/**
 * Where a finished task came from and where it went. Resubmitting writes two admin-log entries: on
 * the old task ("resubmit", the new id in its summary) and on the new one ("resubmitted", the old
 * id in its summary). The log outlives the failure row that resubmit deletes, so a bookmark of that
 * row can still be led to its successor.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import type { RequestContext } from './page.js';
import { db } from '../db/run.js';

/** Where a task is now: a finished task's page, or its package on Queued tasks. */
export interface Place {
  page: 'successful' | 'failed' | 'queued';
  /** The id on that page: the task id, or the package id on Queued tasks. */
  id: string | number;
  taskId: string;
  name: string | null;
}

export interface Lineage {
  /** The task this one was resubmitted from; place null when that row is gone. */
  from: { taskId: string; place: Place | null } | null;
  /** The newest resubmission of this task, followed to where it is now. */
  to: { taskId: string; place: Place | null } | null;
}

const TASK_ID = /\b([0-9a-f]{32})\b/;
/** A chain of resubmissions is followed this far; longer chains end at the last one found. */
const MAX_HOPS = 20;

export const resubmittedSummary = (name: unknown, fromId: string) => `Resubmitted from ${JSON.stringify(name)} (task ${fromId})`;

async function logged(em: SqlEntityManager, taskId: string, action: 'resubmit' | 'resubmitted'): Promise<string | null> {
  const rows = await db(em).query(
    `select summary from ormq_admin_log where page in ('successful', 'failed') and object_id = ? and action = ? order by id desc limit 1`,
    [taskId, action],
  );
  const m = rows[0] ? TASK_ID.exec(String(rows[0].summary)) : null;
  return m ? m[1]! : null;
}

async function placeOf(em: SqlEntityManager, taskId: string): Promise<Place | null> {
  const [t] = await db(em).query('select success, name from ormq_task where id = ?', [taskId]);
  if (t) return { page: t.success ? 'successful' : 'failed', id: taskId, taskId, name: (t.name as string) ?? null };
  // a resubmission is inserted linked: served by ormq_queued_task_idx
  const [q] = await db(em).query(`select id, payload->>'name' as name from ormq_queued where (payload->>'id') = ? and linked order by id limit 1`, [taskId]);
  return q ? { page: 'queued', id: Number(q.id), taskId, name: (q.name as string) ?? null } : null;
}

/**
 * Follows "resubmit" entries from a task to the first resubmission that still exists anywhere
 * (a resubmitted failure is deleted, so its own resubmission is looked up in turn).
 */
export async function successorOf(em: SqlEntityManager, taskId: string): Promise<{ taskId: string; place: Place | null } | null> {
  const first = await logged(em, taskId, 'resubmit');
  if (!first) return null;
  let next: string = first;
  for (let hop = 1; ; hop++) {
    const place = await placeOf(em, next);
    const further: string | null = place || hop >= MAX_HOPS ? null : await logged(em, next, 'resubmit');
    if (!further) return { taskId: next, place };
    next = further;
  }
}

export async function lineageOf(em: SqlEntityManager, taskId: string): Promise<Lineage> {
  const fromId = await logged(em, taskId, 'resubmitted');
  return {
    from: fromId ? { taskId: fromId, place: await placeOf(em, fromId) } : null,
    to: await successorOf(em, taskId),
  };
}

/**
 * A link to a task on a page the caller may not view is left out, as a schedule's last run is: its
 * name and outcome belong to that page. A task kept nowhere names nothing but its id.
 */
export async function visiblePlace<T extends { place: Place | null }>(ctx: RequestContext, link: T | null): Promise<T | null> {
  if (!link?.place) return link;
  return (await ctx.can(link.place.page, 'view')) ? link : null;
}
