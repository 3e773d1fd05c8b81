import { defineEntity, p } from '@mikro-orm/core';
import { SCHEMA_COMMENT } from './schema.js';
import { forEntity, INDEXES, TRIGRAM_INDEXES } from './schema-tables.js';

/**
 * Entity definitions for the host's `entities` list. Every table and column name is explicit, so a
 * host's naming strategy cannot rename them; the DDL that `ensureSchema` runs creates exactly these.
 * If a host runs `orm.schema.update()` without registering them, MikroORM treats ormq's tables as
 * unknown and drops them: register `queueEntities`, or pass `skipTables`, or diff with `{ safe: true }`.
 */

/** Every finished task: successes (`success = true`) and failures (`success = false`). */
export const Task = defineEntity({
  name: 'OrmqTask',
  tableName: 'ormq_task',
  properties: {
    id: p.string().columnType('char(32)').fieldName('id').primary(),
    name: p.string().length(100).fieldName('name'),
    func: p.string().length(256).fieldName('func'),
    hook: p.string().length(256).fieldName('hook').nullable(),
    args: p.json<unknown[]>().fieldName('args').defaultRaw(`'[]'`),
    kwargs: p.json<Record<string, unknown>>().fieldName('kwargs').defaultRaw(`'{}'`),
    result: p.json<unknown>().fieldName('result').nullable(),
    group: p.string().length(100).fieldName('group').nullable(),
    cluster: p.string().length(100).fieldName('cluster').nullable(),
    enqueued: p.datetime().columnType('timestamptz').fieldName('enqueued'),
    started: p.datetime().columnType('timestamptz').fieldName('started'),
    stopped: p.datetime().columnType('timestamptz').fieldName('stopped'),
    success: p.boolean().fieldName('success'),
    attemptCount: p.integer().fieldName('attempt_count').default(1),
    /** The last failed attempts, oldest first: { at, cluster, error, max } (max: the cluster's maxAttempts). */
    attempts: p.json<unknown[]>().fieldName('attempts').defaultRaw(`'[]'`),
    /** A failure's cause as 16 hex digits (src/error-groups.ts); null for a success. */
    errorGroup: p.string().length(16).fieldName('error_group').nullable(),
    /** A chain step's place in its chain: { id, step, steps, ids, stopped? }; null for other tasks. */
    chain: p.json<Record<string, unknown>>().fieldName('chain').nullable(),
  },
  indexes: forEntity([...INDEXES.ormq_task, ...TRIGRAM_INDEXES.ormq_task]),
});

/** Scheduled tasks: the scheduler turns each due row into a queued package. */
export const Schedule = defineEntity({
  name: 'OrmqSchedule',
  tableName: 'ormq_schedule',
  properties: {
    id: p.integer().fieldName('id').primary().autoincrement(),
    name: p.string().length(100).fieldName('name').nullable().unique('ormq_schedule_name_key'),
    func: p.string().length(256).fieldName('func'),
    hook: p.string().length(256).fieldName('hook').nullable(),
    args: p.json<unknown[]>().fieldName('args').defaultRaw(`'[]'`),
    kwargs: p.json<Record<string, unknown>>().fieldName('kwargs').defaultRaw(`'{}'`),
    scheduleType: p.string().length(2).fieldName('schedule_type'),
    minutes: p.smallint().fieldName('minutes').nullable(),
    repeats: p.integer().fieldName('repeats').default(-1),
    nextRun: p.datetime().columnType('timestamptz').fieldName('next_run'),
    cron: p.string().length(100).fieldName('cron').nullable(),
    task: p.string().columnType('char(32)').fieldName('task').nullable(),
    cluster: p.string().length(100).fieldName('cluster').nullable(),
    intendedDateKwarg: p.string().length(100).fieldName('intended_date_kwarg').nullable(),
    /** The instant the series counts from: calendar steps are this wall-clock time plus k periods. Null: the next run. */
    anchor: p.datetime().columnType('timestamptz').fieldName('anchor').nullable(),
    /** IANA zone of the schedule's wall clock; null = the cluster's timeZone. */
    timeZone: p.string().length(64).fieldName('time_zone').nullable(),
    /** The repeats a paused schedule had, restored when it is resumed. */
    pausedRepeats: p.integer().fieldName('paused_repeats').nullable(),
    version: p.integer().fieldName('version').version(),
    /** Each run's maxAttempts; null = the cluster's. */
    maxAttempts: p.integer().fieldName('max_attempts').nullable(),
    /** Each run's retry in seconds; null = the cluster's. */
    retry: p.double().fieldName('retry').nullable(),
    /** Each run's priority (see `EnqueueOptions`). */
    priority: p.integer().fieldName('priority').default(0),
  },
  indexes: forEntity([...INDEXES.ormq_schedule, ...TRIGRAM_INDEXES.ormq_schedule]),
});

/** The ORM broker's queue: one row per task package waiting for (or locked by) a cluster. */
export const Queued = defineEntity({
  name: 'OrmqQueued',
  tableName: 'ormq_queued',
  // The schema's version: see SCHEMA_VERSION.
  comment: SCHEMA_COMMENT,
  properties: {
    id: p.bigint('number').fieldName('id').primary().autoincrement(),
    key: p.string().length(100).fieldName('key'),
    payload: p.json<Record<string, unknown>>().fieldName('payload'),
    lock: p.datetime().columnType('timestamptz').fieldName('lock').nullable(),
    /** Not claimed before this time (a delayed task); null: at once. */
    runAt: p.datetime().columnType('timestamptz').fieldName('run_at').nullable(),
    /** The `ormq_cluster` id of the process that claimed it: a lock held by a dead process is stuck. */
    lockedBy: p.string().columnType('char(32)').fieldName('locked_by').nullable(),
    /** A failure's retry or a resubmission: the admin finds it by its task id. */
    linked: p.boolean().fieldName('linked').default(false),
    /** Failed attempts of this package so far: maxAttempts reads it, so deleting saved tasks cannot reset it. */
    failures: p.integer().fieldName('failures').default(0),
    /** Its task id was given by the host: no second package of that id is queued while this one is (ormq_queued_keyed_idx). */
    keyed: p.boolean().fieldName('keyed').default(false),
    /** Higher is claimed first; enqueue order within one priority. */
    priority: p.integer().fieldName('priority').default(0),
    /** Packages sharing it run one at a time, in enqueue order. */
    serial: p.string().length(100).fieldName('serial').nullable(),
  },
  indexes: forEntity(INDEXES.ormq_queued),
});

/** One row per admin action: the history shown on an object's detail page. */
export const AdminLog = defineEntity({
  name: 'OrmqAdminLog',
  tableName: 'ormq_admin_log',
  properties: {
    id: p.bigint('number').fieldName('id').primary().autoincrement(),
    at: p.datetime().columnType('timestamptz').fieldName('at').defaultRaw('now()'),
    actor: p.string().length(150).fieldName('actor').nullable(),
    action: p.string().length(50).fieldName('action'),
    page: p.string().length(20).fieldName('page'),
    objectId: p.string().length(64).fieldName('object_id').nullable(),
    summary: p.text().fieldName('summary'),
  },
  indexes: forEntity(INDEXES.ormq_admin_log),
});

/** One row per running Cluster process, written by its heartbeat and deleted when it stops. */
export const ClusterProcess = defineEntity({
  name: 'OrmqCluster',
  tableName: 'ormq_cluster',
  properties: {
    id: p.string().columnType('char(32)').fieldName('id').primary(),
    name: p.string().length(100).fieldName('name'),
    host: p.string().length(255).fieldName('host'),
    pid: p.integer().fieldName('pid'),
    started: p.datetime().columnType('timestamptz').fieldName('started'),
    heartbeat: p.datetime().columnType('timestamptz').fieldName('heartbeat'),
    beatMs: p.integer().fieldName('beat_ms'),
    state: p.string().length(10).fieldName('state'),
    workers: p.integer().fieldName('workers'),
    busy: p.integer().fieldName('busy'),
    done: p.bigint('number').fieldName('done').defaultRaw('0'),
    failed: p.bigint('number').fieldName('failed').defaultRaw('0'),
    version: p.string().length(50).fieldName('version'),
    tasks: p.json<unknown[]>().fieldName('tasks').defaultRaw(`'[]'`),
    /** The options processes of one key should agree on (workers, saveLimit, retry, timeout, maxAttempts); null from older processes. */
    config: p.json<Record<string, unknown>>().fieldName('config').nullable(),
  },
  indexes: forEntity(INDEXES.ormq_cluster),
});

/** Queue keys whose clusters claim nothing until resumed. */
export const PausedKey = defineEntity({
  name: 'OrmqPausedKey',
  tableName: 'ormq_paused_key',
  properties: {
    key: p.string().length(100).fieldName('key').primary(),
    at: p.datetime().columnType('timestamptz').fieldName('at').defaultRaw('now()'),
    /** The pause ends at this time (the next heartbeat of any cluster resumes the key); null: until resumed. */
    until: p.datetime().columnType('timestamptz').fieldName('until').nullable(),
    /** Who paused it, as the admin log names them. */
    pausedBy: p.string().length(150).fieldName('paused_by').nullable(),
  },
  indexes: forEntity(INDEXES.ormq_paused_key),
});

/**
 * Metrics rollups: per minute (span_minutes 1, kept 48 hours) and per hour (span_minutes 60, kept
 * for the retention), of each cluster process's shard until folded into shard 0, and per 6 hours
 * and per day (360, 1440: folded hours only; src/metric-rows.ts) × key × func × outcome, every attempt's runtime (stopped − started) and wait (started −
 * enqueued) in ms: count, sums, maxima and fixed log-scale histograms (src/histogram.ts) stored
 * as jsonb objects of bucket index → count.
 */
export const Metric = defineEntity({
  name: 'OrmqMetric',
  tableName: 'ormq_metric',
  properties: {
    spanMinutes: p.smallint().fieldName('span_minutes').primary(),
    bucket: p.datetime().columnType('timestamptz').fieldName('bucket').primary(),
    key: p.string().length(100).fieldName('key').primary(),
    func: p.string().length(256).fieldName('func').primary(),
    success: p.boolean().fieldName('success').primary(),
    count: p.bigint('number').fieldName('count'),
    runtimeSum: p.double().fieldName('runtime_sum'),
    runtimeMax: p.double().fieldName('runtime_max'),
    waitSum: p.double().fieldName('wait_sum'),
    waitMax: p.double().fieldName('wait_max'),
    runtimeHist: p.json<Record<string, number>>().fieldName('runtime_hist'),
    waitHist: p.json<Record<string, number>>().fieldName('wait_hist'),
    shard: p.smallint().fieldName('shard').primary().default(0),
  },
  indexes: forEntity(INDEXES.ormq_metric),
});

/**
 * Producers waiting with `result(em, id, { wait })`: one row per waiter, from before its first look
 * until it has read the task (or gave up), so saveLimit pruning leaves that success alone. A row
 * past `until` (its waiter died) counts for nothing and the clusters' heartbeats delete it.
 */
const Wait = defineEntity({
  name: 'OrmqWait',
  tableName: 'ormq_wait',
  properties: {
    id: p.bigint('number').fieldName('id').primary().autoincrement(),
    task: p.string().columnType('char(32)').fieldName('task'),
    until: p.datetime().columnType('timestamptz').fieldName('until'),
  },
  indexes: forEntity(INDEXES.ormq_wait),
});

/** Limits per func (`setLimit`), obeyed by every cluster's claim; see src/schema-order.ts. */
export const FuncLimit = defineEntity({
  name: 'OrmqLimit',
  tableName: 'ormq_limit',
  properties: {
    func: p.string().length(256).fieldName('func').primary(),
    concurrency: p.integer().fieldName('concurrency').nullable(),
    rateCount: p.integer().fieldName('rate_count').nullable(),
    rateSeconds: p.double().fieldName('rate_seconds').nullable(),
    holders: p.json<unknown[]>().fieldName('holders').defaultRaw(`'[]'`),
    starts: p.json<unknown[]>().fieldName('starts').defaultRaw(`'[]'`),
    updated: p.datetime().columnType('timestamptz').fieldName('updated').defaultRaw('now()'),
  },
});

/** An iteration waiting for its runs (`enqueueIter`); deleted when its task is saved. */
export const Iter = defineEntity({
  name: 'OrmqIter',
  tableName: 'ormq_iter',
  properties: {
    id: p.string().columnType('char(32)').fieldName('id').primary(),
    total: p.integer().fieldName('total'),
    remaining: p.integer().fieldName('remaining'),
    task: p.json<Record<string, unknown>>().fieldName('task'),
    created: p.datetime().columnType('timestamptz').fieldName('created').defaultRaw('now()'),
  },
});

/** One run of an iteration with its final outcome, until the iteration's task is saved. */
export const IterResult = defineEntity({
  name: 'OrmqIterResult',
  tableName: 'ormq_iter_result',
  properties: {
    iter: p.string().columnType('char(32)').fieldName('iter').primary(),
    n: p.integer().fieldName('n').primary(),
    success: p.boolean().fieldName('success'),
    result: p.json<unknown>().fieldName('result').nullable(),
    started: p.datetime().columnType('timestamptz').fieldName('started'),
    stopped: p.datetime().columnType('timestamptz').fieldName('stopped'),
  },
});

/** Register these with the host's ORM: `entities: [...own, ...queueEntities]`. */
export const queueEntities = [Task, Schedule, Queued, AdminLog, ClusterProcess, PausedKey, Metric, Wait, Iter, IterResult, FuncLimit];
