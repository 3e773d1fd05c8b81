/**
 * Clusters: every cluster process from its heartbeat row, with its running tasks, and every queue
 * key with its backlog, the clusters serving it and whether it is paused. Actions: pause and resume
 * a key, and stop one running task (its cluster aborts the task's signal).
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { checkKey, pauseKey, resumeKey, sendControl } from '../../control.js';
import { MISSED_BEATS, responding } from '../../cluster/heartbeat.js';
import { badRequest, HttpError, isPlainObject, notFound } from '../http.js';
import { writeLog } from '../log.js';
import type { PageModule, RequestContext, Route } from '../page.js';

type Row = Record<string, unknown>;

/** Packages of one key counted before the count says "at least". */
const COUNT_CAP = 10_000;
/** More processes or keys than anyone reads on one page; the rest are left off and said to be. */
const ROW_CAP = 500;

export type ClusterState = 'running' | 'stopping' | 'not responding';

/**
 * Packages of one key looked at, oldest first, for one that waits. Locked ones (running, or stuck in
 * a process that died) come first in the claim's order, and the walk read them all: 130 ms per key
 * at 300k stuck packages, for every health probe.
 */
const WAIT_WALK = 1_000;

/**
 * Each queue key with packages, from a skip scan of ormq_queued_claim_idx (one index probe per key,
 * not a read of the queue), and the oldest waiting package of each: the first free one among the
 * key's first WAIT_WALK; when all of those are locked, the key's first package (whatever it waits
 * behind has waited at least as long).
 */
const QUEUED_KEYS = `with recursive k as (
    (select key from ormq_queued order by key limit 1)
    union all
    select (select q.key from ormq_queued q where q.key > k.key order by q.key limit 1) from k where k.key is not null)
  select k.key, coalesce(
      (select payload->>'enqueued' from (select lock, payload from ormq_queued q where q.key = k.key order by id limit ${WAIT_WALK}) w where w.lock is null limit 1),
      (select payload->>'enqueued' from ormq_queued q where q.key = k.key
          and exists (select 1 from ormq_queued q2 where q2.key = k.key order by id offset ${WAIT_WALK - 1} limit 1)
        order by id limit 1)) as enqueued
  from k where k.key is not null limit ${ROW_CAP + 1}`;

/** Waiting and running packages of each key in $1 (a JSON array), each count stopped at COUNT_CAP + 1 rows. */
const COUNTS = `select k.key, c.waiting, c.running from jsonb_array_elements_text(?::jsonb) k(key)
  cross join lateral (select count(*) filter (where lock is null)::int as waiting, count(*) filter (where lock is not null)::int as running
    from (select lock from ormq_queued q where q.key = k.key limit ${COUNT_CAP + 1}) x) c`;

const CLUSTERS = `select id, name, host, pid, state, workers, busy, done, failed, version, tasks, beat_ms, started, heartbeat,
    extract(epoch from now() - started) * 1000 as uptime, extract(epoch from now() - heartbeat) * 1000 as age
  from ormq_cluster order by name, started desc limit ${ROW_CAP + 1}`;

interface KeyWait {
  key: string;
  /** ms the oldest waiting package has waited; null when none waits (or its enqueued time is unreadable). */
  oldest: number | null;
}

/** Queue keys with packages, and how long the oldest waiting one of each has waited. */
export async function queuedKeys(em: SqlEntityManager, now: number): Promise<KeyWait[]> {
  const rows = await em.execute(QUEUED_KEYS);
  return rows.map((r) => {
    const at = typeof r.enqueued === 'string' ? Date.parse(r.enqueued) : NaN;
    return { key: r.key as string, oldest: Number.isNaN(at) ? null : Math.max(0, now - at) };
  });
}

/** Keys whose clusters claim: a running process that beats. */
export async function servedKeys(em: SqlEntityManager): Promise<Set<string>> {
  const rows = await em.execute(`select distinct name from ormq_cluster c where state = 'running' and ${responding('c')}`);
  return new Set(rows.map((r) => r.name as string));
}

async function dbNow(em: SqlEntityManager): Promise<number> {
  const [r] = await em.execute('select extract(epoch from now()) * 1000 as ms');
  return Number(r!.ms);
}

function toCluster(r: Row) {
  const age = Math.max(0, Number(r.age));
  const beat = Number(r.beat_ms);
  const state: ClusterState = age > beat * MISSED_BEATS ? 'not responding' : (r.state as ClusterState);
  const tasks = Array.isArray(r.tasks) ? (r.tasks as Row[]) : [];
  return {
    id: String(r.id).trim(),
    name: r.name as string,
    host: r.host as string,
    pid: Number(r.pid),
    state,
    started: new Date(r.started as string).toISOString(),
    heartbeat: new Date(r.heartbeat as string).toISOString(),
    uptime: Math.max(0, Math.round(Number(r.uptime))),
    heartbeatAge: Math.round(age),
    heartbeatEvery: beat,
    workers: Number(r.workers),
    busy: Number(r.busy),
    done: Number(r.done),
    failed: Number(r.failed),
    version: r.version as string,
    // Elapsed as of the last beat plus the row's age, both on the database's clock.
    tasks: tasks.map((t) => ({
      package: Number(t.package),
      taskId: String(t.id ?? ''),
      name: String(t.name ?? ''),
      func: String(t.func ?? ''),
      started: String(t.started ?? ''),
      elapsed: Math.round(Number(t.elapsed) || 0) + (state === 'not responding' ? 0 : Math.round(age)),
    })),
  };
}

async function view(ctx: RequestContext) {
  const em = ctx.em;
  const now = await dbNow(em);
  const rows = await em.execute(CLUSTERS);
  const clusters = rows.slice(0, ROW_CAP).map(toCluster);
  const waits = await queuedKeys(em, now);
  // The first keys in order of each source hold the first keys of their union: no source is read past ROW_CAP + 1.
  const pausedRows = await em.execute(`select key from ormq_paused_key order by key limit ${ROW_CAP + 1}`);
  const names = new Set([...waits.map((w) => w.key), ...clusters.map((c) => c.name), ...pausedRows.map((r) => r.key as string)]);
  const oldest = new Map(waits.map((w) => [w.key, w.oldest]));
  const shown = [...names].sort().slice(0, ROW_CAP);
  // Whether each shown key is paused, asked of it: the database may order keys unlike the sort above.
  const pausedShown = await em.execute('select key, at from ormq_paused_key where key in (select jsonb_array_elements_text(?::jsonb))', [JSON.stringify(shown)]);
  const paused = new Map(pausedShown.map((r) => [r.key as string, new Date(r.at as string).toISOString()]));
  const counts = new Map((await em.execute(COUNTS, [JSON.stringify(shown.filter((k) => oldest.has(k)))])).map((r) => [r.key as string, r]));
  const keys = [];
  for (const key of shown) {
    const waiting = Number(counts.get(key)?.waiting ?? 0);
    const running = Number(counts.get(key)?.running ?? 0);
    const serving = clusters.filter((x) => x.name === key);
    const live = serving.filter((x) => x.state === 'running').length;
    keys.push({
      key,
      waiting,
      running,
      /** true when the counts stopped at COUNT_CAP. */
      capped: waiting + running > COUNT_CAP,
      oldestWaiting: oldest.get(key) ?? null,
      clusters: serving.map((x) => ({ id: x.id, host: x.host, pid: x.pid, state: x.state })),
      live,
      paused: paused.has(key),
      pausedAt: paused.get(key) ?? null,
      flagged: waiting > 0 && live === 0 && !paused.has(key),
    });
  }
  return {
    now: new Date(now).toISOString(),
    clusters,
    keys,
    truncated: rows.length > ROW_CAP || waits.length > ROW_CAP || pausedRows.length > ROW_CAP || names.size > ROW_CAP,
  };
}

function keyOf(body: unknown): string {
  if (!isPlainObject(body)) throw badRequest('Body must be { key: "…" }', { body: 'must be an object' });
  return checkKey(body.key);
}

function pausing(pause: boolean): Route {
  return {
    method: 'POST',
    access: { page: 'clusters', action: pause ? 'pause' : 'resume' },
    async run(ctx, { body }) {
      const key = keyOf(body);
      const actor = await ctx.actor();
      const changed = await ctx.em.transactional(async (em) => {
        const tx = em as SqlEntityManager;
        const done = pause ? await pauseKey(tx, key) : await resumeKey(tx, key);
        if (done) {
          await writeLog(tx, actor, [
            { action: pause ? 'pause' : 'resume', page: 'clusters', objectId: key.slice(0, 64), summary: `${pause ? 'Paused' : 'Resumed'} queue key ${JSON.stringify(key)}` },
          ]);
        }
        return done;
      });
      return { status: 200, body: { key, paused: pause, changed } };
    },
  };
}

/** `{ cluster, package }`: asks the process running that package to stop it. */
const stop: Route = {
  method: 'POST',
  access: { page: 'clusters', action: 'stop' },
  async run(ctx, { body }) {
    if (!isPlainObject(body)) throw badRequest('Body must be { cluster: "…", package: N }', { body: 'must be an object' });
    const fields: Record<string, string> = {};
    const cluster = typeof body.cluster === 'string' && /^[0-9a-f]{32}$/.test(body.cluster) ? body.cluster : null;
    const pkg = Number.isSafeInteger(body.package) && (body.package as number) > 0 ? (body.package as number) : null;
    if (cluster === null) fields.cluster = 'must be a cluster process id (32 hex digits)';
    if (pkg === null) fields.package = 'must be a queued package id';
    if (cluster === null || pkg === null) throw badRequest(`Invalid stop request: ${Object.entries(fields).map(([f, m]) => `${f} ${m}`).join('; ')}`, fields);
    const actor = await ctx.actor();
    return ctx.em.transactional(async (em) => {
      const tx = em as SqlEntityManager;
      const [row] = await tx.execute(
        `select name, host, pid, ${responding('c')} as alive, t as task
           from ormq_cluster c left join lateral (select t from jsonb_array_elements(c.tasks) t where (t->>'package') = ? limit 1) x on true
          where c.id = ?`,
        [String(pkg), cluster],
      );
      if (!row) throw notFound(`No cluster process ${cluster} (it stopped, or was pruned)`);
      const task = row.task as Row | null;
      if (!task) throw new HttpError(409, `Package ${pkg} is not running in cluster ${JSON.stringify(row.name)} (it may have finished)`);
      if (!row.alive) throw new HttpError(409, `Cluster ${JSON.stringify(row.name)} (${row.host as string} pid ${row.pid as number}) is not responding: it cannot stop the task; release its package on the Queued page`);
      await sendControl(tx, { op: 'stop', cluster, package: pkg });
      await writeLog(tx, actor, [
        {
          action: 'stop',
          page: 'clusters',
          objectId: pkg,
          summary: `Asked cluster ${JSON.stringify(row.name)} (${row.host as string} pid ${row.pid as number}) to stop ${JSON.stringify(task.name)} (package ${pkg})`,
        },
      ]);
      return { status: 202, body: { requested: true, package: pkg, cluster } };
    });
  },
};

/** For the overview: cluster processes by heartbeat. */
async function summary(ctx: RequestContext): Promise<{ running: number; notResponding: number }> {
  const [c] = await ctx.em.execute(`select count(*) filter (where ${responding('c')})::int as live, count(*)::int as n from ormq_cluster c`);
  return { running: Number(c!.live), notResponding: Number(c!.n) - Number(c!.live) };
}

export const clusters: PageModule = {
  id: 'clusters',
  labels: {
    pause: { label: 'Pause', past: 'Paused' },
    resume: { label: 'Resume', past: 'Resumed' },
    stop: { label: 'Stop task', past: 'Asked to stop', danger: true },
  },
  routes: {
    '': { method: 'GET', access: { page: 'clusters', action: 'view' }, run: async (ctx) => ({ status: 200, body: await ctx.read(view) }) },
    'actions/pause': pausing(true),
    'actions/resume': pausing(false),
    'actions/stop': stop,
  },
  overview: summary,
};
