/**
 * The claim: one statement that picks a key's claimable packages in claim order, holds back what a
 * serial key or a limit per func (ormq_limit, `setLimit`) does not let start yet, and locks the
 * rest. See src/schema-order.ts for the columns and the table it reads.
 */

import { lockOf } from '../claim-lock.js';

const INT_MAX = 2147483647;

/**
 * Claim: packages of one key that are waiting or whose lock expired, in claim order, locked in the
 * same statement. SKIP LOCKED lets any number of clusters claim at once without waiting on each
 * other or taking the same row; ormq_queued_claim_idx (key, priority desc, id) serves the scan in
 * claim order, highest priority first and oldest first within one. A paused key (ormq_paused_key)
 * claims nothing; $4 is the claiming process's ormq_cluster id. A delayed package (run_at in the
 * future) is passed over until then. Each row comes back with its lock as `lockOf` reads it: every
 * later statement about the package (COMPLETE, ACK, RELEASE) acts only while the row still holds
 * this process's id and that lock, so a process that stalled past `retry` cannot release, ack or
 * save a package another process has claimed since.
 *
 * Serial keys: a package with one is claimable only while no earlier package of that key is queued
 * (ormq_queued_serial_idx): the one before it is running, waiting for its retry or not yet due, and
 * holds its place until acked. A claim that runs while another claims the earlier one skips that
 * row (locked) and still sees it queued, so two claims never start one serial key twice.
 *
 * Limits (`lim`, one row per limited func, read from this statement's snapshot): a func's room is
 * its concurrency less its live holders (claims whose package still holds that same lock, not
 * expired) and its rate's count less the starts inside the window. A func without room is passed
 * over by the scan. For a func with room, the claim locks its ormq_limit row (`granted`, SKIP
 * LOCKED, only funcs among the candidates) only if the row is still as the snapshot read it: every
 * claim of a limited func rewrites its row, so an unchanged row means no claim of that func
 * committed since the snapshot, and none can until this one commits. The snapshot's holders and
 * starts are then exact, and at most `room` of the func's candidates are claimed; the rest are
 * left, locked by nothing once this statement ends. A held-back package is never locked, so it is
 * not stuck. Without any limit the three parts cost one empty scan of ormq_limit: each is gated
 * behind `exists (select 1 from lim)`, a one-time filter.
 *
 * The last row (id null, held true) says that limits held something back, or may have: the claim
 * loop then looks again soon rather than after its poll (src/cluster/claim.ts).
 */
export const CLAIM = {
  name: 'ormq_claim',
  text: `with lim as (
      select s.func, s.concurrency, s.rate_count, s.rate_seconds, s.holders, s.starts, h.live, r.recent,
        least(coalesce(s.concurrency - jsonb_array_length(h.live), ${INT_MAX}), coalesce(s.rate_count - jsonb_array_length(r.recent), ${INT_MAX})) as room
      from ormq_limit s
      cross join lateral (select coalesce(jsonb_agg(jsonb_build_array(hq.id, ${lockOf('hq')})), '[]') as live from ormq_queued hq
        where hq.id = any(array(select (x.e->>0)::bigint from jsonb_array_elements(s.holders) x(e)))
          and s.holders @> jsonb_build_array(jsonb_build_array(hq.id, ${lockOf('hq')})) and hq.lock >= now() - make_interval(secs => $2)) h
      cross join lateral (select coalesce(jsonb_agg(x.e), '[]') as recent from jsonb_array_elements(s.starts) x(e)
        where x.e::text::float8 > extract(epoch from now()) - s.rate_seconds) r
    ), cand as (
      select id, priority, payload from ormq_queued
      where key = $1 and (lock is null or lock < now() - make_interval(secs => $2))
        and (run_at is null or run_at <= now())
        and not exists (select 1 from ormq_paused_key where key = $1)
        and (serial is null or not exists (select 1 from ormq_queued o where o.serial = ormq_queued.serial and o.id < ormq_queued.id))
        and (not exists (select 1 from lim where room <= 0) or payload->>'func' not in (select func from lim where room <= 0))
      order by priority desc, id limit $3 for update skip locked
    ), granted as (
      select s.func from ormq_limit s join lim l on l.func = s.func
      where exists (select 1 from lim) and l.room > 0 and s.func in (select c.payload->>'func' from cand c)
        and s.holders = l.holders and s.starts = l.starts and s.concurrency is not distinct from l.concurrency
        and s.rate_count is not distinct from l.rate_count and s.rate_seconds is not distinct from l.rate_seconds
      for update of s skip locked
    ), pick as (
      select id from cand where not exists (select 1 from lim)
      union all
      select w.id from (
        select c.id, l.func, l.room, row_number() over (partition by c.payload->>'func' order by c.priority desc, c.id) as n
        from cand c left join lim l on l.func = c.payload->>'func'
      ) w where exists (select 1 from lim) and (w.func is null or (w.n <= w.room and w.func in (select func from granted)))
    ), claimed as (
      update ormq_queued q set lock = now(), locked_by = $4 from pick where q.id = pick.id
      returning q.id, q.payload, q.priority, ${lockOf('q')} as lock
    ), counted as (
      update ormq_limit s set
        holders = case when s.concurrency is null then '[]' else l.live || n.holders end,
        starts = case when s.rate_count is null then '[]' else l.recent || n.starts end
      from lim l, (select c.payload->>'func' as func, jsonb_agg(jsonb_build_array(c.id, c.lock)) as holders,
          jsonb_agg(extract(epoch from now())) as starts
        from claimed c where exists (select 1 from lim) group by 1) n
      where s.func = l.func and l.func = n.func
    )
    select id, payload, lock, priority, false as held from claimed
    union all
    select null, null, null, null, true
    where exists (select 1 from lim) and (exists (select 1 from lim where room <= 0) or (select count(*) from pick) < (select count(*) from cand))`,
};
