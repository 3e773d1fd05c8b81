/**
 * The admin's actions on chosen schedules: pause, resume, run now and delete. Each wakes the
 * schedulers of the clusters it touches once (see src/schedules.ts, where schedules are written).
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { buildPackage, insertPackages, type BuiltPackage } from './producer.js';
import { date } from './rows.js';
import { nextRun } from './schedule-rules.js';
import { notifySchedulers, retryOptions, scheduleValues } from './schedules.js';
import { db } from './db/run.js';

type Row = Record<string, unknown>;

type Targets = readonly Row[];
const ids = (rows: Targets) => rows.map((r) => Number(r.id));

export async function deleteSchedules(em: SqlEntityManager, rows: Targets): Promise<void> {
  await db(em).query('delete from ormq_schedule where id in (?)', [ids(rows)]);
  await notifySchedulers(
    em,
    rows.map((r) => r.cluster),
  );
}

/** Repeats go to 0 and the count they had is kept for resume. */
export async function pauseSchedules(em: SqlEntityManager, rows: Targets): Promise<void> {
  await db(em).query('update ormq_schedule set paused_repeats = repeats, repeats = 0, version = version + 1 where id in (?)', [ids(rows)]);
  await notifySchedulers(
    em,
    rows.map((r) => r.cluster),
  );
}

export interface Resumed {
  id: number;
  /** The repeats restored, or null when the count before the pause is unknown (then -1: forever). */
  restored: number | null;
  /** Where next run moved, when it was in the past. */
  moved: { from: Date; to: Date } | null;
}

/**
 * Repeats go back to what the schedule had when it was paused (−1 when that is unknown). A next
 * run left in the past while paused moves to the first future slot of the same series: with
 * catchUp the scheduler would otherwise replay the slots missed meanwhile the moment it is
 * resumed. The anchor stays, so a month-end series stays on month ends. The rows need the timing
 * columns (schedule_type, minutes, cron, next_run, anchor, time_zone) and paused_repeats.
 */
export async function resumeSchedules(em: SqlEntityManager, rows: Targets, timeZone: string): Promise<Resumed[]> {
  const now = new Date();
  const tuples: string[] = [];
  const parameters: unknown[] = [];
  const resumed: Resumed[] = [];
  for (const r of rows) {
    const was = date(r.next_run);
    let next: Date | null = null;
    if (was < now) {
      try {
        next = nextRun(scheduleValues(r), { now, timeZone, catchUp: false });
      } catch {
        // A timing the scheduler cannot step (a broken cron) keeps its next run; the scheduler logs and skips it.
        next = null;
      }
      if (next && next.getTime() === was.getTime()) next = null;
    }
    tuples.push('(?::int, ?::timestamptz)');
    parameters.push(Number(r.id), next ? next.toISOString() : null);
    const paused = r.paused_repeats === null || r.paused_repeats === undefined ? 0 : Number(r.paused_repeats);
    resumed.push({ id: Number(r.id), restored: paused === 0 ? null : paused, moved: next ? { from: was, to: next } : null });
  }
  await db(em).query(
    `update ormq_schedule s set repeats = coalesce(nullif(s.paused_repeats, 0), -1), paused_repeats = null,
       next_run = coalesce(v.next_run, s.next_run), version = s.version + 1
       from (values ${tuples.join(', ')}) v(id, next_run) where s.id = v.id`,
    parameters,
  );
  await notifySchedulers(
    em,
    rows.map((r) => r.cluster),
  );
  return resumed;
}

/**
 * One run of each schedule now, outside its series: next run and repeats stay. The package's args
 * and kwargs are copied from the schedule row by PostgreSQL, plus the intended date when the
 * schedule names a kwarg for it. Returns the new task ids, in the rows' order.
 */
export async function runSchedulesNow(em: SqlEntityManager, rows: Targets): Promise<string[]> {
  const packages: BuiltPackage[] = [];
  const now = new Date().toISOString();
  for (const r of rows) {
    const kwargs = r.intended_date_kwarg ? { [r.intended_date_kwarg as string]: now } : {};
    const built = buildPackage(r.func as string, [], {
      kwargs,
      hook: (r.hook as string | null) ?? null,
      group: (r.name as string | null) ?? String(r.id),
      key: (r.cluster as string | null) ?? 'default',
      ...retryOptions(scheduleValues(r)),
    });
    built.payload.schedule = Number(r.id);
    packages.push({ ...built, copyArgs: { schedule: Number(r.id) } });
  }
  const tasks = packages.map((p) => p.payload.id);
  await db(em).query(
    `update ormq_schedule s set task = v.task, version = s.version + 1 from (values ${tasks.map(() => '(?::int, ?::char(32))').join(', ')}) v(id, task) where s.id = v.id`,
    rows.flatMap((r, i) => [Number(r.id), tasks[i]]),
  );
  await insertPackages(em, packages);
  await notifySchedulers(
    em,
    rows.map((r) => r.cluster),
  );
  return tasks;
}
