/**
 * The cluster's hot-path statements, each one round trip with a prepared-statement name, sent on
 * the host ORM's own pg pool. Timestamps compare on the database's clock (`now()`), never the
 * process's, so clusters on machines with skewed clocks agree on when a lock has expired.
 */

export interface Queryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

/**
 * Claim: the oldest packages of one key that are waiting or whose lock expired, locked in the same
 * statement. SKIP LOCKED lets any number of clusters claim at once without waiting on each other or
 * taking the same row; ormq_queued_claim_idx (key, id) serves the oldest-first scan.
 */
export const CLAIM = {
  name: 'ormq_claim',
  text: `update ormq_queued q set lock = now()
    from (select id from ormq_queued
          where key = $1 and (lock is null or lock < now() - make_interval(secs => $2))
          order by id limit $3 for update skip locked) c
    where q.id = c.id
    returning q.id, q.payload`,
};

/** A failure's record for the task's attempts history (a success adds none). */
const FAILED_ATTEMPT = `case when success then '[]'::jsonb else jsonb_build_array(jsonb_build_object(
  'at', stopped, 'cluster', cluster, 'error', left(concat_ws(': ', result->>'error', result->>'message'), 500), 'max', $3::int)) end`;
/** The earlier attempts plus this one's, the newest 10 kept so a task retried forever stays small. */
const LAST_ATTEMPTS = `(select coalesce(jsonb_agg(a order by n), '[]') from jsonb_array_elements(t.attempts || excluded.attempts)
  with ordinality x(a, n) where n > jsonb_array_length(t.attempts || excluded.attempts) - 10)`;

/**
 * Completion of a batch of finished tasks, in one statement: save what is to be saved (a retry of
 * the same task id updates its row and counts the attempt), then ack (delete) the packages that are
 * done: successes, and failures when ackFailures is set or the attempts reached maxAttempts.
 * $1 = jsonb array of results, $2 = ackFailures, $3 = maxAttempts (0 = unlimited).
 */
export const COMPLETE = {
  name: 'ormq_complete',
  text: `with input as (
      select * from jsonb_to_recordset($1::jsonb) as x(
        qid bigint, id text, name text, func text, hook text, args jsonb, kwargs jsonb, result jsonb,
        "group" text, cluster text, enqueued timestamptz, started timestamptz, stopped timestamptz,
        success boolean, save boolean)
    ), saved as (
      insert into ormq_task as t (id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, attempt_count, attempts)
      select id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, 1, ${FAILED_ATTEMPT}
      from input where save
      on conflict (id) do update set
        name = excluded.name, func = excluded.func, hook = excluded.hook, args = excluded.args,
        kwargs = excluded.kwargs, result = excluded.result, "group" = excluded."group",
        cluster = excluded.cluster, started = excluded.started, stopped = excluded.stopped,
        success = excluded.success, attempt_count = t.attempt_count + 1, attempts = ${LAST_ATTEMPTS}
      returning t.id, t.attempt_count
    ), acked as (
      delete from ormq_queued q
      using input i left join saved s on s.id = i.id
      where q.id = i.qid and (i.success or $2::boolean or ($3::int > 0 and coalesce(s.attempt_count, 1) >= $3::int))
      returning q.id
    )
    select s.id, s.attempt_count, exists (select 1 from acked a join input i on i.qid = a.id where i.id = s.id) as acked
    from saved s`,
};

/**
 * ms until the earliest lock of this key expires (null: none is locked). Asked only when a claim
 * came back short, when the locked rows of the key are the few in flight, so that a package left
 * by a crashed cluster or a failed save is retried when its lock expires, not at the next poll.
 */
export const NEXT_EXPIRY = {
  name: 'ormq_next_expiry',
  text: `select greatest(0, extract(epoch from min(lock) + make_interval(secs => $2) - now()) * 1000)::float8 as ms
    from ormq_queued where key = $1 and lock is not null`,
};

/** Ack only: successes that are not saved (saveLimit -1 or save: false). */
export const ACK = {
  name: 'ormq_ack',
  text: 'delete from ormq_queued where id = any($1::bigint[])',
};

/** Graceful stop: packages this cluster holds but did not finish become claimable at once. */
export const RELEASE = {
  name: 'ormq_release',
  text: 'update ormq_queued set lock = null where id = any($1::bigint[])',
};

/**
 * saveLimit pruning: keep the newest N successes in scope, delete the rest. Runs once per batch and
 * per scope value in it, so a burst of saves brings the scope down to the limit in one statement
 * rather than one row per save. Each scope has an index led by its column (src/schema.ts).
 */
export function pruneStatement(per: 'group' | 'name' | 'func' | null, nullScope: boolean): { name: string; text: string } {
  const inner = 'order by stopped desc, id desc offset $1';
  if (per === null) {
    return {
      name: 'ormq_prune_all',
      text: `delete from ormq_task where id in (select id from ormq_task where success ${inner})`,
    };
  }
  const col = `"${per}"`;
  if (nullScope) {
    return {
      name: `ormq_prune_${per}_null`,
      text: `delete from ormq_task where id in (select id from ormq_task where ${col} is null and success ${inner})`,
    };
  }
  return {
    name: `ormq_prune_${per}`,
    text: `delete from ormq_task where id in (
      select x.id from unnest($2::text[]) as s(v),
        lateral (select id from ormq_task where ${col} = s.v and success ${inner}) x)`,
  };
}
