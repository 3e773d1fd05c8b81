/**
 * A schedule row as the Scheduled page and its form show it: the columns read (args and kwargs cut
 * down in SQL), the object the API answers, and its last run as the caller may see it.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { SCHEDULE_COLUMNS } from '../../schedules.js';
import { headFields, jsonHead } from '../fields.js';
import { iso } from '../list.js';
import type { RequestContext } from '../page.js';
import { db } from '../../db/run.js';

export type Row = Record<string, unknown>;

export const T = 'ormq_schedule.';
export const JSON_FIELDS = ['args', 'kwargs'] as const;

/**
 * The schedule with its last run's outcome (the task row, if it still exists), and args and kwargs
 * cut down in SQL: a list of 500 schedules never loads their full arguments.
 */
export const select = (extra = '') => `select ${SCHEDULE_COLUMNS.split(', ')
  .filter((c) => !(JSON_FIELDS as readonly string[]).includes(c))
  .map((c) => T + c)
  .join(', ')},
  ${JSON_FIELDS.map((f) => jsonHead(T + f, f)).join(', ')}, last.id as last_id,
  last.success as last_success, last.stopped as last_stopped${extra} from ormq_schedule left join ormq_task last on last.id = ormq_schedule.task`;

/** The schedule as the API shows it; args and kwargs too large for it are left out (`truncated`). */
export function toDetail(r: Row): { object: Row; truncated: ReturnType<typeof headFields>['truncated'] } {
  const { values, truncated } = headFields(r, JSON_FIELDS);
  const object: Row = { ...toObject(r), ...values };
  for (const f of JSON_FIELDS) if (f in truncated) delete object[f];
  return { object, truncated };
}

function toObject(r: Row): Row {
  return {
    id: Number(r.id),
    name: r.name ?? null,
    func: r.func,
    hook: r.hook ?? null,
    scheduleType: r.schedule_type,
    minutes: r.minutes === null || r.minutes === undefined ? null : Number(r.minutes),
    repeats: Number(r.repeats),
    nextRun: iso(r.next_run),
    cron: r.cron ?? null,
    cluster: r.cluster ?? null,
    intendedDateKwarg: r.intended_date_kwarg ?? null,
    anchor: iso(r.anchor ?? r.next_run),
    timeZone: r.time_zone ?? null,
    pausedRepeats: r.paused_repeats === null || r.paused_repeats === undefined ? null : Number(r.paused_repeats),
    version: Number(r.version),
    task: r.task === null || r.task === undefined ? null : String(r.task).trim(),
    lastRun: r.last_id ? { id: String(r.last_id).trim(), success: r.last_success, stopped: iso(r.last_stopped) } : null,
    args: r.args,
    kwargs: r.kwargs,
  };
}

export function parseScheduleId(raw: unknown): number | null {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  return Number.isInteger(n) && n > 0 && n <= 2_147_483_647 ? n : null;
}

export async function findOne(em: SqlEntityManager, id: number): Promise<Row | undefined> {
  return (await db(em).query(`${select()} where ${T}id = ?`, [id]))[0];
}

/**
 * A schedule's last run names a task and its outcome: only for those who may view the page that
 * outcome puts it on. A run with no task row yet (queued, or pruned) could be on either page.
 */
export async function lastRunFilter(ctx: RequestContext): Promise<(o: Row) => Row> {
  const successful = await ctx.can('successful', 'view');
  const failed = await ctx.can('failed', 'view');
  return (o) => {
    const run = o.lastRun as { success: boolean } | null;
    const visible = run ? (run.success ? successful : failed) : successful && failed;
    if (!visible) {
      if ('lastRun' in o) o.lastRun = null;
      if ('task' in o) o.task = null;
    }
    return o;
  };
}

/** The object after a change, with its last run shown only to those who may see it. */
export async function shown(ctx: RequestContext, r: Row): Promise<Row> {
  return (await lastRunFilter(ctx))(toDetail(r).object);
}
