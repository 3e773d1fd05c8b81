/**
 * The cluster's hot-path statements, each one round trip with a prepared-statement name, sent on
 * the host ORM's own pg pool. Timestamps compare on the database's clock (`now()`), never the
 * process's, so clusters on machines with skewed clocks agree on when a lock has expired.
 */

import { ERROR_GROUP } from '../error-groups.js';
import { SAVED_CHANNEL } from '../db/channels.js';
import { MERGE_ROLLUP, ROLLUP_COLUMNS, ROLLUP_CONFLICT } from './rollup.js';
import { lockOf } from '../claim-lock.js';

/** SQL: queued row `row` is still held by the claim of process `processParam` whose lock is `lock`. */
const heldBy = (row: string, processParam: string, lock: string) => `${row}.locked_by = ${processParam} and ${lockOf(row)} = ${lock}`;

export { CLAIM } from './claim-sql.js';

/** The upsert of a batch's rollup rows, given as the jsonb array `param` (sorted: see COMPLETE). */
const insertRollups = (param: string) => `
      insert into ormq_metric as m (${ROLLUP_COLUMNS}, shard)
      select span_minutes, bucket, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist, shard
      from jsonb_to_recordset(${param}::jsonb) as r(
        span_minutes smallint, bucket timestamptz, key text, func text, success boolean, count int, runtime_sum float8, runtime_max float8,
        wait_sum float8, wait_max float8, runtime_hist jsonb, wait_hist jsonb, shard smallint)
      order by span_minutes, bucket, key, func, success, shard
      ${ROLLUP_CONFLICT} ${MERGE_ROLLUP}`;

/** A package's attempt limit: its own (`i.max`, sent only when it has one) or the cluster's $3 (0 = unlimited). */
const MAX_ATTEMPTS = 'coalesce(i.max, $3::int)';

/** A failure's record for the task's attempts history (a success adds none). */
const FAILED_ATTEMPT = `case when success then '[]'::jsonb else jsonb_build_array(jsonb_build_object(
  'at', stopped, 'cluster', cluster, 'error', left(concat_ws(': ', result->>'error', result->>'message'), 500), 'max', ${MAX_ATTEMPTS})) end`;
/** The earlier attempts plus this one's, the newest 10 kept so a task retried forever stays small. */
const LAST_ATTEMPTS = `(select coalesce(jsonb_agg(a order by n), '[]') from jsonb_array_elements(t.attempts || excluded.attempts)
  with ordinality x(a, n) where n > jsonb_array_length(t.attempts || excluded.attempts) - 10)`;

/**
 * A package of the batch is done (acked): a success, a cancel, a final failure (`i.final`: its
 * function is not registered), or a failure not to be retried.
 */
const ACKED = `(i.success or i.cancelled or coalesce(i.final, false) or $2::boolean or (${MAX_ATTEMPTS} > 0 and q.failures + 1 >= ${MAX_ATTEMPTS}))`;

/**
 * When a failed package left queued runs again, stored as its run_at with its lock cleared: the
 * claim passes over it until then, NEXT_EXPIRY wakes an idle cluster for it, and the admin's
 * "next at" reads it. No process holds it meanwhile, so a cluster that stops or dies while its
 * failures wait leaves none of them stuck. Without a backoff of its own or the cluster's
 * (`i.base` null) it is `retry` ($6) after the attempt's claim, when its lock would have expired.
 * With one it is base × factor^(failures before this one) seconds from now, at most `cap`, less up
 * to `jitter` of that at random; the power is taken as exp(least(…)) so that no count of failures
 * overflows it.
 */
const FAILED_NEXT = `case when i.base is null then q.lock + make_interval(secs => $6::float8)
  else now() + make_interval(secs => i.base * exp(least(ln(i.cap / i.base), q.failures * ln(i.factor))) * (1 - i.jitter * random())) end`;

/**
 * Completion of a batch of finished tasks, in one statement: ack (delete) the packages that are
 * done: successes, and failures when ackFailures is set, the failure is final or the attempts
 * reached maxAttempts (the package's own, else the cluster's); mark the failures left queued for
 * a retry as linked, so the admin finds them by task id, count them on the package
 * (ormq_queued.failures, which maxAttempts and the backoff read: deleting the task's row cannot
 * reset it) and time their next attempt (FAILED_NEXT); save what is to be saved (a retry of the same task id updates its row and
 * counts the attempt); and add every attempt, saved or not, to its metrics rollup row
 * (src/cluster/rollup.ts). The ack and the mark touch only packages this process still holds
 * under the claim that ran them, and only what they touched is saved (`held`): their row locks
 * keep any claim off those packages until the statement commits. The others come back as `lost`,
 * their results not saved.
 * $1 = jsonb array of results, $2 = ackFailures, $3 = maxAttempts (0 = unlimited),
 * $4 = jsonb array of rollup rows, sorted by their key so that concurrent clusters lock the rows
 * they share in one order, $5 = this process's ormq_cluster id, $6 = the cluster's retry.
 * The saved ids go out on SAVED_CHANNEL (comma-separated, 200 per notification, under NOTIFY's
 * 8 KB) for callers waiting on a result.
 *
 * `q.id = any(array(select qid from input))` keeps the ack on the primary key (the mark is led by
 * its few failures, each found by its id, and without it stays so): the
 * statistics of a queue analysed while its backlog waits say no row has a `locked_by`, so the
 * generic plan, joining on `q.id = i.qid` alone, took `locked_by = $5` for one row and scanned the
 * whole queue against every result (500 results beside 4,500 waiting packages: 2.3 s a statement,
 * and the saved drain at a tenth of its speed). test/completion-plans.test.ts checks the plan.
 */
export const COMPLETE = {
  name: 'ormq_complete',
  text: `with input as (
      select * from jsonb_to_recordset($1::jsonb) as x(
        qid bigint, lock bigint, id text, name text, func text, hook text, args jsonb, kwargs jsonb, result jsonb,
        "group" text, cluster text, enqueued timestamptz, started timestamptz, stopped timestamptz,
        success boolean, save boolean, cancelled boolean, final boolean, max int, base float8, factor float8, cap float8, jitter float8)
    ), acked as (
      delete from ormq_queued q using input i
      where q.id = any(array(select qid from input)) and q.id = i.qid and ${heldBy('q', '$5', 'i.lock')} and ${ACKED}
      returning q.id as qid, q.failures + 1 as attempt
    ), linked as (
      update ormq_queued q set linked = true, failures = q.failures + 1, lock = null, locked_by = null, run_at = ${FAILED_NEXT}
      from input i
      where q.id = i.qid and ${heldBy('q', '$5', 'i.lock')} and not ${ACKED}
      returning q.id as qid, q.failures as attempt
    ), held as (
      select * from acked union all select * from linked
    ), saved as (
      insert into ormq_task as t (id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, attempt_count, attempts, error_group)
      select id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, attempt, ${FAILED_ATTEMPT}, ${ERROR_GROUP}
      from input i join held h on h.qid = i.qid where save
      on conflict (id) do update set
        name = excluded.name, func = excluded.func, hook = excluded.hook, args = excluded.args,
        kwargs = excluded.kwargs, result = excluded.result, "group" = excluded."group",
        cluster = excluded.cluster, started = excluded.started, stopped = excluded.stopped,
        success = excluded.success, attempt_count = greatest(t.attempt_count + 1, excluded.attempt_count), attempts = ${LAST_ATTEMPTS}, error_group = excluded.error_group
      returning t.id, t.attempt_count
    ), rolled as (${insertRollups('$4')}
    ), woke as (
      select count(pg_notify('${SAVED_CHANNEL}', ids)) as n
      from (select string_agg(id, ',') as ids from (select id::text, row_number() over () / 200 as part from saved) p group by part) g
    )
    select s.id, s.attempt_count, null::bigint as lost, (select n from woke) as woke
    from saved s
    union all
    select null, null, i.qid, null from input i
    where (select count(*) from held) < (select count(*) from input) and not exists (select 1 from held h where h.qid = i.qid)`,
};

/**
 * Completion of a batch in which nothing is saved: only successes that saveLimit -1 or `save:
 * false` keep no row of, each acked. The packages are deleted by id and the rollups counted, in one
 * statement as COMPLETE does, without its rows of JSON to read or its joins. $1 = the package ids
 * as an array literal, $2 = the rollup rows as in COMPLETE, $3 = the claim locks of the
 * batch's packages (as CLAIM returned them; one per claim, so a handful), $4 = this process's
 * ormq_cluster id: a package another process has claimed since, or one released or edited from the
 * admin, is not deleted but comes back as `lost` (none, the usual case, is known from the count
 * alone). A package this process claimed again in one of the batch's claims passes: the run that
 * finished is the one that claim adopted. 500 acks in a rolled-back transaction, alternating, median of 30: 2.4 ms
 * against COMPLETE's 5.7 ms, and 0.85 ms of the process's time to make its values against 1.26 ms.
 * The claim check, 500 acks beside 50,000 waiting packages, median of 60 at load 5–6 on 2 cores:
 * 2.3 ms against 1.3 ms without it, COMPLETE 3.4 ms; as a join of the ids' unnest (planned as a
 * hash join over a scan of the queue) it took 6.1 ms, hence `id = any`. The drain with every
 * package's own lock matched as `(id, lock) in (unnest…)` fell to half: `npm run bench -- --only
 * cluster --scale 0.1 --systems ormq`, ack only, 27,600–31,500/s against 50,400–58,700/s before the
 * check (load 1–3.5, 2 cores); matching the batch's few claim locks, 46,400–55,000/s in the same
 * sitting.
 */
export const ACK = {
  name: 'ormq_ack',
  text: `with acked as (
      delete from ormq_queued q where q.id = any($1::bigint[]) and q.locked_by = $4
        and ${lockOf('q')} = any($3::bigint[])
      returning q.id
    ), rolled as (${insertRollups('$2')}
    ) select id as lost from unnest($1::bigint[]) c(id)
      where (select count(*) from acked) < cardinality($1::bigint[]) and id not in (select id from acked)`,
};

/**
 * ms until the earliest lock of this key expires or its earliest delayed package that no one holds
 * comes due (null: neither, or the key is paused, which a resume nudges). The delayed side is a
 * short walk of ormq_queued_run_at_idx. Asked only when a claim came back short, when the locked
 * rows of the key are the few in flight, so that a package left by a crashed cluster or a failed
 * save is retried when its lock expires, not at the next poll. A delayed package that came due
 * after the claim's snapshot is 0 ms, not left out: it is claimable now, and the loop would
 * otherwise sleep its whole poll. Neither stays null rather than 0: greatest() skips a null, and
 * an idle loop told 0 would claim again every few ms instead of sleeping for its poll.
 */
export const NEXT_EXPIRY = {
  name: 'ormq_next_expiry',
  text: `select case when due is null then null else greatest(0, extract(epoch from due - now()) * 1000) end::float8 as ms
    from (select least(
      (select min(lock) + make_interval(secs => $2) from ormq_queued where key = $1 and lock is not null),
      (select min(run_at) from ormq_queued where key = $1 and run_at is not null and lock is null)) as due
      where not exists (select 1 from ormq_paused_key where key = $1)) d`,
};

/**
 * Packages this process claimed but will not finish (a graceful stop, a pause, a wait too long to
 * start) become claimable at once: those it still holds under that claim. $1 = the package ids,
 * $2 = their claim locks in the same order, $3 = this process's ormq_cluster id.
 */
export const RELEASE = {
  name: 'ormq_release',
  text: `update ormq_queued q set lock = null where q.id = any($1::bigint[]) and q.locked_by = $3
    and (q.id, ${lockOf('q')}) in (select * from unnest($1::bigint[], $2::bigint[]))`,
};

/** A package as this process holds it: its id and the lock its claim set. */
export interface Claimed {
  qid: number;
  lock: number;
}

/** RELEASE's values for these packages. */
export function releaseValues(packages: readonly Claimed[], processId: string): unknown[] {
  return [`{${packages.map((p) => p.qid).join(',')}}`, `{${packages.map((p) => p.lock).join(',')}}`, processId];
}
