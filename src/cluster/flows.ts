/**
 * What follows a chain step or an iteration's run, written in the transaction that saves and acks
 * it (Saver): the next step of a chain enqueued through `insertPackages`, or the chain marked
 * stopped; a run's final outcome recorded and, after the last run, the iteration's task saved
 * (src/iterations.ts). A step or run whose package this process no longer held (`lost`) is left
 * to the claim that holds it now, so nothing follows twice.
 */
import { chainStep, stoppedAt } from '../chains.js';
import type { Db } from '../db/run.js';
import { ITER_FINISH, ITER_LOCK, ITER_RECORD, type RunOutcome } from '../iterations.js';
import { insertPackages, type BuiltPackage } from '../producer.js';
import { toTask, type TaskRecord } from '../rows.js';
import type { Completion } from './completion.js';

/** A finished task whose completion has more to write: a chain step or an iteration's run. */
export const isFlowStep = (f: Completion): boolean => f.pkg.chain !== undefined || f.pkg.iter !== undefined;

/** Of failed tasks, those whose package stays queued for a retry (ormq_queued_task_idx serves it). */
const RETRYING = {
  name: 'ormq_flow_retrying',
  text: `select payload->>'id' as id from ormq_queued where linked and (payload->>'id') = any($1::text[])`,
};

/**
 * Each saved chain step gets its place in the chain; a step whose failure is final is marked
 * stopped, and its result says where the chain stopped. $1 = jsonb array of { id, chain, stopped }.
 */
const CHAIN_MARK = {
  name: 'ormq_chain_mark',
  text: `update ormq_task t set chain = x.chain,
      result = case when x.stopped is not null and jsonb_typeof(t.result) = 'object' then t.result || jsonb_build_object('chain', x.stopped) else t.result end
    from jsonb_to_recordset($1::jsonb) as x(id char(32), chain jsonb, stopped text) where t.id = x.id`,
};

/**
 * Writes what follows the chain steps and iteration runs of a batch just completed in this
 * transaction (`run`); `lost` are the packages the completion found held by another claim.
 * Returns the iterations' tasks saved, for their hooks.
 */
export async function continueFlows(
  run: Db,
  batch: readonly Completion[],
  lost: ReadonlySet<number>,
  cluster: string,
): Promise<TaskRecord[]> {
  const held = batch.filter((f) => isFlowStep(f) && !lost.has(f.qid));
  if (!held.length) return [];
  const failed = held.filter((f) => !f.success).map((f) => f.pkg.id);
  const retrying = new Set(failed.length ? (await run.query(RETRYING, [failed])).map((r) => String(r.id)) : []);
  const final = (f: Completion) => f.success || !retrying.has(f.pkg.id);

  const next: BuiltPackage[] = [];
  const marks: { id: string; chain: object; stopped: string | null }[] = [];
  for (const f of held) {
    if (!f.pkg.chain) continue;
    const { rest, stopped: _, ...place } = f.pkg.chain;
    const stopped = !final(f) || f.success ? null : stoppedAt(place);
    marks.push({ id: f.pkg.id, chain: stopped ? { ...place, stopped: true } : place, stopped });
    if (f.success && rest.length) next.push(chainStep(rest[0]!, { ...place, step: place.step + 1 }, rest.slice(1)));
  }
  if (marks.length) await run.query(CHAIN_MARK, [JSON.stringify(marks)]);
  if (next.length) await insertPackages(run, next);

  const outcomes: RunOutcome[] = held
    .filter((f) => f.pkg.iter && final(f))
    .map((f) => ({ iter: f.pkg.iter!.id, n: f.pkg.iter!.n, success: f.success, result: f.result, started: f.started, stopped: f.stopped }));
  if (!outcomes.length) return [];
  await run.query(ITER_LOCK, [[...new Set(outcomes.map((o) => o.iter))]]);
  const counted = await run.query(ITER_RECORD, [JSON.stringify(outcomes)]);
  const done = counted.filter((r) => Number(r.remaining) <= 0).map((r) => String(r.id).trim());
  if (!done.length) return [];
  const rows = await run.query(ITER_FINISH, [done, cluster]);
  return rows.filter((r) => r.hook).map((r) => toTask({ ...r, attempt_count: 1 }));
}
