import type { MikroORM } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { buildPackage, insertPackages, type BuiltPackage } from '../producer.js';
import { retryOptions, SCHEDULE_COLUMNS } from '../schedules.js';
import { toSchedule, type ScheduleRecord } from '../rows.js';
import { inSchema } from '../table-names.js';
import { dueRun, nextRun } from '../schedule-rules.js';
import type { Wake } from './wake.js';
import { db } from '../db/run.js';

export interface SchedulerOptions {
  cluster: string;
  /** The schema of ormq's tables (null: the search_path's). */
  schema?: string | null;
  /** The default cluster also runs schedules whose cluster is null. */
  isDefault: boolean;
  timeZone: string;
  catchUp: boolean;
  /** With catchUp: the most recent missed slots a schedule runs; older ones are skipped. */
  maxCatchUp?: number;
  /** true once the cluster is stopping: the pass ends after the schedule it is running. */
  stopping?: () => boolean;
  /** Reports a schedule that could not run; the pass goes on with the others. */
  onBroken(schedule: ScheduleRecord, error: Error): void;
  /**
   * Broken schedules held back: id → when to try again (epoch ms). Kept by the caller across
   * passes so a broken schedule is retried once a minute, not on every pass.
   */
  held?: Map<number, number>;
}

/** How long a broken schedule is left alone before it is tried again. */
const BROKEN_RETRY_MS = 60_000;

function heldIds(held: Map<number, number> | undefined): number[] {
  if (!held) return [];
  const now = Date.now();
  for (const [id, until] of held) if (until <= now) held.delete(id);
  return [...held.keys()];
}

/** Schedules claimed per transaction; a catch-up backlog takes several. */
const BATCH = 100;

function dueQuery(excluded: number[]): string {
  return `select ${SCHEDULE_COLUMNS} from ormq_schedule
    where repeats <> 0 and next_run <= now() and (cluster = ? or (?::boolean and cluster is null))
    ${excluded.length ? 'and id not in (?)' : ''}
    order by next_run, id limit ${BATCH} for update skip locked`;
}

/**
 * Slots one claim of a schedule runs at most. A long catch-up takes several claims, so it never
 * holds one transaction for long and a stopping cluster is not kept waiting by it.
 */
const SLOTS_PER_CLAIM = 50;

function runPackage(s: ScheduleRecord, slot: Date, cluster: string): BuiltPackage {
  const kwargs = { ...(s.kwargs ?? {}) };
  if (s.intendedDateKwarg) kwargs[s.intendedDateKwarg] = slot.toISOString();
  const built = buildPackage(s.func, s.args, { kwargs, hook: s.hook, group: s.name ?? String(s.id), key: cluster, ...retryOptions(s) });
  built.payload.schedule = s.id;
  return built;
}

/**
 * The due runs of one schedule inside the claiming transaction: enqueue a task per slot, count
 * repeats down (negative counts keep going down: they tell how often it ran), move next_run on,
 * or delete / stop a Once schedule. Returns how many runs were enqueued.
 */
async function runSchedule(em: SqlEntityManager, s: ScheduleRecord, options: SchedulerOptions): Promise<number> {
  const now = new Date();
  const rules = { now, timeZone: options.timeZone, catchUp: options.catchUp, maxCatchUp: options.maxCatchUp };
  const runs: BuiltPackage[] = [];
  let slot = dueRun(s, rules);
  let repeats = s.repeats;
  let update: [string, unknown[]] | null = null;
  while (!update) {
    const run = runPackage(s, slot, options.cluster);
    runs.push(run);
    const task = run.payload.id;
    if (s.scheduleType === 'O') {
      update =
        repeats < 0
          ? ['delete from ormq_schedule where id = ?', [s.id]]
          : ['update ormq_schedule set repeats = 0, task = ?, version = version + 1 where id = ?', [task, s.id]];
      break;
    }
    repeats--;
    const next = nextRun({ ...s, nextRun: slot }, rules);
    if (repeats === 0 || next > now || runs.length >= SLOTS_PER_CLAIM) {
      update = [
        'update ormq_schedule set repeats = ?, next_run = ?, anchor = ?, task = ?, version = version + 1 where id = ?',
        [repeats, next.toISOString(), s.anchor.toISOString(), task, s.id],
      ];
    }
    slot = next;
  }
  // One statement for all the runs of one claim, in slot order, and one wake-up for their queue.
  await insertPackages(em, runs);
  await db(em).query(update[0], update[1]);
  return runs.length;
}

/**
 * Runs every due schedule of this cluster once per due slot. Claimed FOR UPDATE SKIP LOCKED, so
 * with several clusters each due run happens exactly once. A broken schedule (bad args, bad cron)
 * rolls back to its savepoint, is reported, and is left out for the rest of the pass.
 * Returns how many runs were enqueued.
 */
export async function runDueSchedules(orm: MikroORM, options: SchedulerOptions): Promise<number> {
  const broken: number[] = heldIds(options.held);
  let runs = 0;
  for (;;) {
    let claimed = 0;
    await (inSchema(orm.em.fork(), options.schema ?? null) as SqlEntityManager).transactional(async (tx) => {
      const params: unknown[] = [options.cluster, options.isDefault];
      if (broken.length) params.push(broken);
      const rows = await db(tx).query(dueQuery(broken), params);
      claimed = rows.length;
      for (const row of rows) {
        if (options.stopping?.()) break;
        const s = toSchedule(row);
        try {
          runs += await tx.transactional((sp) => runSchedule(sp as SqlEntityManager, s, options));
        } catch (err) {
          broken.push(s.id);
          options.held?.set(s.id, Date.now() + BROKEN_RETRY_MS);
          options.onBroken(s, err as Error);
        }
      }
    });
    // Catch-up leaves schedules still due after one claim; claim again until none is left.
    if (claimed === 0 || options.stopping?.()) return runs;
  }
}

/** When this cluster's next schedule is due, or null when it has none. */
export async function nextDue(
  orm: MikroORM,
  options: Pick<SchedulerOptions, 'cluster' | 'isDefault' | 'held' | 'schema'>,
): Promise<Date | null> {
  const held = heldIds(options.held);
  const params: unknown[] = [options.cluster, options.isDefault];
  if (held.length) params.push(held);
  const row = await db(inSchema(orm.em.fork(), options.schema ?? null)).queryOne(
    `select min(next_run) as next from ormq_schedule where repeats <> 0 and (cluster = ? or (?::boolean and cluster is null))
     ${held.length ? 'and id not in (?)' : ''}`,
    params,
  );
  return row?.next ? new Date(row.next as string) : null;
}

/**
 * The cluster's scheduler: a pass, then sleep until the next schedule is due (at most 30 s, so
 * schedules changed without a notification are seen) or a schedule change wakes it.
 */
export async function scheduleLoop(
  orm: MikroORM,
  options: SchedulerOptions & { stopping(): boolean },
  wake: Wake,
  poll: number,
  warn: (message: string) => void,
): Promise<void> {
  while (!options.stopping()) {
    wake.clear();
    let wait = 30_000;
    try {
      await runDueSchedules(orm, options);
      const due = await nextDue(orm, options);
      if (due) wait = Math.min(wait, Math.max(0, due.getTime() - Date.now()) + 5);
    } catch (err) {
      warn(`scheduler pass failed: ${(err as Error).message}`);
      wait = poll;
    }
    if (!options.stopping()) await wake.sleep(Math.max(wait, 5));
  }
}
