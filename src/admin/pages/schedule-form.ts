/**
 * The Scheduled page's form: create and edit through the same rules as `schedule()`, and the
 * preview of the runs a timing gets, computed by the very rules Save and the scheduler use. Every
 * save bumps `version`, so a form saved over someone else's change gets a conflict instead of
 * overwriting it.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { upcomingRuns } from '../../schedule-rules.js';
import { lockSchedule, saveSchedule, SCHEDULE_COLUMNS, scheduleValues } from '../../schedules.js';
import { ValidationError, validateSchedule, type ScheduleValues } from '../../validate.js';
import { badRequest, HttpError, isPlainObject, notFound } from '../http.js';
import { writeLog } from '../log.js';
import type { RequestContext } from '../page.js';
import { findOne, parseScheduleId, shown } from './schedule-rows.js';
import { db } from '../../db/run.js';

type Row = Record<string, unknown>;
const JSON_FIELDS = ['args', 'kwargs'] as const;

/** Saved args and kwargs are bounded: every run copies them into a package, and every list shows them. */
function assertArgsSize(v: ScheduleValues, fields: readonly ('args' | 'kwargs')[], limit: number): void {
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const bytes = Buffer.byteLength(JSON.stringify(v[f]));
    if (bytes > limit) errors[f] = `must be at most ${limit} bytes of JSON (it is ${bytes})`;
  }
  if (Object.keys(errors).length) throw new ValidationError(errors, 'schedule');
}

export async function createSchedule(ctx: RequestContext, body: unknown): Promise<Row> {
  const v = validateSchedule(body, { tasks: ctx.options.taskSet, timeZone: ctx.options.timeZone });
  assertArgsSize(v, JSON_FIELDS, ctx.options.argsLimit);
  const actor = await ctx.actor();
  return ctx.em.transactional(async (em) => {
    const tx = em as SqlEntityManager;
    const id = Number((await saveSchedule(tx, v))!.id);
    await writeLog(tx, actor, [
      { action: 'create', page: 'scheduled', objectId: id, summary: `Created schedule ${JSON.stringify(v.name ?? id)} (${v.func})` },
    ]);
    return shown(ctx, (await findOne(tx, id))!);
  });
}

function changes(before: ScheduleValues, after: ScheduleValues): string {
  const changed = (Object.keys(after) as (keyof ScheduleValues)[]).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  return changed.length ? `Changed ${changed.join(', ')}` : 'Saved without changes';
}

export async function editSchedule(ctx: RequestContext, id: number, body: unknown): Promise<Row> {
  if (!isPlainObject(body)) throw badRequest('Body must be an object of schedule fields', { body: 'must be an object' });
  const version = body.version;
  if (!Number.isInteger(version))
    throw badRequest('version is required: the version of the schedule this edit started from', {
      version: 'is required (a whole number)',
    });
  const { version: _version, ...input } = body;
  const actor = await ctx.actor();
  return ctx.em.transactional(async (em) => {
    const tx = em as SqlEntityManager;
    const current = await lockSchedule(tx, id);
    if (!current) throw notFound(`Schedule ${id} does not exist`);
    if (Number(current.version) !== version) {
      // The other change is shown to those who may view schedules; the others only learn there was one.
      const extra = (await ctx.can('scheduled', 'view')) ? { current: await shown(ctx, (await findOne(tx, id))!) } : undefined;
      throw new HttpError(409, 'This schedule was changed by someone else since you opened it', undefined, extra);
    }
    const previous = scheduleValues(current);
    const v = validateSchedule(input, { previous, tasks: ctx.options.taskSet, timeZone: ctx.options.timeZone });
    // Stored arguments larger than the limit (saved by host code) may stay as they are.
    assertArgsSize(
      v,
      JSON_FIELDS.filter((f) => JSON.stringify(v[f]) !== JSON.stringify(previous[f])),
      ctx.options.argsLimit,
    );
    // Repeats to or from 0 pauses or resumes the schedule: that needs the permission for it.
    if (previous.repeats !== 0 && v.repeats === 0) await ctx.require('scheduled', 'pause');
    if (previous.repeats === 0 && v.repeats !== 0) await ctx.require('scheduled', 'resume');
    await saveSchedule(tx, v, id, previous.key);
    await writeLog(tx, actor, [{ action: 'edit', page: 'scheduled', objectId: id, summary: changes(previous, v) }]);
    return shown(ctx, (await findOne(tx, id))!);
  });
}

/**
 * The first five runs of a timing being edited: what Save would store, first run included. With
 * `id`, the fields not in the query keep the stored schedule's values, as an edit does; a missing
 * timeZone is the cluster's.
 */
export async function previewRuns(ctx: RequestContext, query: Record<string, string>): Promise<string[]> {
  const id = query.id === undefined ? null : parseScheduleId(query.id);
  if (query.id !== undefined && id === null) throw badRequest('id must be a schedule id', { id: 'is not a schedule id' });
  const input: Record<string, unknown> = { scheduleType: query.scheduleType ?? '', timeZone: query.timeZone ?? null };
  if (id === null) input.func = 'preview';
  for (const k of ['cron', 'minutes', 'nextRun'] as const) if (query[k]) input[k] = query[k];
  let previous: ScheduleValues | undefined;
  if (id !== null) {
    // The timing alone: a preview never loads the schedule's arguments.
    const columns = SCHEDULE_COLUMNS.split(', ')
      .filter((c) => c !== 'args' && c !== 'kwargs')
      .join(', ');
    const [stored] = await db(ctx.em).query(
      `select ${columns}, '[]'::jsonb as args, '{}'::jsonb as kwargs from ormq_schedule where id = ?`,
      [id],
    );
    if (!stored) throw notFound(`Schedule ${id} does not exist`);
    previous = scheduleValues(stored);
  }
  const v = validateSchedule(input, { previous, timeZone: ctx.options.timeZone });
  return upcomingRuns(v, 5, ctx.options.timeZone).map((d) => d.toISOString());
}
