/**
 * What needs an operator now, for the overview: each kind of problem with how many things have
 * it, a few of them by name, the page (and filter) that shows them and what fixes it. A kind is
 * asked only of callers who may view the page it links to, and left out when nothing has it.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { responding } from '../liveness.js';
import { listCount } from './count.js';
import type { PageId, ViewPageId } from './options.js';
import { isListPage, type Page, type PageModule, type RequestContext } from './page.js';
import { DRIFT_FIELDS, queuedKeys } from './keys.js';
import { db } from '../db/run.js';

type AttentionKind = 'not_responding' | 'stuck' | 'failing' | 'slow_wait' | 'paused_waiting' | 'retrying' | 'drift';

export interface AttentionItem {
  kind: AttentionKind;
  /** How many things have it (processes, packages, funcs, keys or failures); `estimated` when counting would read too much. */
  count: number;
  estimated?: true;
  /** The page that shows them, with the list's filter. */
  link: { page: PageId | ViewPageId; query: Record<string, string> };
  /** What fixes it, in a sentence. */
  action: string;
  /** The first few of them by name, per kind. */
  items?: Record<string, unknown>[];
}

/** Things named per kind; the count says how many there are in all. */
const NAMED = 5;
/** A func is failing when at least this share of its attempts in the last hour failed… */
const FAILING_RATE = 0.1;
/** …and at least this many did: two failures out of ten attempts is noise, not an incident. */
const FAILING_MIN = 5;
/** Paused keys looked at: each is one probe of ormq_queued_claim_idx. */
const PAUSED_CAP = 500;

const isoOf = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString());

async function notResponding(em: SqlEntityManager): Promise<AttentionItem | null> {
  const rows = await db(em).query(
    `select id, name, host, pid, heartbeat, count(*) over () as n from ormq_cluster c where not (${responding('c')}) order by heartbeat desc limit ${NAMED}`,
  );
  return onClusters(
    rows,
    'not_responding',
    'Restart the process or let its row go; the packages it held are stuck until released',
    (r) => ({
      id: String(r.id).trim(),
      name: r.name,
      host: r.host,
      pid: Number(r.pid),
      lastSeen: isoOf(r.heartbeat),
    }),
  );
}

/** An item shown on the Clusters page, from rows naming the first few, each carrying the total as `n`; null when there are none. */
function onClusters(
  rows: Record<string, unknown>[],
  kind: AttentionKind,
  action: string,
  item: (r: Record<string, unknown>) => Record<string, unknown>,
): AttentionItem | null {
  if (!rows.length) return null;
  return { kind, count: Number(rows[0]!.n), link: { page: 'clusters', query: {} }, action, items: rows.map(item) };
}

/**
 * Packages held by a process that stopped answering, as the Queued page's `stuck` filter finds
 * them. ormq_queued has no index on its lock (a claim's update stays HOT without one), so they are
 * counted only while a process is not responding: a count at 100,000 packages read them all, 41 ms.
 * A package whose holder's row is gone altogether (pruned a day after its last beat) is still on
 * the Queued page's filter.
 */
async function stuck(ctx: RequestContext, queued: Page): Promise<AttentionItem | null> {
  const [dead] = await db(ctx.em).query(`select exists (select 1 from ormq_cluster c where not (${responding('c')})) as any`);
  if (!dead?.any) return null;
  return counted(ctx, queued, { stuck: 'yes' }, 'stuck', 'Release them, so that a live cluster of their key runs them');
}

/** An item of the rows of a list page under `filter`, linked to that list; null when there are none. */
async function counted(
  ctx: RequestContext,
  page: Page,
  filter: Record<string, string>,
  kind: AttentionKind,
  action: string,
): Promise<AttentionItem | null> {
  const count = await listCount(ctx.em, page.table, page.where(filter, ctx));
  if (!count.value) return null;
  return { kind, count: count.value, ...(count.estimated && { estimated: true as const }), link: { page: page.id, query: filter }, action };
}

/** Funcs whose attempts in the last hour failed at FAILING_RATE or more, from the minute rollups. */
async function failing(em: SqlEntityManager): Promise<AttentionItem | null> {
  const rows = await db(em).query(
    `select func, sum(count) filter (where not success)::bigint as failures, sum(count)::bigint as attempts,
            to_char((now() - interval '1 hour') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as since
       from ormq_metric where span_minutes = 1 and bucket >= date_trunc('minute', now() - interval '1 hour')
      group by func having sum(count) filter (where not success) >= ? and sum(count) filter (where not success) >= ? * sum(count)
      order by 2 desc, 1 limit 100`,
    [FAILING_MIN, FAILING_RATE],
  );
  if (!rows.length) return null;
  const since = rows[0]!.since as string;
  const funcs = rows.map((r) => ({
    func: r.func as string,
    failures: Number(r.failures),
    attempts: Number(r.attempts),
    rate: Number(r.failures) / Number(r.attempts),
  }));
  return {
    kind: 'failing',
    count: funcs.length,
    // one func: its failures; several: every failure of the hour
    link: { page: 'failed', query: funcs.length === 1 ? { func: funcs[0]!.func, from: since } : { from: since } },
    action: 'Open the failures grouped by cause, fix it, then resubmit them',
    items: funcs.slice(0, NAMED).map((f) => ({ ...f, link: { page: 'failed', query: { func: f.func, from: since } } })),
  };
}

/** Keys not paused whose oldest waiting package has waited longer than healthMaxWait. */
async function slowWait(ctx: RequestContext, now: number, paused: Set<string>, linkQueued: boolean): Promise<AttentionItem | null> {
  const limit = ctx.options.healthMaxWait * 1000;
  const slow = (await queuedKeys(ctx.em, now)).filter((k) => k.oldest !== null && k.oldest > limit && !paused.has(k.key));
  if (!slow.length) return null;
  slow.sort((a, b) => b.oldest! - a.oldest!);
  const live = new Set(
    (
      await db(ctx.em).query(`select distinct name from ormq_cluster c where state = 'running' and ${responding('c')} and name in (?)`, [
        slow.map((k) => k.key),
      ])
    ).map((r) => r.name as string),
  );
  return {
    kind: 'slow_wait',
    count: slow.length,
    link: { page: 'clusters', query: {} },
    action: `Start a cluster for the key, or give it more workers (waiting over ${ctx.options.healthMaxWait} s)`,
    items: slow.slice(0, NAMED).map((k) => ({
      key: k.key,
      waited: k.oldest,
      served: live.has(k.key),
      ...(linkQueued && { link: { page: 'queued', query: { key: k.key } } }),
    })),
  };
}

/**
 * Paused keys with waiting packages, since when and by whom: the admin's log knows who paused a
 * key from the admin (the entry written with the pause, in its transaction); a pause from code has none.
 * Whether a key has work waiting is one probe of ormq_queued_claim_idx; only the keys named are
 * counted, by their names (an estimate of a few rows: a count per paused key over a large queue was
 * costed high enough to be JIT-compiled, 145 ms of compiling at 100,000 packages).
 */
async function pausedWaiting(em: SqlEntityManager): Promise<{ item: AttentionItem | null; paused: Set<string> }> {
  const rows = await db(em).query(
    `select key, exists (select 1 from ormq_queued q where q.key = p.key and q.lock is null) as waiting
       from (select key from ormq_paused_key order by key limit ${PAUSED_CAP}) p`,
  );
  const paused = new Set(rows.map((r) => r.key as string));
  const waiting = rows.filter((r) => r.waiting === true).map((r) => r.key as string);
  if (!waiting.length) return { item: null, paused };
  const named = await db(em).query(
    `select p.key, p.at,
            (select count(*)::int from (select 1 from ormq_queued q where q.key = p.key and q.lock is null limit 10001) x) as waiting,
            (select actor from ormq_admin_log a where a.page = 'clusters' and a.object_id = left(p.key, 64) and a.action = 'pause' and a.at >= p.at
              order by a.id desc limit 1) as actor
       from ormq_paused_key p where p.key in (?)`,
    [waiting.slice(0, NAMED)],
  );
  named.sort((a, b) => Number(b.waiting) - Number(a.waiting) || String(a.key).localeCompare(String(b.key)));
  return {
    paused,
    item: {
      kind: 'paused_waiting',
      count: waiting.length,
      link: { page: 'clusters', query: {} },
      action: 'Resume the key once the reason for the pause is gone',
      items: named.map((r) => ({ key: r.key, waiting: Number(r.waiting), since: isoOf(r.at), by: (r.actor as string | null) ?? null })),
    },
  };
}

/**
 * Queue keys whose live processes run with different options (their heartbeat rows carry them):
 * a process left at another saveLimit prunes what the others keep, another retry or timeout runs
 * the same package on another schedule.
 */
async function drift(em: SqlEntityManager): Promise<AttentionItem | null> {
  const differs = (f: string) => `count(distinct config->>'${f}') > 1`;
  const rows = await db(em).query(
    `select name, ${DRIFT_FIELDS.map((f) => `${differs(f)} as "${f}"`).join(', ')}, count(*)::int as processes, count(*) over () as n
       from ormq_cluster c where ${responding('c')} and config is not null
       group by name having ${DRIFT_FIELDS.map(differs).join(' or ')} order by name limit ${NAMED}`,
  );
  return onClusters(
    rows,
    'drift',
    'Start every process of a key with the same options; the Clusters page shows what each one runs with',
    (r) => ({
      key: r.name,
      processes: Number(r.processes),
      fields: DRIFT_FIELDS.filter((f) => r[f] === true),
    }),
  );
}

/** The items the caller may see, worst first. */
export async function attention(ctx: RequestContext, pages: readonly PageModule[]): Promise<AttentionItem[]> {
  const page = (id: string) => pages.find((p) => p.id === id);
  const can = async (id: PageId) => !!page(id) && (await ctx.can(id, 'view'));
  const items: (AttentionItem | null)[] = [];
  const clusters = await can('clusters');
  const queued = page('queued');
  const failed = page('failed');
  if (clusters) items.push(await notResponding(ctx.em));
  const seesQueued = !!queued && isListPage(queued) && (await can('queued'));
  if (seesQueued) items.push(await stuck(ctx, queued as Page));
  const seesFailed = failed && isListPage(failed) && (await can('failed'));
  if (seesFailed) items.push(await failing(ctx.em));
  if (clusters) {
    const [r] = await db(ctx.em).query('select extract(epoch from now()) * 1000 as ms');
    const { item, paused } = await pausedWaiting(ctx.em);
    items.push(await slowWait(ctx, Number(r!.ms), paused, seesQueued), item);
  }
  if (seesFailed)
    items.push(
      await counted(
        ctx,
        failed,
        { state: 'retrying' },
        'retrying',
        'They run again when their retry comes; resubmit or delete them to stop waiting',
      ),
    );
  if (clusters) items.push(await drift(ctx.em));
  return items.filter((i): i is AttentionItem => i !== null);
}
