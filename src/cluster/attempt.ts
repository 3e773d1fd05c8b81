/**
 * How one attempt of a task runs: the function looked up in the registry, its timeout and
 * AbortSignal, its timestamps, and its result or failure.
 */
import { packageOf, type StoredPackage, type TaskPackage } from '../rows.js';
import { isStorableJson, scrub, UNSTORABLE_MESSAGE } from '../storable.js';
import type { TaskContext, TaskFunction } from '../registry.js';
import type { Claimed, Completion } from './sql.js';

/** The registered function of that name; never one inherited from Object.prototype. */
export function registered(tasks: Record<string, TaskFunction>, name: string): TaskFunction | undefined {
  return Object.hasOwn(tasks, name) ? tasks[name] : undefined;
}

let lastMicros = 0;
let lastMs = NaN;
let lastText = '';

/**
 * Wall-clock time in microseconds, strictly increasing within this process. Two are taken per task,
 * most within the millisecond of the one before: the millisecond's text is made once and reused
 * (toISOString was 6 % of a CPU profile of 100,000 no-op tasks run 4 at a time).
 */
function preciseNow(): string {
  let micros = Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
  if (micros <= lastMicros) micros = lastMicros + 1;
  lastMicros = micros;
  const ms = Math.floor(micros / 1000);
  if (ms !== lastMs) {
    lastMs = ms;
    lastText = new Date(ms).toISOString().slice(0, -1);
  }
  return `${lastText}${String(micros % 1000).padStart(3, '0')}Z`;
}

function errorResult(err: unknown): { error: string; message: string; stack: string | null } {
  if (err instanceof Error) return { error: scrub(String(err.name)), message: scrub(String(err.message)), stack: err.stack ? scrub(err.stack) : null };
  return { error: 'Error', message: scrub(String(err)), stack: null };
}

class TaskTimeout extends Error {
  constructor(seconds: number) {
    super(`Task exceeded its timeout of ${seconds}s`);
    this.name = 'TimeoutError';
  }
}

/**
 * How one attempt is aborted (its timeout, a stop from the admin, a stop past its deadline). The
 * AbortSignal a function sees is made only when it reads `this.signal`, already aborted if it reads
 * it late: most tasks never look, and an AbortController with its listener cost more than a no-op
 * task's own work. 100,000 no-op tasks run 4 at a time without a database: createAbortSignal and
 * its listener were 14 % of the CPU profile; made lazily, 12.5–13.7 µs of CPU a task instead of
 * 15–31 µs (same runs, alternating, load average 16–18).
 */
export class Abort {
  #controller: AbortController | null = null;
  #aborted = false;
  #reason: unknown;
  #onAbort: ((reason: unknown) => void) | null = null;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#onAbort?.(reason);
    this.#controller?.abort(reason);
  }

  /** What `this` is for a task function or hook: the signal is made on first read. */
  context(id: string, name: string, cluster: string): TaskContext {
    return new Context(id, name, cluster, this);
  }

  /** Called once, with the reason, when the attempt is aborted; at once when it already was. */
  set onAbort(fn: (reason: unknown) => void) {
    this.#onAbort = fn;
    if (this.#aborted) fn(this.#reason);
  }
}

/**
 * A task's `this`. Its signal is a getter of the class, not of each object: an object literal with
 * its own getter cost 2.5 µs of CPU a task (4 % of a profile of 40,000 no-op tasks).
 */
class Context implements TaskContext {
  readonly #abort: Abort;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly cluster: string,
    abort: Abort,
  ) {
    this.#abort = abort;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }
}

/**
 * Settles with `attempt`, or rejects with a TaskTimeout after `seconds` and aborts `abort`.
 * An abort from elsewhere (a stop from the admin) rejects with its reason at once: the task fails
 * then, whether or not its function heeds the signal.
 */
export function withTimeout<T>(attempt: Promise<T>, seconds: number, abort: Abort): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    abort.onAbort = reject;
    timer = setTimeout(() => {
      const err = new TaskTimeout(seconds);
      abort.abort(err);
      reject(err);
    }, seconds * 1000);
  });
  return Promise.race([attempt, timedOut]).finally(() => clearTimeout(timer));
}

/** A promise or any other object with a `then` method: what `await` would wait for. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * A task's own timeout can shorten the cluster's, never lengthen it: past `retry` its lock would
 * expire while it still runs, and another claim would run it a second time.
 */
export function timeoutOf(pkg: StoredPackage, clusterTimeout: number): number {
  const own = typeof pkg.timeout === 'number' && pkg.timeout > 0 ? pkg.timeout : Infinity;
  return Math.min(own, clusterTimeout);
}

export interface WorkersHost {
  cluster: string;
  tasks: Record<string, TaskFunction>;
  /** The cluster's timeout in seconds. */
  timeout: number;
  began(qid: number, pkg: TaskPackage): void;
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
    const startedMs = lastMicros / 1000;
    this.host.began(qid, pkg);
    void this.#execute(qid, pkg, running.abort).then(({ success, result, final }) => {
      // A package whose task outlived a stop deadline was released; its result no longer counts.
      if (this.#active.get(qid) !== running) return;
      this.#active.delete(qid);
      const cancelled = this.host.ended(qid, success);
      const stopped = preciseNow();
      this.host.finished({ qid, lock: running.lock, pkg, result, success, started, stopped, startedMs, stoppedMs: lastMicros / 1000, cancelled, final });
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
