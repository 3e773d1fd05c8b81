import type { MikroORM } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { CONTROL_CHANNEL } from '../control.js';
import { QUEUE_CHANNEL, SCHEDULE_CHANNEL } from '../producer.js';
import { packageOf, type StoredPackage, type TaskPackage, type TaskRecord, type ScheduleRecord } from '../rows.js';
import { isStorableJson, UNSTORABLE_MESSAGE } from '../storable.js';
import { assertTimeZone } from '../time.js';
import { DEFAULT_MAX_CATCH_UP } from '../schedule-rules.js';
import { errorResult, preciseNow, TaskTimeout, withTimeout } from './attempt.js';
import { Heartbeat } from './heartbeat.js';
import { Listener, listenConfig, type ListenConnection } from './listener.js';
import { nextDue, runDueSchedules } from './scheduler.js';
import { MetricsUpkeep } from './rollup.js';
import { checkSchema, qualify, schemaOf } from '../table-names.js';
import { CLAIM, COMPLETE, completeValues, NEXT_EXPIRY, pruneStatement, RELEASE, type Completion, type Queryable } from './sql.js';

/** What a task function sees as `this`. */
export interface TaskContext {
  id: string;
  name: string;
  cluster: string;
  /** Aborted when the task runs past its timeout, is stopped from the admin, or the cluster stops past its deadline. */
  signal: AbortSignal;
}

// Task functions take any arguments; the registry cannot know their types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskFunction = (this: TaskContext, ...args: any[]) => unknown;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ClusterOptions {
  /** Cluster name = the queue key it claims, and `cluster` on saved tasks. Default 'default'. */
  name?: string;
  /** Tasks run at once. Default 4. */
  workers?: number;
  /** Seconds a task may run before it fails with a timeout. Default 60. */
  timeout?: number;
  /** Seconds after which a claimed package's lock expires and it can be claimed again. Must exceed timeout. Default 90. */
  retry?: number;
  /** Failed attempts after which a package is acked anyway; 0 = unlimited. Default 0. */
  maxAttempts?: number;
  /** Ack failed packages at once instead of retrying them after `retry`. Default false. */
  ackFailures?: boolean;
  /** 0 keeps every success, -1 keeps none, N keeps the newest N. Failures are always kept. Default 250. */
  saveLimit?: number;
  /** Apply saveLimit per group, name or func instead of over all successes. Default null. */
  saveLimitPer?: 'group' | 'name' | 'func' | null;
  /** A schedule that missed several runs runs once per missed slot (true) or once (false). Default true. */
  catchUp?: boolean;
  /** With catchUp: a schedule runs at most its this many most recent missed slots; older ones are skipped. Default 100. */
  maxCatchUp?: number;
  /** Seconds between writes of this process's row in ormq_cluster; three missed beats = not responding. Default 5. */
  heartbeat?: number;
  /** ms between claims when no notification arrives. Default 1000. */
  poll?: number;
  /** Packages claimed per round trip. Default 10. */
  bulk?: number;
  /** IANA zone whose wall clock the calendar schedule types keep. Default 'UTC'. */
  timeZone?: string;
  /** The registry: task and hook names → functions. Nothing else can run. */
  tasks?: Record<string, TaskFunction>;
  /** Run the scheduler in this cluster. Default true. */
  scheduler?: boolean;
  /** ms a graceful stop waits for running tasks. Default: the timeout. */
  stopTimeout?: number;
  /** Record every attempt in the metrics rollups (the overview's chart, the Metrics page). Default true. */
  metrics?: boolean;
  /** Days hour rollups are kept. Default 90. */
  metricsRetention?: number;
  /** Where the cluster reports problems (broken schedules, throwing hooks, lost connections). Default console. */
  log?: (level: LogLevel, message: string, detail?: unknown) => void;
  /**
   * false: send the hot-path statements unnamed, for a pooler in transaction mode (PgBouncer) that
   * cannot keep named prepared statements across transactions. Default true.
   */
  preparedStatements?: boolean;
  /** The schema of ormq's tables; default the ORM's `schema` option (none: the search_path's). */
  schema?: string | null;
  /** Open the LISTEN connection here (a URL or pg config) instead of with the ORM's settings: a direct connection past a pooler. */
  listenConnection?: ListenConnection | null;
}

type Resolved = Required<Omit<ClusterOptions, 'saveLimitPer' | 'log' | 'stopTimeout' | 'listenConnection' | 'schema'>> &
  Pick<ClusterOptions, 'saveLimitPer' | 'listenConnection' | 'schema'> & { stopTimeout: number; log: NonNullable<ClusterOptions['log']> };

/** started and stopped carry microseconds, so tasks finishing within one millisecond keep their order. */
type Finished = Completion;

function defaultLog(level: LogLevel, message: string, detail?: unknown): void {
  if (level === 'warn' || level === 'error') console[level](`[ormq] ${message}`, detail ?? '');
}

function whole(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`Cluster option ${name} must be a whole number ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The row stores whole ms: a beat under one would be 0 ms, and a process that beats would look dead. */
function beat(value: unknown): number {
  const seconds = positive('heartbeat', value);
  if (seconds < 0.001) throw new RangeError(`Cluster option heartbeat must be at least 0.001 seconds, got ${seconds}`);
  return seconds;
}

/** Whole days, as the upkeep's make_interval(days => …) takes them, within a timestamp's range. */
function retention(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 36_500) {
    throw new RangeError(`Cluster option metricsRetention must be a whole number of days from 1 to 36500, got ${JSON.stringify(value)}`);
  }
  return value;
}

function flag(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new RangeError(`Cluster option ${name} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`Cluster option ${name} must be a number > 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function resolveClusterOptions(o: ClusterOptions): Resolved {
  const name = o.name ?? 'default';
  if (typeof name !== 'string' || name.trim() === '' || name.length > 100) {
    throw new RangeError('Cluster option name must be a non-empty string of at most 100 characters');
  }
  const timeout = positive('timeout', o.timeout ?? 60);
  const retry = positive('retry', o.retry ?? Math.max(90, timeout * 1.5));
  if (retry <= timeout) {
    throw new RangeError(`Cluster option retry (${retry}s) must exceed timeout (${timeout}s): a running task's lock would expire and it would run twice`);
  }
  const saveLimit = o.saveLimit ?? 250;
  if (!Number.isInteger(saveLimit) || saveLimit < -1) throw new RangeError('Cluster option saveLimit must be -1, 0 or a positive whole number');
  if (o.saveLimitPer != null && !['group', 'name', 'func'].includes(o.saveLimitPer)) {
    throw new RangeError("Cluster option saveLimitPer must be 'group', 'name', 'func' or null");
  }
  const timeZone = o.timeZone ?? 'UTC';
  assertTimeZone(timeZone);
  const tasks = o.tasks ?? {};
  for (const [key, fn] of Object.entries(tasks)) {
    if (typeof fn !== 'function') throw new TypeError(`Cluster option tasks.${key} must be a function`);
  }
  return {
    name,
    workers: whole('workers', o.workers ?? 4, 1),
    timeout,
    retry,
    maxAttempts: whole('maxAttempts', o.maxAttempts ?? 0, 0),
    ackFailures: o.ackFailures ?? false,
    saveLimit,
    saveLimitPer: o.saveLimitPer ?? null,
    catchUp: o.catchUp ?? true,
    maxCatchUp: whole('maxCatchUp', o.maxCatchUp ?? DEFAULT_MAX_CATCH_UP, 1),
    heartbeat: beat(o.heartbeat ?? 5),
    poll: positive('poll', o.poll ?? 1000),
    bulk: whole('bulk', o.bulk ?? 10, 1),
    timeZone,
    tasks,
    scheduler: o.scheduler ?? true,
    stopTimeout: o.stopTimeout ?? timeout * 1000,
    log: o.log ?? defaultLog,
    metrics: flag('metrics', o.metrics ?? true),
    metricsRetention: retention(o.metricsRetention ?? 90),
    preparedStatements: o.preparedStatements ?? true,
    listenConnection: o.listenConnection ?? null,
    schema: checkSchema(o.schema, 'Cluster option schema'),
  };
}

/**
 * A worker pool: claims this cluster's packages, runs registered task functions, saves their
 * results and acks them, and runs the scheduler. Any number of clusters can share one database.
 */
export class Cluster {
  readonly options: Resolved;
  readonly #orm: MikroORM;
  #pool: Queryable | null = null;
  #listener: Listener | null = null;
  #upkeep: MetricsUpkeep | null = null;
  #running = false;
  #loops: Promise<void>[] = [];
  /** package id → abort controller of the task running it */
  readonly #active = new Map<number, AbortController>();
  /**
   * package id → a function that timed out but has not returned yet. Its failure is saved and its
   * worker slot freed, yet it may still be working; a retry of the same package waits for it.
   */
  readonly #overrunning = new Map<number, Promise<unknown>>();
  /** Claimed packages waiting for a free worker. */
  #buffer: { qid: number; pkg: StoredPackage; claimed: number }[] = [];
  #pending: Finished[] = [];
  /** Hooks still running: they never hold up saving, and a stop waits for them up to its deadline. */
  readonly #hooks = new Set<Promise<void>>();
  #flushing: Promise<void> | null = null;
  #wakeWorker: (() => void) | null = null;
  #wakeScheduler: (() => void) | null = null;
  #workerNudged = false;
  #schedulerNudged = false;
  /** Pauses of this key heard so far: a claim under way when one arrives hands back what it returns. */
  #pauses = 0;
  readonly #heartbeat: Heartbeat;

  /** The schema in effect: the option, else the ORM's. */
  readonly #schema: string | null;

  constructor(orm: MikroORM, options: ClusterOptions = {}) {
    this.#orm = orm;
    this.options = resolveClusterOptions(options);
    this.#schema = schemaOf(orm, this.options.schema);
    this.#heartbeat = new Heartbeat({
      name: this.options.name,
      workers: this.options.workers,
      beatMs: Math.round(this.options.heartbeat * 1000),
      stopping: () => !this.#running,
      query: (statement, values) => this.#query(statement, values),
      warn: (message) => this.options.log('warn', message),
      cancel: (qid, reason) => {
        this.#active.get(qid)?.abort(reason);
        return this.#active.has(qid);
      },
      // Paused: what was claimed but not started goes back at once; resumed: claim now.
      paused: (paused) => {
        if (!paused) return this.#nudgeWorker();
        this.#pauses++;
        this.#release(this.#buffer.splice(0).map((b) => b.qid));
      },
    });
  }

  /** This process's row in ormq_cluster (a restart is a new one). */
  get processId(): string {
    return this.#heartbeat.id;
  }

  get name(): string {
    return this.options.name;
  }

  /** Tasks running right now. */
  get busy(): number {
    return this.#active.size;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    const connection = this.#orm.em.getConnection();
    this.#pool = (await connection.getNativeClient()) as unknown as Queryable;
    this.#running = true;
    this.#listener = new Listener({
      connection: await listenConfig(connection, this.options.listenConnection ?? undefined),
      channels: [QUEUE_CHANNEL, SCHEDULE_CHANNEL, CONTROL_CHANNEL],
      onNotify: (channel, payload) => {
        if (channel === QUEUE_CHANNEL && payload === this.name) this.#nudgeWorker();
        if (channel === SCHEDULE_CHANNEL) this.#nudgeScheduler();
        if (channel === CONTROL_CHANNEL) this.#heartbeat.control(payload);
      },
      onConnect: () => {
        this.#nudgeWorker();
        this.#nudgeScheduler();
      },
      onError: (err) => this.options.log('warn', `LISTEN connection lost, reconnecting: ${err.message}`),
    });
    await this.#listener.start();
    await this.#heartbeat.start();
    this.#loops = [this.#workLoop()];
    // Through #query, like every statement of the cluster: the host's schema, named or not.
    const upkeepPool: Queryable = { query: (c) => this.#query({ name: c.name ?? 'ormq_upkeep', text: c.text }, c.values ?? []) };
    this.#upkeep = new MetricsUpkeep(upkeepPool, this.options.metricsRetention, (e) => this.options.log('warn', `metrics upkeep failed: ${e.message}`));
    this.#upkeep.start();
    if (this.options.scheduler) this.#loops.push(this.#scheduleLoop());
  }

  /**
   * Graceful stop: no new claims; running tasks get until the deadline to finish; the locks of
   * packages still running then are released so another cluster takes them at once.
   */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    void this.#heartbeat.beat();
    this.#nudgeWorker();
    this.#nudgeScheduler();
    await Promise.all(this.#loops);
    const deadline = Date.now() + this.options.stopTimeout;
    while (this.#active.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const unfinished = [...this.#active.keys(), ...this.#buffer.map((b) => b.qid)];
    this.#buffer = [];
    for (const controller of this.#active.values()) controller.abort(new Error('cluster stopped'));
    this.#active.clear();
    await this.#flush();
    if (unfinished.length) await this.#query(RELEASE, [unfinished]).catch((e) => this.options.log('error', 'could not release locks', e));
    const left = Math.max(0, deadline - Date.now());
    if (this.#hooks.size) await Promise.race([Promise.all(this.#hooks), new Promise((r) => setTimeout(r, left))]);
    await this.#heartbeat.stop();
    await Promise.all([this.#listener?.stop(), this.#upkeep?.stop()]);
  }

  #nudgeWorker(): void {
    this.#workerNudged = true;
    this.#wakeWorker?.();
  }

  #nudgeScheduler(): void {
    this.#schedulerNudged = true;
    this.#wakeScheduler?.();
  }

  /** Sleeps up to ms, or until nudged. */
  #sleep(which: 'worker' | 'scheduler', ms: number): Promise<void> {
    if (which === 'worker' ? this.#workerNudged : this.#schedulerNudged) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      if (which === 'worker') this.#wakeWorker = done;
      else this.#wakeScheduler = done;
    });
  }

  async #query(statement: { name: string; text: string }, values: unknown[]) {
    const text = qualify(statement.text, this.#schema);
    // A named statement is prepared once per connection: its name says which schema it was made for.
    const name = this.#schema ? `${statement.name}:${this.#schema}` : statement.name;
    return this.#pool!.query(this.options.preparedStatements ? { name, text, values } : { text, values });
  }

  /**
   * Claims take up to `bulk` packages at once, more than the free workers when `bulk` is larger:
   * the rest wait here, locked, and start as workers free up. One round trip then feeds many
   * short tasks. A package that waited so long that it could not finish before its lock expires
   * is released rather than started, so a slow backlog never runs twice.
   */
  async #workLoop(): Promise<void> {
    while (this.#running) {
      this.#startBuffered();
      const free = this.options.workers - this.#active.size;
      if (free <= 0) {
        // Full: a notification now needs no memory, since a freed slot always claims next.
        this.#workerNudged = false;
        await this.#sleep('worker', this.options.poll);
        continue;
      }
      this.#workerNudged = false;
      const want = Math.max(free, this.options.bulk);
      let rows: Record<string, unknown>[] = [];
      const pauses = this.#pauses;
      try {
        rows = (await this.#query(CLAIM, [this.name, this.options.retry, want, this.#heartbeat.id])).rows;
      } catch (err) {
        this.options.log('warn', `claim failed: ${(err as Error).message}`);
        await this.#sleep('worker', this.options.poll);
        continue;
      }
      if (this.#pauses !== pauses) {
        // Its snapshot predates the pause; a resume since then nudges a new claim. A package still
        // running past its timeout keeps the lock the claim renewed, as below.
        this.#release(rows.map((r) => Number(r.id)).filter((qid) => !this.#overrunning.has(qid)));
        continue;
      }
      const claimed = Date.now();
      for (const row of rows) {
        const qid = Number(row.id);
        if (this.#overrunning.has(qid)) {
          // The claim renewed its lock: the retry comes after another `retry` seconds.
          this.options.log('warn', `package ${qid} is still running past its timeout; its retry waits until it has ended`);
          continue;
        }
        this.#buffer.push({ qid, pkg: row.payload as StoredPackage, claimed });
      }
      this.#startBuffered();
      if (rows.length < want) await this.#sleep('worker', await this.#idleWait());
    }
  }

  /** How long an idle claim loop sleeps: the poll, or less when a lock of this key expires sooner. */
  async #idleWait(): Promise<number> {
    try {
      const [row] = (await this.#query(NEXT_EXPIRY, [this.name, this.options.retry])).rows;
      const ms = row?.ms === null || row?.ms === undefined ? null : Number(row.ms);
      return ms === null ? this.options.poll : Math.min(this.options.poll, ms + 10);
    } catch {
      return this.options.poll;
    }
  }

  /**
   * A task's own timeout can shorten the cluster's, never lengthen it: past `retry` its lock would
   * expire while it still runs, and another claim would run it a second time.
   */
  #timeoutOf(pkg: StoredPackage): number {
    const own = typeof pkg.timeout === 'number' && pkg.timeout > 0 ? pkg.timeout : Infinity;
    return Math.min(own, this.options.timeout);
  }

  #startBuffered(): void {
    const stale: number[] = [];
    while (this.#running && this.#active.size < this.options.workers && this.#buffer.length) {
      const next = this.#buffer.shift()!;
      // Waiting here plus running to its timeout must end before the lock expires at `retry`.
      const budget = (this.options.retry - this.#timeoutOf(next.pkg)) * 1000;
      if (Date.now() - next.claimed >= budget) stale.push(next.qid);
      else this.#run(next.qid, next.pkg);
    }
    this.#release(stale);
  }

  #release(qids: number[]): void {
    if (!qids.length) return;
    void this.#query(RELEASE, [qids]).catch((e) => this.options.log('warn', `could not release waiting packages: ${(e as Error).message}`));
  }

  #run(qid: number, raw: StoredPackage | string): void {
    const controller = new AbortController();
    this.#active.set(qid, controller);
    const pkg: TaskPackage = packageOf(typeof raw === 'string' ? JSON.parse(raw) : raw);
    const started = preciseNow();
    this.#heartbeat.began(qid, pkg);
    void this.#execute(qid, pkg, controller).then(({ success, result }) => {
      // A package whose task outlived a stop deadline was released; its result no longer counts.
      if (this.#active.get(qid) !== controller) return;
      this.#active.delete(qid);
      const cancelled = this.#heartbeat.ended(qid, success);
      this.#pending.push({ qid, pkg, result, success, started, stopped: preciseNow(), cancelled });
      void this.#flush();
      this.#startBuffered();
      this.#nudgeWorker();
    });
  }

  async #execute(qid: number, pkg: TaskPackage, controller: AbortController): Promise<{ success: boolean; result: unknown }> {
    const fn = Object.hasOwn(this.options.tasks, pkg.func) ? this.options.tasks[pkg.func] : undefined;
    if (!fn) {
      return { success: false, result: errorResult(new Error(`Task function ${JSON.stringify(pkg.func)} is not registered in cluster ${JSON.stringify(this.name)}`)) };
    }
    const args = Array.isArray(pkg.args) ? [...pkg.args] : [];
    if (pkg.kwargs && typeof pkg.kwargs === 'object' && Object.keys(pkg.kwargs).length) args.push(pkg.kwargs);
    const context: TaskContext = { id: pkg.id, name: pkg.name, cluster: this.name, signal: controller.signal };
    const attempt = Promise.resolve().then(() => fn.apply(context, args));
    try {
      const value = await withTimeout(attempt, this.#timeoutOf(pkg), controller);
      const text = JSON.stringify(value === undefined ? null : value);
      if (!isStorableJson(text)) {
        throw new TypeError(`The result ${UNSTORABLE_MESSAGE}`);
      }
      return { success: true, result: JSON.parse(text) };
    } catch (err) {
      if (err instanceof TaskTimeout) {
        // A function cannot be killed: one that ignores its signal runs on after its timeout.
        this.#overrunning.set(qid, attempt);
        const ended = () => {
          if (this.#overrunning.get(qid) === attempt) this.#overrunning.delete(qid);
        };
        attempt.then(ended, ended);
      }
      return { success: false, result: errorResult(err) };
    }
  }

  /** Writes finished tasks in batches: whatever finished while the previous batch was written goes next. */
  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (!this.#pending.length) return Promise.resolve();
    this.#flushing = (async () => {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, 500);
        try {
          await this.#complete(batch);
        } catch (err) {
          if (batch.length === 1) {
            // The package stays locked and runs again once its lock expires: at-least-once.
            this.options.log('error', `could not save task ${batch[0]!.pkg.id}; it will run again after retry`, err);
            continue;
          }
          // One row the database refuses must not hold back the others: save them one by one.
          for (const f of batch) {
            await this.#complete([f]).catch((e) =>
              this.options.log('error', `could not save task ${f.pkg.id}; it will run again after retry`, e),
            );
          }
        }
      }
      this.#flushing = null;
    })();
    return this.#flushing;
  }

  /** Saves, acks and counts one batch in one statement; hooks start once it is written, off the save path. */
  async #complete(batch: Finished[]): Promise<void> {
    const { saveLimit } = this.options;
    const { rows } = await this.#query(COMPLETE, completeValues(batch, this.options));
    const attempts = new Map(rows.map((r) => [String(r.id).trim(), Number(r.attempt_count)]));
    // Saved and acked: from here on nothing runs again, whatever pruning or hooks do.
    const successes = batch.filter((f) => f.success && attempts.has(f.pkg.id));
    if (saveLimit > 0 && successes.length) {
      await this.#prune(successes).catch((e) => this.options.log('warn', `saveLimit pruning failed: ${(e as Error).message}`, e));
    }
    for (const f of batch) {
      if (!f.pkg.hook) continue;
      const running = this.#runHook(f, attempts.get(f.pkg.id) ?? 1).finally(() => this.#hooks.delete(running));
      this.#hooks.add(running);
    }
  }

  async #prune(successes: Finished[]): Promise<void> {
    const per = this.options.saveLimitPer ?? null;
    const limit = this.options.saveLimit;
    if (per === null) {
      await this.#query(pruneStatement(null, false), [limit]);
      return;
    }
    const values = new Set(successes.map((f) => (per === 'group' ? f.pkg.group : per === 'name' ? f.pkg.name : f.pkg.func)));
    const named = [...values].filter((v): v is string => v !== null && v !== undefined);
    if (named.length) await this.#query(pruneStatement(per, false), [limit, named]);
    if (values.has(null)) await this.#query(pruneStatement(per, true), [limit]);
  }

  async #runHook(f: Finished, attemptCount: number): Promise<void> {
    const hook = Object.hasOwn(this.options.tasks, f.pkg.hook!) ? this.options.tasks[f.pkg.hook!] : undefined;
    const task: TaskRecord = {
      id: f.pkg.id,
      name: f.pkg.name,
      func: f.pkg.func,
      hook: f.pkg.hook,
      args: f.pkg.args,
      kwargs: f.pkg.kwargs,
      result: f.result,
      group: f.pkg.group,
      cluster: this.name,
      enqueued: new Date(f.pkg.enqueued),
      started: new Date(f.started),
      stopped: new Date(f.stopped),
      success: f.success,
      attemptCount,
    };
    const controller = new AbortController();
    try {
      if (!hook) throw new Error(`hook ${JSON.stringify(f.pkg.hook)} is not registered`);
      const context: TaskContext = { id: task.id, name: task.name, cluster: this.name, signal: controller.signal };
      await withTimeout(Promise.resolve().then(() => hook.call(context, task)), this.options.timeout, controller);
    } catch (err) {
      this.options.log('error', `hook ${JSON.stringify(f.pkg.hook)} of task ${task.id} failed: ${(err as Error)?.message ?? err}`, err);
    }
  }

  async #scheduleLoop(): Promise<void> {
    const options = {
      cluster: this.name,
      schema: this.#schema,
      isDefault: this.name === 'default',
      timeZone: this.options.timeZone,
      catchUp: this.options.catchUp,
      maxCatchUp: this.options.maxCatchUp,
      stopping: () => !this.#running,
      held: new Map<number, number>(),
      onBroken: (s: ScheduleRecord, err: Error) =>
        this.options.log('error', `schedule ${s.id}${s.name ? ` (${s.name})` : ''} could not run and was skipped: ${err.message}`, err),
    };
    while (this.#running) {
      this.#schedulerNudged = false;
      let wait = 30_000;
      try {
        await runDueSchedules(this.#orm, options);
        const due = await nextDue(this.#orm, options);
        if (due) wait = Math.min(wait, Math.max(0, due.getTime() - Date.now()) + 5);
      } catch (err) {
        this.options.log('warn', `scheduler pass failed: ${(err as Error).message}`);
        wait = this.options.poll;
      }
      if (this.#running) await this.#sleep('scheduler', Math.max(wait, 5));
    }
  }
}

export type { SqlEntityManager };
