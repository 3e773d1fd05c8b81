import type { MikroORM } from '@mikro-orm/core';
import type { ScheduleRecord } from '../rows.js';
import { SCHEMA_VERSION, versionOf } from '../schema.js';
import { schemaOf } from '../table-names.js';
import { Workers } from './workers.js';
import { Claimer } from './claim.js';
import { Heartbeat } from './heartbeat.js';
import { VERSION } from '../version.js';
import type { Listener } from '../db/listener.js';
import { resolveClusterOptions, type ClusterOptions, type ResolvedOptions } from './options.js';
import { MetricsUpkeep } from './rollup.js';
import { Saver, type Transact } from './saver.js';
import { scheduleLoop } from './scheduler.js';
import { hostPool, inTransaction, poolDb, type Db, type Lending } from '../db/run.js';
import { RELEASE, releaseValues } from './sql.js';
import type { Completion } from './completion.js';
import { listenForCluster, Wake } from './wake.js';

const notStarted = () => Promise.reject(new Error('the cluster has not started'));
const NOT_STARTED: Db = { query: notStarted, queryOne: notStarted, execute: notStarted, all: notStarted };

/** For the start line: the active schedules this cluster runs (a null cluster is the default's). */
/** The version of the tables this cluster works on (see SCHEMA_VERSION). */
const TABLES_VERSION = { name: 'ormq_tables_version', text: "select obj_description('ormq_queued'::regclass, 'pg_class') as comment" };

const SCHEDULES_OF = {
  name: 'ormq_schedules_of',
  text: 'select count(*)::int as n from ormq_schedule where repeats <> 0 and (cluster = $1 or ($2::boolean and cluster is null))',
};

/**
 * A worker pool: claims this cluster's packages, runs registered task functions, saves their
 * results and acks them, and runs the scheduler. Any number of clusters can share one database.
 */
export class Cluster {
  readonly options: ResolvedOptions;
  readonly #orm: MikroORM;
  /** The schema in effect: the option, else the ORM's. */
  readonly #schema: string | null;
  /** The host pool's statements, from start() on. */
  #db: Db = NOT_STARTED;
  #transact: Transact = () => Promise.reject(new Error('the cluster has not started'));
  #listener: Listener | null = null;
  #upkeep: MetricsUpkeep | null = null;
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #worker = new Wake();
  readonly #scheduler = new Wake();
  readonly #heartbeat: Heartbeat;
  readonly #workers: Workers;
  readonly #claimer: Claimer;
  readonly #saver: Saver;

  constructor(orm: MikroORM, options: ClusterOptions = {}) {
    this.#orm = orm;
    this.options = resolveClusterOptions(options);
    this.#schema = schemaOf(orm, this.options.schema);
    // The pool is known at start(): its parts hold this, which sends through it.
    const db: Db = {
      query: (sql, params) => this.#db.query(sql, params),
      queryOne: (sql, params) => this.#db.queryOne(sql, params),
      execute: (sql, params) => this.#db.execute(sql, params),
      all: (statements) => this.#db.all(statements),
    };
    this.#heartbeat = new Heartbeat({
      name: this.options.name,
      workers: this.options.workers,
      beatMs: Math.round(this.options.heartbeat * 1000),
      stopping: () => !this.#running,
      db,
      warn: (message) => this.options.log('warn', message),
      cancel: (qid, reason) => this.#workers.cancel(qid, reason),
      // Paused: what was claimed but not started goes back at once; resumed: claim now.
      paused: (paused) => (paused ? this.#claimer.paused() : this.#worker.nudge()),
      config: {
        workers: this.options.workers,
        saveLimit: this.options.saveLimit,
        retry: this.options.retry,
        timeout: this.options.timeout,
        maxAttempts: this.options.maxAttempts,
      },
    });
    this.#saver = new Saver(this.options, db, this.#heartbeat.id, (work) => this.#transact(work));
    this.#workers = new Workers({
      cluster: this.options.name,
      tasks: this.options.tasks,
      timeout: this.options.timeout,
      began: (qid, pkg) => this.#heartbeat.began(qid, pkg),
      ended: (qid, success) => this.#heartbeat.ended(qid, success),
      finished: (f) => {
        if (!f.success) this.#failed(f);
        this.#saver.add(f);
        this.#claimer.startBuffered();
        if (this.#claimer.low) this.#worker.nudge();
      },
    });
    this.#claimer = new Claimer({
      options: this.options,
      db,
      workers: this.#workers,
      wake: this.#worker,
      processId: this.#heartbeat.id,
      adopt: (qid, lock) => this.#workers.adopt(qid, lock) || this.#saver.adopt(qid, lock),
      running: () => this.#running,
    });
    // A claim that limits held back looks again once this process's own tasks are acked.
    this.#saver.afterSave = () => this.#claimer.held && this.#worker.nudge();
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
    return this.#workers.busy;
  }

  /** Tasks this process finished since it started: succeeded, and failed (timeouts and stops included). */
  get done(): number {
    return this.#heartbeat.done;
  }

  get failed(): number {
    return this.#heartbeat.failed;
  }

  /** Says so when the tables are older or newer than this ormq's: a statement may fail on them. */
  async #checkTables(): Promise<void> {
    const row = await this.#db.queryOne(TABLES_VERSION).catch(() => undefined);
    const found = versionOf(row?.comment);
    if (found < SCHEMA_VERSION) {
      this.options.log(
        'warn',
        `ormq's tables are at schema version ${found || 'none'}, this ormq expects ${SCHEMA_VERSION}: run ensureSchema(orm), or your migrations, before starting clusters`,
      );
    } else if (found > SCHEMA_VERSION) {
      this.options.log(
        'warn',
        `ormq's tables are at schema version ${found}, newer than this ormq's ${SCHEMA_VERSION}: upgrade ormq in this process`,
      );
    }
  }

  /** One line per failed attempt, at level info: what failed and why, never the args. */
  #failed(f: Completion): void {
    const { error, message } = (f.result ?? {}) as { error?: unknown; message?: unknown };
    const what = f.cancelled ? 'stopped' : error === 'TimeoutError' ? 'timed out' : 'failed';
    const detail = {
      func: f.pkg.func,
      id: f.pkg.id,
      name: f.pkg.name,
      error: String(error ?? 'Error'),
      errorMessage: String(message ?? '').slice(0, 500),
    };
    this.options.log('info', `task ${what}: ${detail.func} ${detail.id} (${detail.name}): ${detail.error}: ${detail.errorMessage}`, detail);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    const connection = this.#orm.em.getConnection();
    const pool = await hostPool(this.#orm.em);
    this.#db = poolDb(pool, this.#schema, this.options.preparedStatements);
    this.#transact = (work) => inTransaction(pool as Lending, this.#schema, this.options.preparedStatements, work);
    this.#running = true;
    this.#listener = await listenForCluster({
      connection,
      override: this.options.listenConnection ?? undefined,
      name: this.name,
      worker: this.#worker,
      scheduler: this.#scheduler,
      control: (payload) => this.#heartbeat.control(payload),
      warn: (message) => this.options.log('warn', message),
    });
    await this.#heartbeat.start();
    this.#loops = [this.#claimer.loop()];
    this.#upkeep = new MetricsUpkeep(this.#db, this.options.metricsRetention, (e) =>
      this.options.log('warn', `metrics upkeep failed: ${e.message}`),
    );
    this.#upkeep.start();
    if (this.options.scheduler) this.#loops.push(this.#scheduleLoop());
    const o = this.options;
    await this.#checkTables();
    let schedules: number | null = null;
    if (o.scheduler) {
      const row = await this.#db.queryOne(SCHEDULES_OF, [o.name, o.name === 'default']).catch(() => undefined);
      schedules = row ? Number(row.n) : null;
    }
    const ran = o.scheduler ? `, ${schedules ?? 'its'} schedules` : ', no scheduler';
    o.log('info', `cluster ${o.name} started: ${o.workers} workers${ran}, ormq ${VERSION}, process ${this.processId}`, {
      key: o.name,
      workers: o.workers,
      schedules,
      version: VERSION,
      process: this.processId,
    });
  }

  /**
   * Graceful stop: no new claims; running tasks get until `stopTimeout` to finish; the locks of
   * packages still running then, and of those claimed but not started, are released so another
   * cluster takes them at once. `{ now: true }` (also during a graceful stop) does not wait: what
   * runs is aborted and released at once.
   */
  stop(options: { now?: boolean } = {}): Promise<void> {
    if (options.now) this.#deadline = 0;
    this.#stopping ??= this.#stop().finally(() => (this.#stopping = undefined));
    return this.#stopping;
  }

  #stopping: Promise<void> | undefined;
  #deadline = Infinity;

  async #stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    void this.#heartbeat.beat();
    this.#worker.nudge();
    this.#scheduler.nudge();
    await Promise.all(this.#loops);
    this.#deadline = Math.min(this.#deadline, Date.now() + this.options.stopTimeout);
    while (this.#workers.busy && Date.now() < this.#deadline) await new Promise((r) => setTimeout(r, 10));
    const unfinished = [...this.#workers.abandon(new Error('cluster stopped')), ...this.#claimer.drain()];
    await this.#saver.flush();
    if (unfinished.length)
      await this.#db
        .execute(RELEASE, releaseValues(unfinished, this.#heartbeat.id))
        .catch((e) => this.options.log('error', 'could not release locks', e));
    await this.#saver.stopPruning();
    await this.#saver.hooksDone(Math.max(0, this.#deadline - Date.now()));
    await this.#heartbeat.stop();
    await Promise.all([this.#listener?.stop(), this.#upkeep?.stop()]);
    this.#deadline = Infinity;
    this.options.log('info', `cluster ${this.name} stopped: ${this.done} succeeded, ${this.failed} failed, ${unfinished.length} released`, {
      key: this.name,
      succeeded: this.done,
      failed: this.failed,
      released: unfinished.length,
    });
  }

  #scheduleLoop(): Promise<void> {
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
    return scheduleLoop(this.#orm, options, this.#scheduler, this.options.poll, (message) => this.options.log('warn', message));
  }
}
