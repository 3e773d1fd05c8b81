/**
 * Scheduled tasks: the list (soonest next run first), create and edit through the same rules as
 * `schedule()`, delete, pause / resume, and run now. Every change bumps `version`, so a form
 * saved over someone else's change gets a conflict instead of overwriting it, and wakes the
 * scheduler of the schedule's cluster.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { buildPackage, isUniqueViolation, QUEUE_CHANNEL, SCHEDULE_CHANNEL, SCHEDULE_COLUMNS } from '../../producer.js';
import { isScheduleType, nextRun as computeNextRun, SCHEDULE_TYPES, upcomingRuns, type ScheduleType } from '../../schedule-rules.js';
import { addDays, fromWall, toWall } from '../../time.js';
import { ValidationError, validateSchedule, type ScheduleValues } from '../../validate.js';
import { badRequest, HttpError, isPlainObject } from '../http.js';
import {
  afterCursor, FIELD_LIMIT, iso, keyColumn, likePattern, keysetPage, orderBy, parseCursor, parseLimit,
  textFilter, truncateFields, Where, type Keyset,
} from '../list.js';
import { writeLog, type LogEntry } from '../log.js';
import type { Action, Page, RequestContext } from '../page.js';

const KEYSET: Keyset = { time: 'next_run', id: 'id', dir: 'asc', idKind: 'int' };
const T = 'ormq_schedule.';
const JSON_FIELDS = ['args', 'kwargs'] as const;
const NEXT_RUN_FILTERS = ['past', 'today', 'next7', 'later'] as const;

/** The schedule with its last run's outcome: the task row, if it still exists. */
const select = (extra = '') => `select ${SCHEDULE_COLUMNS.split(', ').map((c) => T + c).join(', ')}, last.id as last_id,
  last.success as last_success, last.stopped as last_stopped${extra} from ormq_schedule left join ormq_task last on last.id = ormq_schedule.task`;

type Row = Record<string, unknown>;

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
    version: Number(r.version),
    task: r.task === null || r.task === undefined ? null : String(r.task).trim(),
    lastRun: r.last_id ? { id: String(r.last_id).trim(), success: r.last_success, stopped: iso(r.last_stopped) } : null,
    args: r.args,
    kwargs: r.kwargs,
  };
}

function values(r: Row): ScheduleValues {
  return {
    name: (r.name as string | null) ?? null,
    func: r.func as string,
    hook: (r.hook as string | null) ?? null,
    args: r.args as unknown[],
    kwargs: r.kwargs as Record<string, unknown>,
    scheduleType: r.schedule_type as ScheduleType,
    minutes: r.minutes === null ? null : Number(r.minutes),
    repeats: Number(r.repeats),
    nextRun: new Date(r.next_run as string),
    cron: (r.cron as string | null) ?? null,
    cluster: (r.cluster as string | null) ?? null,
    intendedDateKwarg: (r.intended_date_kwarg as string | null) ?? null,
  };
}

export function parseScheduleId(raw: unknown): number | null {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  return Number.isInteger(n) && n > 0 && n <= 2_147_483_647 ? n : null;
}

async function findOne(em: SqlEntityManager, id: number): Promise<Row | undefined> {
  return (await em.execute(`${select()} where ${T}id = ?`, [id]))[0];
}

async function notifyScheduler(em: SqlEntityManager, clusters: Iterable<unknown>): Promise<void> {
  for (const c of new Set([...clusters].map((v) => (v as string | null) ?? ''))) {
    await em.execute('select pg_notify(?, ?)', [SCHEDULE_CHANNEL, c]);
  }
}

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
    if (!isScheduleType(type)) throw badRequest(`type must be one of ${Object.keys(SCHEDULE_TYPES).join(', ')}`, { type: 'is not a schedule type' });
    w.add(`${T}schedule_type = ?`, type);
  }
  if (cluster !== null) w.add(`${T}cluster = ?`, cluster);
  const state = textFilter(filter, 'state', 10);
  if (state !== null && state !== 'paused' && state !== 'active') throw badRequest('state must be "paused" or "active"', { state: 'must be "paused" or "active"' });
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

/** Large args or kwargs stay out of list rows; the detail view loads them. */
function listRow(r: Row): Row {
  const o = toObject(r);
  for (const f of JSON_FIELDS) if ((JSON.stringify(o[f]) ?? '').length > FIELD_LIMIT) delete o[f];
  return o;
}

const log = (r: Row, action: string, summary: string): LogEntry => ({ action, page: 'scheduled', objectId: Number(r.id), summary });

const actions: Record<string, Action> = {
  delete: {
    converges: true,
    async apply(tx, rows) {
      await tx.execute('delete from ormq_schedule where id in (?)', [rows.map((r) => Number(r.id))]);
      await notifyScheduler(tx, rows.map((r) => r.cluster));
      return rows.map((r) => log(r, 'delete', `Deleted schedule ${JSON.stringify(r.name ?? r.id)} (${r.func as string})`));
    },
  },
  pause: {
    pending: 'repeats <> 0',
    converges: true,
    async apply(tx, rows) {
      await tx.execute('update ormq_schedule set repeats = 0, version = version + 1 where id in (?)', [rows.map((r) => Number(r.id))]);
      await notifyScheduler(tx, rows.map((r) => r.cluster));
      return rows.map((r) => log(r, 'pause', `Paused (repeats was ${r.repeats as number})`));
    },
  },
  resume: {
    pending: 'repeats = 0',
    converges: true,
    /**
     * A next run left in the past while paused moves to the first future slot: with catchUp the
     * scheduler would otherwise run every slot missed meanwhile (a week of a one-minute schedule
     * is 10,080 runs) the moment it is resumed.
     */
    async apply(tx, rows, ctx) {
      const now = new Date();
      const values: string[] = [];
      const params: unknown[] = [];
      const entries: LogEntry[] = [];
      for (const r of rows) {
        const was = new Date(r.next_run as string);
        let next: Date | null = null;
        if (was < now) {
          try {
            next = computeNextRun(
              { scheduleType: r.schedule_type as ScheduleType, minutes: r.minutes === null ? null : Number(r.minutes), cron: (r.cron as string | null) ?? null, nextRun: was },
              { now, timeZone: ctx.options.timeZone, catchUp: false },
            );
          } catch {
            // A timing the scheduler cannot step (a broken cron) keeps its next run; the scheduler logs and skips it.
            next = null;
          }
          if (next && next.getTime() === was.getTime()) next = null;
        }
        values.push('(?::int, ?::timestamptz)');
        params.push(Number(r.id), next ? next.toISOString() : null);
        entries.push(log(r, 'resume', next ? `Resumed (repeats set to -1; next run moved from ${was.toISOString()} to ${next.toISOString()})` : 'Resumed (repeats set to -1)'));
      }
      await tx.execute(
        `update ormq_schedule s set repeats = -1, next_run = coalesce(v.next_run, s.next_run), version = s.version + 1
           from (values ${values.join(', ')}) v(id, next_run) where s.id = v.id`,
        params,
      );
      await notifyScheduler(tx, rows.map((r) => r.cluster));
      return entries;
    },
  },
  run: {
    converges: false,
    async apply(tx, rows) {
      const entries: LogEntry[] = [];
      const keys = new Set<string>();
      const now = new Date().toISOString();
      for (const r of rows) {
        const kwargs = { ...(r.kwargs as Record<string, unknown>) };
        if (r.intended_date_kwarg) kwargs[r.intended_date_kwarg as string] = now;
        const { key, payload } = buildPackage(r.func, r.args, {
          kwargs,
          hook: (r.hook as string | null) ?? null,
          group: (r.name as string | null) ?? String(r.id),
          cluster: (r.cluster as string | null) ?? 'default',
        });
        payload.schedule = Number(r.id);
        await tx.execute('insert into ormq_queued (key, payload) values (?, ?::jsonb)', [key, JSON.stringify(payload)]);
        await tx.execute('update ormq_schedule set task = ?, version = version + 1 where id = ?', [payload.id, Number(r.id)]);
        keys.add(key);
        entries.push(log(r, 'run', `Ran now as task ${payload.id}`));
      }
      for (const key of keys) await tx.execute('select pg_notify(?, ?)', [QUEUE_CHANNEL, key]);
      await notifyScheduler(tx, rows.map((r) => r.cluster));
      return entries;
    },
  },
};

export const scheduled: Page = {
  id: 'scheduled',
  table: 'ormq_schedule',
  keyset: KEYSET,
  actionColumns: 'id, name, func, hook, args, kwargs, repeats, cluster, intended_date_kwarg, schedule_type, minutes, cron, next_run',
  parseId: parseScheduleId,
  where,
  jsonFields: JSON_FIELDS,

  async list(ctx, query) {
    const limit = parseLimit(query.limit);
    const filtered = where(query, ctx);
    const cursor = parseCursor(KEYSET, query.cursor);
    const w = filtered.and(afterCursor(KEYSET, cursor, T));
    const rows = await ctx.em.execute(`${select(keyColumn(KEYSET, T))} ${w.sql} ${orderBy(KEYSET, T)} limit ${limit + 1}`, w.params);
    return keysetPage(ctx.em, 'ormq_schedule', rows, { limit, keyset: KEYSET, where: filtered, firstPage: !cursor, toRow: listRow });
  },

  async filters(ctx) {
    const clusters = await ctx.em.execute('select distinct cluster from ormq_schedule where cluster is not null order by 1 limit 100');
    const types = await ctx.em.execute('select distinct schedule_type from ormq_schedule order by 1 limit 100');
    return { cluster: clusters.map((r) => r.cluster as string), type: types.map((r) => r.schedule_type as string) };
  },

  async detail(ctx, id) {
    const r = await findOne(ctx.em, Number(id));
    if (!r) return null;
    const object = toObject(r);
    return { object, truncated: truncateFields(object, JSON_FIELDS) };
  },

  async field(ctx, id, name) {
    if (!(JSON_FIELDS as readonly string[]).includes(name)) return null;
    const r = (await ctx.em.execute(`select ${name} from ormq_schedule where id = ?`, [Number(id)]))[0];
    return r ? { value: r[name] } : null;
  },

  actions,
};

function validationOf(e: unknown): never {
  if (e instanceof ValidationError) throw badRequest(e.message, e.errors);
  throw e;
}

async function assertNameFree(tx: SqlEntityManager, name: string | null, id: number | null): Promise<void> {
  if (name === null) return;
  const taken = await tx.execute('select 1 from ormq_schedule where name = ? and id <> ?', [name, id ?? 0]);
  if (taken.length) throw badRequest('Invalid schedule: name: is already used by another schedule', { name: 'is already used by another schedule' });
}

const INSERT = `insert into ormq_schedule (name, func, hook, args, kwargs, schedule_type, minutes, repeats, next_run, cron, cluster, intended_date_kwarg)
  values (?, ?, ?, ?::jsonb, ?::jsonb, ?, ?, ?, ?, ?, ?, ?) returning id`;

const UPDATE = `update ormq_schedule set name = ?, func = ?, hook = ?, args = ?::jsonb, kwargs = ?::jsonb, schedule_type = ?, minutes = ?,
  repeats = ?, next_run = ?, cron = ?, cluster = ?, intended_date_kwarg = ?, version = version + 1 where id = ?`;

const params = (v: ScheduleValues) => [
  v.name, v.func, v.hook, JSON.stringify(v.args), JSON.stringify(v.kwargs), v.scheduleType, v.minutes, v.repeats,
  v.nextRun.toISOString(), v.cron, v.cluster, v.intendedDateKwarg,
];

/** A unique-name race lost between the check and the write still answers as a field error. */
async function withNameCheck<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isUniqueViolation(e)) throw badRequest('Invalid schedule: name: is already used by another schedule', { name: 'is already used by another schedule' });
    throw e;
  }
}

export async function createSchedule(ctx: RequestContext, body: unknown): Promise<Row> {
  let v: ScheduleValues;
  try {
    v = validateSchedule(body, { tasks: ctx.options.taskSet, timeZone: ctx.options.timeZone });
  } catch (e) {
    validationOf(e);
  }
  const actor = await ctx.actor();
  return withNameCheck(() =>
    ctx.em.transactional(async (em) => {
      const tx = em as SqlEntityManager;
      await assertNameFree(tx, v.name, null);
      const id = Number((await tx.execute(INSERT, params(v)))[0]!.id);
      await notifyScheduler(tx, [v.cluster]);
      await writeLog(tx, actor, [{ action: 'create', page: 'scheduled', objectId: id, summary: `Created schedule ${JSON.stringify(v.name ?? id)} (${v.func})` }]);
      return toObject((await findOne(tx, id))!);
    }),
  );
}

function changes(before: ScheduleValues, after: ScheduleValues): string {
  const changed = (Object.keys(after) as (keyof ScheduleValues)[]).filter(
    (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return changed.length ? `Changed ${changed.join(', ')}` : 'Saved without changes';
}

export async function editSchedule(ctx: RequestContext, id: number, body: unknown): Promise<Row> {
  if (!isPlainObject(body)) throw badRequest('Body must be an object of schedule fields', { body: 'must be an object' });
  const version = body.version;
  if (!Number.isInteger(version)) throw badRequest('version is required: the version of the schedule this edit started from', { version: 'is required (a whole number)' });
  const { version: _version, ...input } = body;
  const actor = await ctx.actor();
  return withNameCheck(() =>
    ctx.em.transactional(async (em) => {
      const tx = em as SqlEntityManager;
      const locked = await tx.execute('select id from ormq_schedule where id = ? for update', [id]);
      if (!locked.length) throw new HttpError(404, `Schedule ${id} does not exist`);
      const current = (await findOne(tx, id))!;
      if (Number(current.version) !== version) {
        throw new HttpError(409, 'This schedule was changed by someone else since you opened it', undefined, { current: toObject(current) });
      }
      const previous = values(current);
      let v: ScheduleValues;
      try {
        v = validateSchedule(input, { previous, tasks: ctx.options.taskSet, timeZone: ctx.options.timeZone });
      } catch (e) {
        validationOf(e);
      }
      await assertNameFree(tx, v.name, id);
      await tx.execute(UPDATE, [...params(v), id]);
      await notifyScheduler(tx, [previous.cluster, v.cluster]);
      await writeLog(tx, actor, [{ action: 'edit', page: 'scheduled', objectId: id, summary: changes(previous, v) }]);
      return toObject((await findOne(tx, id))!);
    }),
  );
}

/** The next five runs of a timing being edited, by the rules the scheduler applies. */
export function previewRuns(query: Record<string, string>, timeZone: string): string[] {
  const input: Record<string, unknown> = { func: 'preview', scheduleType: query.scheduleType ?? '' };
  if (query.cron) input.cron = query.cron;
  if (query.minutes) input.minutes = query.minutes;
  if (query.nextRun) input.nextRun = query.nextRun;
  else if (query.scheduleType !== 'C') input.nextRun = new Date().toISOString();
  let v: ScheduleValues;
  try {
    v = validateSchedule(input, { timeZone });
  } catch (e) {
    validationOf(e);
  }
  return upcomingRuns(v, 5, timeZone).map((d) => d.toISOString());
}
