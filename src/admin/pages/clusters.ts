/**
 * Clusters: every cluster process from its heartbeat row, with its running tasks, and every queue
 * key with its backlog, the clusters serving it and whether it is paused. Actions: pause and resume
 * a key (until resumed, or for a while), stop one running task (its cluster aborts the task's
 * signal), and forget a process that stopped answering or release the packages it held.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { checkKey, PAUSE_IN_FORCE, pauseKey, resumeKey, sendControl } from '../../control.js';
import { wakeKeys } from '../../producer.js';
import { MISSED_BEATS, responding } from '../../liveness.js';
import { badRequest, HttpError, isPlainObject, notFound } from '../http.js';
import { writeLog } from '../log.js';
import type { PageModule, RequestContext, Route } from '../page.js';

type Row = Record<string, unknown>;

/** Packages of one key counted before the count says "at least". */
const COUNT_CAP = 10_000;
/** More processes or keys than anyone reads on one page; the rest are left off and said to be. */
const ROW_CAP = 500;

type ClusterState = 'running' | 'stopping' | 'not responding';

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

/**
 * Of each key in $1 (a JSON array): its waiting packages, and its claimed ones by the process that
 * holds each, from one scan of at most COUNT_CAP + 1 of its packages.
 */
const COUNTS = `select k.key, x.locked_by, count(*) filter (where x.lock is null)::int as waiting, count(*) filter (where x.lock is not null)::int as locked
  from jsonb_array_elements_text(?::jsonb) k(key)
  cross join lateral (select lock, locked_by from ormq_queued q where q.key = k.key limit ${COUNT_CAP + 1}) x
  group by k.key, x.locked_by`;

const CLUSTERS = `select id, name, host, pid, state, workers, busy, done, failed, version, tasks, config, beat_ms, started, heartbeat,
    extract(epoch from now() - started) * 1000 as uptime, extract(epoch from heartbeat - started) * 1000 as lived,
    extract(epoch from now() - heartbeat) * 1000 as age
  from ormq_cluster order by name, started desc limit ${ROW_CAP + 1}`;

/** The options the processes of one key should agree on: a difference is flagged as drift. */
export const DRIFT_FIELDS = ['saveLimit', 'retry', 'timeout', 'maxAttempts'] as const;
/** What each process shows of its configuration. */
const CONFIG_FIELDS = ['workers', ...DRIFT_FIELDS] as const;

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

type Config = Partial<Record<(typeof CONFIG_FIELDS)[number], number | null>>;

/** The row's config, each field a number or null; null for a process from before config was written. */
function configOf(raw: unknown): Config | null {
  if (!isPlainObject(raw)) return null;
  const out: Config = {};
  for (const f of CONFIG_FIELDS) out[f] = typeof raw[f] === 'number' && Number.isFinite(raw[f]) ? (raw[f] as number) : null;
  return out;
}

function toCluster(r: Row) {
  const age = Math.max(0, Number(r.age));
  const beat = Number(r.beat_ms);
  const dead = age > beat * MISSED_BEATS;
  const state: ClusterState = dead ? 'not responding' : (r.state as ClusterState);
  const tasks = Array.isArray(r.tasks) ? (r.tasks as Row[]) : [];
  return {
    id: String(r.id).trim(),
    name: r.name as string,
    host: r.host as string,
    pid: Number(r.pid),
    state,
    started: new Date(r.started as string).toISOString(),
    heartbeat: new Date(r.heartbeat as string).toISOString(),
    /** A process that stopped answering stopped living at its last beat: its uptime does not climb. */
    uptime: Math.max(0, Math.round(Number(dead ? r.lived : r.uptime))),
    heartbeatAge: Math.round(age),
    heartbeatEvery: beat,
    workers: Number(r.workers),
    busy: Number(r.busy),
    done: Number(r.done),
    failed: Number(r.failed),
    version: r.version as string,
    config: configOf(r.config),
    /** Options this process disagrees on with another live process of its key. */
    drift: [] as string[],
    /** Packages it holds the lock of, counted up to COUNT_CAP per key; a dead process's are stuck. */
    held: 0,
    /** Claimed (held) but not started: what it has in hand beyond its running tasks. */
    claimed: 0,
    // Elapsed as of the last beat plus the row's age, both on the database's clock; a dead
    // process's tasks are what was running at its last beat.
    tasks: tasks.map((t) => ({
      package: Number(t.package),
      taskId: String(t.id ?? ''),
      name: String(t.name ?? ''),
      func: String(t.func ?? ''),
      started: String(t.started ?? ''),
      elapsed: Math.round(Number(t.elapsed) || 0) + (dead ? 0 : Math.round(age)),
    })),
  };
}

type ClusterRow = ReturnType<typeof toCluster>;

/** Per key, the drift fields and the values its live processes disagree on. */
function drifts(clusters: ClusterRow[]): Map<string, Record<string, (number | null)[]>> {
  const out = new Map<string, Record<string, (number | null)[]>>();
  const byKey = new Map<string, ClusterRow[]>();
  for (const c of clusters) if (!dead(c) && c.config) byKey.set(c.name, [...(byKey.get(c.name) ?? []), c]);
  for (const [key, members] of byKey) {
    const differ: Record<string, (number | null)[]> = {};
    for (const f of DRIFT_FIELDS) {
      const values = [...new Set(members.map((c) => c.config![f] ?? null))];
      if (values.length > 1) differ[f] = values.sort((a, b) => (a ?? -Infinity) - (b ?? -Infinity));
    }
    if (Object.keys(differ).length) {
      out.set(key, differ);
      for (const c of members) c.drift = Object.keys(differ);
    }
  }
  return out;
}

const dead = (c: ClusterRow) => c.state === 'not responding';

async function view(ctx: RequestContext) {
  const em = ctx.em;
  const now = await dbNow(em);
  const rows = await em.execute(CLUSTERS);
  // Problems first: processes that stopped answering, then the rest by key.
  const clusters = rows.slice(0, ROW_CAP).map(toCluster).sort((a, b) => Number(dead(b)) - Number(dead(a)));
  const waits = await queuedKeys(em, now);
  // The first keys in order of each source hold the first keys of their union: no source is read past ROW_CAP + 1.
  const pausedRows = await em.execute(`select key from ormq_paused_key where ${PAUSE_IN_FORCE} order by key limit ${ROW_CAP + 1}`);
  const names = new Set([...waits.map((w) => w.key), ...clusters.map((c) => c.name), ...pausedRows.map((r) => r.key as string)]);
  const oldest = new Map(waits.map((w) => [w.key, w.oldest]));
  const shown = [...names].sort().slice(0, ROW_CAP);
  // Whether each shown key is paused, asked of it: the database may order keys unlike the sort above.
  // Who paused it: as pauseKey was told, else the admin log's last pause of the key.
  const pausedShown = await em.execute(
    `select p.key, p.at, p.until, coalesce(p.paused_by, l.actor) as paused_by from ormq_paused_key p
       left join lateral (select actor from ormq_admin_log where page = 'clusters' and action = 'pause' and object_id = left(p.key, 64) order by id desc limit 1) l on true
      where p.key in (select jsonb_array_elements_text(?::jsonb)) and ${PAUSE_IN_FORCE}`,
    [JSON.stringify(shown)],
  );
  const paused = new Map(pausedShown.map((r) => [r.key as string, r]));
  const byId = new Map(clusters.map((c) => [c.id, c]));
  const counts = new Map<string, { waiting: number; locked: number; running: number; stuck: number; scanned: number }>();
  for (const r of await em.execute(COUNTS, [JSON.stringify(shown.filter((k) => oldest.has(k)))])) {
    const key = r.key as string;
    const c = counts.get(key) ?? { waiting: 0, locked: 0, running: 0, stuck: 0, scanned: 0 };
    counts.set(key, c);
    const locked = Number(r.locked);
    c.waiting += Number(r.waiting);
    c.locked += locked;
    c.scanned += Number(r.waiting) + locked;
    const holder = r.locked_by === null ? undefined : byId.get(String(r.locked_by).trim());
    if (holder) holder.held += locked;
    // Held by a process that stopped answering, or whose row is gone: nothing runs it.
    if (r.locked_by !== null && (!holder || dead(holder))) c.stuck += locked;
  }
  for (const c of clusters) {
    c.claimed = dead(c) ? 0 : Math.max(0, c.held - c.tasks.length);
    // Tasks running now: those of its live processes, as their last beat listed them.
    if (!dead(c)) {
      const k = counts.get(c.name) ?? { waiting: 0, locked: 0, running: 0, stuck: 0, scanned: 0 };
      k.running += c.tasks.length;
      counts.set(c.name, k);
    }
  }
  const drift = drifts(clusters);
  const keys = shown.map((key) => {
    const c = counts.get(key);
    const waiting = c?.waiting ?? 0;
    const running = c?.running ?? 0;
    const stuck = c?.stuck ?? 0;
    const serving = clusters.filter((x) => x.name === key);
    const live = serving.filter((x) => x.state === 'running').length;
    const p = paused.get(key);
    return {
      key,
      waiting,
      /** Tasks running now in its live processes. */
      running,
      /** Claimed by a live process, not started yet. */
      claimed: Math.max(0, (c?.locked ?? 0) - stuck - running),
      /** Locked by a process that stopped answering. */
      stuck,
      /** true when the counts stopped at COUNT_CAP. */
      capped: (c?.scanned ?? 0) > COUNT_CAP,
      oldestWaiting: oldest.get(key) ?? null,
      clusters: serving.map((x) => ({ id: x.id, host: x.host, pid: x.pid, state: x.state })),
      live,
      paused: !!p,
      pausedAt: p ? new Date(p.at as string).toISOString() : null,
      pausedUntil: p?.until ? new Date(p.until as string).toISOString() : null,
      pausedBy: (p?.paused_by as string | null | undefined) ?? null,
      drift: drift.get(key) ?? null,
      flagged: waiting > 0 && live === 0 && !p,
    };
  });
  // Problems first: keys with waiting work and no live cluster, stuck packages or drift.
  const trouble = (k: (typeof keys)[number]) => Number(k.flagged) + Number(k.stuck > 0) + Number(!!k.drift);
  keys.sort((a, b) => trouble(b) - trouble(a) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
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

/** "15 min", "1 h", "90 s": a pause's length as the log says it. */
function lasting(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function pausing(pause: boolean): Route {
  return {
    method: 'POST',
    access: { page: 'clusters', action: pause ? 'pause' : 'resume' },
    async run(ctx, { body }) {
      const key = keyOf(body);
      // `for`: seconds until the pause ends by itself; absent or null: until resumed.
      const seconds = pause && isPlainObject(body) && body.for !== undefined && body.for !== null ? body.for : undefined;
      const actor = await ctx.actor();
      const changed = await ctx.em.transactional(async (em) => {
        const tx = em as SqlEntityManager;
        const done = pause ? await pauseKey(tx, key, { for: seconds as number | undefined, by: actor }) : await resumeKey(tx, key);
        if (done) {
          const how = pause ? `Paused queue key ${JSON.stringify(key)}${seconds === undefined ? ' until resumed' : ` for ${lasting(seconds as number)}`}` : `Resumed queue key ${JSON.stringify(key)}`;
          await writeLog(tx, actor, [{ action: pause ? 'pause' : 'resume', page: 'clusters', objectId: key.slice(0, 64), summary: how }]);
        }
        return done;
      });
      return { status: 200, body: { key, paused: pause, changed } };
    },
  };
}

const CLUSTER_ID = /^[0-9a-f]{32}$/;

function clusterOf(body: unknown, what: string): string {
  if (!isPlainObject(body)) throw badRequest(`Body must be { cluster: "…" } to ${what}`, { body: 'must be an object' });
  if (typeof body.cluster !== 'string' || !CLUSTER_ID.test(body.cluster)) {
    throw badRequest('Invalid cluster: must be a cluster process id (32 hex digits)', { cluster: 'must be a cluster process id (32 hex digits)' });
  }
  return body.cluster;
}

const who = (r: Row) => `${JSON.stringify(r.name)} (${r.host as string} pid ${r.pid as number})`;

/** The row of a process that stopped answering, locked for the change; 404 when gone, 409 while it answers. */
async function deadProcess(tx: SqlEntityManager, id: string, what: string): Promise<Row> {
  const [row] = await tx.execute(`select name, host, pid, ${responding('c')} as alive from ormq_cluster c where id = ? for update`, [id]);
  if (!row) throw notFound(`No cluster process ${id} (it stopped, or was forgotten)`);
  if (row.alive) throw new HttpError(409, `Cluster ${who(row)} is responding: stop the process itself rather than ${what} it`);
  return row;
}

/** `{ cluster }`: removes the row of a process that stopped answering (the packages it held stay locked until released). */
const forget: Route = {
  method: 'POST',
  access: { page: 'clusters', action: 'forget' },
  async run(ctx, { body }) {
    const id = clusterOf(body, 'forget');
    const actor = await ctx.actor();
    return ctx.em.transactional(async (em) => {
      const tx = em as SqlEntityManager;
      const row = await deadProcess(tx, id, 'forget');
      await tx.execute('delete from ormq_cluster where id = ?', [id]);
      await writeLog(tx, actor, [{ action: 'forget', page: 'clusters', objectId: id, summary: `Forgot cluster process ${who(row)}, which had stopped answering` }]);
      return { status: 200, body: { forgotten: true, cluster: id } };
    });
  },
};

/** `{ cluster }`: releases the packages a process that stopped answering held, so live clusters of its key claim them now. */
const release: Route = {
  method: 'POST',
  access: { page: 'clusters', action: 'release' },
  async run(ctx, { body }) {
    const id = clusterOf(body, 'release the packages of');
    const actor = await ctx.actor();
    return ctx.em.transactional(async (em) => {
      const tx = em as SqlEntityManager;
      const row = await deadProcess(tx, id, 'release the packages of');
      // Its packages are of its key: the claim index finds them without reading the rest of the queue.
      const freed = await tx.execute('update ormq_queued set lock = null where key = ? and locked_by = ? and lock is not null returning id', [row.name, id]);
      if (freed.length) {
        await wakeKeys(tx, [row.name]);
        await writeLog(tx, actor, [{ action: 'release', page: 'clusters', objectId: id, summary: `Released ${freed.length} package${freed.length === 1 ? '' : 's'} held by cluster process ${who(row)}` }]);
      }
      return { status: 200, body: { released: freed.length, cluster: id } };
    });
  },
};

/**
 * `{ cluster, package }`: asks the process running that package to stop it. The claim is checked as
 * it is now, not as the last heartbeat saw it: a package already gone finished before the stop
 * arrived (200, nothing asked); one the process no longer holds is a 409.
 */
const stop: Route = {
  method: 'POST',
  access: { page: 'clusters', action: 'stop' },
  async run(ctx, { body }) {
    if (!isPlainObject(body)) throw badRequest('Body must be { cluster: "…", package: N }', { body: 'must be an object' });
    const fields: Record<string, string> = {};
    const cluster = typeof body.cluster === 'string' && CLUSTER_ID.test(body.cluster) ? body.cluster : null;
    const pkg = Number.isSafeInteger(body.package) && (body.package as number) > 0 ? (body.package as number) : null;
    if (cluster === null) fields.cluster = 'must be a cluster process id (32 hex digits)';
    if (pkg === null) fields.package = 'must be a queued package id';
    if (cluster === null || pkg === null) throw badRequest(`Invalid stop request: ${Object.entries(fields).map(([f, m]) => `${f} ${m}`).join('; ')}`, fields);
    const actor = await ctx.actor();
    return ctx.em.transactional(async (em) => {
      const tx = em as SqlEntityManager;
      const [row] = await tx.execute(`select name, host, pid, ${responding('c')} as alive from ormq_cluster c where c.id = ?`, [cluster]);
      if (!row) throw notFound(`No cluster process ${cluster} (it stopped, or was pruned)`);
      const [held] = await tx.execute(
        `select lock is not null and locked_by = ? as mine, left(payload->>'name', 100) as name, payload->>'id' as task_id from ormq_queued where id = ?`,
        [cluster, pkg],
      );
      if (!held) return { status: 200, body: { requested: false, finished: true, package: pkg, cluster, message: `Package ${pkg} finished before the stop arrived` } };
      if (!held.mine) throw new HttpError(409, `Package ${pkg} is no longer held by cluster ${who(row)}: it was released, or another process claimed it`);
      if (!row.alive) throw new HttpError(409, `Cluster ${who(row)} is not responding: it cannot stop the task; release its packages instead`);
      await sendControl(tx, { op: 'stop', cluster, package: pkg, ...(actor ? { by: actor.slice(0, 150) } : {}) });
      const name = JSON.stringify(held.name ?? held.task_id ?? pkg);
      await writeLog(tx, actor, [
        // Under the task's id: the stop shows in the history of the task it failed.
        { action: 'stop', page: 'clusters', objectId: typeof held.task_id === 'string' ? held.task_id.slice(0, 64) : pkg, summary: `Asked cluster ${who(row)} to stop ${name} (package ${pkg})` },
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
    forget: { label: 'Forget', past: 'Forgot', danger: true },
    release: { label: 'Release its packages', past: 'Released' },
  },
  routes: {
    '': { method: 'GET', access: { page: 'clusters', action: 'view' }, run: async (ctx) => ({ status: 200, body: await ctx.read(view) }) },
    'actions/pause': pausing(true),
    'actions/resume': pausing(false),
    'actions/stop': stop,
    'actions/forget': forget,
    'actions/release': release,
  },
  overview: summary,
};
