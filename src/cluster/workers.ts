/**
 * The tasks running in this process: each claimed package's attempt started, timed and aborted,
 * and its outcome handed to the saver; a package still running when claimed again is adopted.
 */
import { packageOf, type StoredPackage, type TaskPackage } from '../rows.js';
import { isStorableJson, UNSTORABLE_MESSAGE } from '../storable.js';
import type { TaskFunction } from '../registry.js';
import { Abort, errorResult, isThenable, lastStampMs, preciseNow, registered, TaskTimeout, timeoutOf, withTimeout } from './attempt.js';
import type { Claimed } from './sql.js';
import type { Completion } from './completion.js';

export interface WorkersHost {
  cluster: string;
  tasks: Record<string, TaskFunction>;
  /** The cluster's timeout in seconds. */
  timeout: number;
  /** Returns the reason when the package was stopped before it started: it fails without running. */
  began(qid: number, pkg: TaskPackage): Error | undefined;
  /** Counts the end of a task; true when it was stopped from the admin. */
  ended(qid: number, success: boolean): boolean;
  finished(f: Completion): void;
}

/** A task running here: what aborts it, and the lock of the claim it runs under. */
interface Running {
  abort: Abort;
  lock: number;
}

/** The tasks running in this process, each with the controller that aborts it. */
export class Workers {
  /** package id → the task running it */
  readonly #active = new Map<number, Running>();
  /**
   * package id → a function that timed out but has not returned yet. Its failure is saved and its
   * worker slot freed, yet it may still be working; a retry of the same package waits for it.
   */
  readonly #overrunning = new Map<number, Promise<unknown>>();

  constructor(private readonly host: WorkersHost) {}

  get busy(): number {
    return this.#active.size;
  }

  /** Still running past its timeout: a new claim of the package must not start it again. */
  overrunning(qid: number): boolean {
    return this.#overrunning.has(qid);
  }

  /**
   * A claim took package `qid` while it runs here (its lock expired or was released from the
   * admin, and this process claimed it again): the run goes on under the new claim, not a second
   * time. False when it does not run here.
   */
  adopt(qid: number, lock: number): boolean {
    const running = this.#active.get(qid);
    if (running) running.lock = lock;
    return running !== undefined;
  }

  /** Aborts the task running package `qid`; false when none does. */
  cancel(qid: number, reason: Error): boolean {
    this.#active.get(qid)?.abort.abort(reason);
    return this.#active.has(qid);
  }

  /** A stop past its deadline: aborts what still runs and forgets it; returns the packages. */
  abandon(reason: Error): Claimed[] {
    const held = [...this.#active].map(([qid, r]) => ({ qid, lock: r.lock }));
    for (const r of this.#active.values()) r.abort.abort(reason);
    this.#active.clear();
    return held;
  }

  run(qid: number, raw: StoredPackage | string, lock: number): void {
    const running: Running = { abort: new Abort(), lock };
    this.#active.set(qid, running);
    const pkg: TaskPackage = packageOf(typeof raw === 'string' ? JSON.parse(raw) : raw);
    const started = preciseNow();
    const startedMs = lastStampMs();
    const early = this.host.began(qid, pkg);
    const outcome = early
      ? Promise.resolve({ success: false, result: errorResult(early), final: false })
      : this.#execute(qid, pkg, running.abort);
    void outcome.then(({ success, result, final }) => {
      // A package whose task outlived a stop deadline was released; its result no longer counts.
      if (this.#active.get(qid) !== running) return;
      this.#active.delete(qid);
      const cancelled = this.host.ended(qid, success);
      const stopped = preciseNow();
      this.host.finished({
        qid,
        lock: running.lock,
        pkg,
        result,
        success,
        started,
        stopped,
        startedMs,
        stoppedMs: lastStampMs(),
        cancelled,
        final,
      });
    });
  }

  async #execute(qid: number, pkg: TaskPackage, abort: Abort): Promise<{ success: boolean; result: unknown; final: boolean }> {
    const fn = registered(this.host.tasks, pkg.func);
    if (!fn) {
      // Another attempt here would find the same registry: the failure is final, not retried.
      const message = `Task function ${JSON.stringify(pkg.func)} is not registered in cluster ${JSON.stringify(this.host.cluster)}; not retried`;
      return { success: false, result: errorResult(new Error(message)), final: true };
    }
    const args = Array.isArray(pkg.args) ? [...pkg.args] : [];
    if (pkg.kwargs && typeof pkg.kwargs === 'object' && Object.keys(pkg.kwargs).length) args.push(pkg.kwargs);
    const context = abort.context(pkg.id, pkg.name, this.host.cluster);
    let attempt: Promise<unknown> | undefined;
    try {
      // A function that returns a plain value has already ended, and no timer can stop what already
      // ran: only a promise gets a timeout. (Draining 40,000 no-op tasks, the timer set and cleared
      // for each, its race and their promises were about 6 % of the cluster's CPU profile.)
      const value: unknown = await Promise.resolve().then(() => {
        const returned: unknown = fn.apply(context, args);
        if (!isThenable(returned)) return returned;
        attempt = Promise.resolve(returned);
        return withTimeout(attempt, timeoutOf(pkg, this.host.timeout), abort);
      });
      // Most tasks return nothing: no text to make, check and read back.
      if (value === undefined || value === null) return { success: true, result: null, final: false };
      const text = JSON.stringify(value);
      if (!isStorableJson(text)) {
        throw new TypeError(`The result ${UNSTORABLE_MESSAGE}`);
      }
      return { success: true, result: JSON.parse(text), final: false };
    } catch (err) {
      if (err instanceof TaskTimeout && attempt) {
        // A function cannot be killed: one that ignores its signal runs on after its timeout.
        const running = attempt;
        this.#overrunning.set(qid, running);
        const ended = () => {
          if (this.#overrunning.get(qid) === running) this.#overrunning.delete(qid);
        };
        running.then(ended, ended);
      }
      return { success: false, result: errorResult(err), final: false };
    }
  }
}
