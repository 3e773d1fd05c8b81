import type { SqlEntityManager } from '@mikro-orm/postgresql';
import type { PageId } from './options.js';
import { db } from '../db/run.js';

/** One admin action on one object, as `ormq_admin_log` keeps it (Django admin's LogEntry). */
export interface LogEntry {
  action: string;
  page: PageId;
  objectId: string | number | null;
  summary: string;
}

export interface HistoryEntry {
  at: string;
  actor: string | null;
  action: string;
  summary: string;
}

const ACTOR_MAX = 150;

/** Writes the entries in the caller's transaction, so an action and its record commit together. */
export async function writeLog(em: SqlEntityManager, actor: string | null, entries: LogEntry[]): Promise<void> {
  if (!entries.length) return;
  const who = actor === null ? null : actor.slice(0, ACTOR_MAX);
  const values: string[] = [];
  const params: unknown[] = [];
  for (const e of entries) {
    values.push('(?, ?, ?, ?, ?)');
    params.push(who, e.action, e.page, e.objectId === null ? null : String(e.objectId), e.summary);
  }
  await db(em).query(`insert into ormq_admin_log (actor, action, page, object_id, summary) values ${values.join(', ')}`, params);
}

/**
 * The newest actions on one object first; served by ormq_admin_log_object_idx. `stops`: a task's,
 * with the stop asked on the Clusters page (logged under the task's id) that ended it.
 */
export async function history(
  em: SqlEntityManager,
  page: PageId,
  objectId: string | number,
  stops = false,
  limit = 100,
): Promise<HistoryEntry[]> {
  const rows = await db(em).query(
    `select at, actor, action, summary from ormq_admin_log
      where (page = ? and object_id = ?)${stops ? " or (page = 'clusters' and object_id = ? and action = 'stop')" : ''} order by id desc limit ?`,
    stops ? [page, String(objectId), String(objectId), limit] : [page, String(objectId), limit],
  );
  return rows.map((r) => ({
    at: new Date(r.at as string).toISOString(),
    actor: (r.actor as string | null) ?? null,
    action: r.action as string,
    summary: r.summary as string,
  }));
}
