/**
 * The claim loop and the local buffer. Claims take up to `bulk` packages at once, more than the
 * free workers when `bulk` is larger: the rest wait here, locked, and start as workers free up. One
 * round trip then feeds many short tasks. A package that waited so long that it could not finish
 * before its lock expires is released rather than started, so a slow backlog never runs twice.
 *
 * Quick tasks would leave the workers idle for every claim's round trip. When the packages of the
 * last claim started so quickly that a whole `bulk` of them starts within a few of its round trips
 * (and within AHEAD_MS), and that claim came back full (more are waiting), the next claim goes out
 * as soon as fewer than `bulk` wait here, while the workers run what is buffered. Slower tasks,
 * for which a round trip is a small part of the time, never claim ahead: what this process holds
 * is then only what it starts next.
 */
import type { StoredPackage } from '../rows.js';
import { timeoutOf } from './attempt.js';
import type { Workers } from './workers.js';
import type { ResolvedOptions } from './options.js';
import type { Db } from '../db/run.js';
import { CLAIM, NEXT_EXPIRY, RELEASE, releaseValues, type Claimed } from './sql.js';
import type { Wake } from './wake.js';

export interface ClaimHost {
  options: Pick<ResolvedOptions, 'name' | 'workers' | 'bulk' | 'retry' | 'timeout' | 'poll' | 'log'>;
  db: Db;
  workers: Workers;
  wake: Wake;
  /** This process's ormq_cluster id, which the claim writes into locked_by. */
  processId: string;
  /**
   * A claim took package `qid` again while this process still runs it or has yet to save its
   * result: that run goes on under the new claim (`lock`) instead of running a second time.
   * False when neither is the case.
   */
  adopt(qid: number, lock: number): boolean;
  running(): boolean;
}

/** Claims go out ahead only while a whole `bulk` starts within this many claim round trips… */
const AHEAD_ROUND_TRIPS = 8;
/** …and within this many ms. */
const AHEAD_MS = 100;

interface Buffered extends Claimed {
  pkg: StoredPackage;
  /** When the claim went out: its lock was set after that, however late its answer was read. */
  sent: number;
  claimed: number;
  /** On a claim's last package when it had to wait for a worker: how many packages start before it. */
  after?: number;
  /** On the same package: the claim's round trip in ms. */
  roundTrip?: number;
}

/**
 * How soon a claim that limits held packages back looks again: a slot frees when a task of the
 * func is acked and a rate's window moves on with the clock, and neither sends a notification.
 */
const HELD_RECHECK_MS = 100;

/**
 * The claimed packages of CLAIM's answer, highest priority first and then oldest (the statement's
 * own order is not kept through its limits), and whether limits held any back (its last row).
 */
function claimedRows(answer: Record<string, unknown>[]): { rows: Record<string, unknown>[]; held: boolean } {
  const rows = answer.filter((r) => r.id !== null);
  rows.sort((a, b) => Number(b.priority) - Number(a.priority) || Number(a.id) - Number(b.id));
  return { rows, held: rows.length < answer.length };
}

export class Claimer {
  /** Claimed packages waiting for a free worker. */
  #buffer: Buffered[] = [];
  /** The last claim came back with all it asked for: more are waiting. */
  #full = false;
  /** The packages of the last claim that had to wait started at a pace of `bulk` within AHEAD_MS. */
  #fast = false;
  /** Pauses of this key heard so far: a claim under way when one arrives hands back what it returns. */
  #pauses = 0;
  /** Limits held back packages at the last claim. */
  held = false;

  constructor(private readonly host: ClaimHost) {}

  async loop(): Promise<void> {
    const { options, workers, wake } = this.host;
    while (this.host.running()) {
      this.startBuffered();
      const free = options.workers - workers.busy;
      const ahead = this.#fast && this.#full && this.#buffer.length < options.bulk;
      if (free <= 0 && !ahead) {
        // Full: a notification now needs no memory, since a freed slot always claims next.
        wake.clear();
        await wake.sleep(options.poll);
        continue;
      }
      wake.clear();
      const want = Math.max(free, options.bulk);
      let rows: Record<string, unknown>[] = [];
      let held = false;
      const pauses = this.#pauses;
      const sent = Date.now();
      try {
        ({ rows, held } = claimedRows(await this.host.db.query(CLAIM, [options.name, options.retry, want, this.host.processId])));
        this.held = held;
      } catch (err) {
        this.#full = false;
        options.log('warn', `claim failed: ${(err as Error).message}`);
        await wake.sleep(options.poll);
        continue;
      }
      this.#full = rows.length >= want;
      if (this.#pauses !== pauses) {
        // Its snapshot predates the pause; a resume since then nudges a new claim. A package still
        // running here keeps the lock the claim renewed, as below.
        const held = rows.map((r) => ({ qid: Number(r.id), lock: Number(r.lock) }));
        this.release(held.filter((p) => !workers.overrunning(p.qid) && !this.host.adopt(p.qid, p.lock)));
        continue;
      }
      const claimed = Date.now();
      for (const row of rows) {
        const qid = Number(row.id);
        const lock = Number(row.lock);
        if (workers.overrunning(qid)) {
          // The claim renewed its lock: the retry comes after another `retry` seconds.
          options.log('warn', `package ${qid} is still running past its timeout; its retry waits until it has ended`);
          continue;
        }
        if (this.host.adopt(qid, lock)) continue;
        this.#buffer.push({ qid, lock, pkg: row.payload as StoredPackage, sent, claimed });
      }
      // Its last package waits for this many starts: that time is the pace of this process's tasks.
      const after = this.#buffer.length - (options.workers - workers.busy);
      if (rows.length && after > 0) Object.assign(this.#buffer[this.#buffer.length - 1]!, { after, roundTrip: claimed - sent });
      this.startBuffered();
      if (rows.length < want) await wake.sleep(held ? Math.min(options.poll, HELD_RECHECK_MS) : await this.#idleWait());
    }
  }

  /** How long an idle claim loop sleeps: the poll, or less when a lock of this key expires sooner. */
  async #idleWait(): Promise<number> {
    const { options } = this.host;
    try {
      const row = await this.host.db.queryOne(NEXT_EXPIRY, [options.name, options.retry]);
      const ms = row?.ms === null || row?.ms === undefined ? null : Number(row.ms);
      return ms === null ? options.poll : Math.min(options.poll, ms + 10);
    } catch {
      return options.poll;
    }
  }

  /**
   * Fewer than `bulk` wait here: the claim loop may have to claim. With more, a freed worker
   * takes one of them and the loop has nothing to do, so it is not woken for every task.
   */
  get low(): boolean {
    return this.#buffer.length < this.host.options.bulk;
  }

  startBuffered(): void {
    const { options, workers } = this.host;
    const stale: Claimed[] = [];
    while (this.host.running() && workers.busy < options.workers && this.#buffer.length) {
      const next = this.#buffer.shift()!;
      // Waiting here plus running to its timeout must end before the lock expires at `retry`. The
      // wait counts from when the claim went out: an answer read late (the event loop stalled while
      // it was on its way) may hold packages whose lock has expired and which run elsewhere now.
      const budget = (options.retry - timeoutOf(next.pkg, options.timeout)) * 1000;
      const now = Date.now();
      const waited = now - next.claimed;
      if (next.after !== undefined) {
        const bulkMs = (waited / next.after) * options.bulk;
        this.#fast = bulkMs <= AHEAD_MS && bulkMs <= AHEAD_ROUND_TRIPS * Math.max(1, next.roundTrip!);
      }
      if (now - next.sent >= budget) stale.push(next);
      else workers.run(next.qid, next.pkg, next.lock);
    }
    this.release(stale);
  }

  /** The key was paused: what was claimed but not started goes back at once. */
  paused(): void {
    this.#pauses++;
    this.release(this.drain());
  }

  /** Empties the buffer; returns the packages it held, still locked by this process. */
  drain(): Claimed[] {
    return this.#buffer.splice(0).map(({ qid, lock }) => ({ qid, lock }));
  }

  release(packages: Claimed[]): void {
    if (!packages.length) return;
    void this.host.db
      .execute(RELEASE, releaseValues(packages, this.host.processId))
      .catch((e) => this.host.options.log('warn', `could not release waiting packages: ${(e as Error).message}`));
  }
}
