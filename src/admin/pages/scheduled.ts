/**
 * Scheduled tasks: the list (soonest next run first), details, delete, pause / resume, and run now
 * (create, edit and the preview are in schedule-form.ts). Every change bumps `version`, so a form
 * saved over someone else's change gets a conflict instead of overwriting it, and wakes the
 * scheduler of the schedule's cluster.
 */
import { isScheduleType, SCHEDULE_TYPES } from '../../schedule-rules.js';
import { deleteSchedules, pauseSchedules, resumeSchedules, runSchedulesNow } from '../../schedule-actions.js';
import { addDays, fromWall, toWall } from '../../time.js';
import { badRequest } from '../http.js';
import { likePattern, textFilter, Where } from '../filters.js';
import { keyColumn, keysetList, type Keyset } from '../list.js';
import type { LogEntry } from '../log.js';
import { changed, DELETE, type Action, type Page, type RequestContext, type Route } from '../page.js';
import { createSchedule, editSchedule, previewRuns } from './schedule-form.js';
import { findOne, JSON_FIELDS, lastRunFilter, parseScheduleId, select, T, toDetail, type Row } from './schedule-rows.js';
import { db } from '../../db/run.js';

const KEYSET: Keyset = { time: 'next_run', id: 'id', dir: 'asc', idKind: 'int' };
const NEXT_RUN_FILTERS = ['past', 'today', 'next7', 'later'] as const;

/**
 * next run filters, in the admin's time zone: `past` is overdue, `today` runs before midnight
 * (overdue ones from earlier today included), `next7` within a week from now, `later` after that.
 */
function nextRunRange(which: string, timeZone: string, now = new Date()): Where {
  const w = new Where();
  const week = new Date(now.getTime() + 7 * 86_400_000);
  if (which === 'past') w.add(`${T}next_run < ?`, now.toISOString());
  else if (which === 'today') {
    const start = fromWall({ ...toWall(now, timeZone), hour: 0, minute: 0, second: 0, millisecond: 0 }, timeZone);
    w.add(`${T}next_run >= ? and ${T}next_run < ?`, start.toISOString(), addDays(start, 1, timeZone).toISOString());
  } else if (which === 'next7') w.add(`${T}next_run >= ? and ${T}next_run < ?`, now.toISOString(), week.toISOString());
  else w.add(`${T}next_run >= ?`, week.toISOString());
  return w;
}

function where(filter: Record<string, unknown>, ctx: RequestContext): Where {
  let w = new Where();
  const search = textFilter(filter, 'search');
  const type = textFilter(filter, 'type', 2);
  const cluster = textFilter(filter, 'cluster', 100);
  const next = textFilter(filter, 'nextRun', 10);
  if (type !== null) {
    if (!isScheduleType(type))
      throw badRequest(`type must be one of ${Object.keys(SCHEDULE_TYPES).join(', ')}`, { type: 'is not a schedule type' });
    w.add(`${T}schedule_type = ?`, type);
  }
  if (cluster !== null) w.add(`${T}cluster = ?`, cluster);
  const state = textFilter(filter, 'state', 10);
  if (state !== null && state !== 'paused' && state !== 'active')
    throw badRequest('state must be "paused" or "active"', { state: 'must be "paused" or "active"' });
  if (state !== null) w.add(`${T}repeats ${state === 'paused' ? '=' : '<>'} 0`);
  if (next !== null) {
    if (!(NEXT_RUN_FILTERS as readonly string[]).includes(next)) {
      throw badRequest(`nextRun must be one of ${NEXT_RUN_FILTERS.join(', ')}`, { nextRun: 'is not a next run filter' });
    }
    w = w.and(nextRunRange(next, ctx.options.timeZone));
  }
  if (search !== null) {
    const p = likePattern(search);
    w.search(`(${T}name ilike ? or ${T}func ilike ?)`, p, p);
  }
  return w;
}

/** What the actions read: never args or kwargs, which only run copies, in SQL. */
const ACTION_COLUMNS =
  'id, name, func, hook, repeats, cluster, intended_date_kwarg, schedule_type, minutes, cron, next_run, anchor, time_zone, paused_repeats';

const log = (r: Row, action: string, summary: string): LogEntry => ({ action, page: 'scheduled', objectId: Number(r.id), summary });

const actions: Record<string, Action> = {
  delete: {
    ...DELETE,
    converges: true,
    async apply(tx, rows) {
      await deleteSchedules(tx, rows);
      return rows.map((r) => log(r, 'delete', `Deleted schedule ${JSON.stringify(r.name ?? r.id)} (${r.func as string})`));
    },
  },
  pause: {
    label: 'Pause',
    past: 'Paused',
    pending: 'repeats <> 0',
    converges: true,
    async apply(tx, rows) {
      await pauseSchedules(tx, rows);
      return rows.map((r) => log(r, 'pause', `Paused (repeats was ${r.repeats as number})`));
    },
  },
  resume: {
    label: 'Resume',
    past: 'Resumed',
    pending: 'repeats = 0',
    converges: true,
    async apply(tx, rows, ctx) {
      const resumed = await resumeSchedules(tx, rows, ctx.options.timeZone);
      return rows.map((r, i) => {
        const { restored, moved } = resumed[i]!;
        const repeats = restored === null ? 'repeats set to -1' : `repeats restored to ${restored}`;
        return log(
          r,
          'resume',
          moved
            ? `Resumed (${repeats}; next run moved from ${moved.from.toISOString()} to ${moved.to.toISOString()})`
            : `Resumed (${repeats})`,
        );
      });
    },
  },
  run: {
    label: 'Run now',
    past: 'Started',
    converges: false,
    async apply(tx, rows) {
      const tasks = await runSchedulesNow(tx, rows);
      return rows.map((r, i) => log(r, 'run', `Ran now as task ${tasks[i]}`));
    },
  },
};

export const scheduled: Page = {
  id: 'scheduled',
  labels: { create: { label: 'Add schedule', past: 'Created' }, edit: { label: 'Edit', past: 'Saved' }, ...actions },
  // The registry's names say what the app does: only for those who may see its schedules.
  meta: (ctx, visible) => ({ tasks: visible ? ctx.options.tasks : null, scheduleTypes: SCHEDULE_TYPES }),
  routes: {
    '': {
      method: 'POST',
      access: { page: 'scheduled', action: 'create' },
      run: async (ctx, { body }) => ({ status: 201, body: await changed(ctx, 'scheduled', await createSchedule(ctx, body)) }),
    },
    ':id': {
      method: 'PUT',
      access: { page: 'scheduled', action: 'edit' },
      run: async (ctx, { id, body }) => ({
        status: 200,
        body: await changed(ctx, 'scheduled', await editSchedule(ctx, id as number, body)),
      }),
    },
    preview: {
      method: 'GET',
      access: { page: 'scheduled', action: 'view' },
      run: async (ctx, { query }) => ({ status: 200, body: { runs: await ctx.read((x) => previewRuns(x, query)) } }),
    },
  } satisfies Record<string, Route>,
  table: 'ormq_schedule',
  keyset: KEYSET,
  actionColumns: ACTION_COLUMNS,
  parseId: parseScheduleId,
  where,
  jsonFields: JSON_FIELDS,

  async list(ctx, query) {
    const visible = await lastRunFilter(ctx);
    return keysetList(ctx.em, query, {
      table: 'ormq_schedule',
      keyset: KEYSET,
      select: select(keyColumn(KEYSET, T)),
      prefix: T,
      where: () => where(query, ctx),
      // Large args or kwargs stay out of list rows; the detail view loads them.
      toRow: (r: Row) => visible(toDetail(r).object),
    });
  },

  async filters(ctx) {
    const clusters = await db(ctx.em).query('select distinct cluster from ormq_schedule where cluster is not null order by 1 limit 100');
    const types = await db(ctx.em).query('select distinct schedule_type from ormq_schedule order by 1 limit 100');
    return { cluster: clusters.map((r) => r.cluster as string), type: types.map((r) => r.schedule_type as string) };
  },

  async detail(ctx, id) {
    const r = await findOne(ctx.em, Number(id));
    if (!r) return null;
    const { object, truncated } = toDetail(r);
    return { object: (await lastRunFilter(ctx))(object), truncated };
  },

  actions,
};
