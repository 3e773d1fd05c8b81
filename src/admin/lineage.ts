/**
 * Where a finished task came from and where it went, and a chain step's place among its chain's steps. Resubmitting writes two admin-log entries: on
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
  const [q] = await db(em).query(
    `select id, payload->>'name' as name from ormq_queued where (payload->>'id') = ? and linked order by id limit 1`,
    [taskId],
  );
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

/*
 * A chain step's place for the task detail: "step 2 of 5", and where each step of its chain is
 * now (succeeded, failed, queued, or nowhere: not run yet, or no longer kept). Two reads whatever
 * the chain's length: the steps' task rows by id, and their queued packages, which are keyed by
 * their task id (src/chains.ts) and so found through ormq_queued_keyed_idx.
 */
export interface ChainView {
  step: number;
  steps: number;
  /** This step's final failure stopped the chain. */
  stopped: boolean;
  /** Every step in order; `place` null where it is kept nowhere or on a page the caller may not view. */
  links: { step: number; taskId: string; place: Place | null }[];
}

async function placesOf(em: SqlEntityManager, ids: string[]): Promise<Map<string, Place>> {
  const places = new Map<string, Place>();
  for (const t of await db(em).query('select id, success, name from ormq_task where id in (?)', [ids])) {
    const id = String(t.id).trim();
    places.set(id, { page: t.success ? 'successful' : 'failed', id, taskId: id, name: (t.name as string) ?? null });
  }
  const queued = await db(em).query(
    `select id, payload->>'id' as task, payload->>'name' as name from ormq_queued where keyed and (payload->>'id') in (?)`,
    [ids],
  );
  for (const q of queued)
    if (!places.has(String(q.task)))
      places.set(String(q.task), { page: 'queued', id: Number(q.id), taskId: String(q.task), name: (q.name as string) ?? null });
  return places;
}

/**
 * The chain view of saved task `taskId`; null for a task that is not a chain step, and on tables
 * from before chains (an admin deployed before `ensureSchema` ran: no `chain` column yet).
 */
export async function chainOf(ctx: RequestContext, taskId: string): Promise<ChainView | null> {
  let chain: unknown;
  try {
    chain = (await db(ctx.em).queryOne('select chain from ormq_task where id = ?', [taskId]))?.chain;
  } catch (err) {
    if ((err as { code?: string }).code === '42703') return null;
    throw err;
  }
  if (typeof chain !== 'object' || chain === null) return null;
  const c = chain as { step?: unknown; steps?: unknown; ids?: unknown; stopped?: unknown };
  if (!Number.isInteger(c.step) || !Number.isInteger(c.steps) || !Array.isArray(c.ids)) return null;
  const ids = c.ids.filter((id): id is string => typeof id === 'string' && /^[0-9a-f]{32}$/.test(id));
  const places = ids.length ? await placesOf(ctx.em, ids) : new Map<string, Place>();
  const visible = new Map<string, boolean>();
  const links: ChainView['links'] = [];
  for (const [i, taskId] of ids.entries()) {
    const place = places.get(taskId) ?? null;
    if (place && !visible.has(place.page)) visible.set(place.page, await ctx.can(place.page, 'view'));
    links.push({ step: i + 1, taskId, place: place && visible.get(place.page) ? place : null });
  }
  return { step: c.step as number, steps: c.steps as number, stopped: c.stopped === true, links };
}
