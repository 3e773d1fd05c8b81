/**
 * Clusters: every cluster process from its heartbeat row, with its running tasks, and every queue
 * key with its backlog, the clusters serving it and whether it is paused. Its actions are in
 * cluster-actions.ts.
 */
import { limitRoutes } from './limits.js';
import { db } from '../../db/run.js';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { PAUSE_IN_FORCE } from '../../control.js';
import { MISSED_BEATS, responding } from '../../liveness.js';
import { isPlainObject } from '../http.js';
import { DRIFT_FIELDS, queuedKeys, ROW_CAP } from '../keys.js';
import { viewRoute, type PageModule, type RequestContext } from '../page.js';
import { forget, pausing, release, stop } from './cluster-actions.js';

type Row = Record<string, unknown>;

/** Packages of one key counted before the count says "at least". */
const COUNT_CAP = 10_000;

type ClusterState = 'running' | 'stopping' | 'not responding';

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

/** What each process shows of its configuration. */
const CONFIG_FIELDS = ['workers', ...DRIFT_FIELDS] as const;

async function dbNow(em: SqlEntityManager): Promise<number> {
  const [r] = await db(em).query('select extract(epoch from now()) * 1000 as ms');
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
  const rows = await db(em).query(CLUSTERS);
  // Problems first: processes that stopped answering, then the rest by key.
  const clusters = rows
    .slice(0, ROW_CAP)
    .map(toCluster)
    .sort((a, b) => Number(dead(b)) - Number(dead(a)));
  const waits = await queuedKeys(em, now);
  // The first keys in order of each source hold the first keys of their union: no source is read past ROW_CAP + 1.
  const pausedRows = await db(em).query(`select key from ormq_paused_key where ${PAUSE_IN_FORCE} order by key limit ${ROW_CAP + 1}`);
  const names = new Set([...waits.map((w) => w.key), ...clusters.map((c) => c.name), ...pausedRows.map((r) => r.key as string)]);
  const oldest = new Map(waits.map((w) => [w.key, w.oldest]));
  const shown = [...names].sort().slice(0, ROW_CAP);
  // Whether each shown key is paused, asked of it: the database may order keys unlike the sort above.
  // Who paused it: as pauseKey was told, else the admin log's last pause of the key.
  const pausedShown = await db(em).query(
    `select p.key, p.at, p.until, coalesce(p.paused_by, l.actor) as paused_by from ormq_paused_key p
       left join lateral (select actor from ormq_admin_log where page = 'clusters' and action = 'pause' and object_id = left(p.key, 64) order by id desc limit 1) l on true
      where p.key in (select jsonb_array_elements_text(?::jsonb)) and ${PAUSE_IN_FORCE}`,
    [JSON.stringify(shown)],
  );
  const paused = new Map(pausedShown.map((r) => [r.key as string, r]));
  const byId = new Map(clusters.map((c) => [c.id, c]));
  const counts = new Map<string, { waiting: number; locked: number; running: number; stuck: number; scanned: number }>();
  for (const r of await db(em).query(COUNTS, [JSON.stringify(shown.filter((k) => oldest.has(k)))])) {
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

/** For the overview: cluster processes by heartbeat. */
async function summary(ctx: RequestContext): Promise<{ running: number; notResponding: number }> {
  const [c] = await db(ctx.em).query(
    `select count(*) filter (where ${responding('c')})::int as live, count(*)::int as n from ormq_cluster c`,
  );
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
    limits: { label: 'Set limit', past: 'Set limit' },
  },
  routes: {
    '': viewRoute('clusters', () => null, view),
    'actions/pause': pausing(true),
    'actions/resume': pausing(false),
    'actions/stop': stop,
    'actions/forget': forget,
    'actions/release': release,
    ...limitRoutes,
  },
  overview: summary,
};
