/**
 * A cluster process's row in ormq_cluster: written once per beat in one statement, deleted on a
 * graceful stop. It says what runs where (the admin's Clusters page), and whose lock a queued
 * package holds (ormq_queued.locked_by), so a package locked by a dead process shows as stuck.
 * The same object takes the control messages meant for its cluster (pause, resume, stop a task).
 */
import { hostname } from 'node:os';
import { CancelledError, parseControl } from '../control.js';
import { CONTROL_CHANNEL } from '../db/channels.js';
import { newTaskId } from '../names.js';
import type { TaskPackage } from '../rows.js';
import type { Db } from '../db/run.js';
import { VERSION } from '../version.js';

const HOST = hostname().slice(0, 255);

/**
 * One statement per beat: write this process's row (first beat: insert it), and prune rows of
 * processes that stopped beating a day ago. Timestamps are the database's, like the lock's.
 */
const BEAT = {
  name: 'ormq_heartbeat',
  text: `with pruned as (delete from ormq_cluster where heartbeat < now() - interval '1 day' and id <> $1)
    insert into ormq_cluster as c (id, name, host, pid, started, heartbeat, beat_ms, state, workers, busy, done, failed, version, tasks, config)
    values ($1, $2, $3, $4, now(), now(), $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb)
    on conflict (id) do update set heartbeat = now(), beat_ms = excluded.beat_ms, state = excluded.state,
      busy = excluded.busy, done = excluded.done, failed = excluded.failed, tasks = excluded.tasks`,
};

/**
 * Pauses whose time is up end at the next beat of any process: the row goes, and the key's
 * clusters hear "resume" as if the admin had said it. In the same round trip, the waits of
 * producers that died waiting (ormq_wait rows past their end, which pruning already ignores) go.
 */
const EXPIRE_PAUSES = {
  name: 'ormq_expire_pauses',
  text: `with w as (delete from ormq_wait where until < now()),
    d as (delete from ormq_paused_key where until <= now() returning key)
    select pg_notify($1, json_build_object('op', 'resume', 'key', key)::text) from d`,
};

const GONE = { name: 'ormq_heartbeat_gone', text: 'delete from ormq_cluster where id = $1' };

export interface HeartbeatHost {
  name: string;
  workers: number;
  beatMs: number;
  stopping(): boolean;
  db: Db;
  warn(message: string): void;
  /** Aborts the task running package `qid`; false when none does. */
  cancel(qid: number, reason: Error): boolean;
  /** This cluster's key was paused or resumed. */
  paused(paused: boolean): void;
  /** The options the processes of one key should agree on, shown (and compared) on the Clusters page. */
  config?: Record<string, unknown>;
}

/** A running task as began() saw it; its row in the beat is made only when a beat writes it. */
interface Running {
  pkg: TaskPackage;
  since: number;
}

const text = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max) : '');

export class Heartbeat {
  /** This process's row; a restarted process is a new row. */
  readonly id = newTaskId();
  done = 0;
  failed = 0;
  readonly #running = new Map<number, Running>();
  readonly #cancelled = new Set<number>();
  /** Packages asked to stop while still in the claim's buffer, by package id (bounded). */
  readonly #stopEarly = new Map<number, Error>();
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;

  constructor(private readonly host: HeartbeatHost) {
    // A beat an hour apart would leave a dead process looking alive for three hours.
    if (host.beatMs > 3_600_000) throw new RangeError(`Cluster option heartbeat must be at most 3600 seconds, got ${host.beatMs / 1000}`);
  }

  /** Writes the first row; a database without the table (an older schema) only loses the monitor. */
  async start(): Promise<void> {
    await this.beat();
    this.#timer = setInterval(() => void this.beat(), this.host.beatMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#beating;
    await this.host.db.execute(GONE, [this.id]).catch((e) => this.host.warn(`could not remove the heartbeat row: ${(e as Error).message}`));
  }

  /**
   * Called for every task: it keeps what the next beat needs and formats nothing (a beat is rare, a
   * task is not). Returns the reason when the package was stopped before it started.
   */
  began(qid: number, pkg: TaskPackage): Error | undefined {
    this.#running.set(qid, { pkg, since: Date.now() });
    if (!this.#stopEarly.size) return undefined;
    const early = this.#stopEarly.get(qid);
    if (early) {
      this.#stopEarly.delete(qid);
      this.#cancelled.add(qid);
    }
    return early;
  }

  /** Counts a finished task; true when it ended because it was stopped (its package is then acked). */
  ended(qid: number, success: boolean): boolean {
    this.#running.delete(qid);
    if (success) this.done++;
    else this.failed++;
    return this.#cancelled.delete(qid);
  }

  /** Beats now, unless a beat is under way (then that one is awaited). */
  beat(): Promise<void> {
    this.#beating ??= this.#write().finally(() => (this.#beating = null));
    return this.#beating;
  }

  async #write(): Promise<void> {
    const now = Date.now();
    // Elapsed as of this beat, not the process's clock: the admin adds the row's age on the database's clock.
    const tasks = [...this.#running].map(([qid, { pkg, since }]) => ({
      package: qid,
      id: text(pkg.id, 32),
      name: text(pkg.name, 100),
      func: text(pkg.func, 256),
      started: new Date(since).toISOString(),
      elapsed: now - since,
    }));
    try {
      await this.host.db.execute(BEAT, [
        this.id,
        this.host.name,
        HOST,
        process.pid,
        this.host.beatMs,
        this.host.stopping() ? 'stopping' : 'running',
        this.host.workers,
        this.#running.size,
        this.done,
        this.failed,
        VERSION,
        JSON.stringify(tasks),
        JSON.stringify(this.host.config ?? null),
      ]);
      await this.host.db.execute(EXPIRE_PAUSES, [CONTROL_CHANNEL]);
    } catch (e) {
      this.host.warn(`heartbeat failed: ${(e as Error).message}`);
    }
  }

  /** A message on the control channel: acts on those meant for this process or its key. */
  control(payload: string): void {
    const m = parseControl(payload);
    if (!m) return;
    if (m.op === 'stop') {
      if (m.cluster !== this.id) return;
      const reason = new CancelledError(m.by, m.code);
      if (!this.#running.has(m.package)) {
        // Claimed but not started yet (waiting in the claim's buffer): stopped as it starts.
        if (this.#stopEarly.size < 1000) this.#stopEarly.set(m.package, reason);
        return;
      }
      this.#cancelled.add(m.package);
      if (!this.host.cancel(m.package, reason)) this.#cancelled.delete(m.package);
      return;
    }
    if (m.key === this.host.name) this.host.paused(m.op === 'pause');
  }
}
