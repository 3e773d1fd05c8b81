/**
 * How one attempt of a task runs: the function looked up in the registry, its timeout and
 * AbortSignal, its timestamps, and its result or failure.
 */
import type { TaskPackage } from '../rows.js';
import { isStorableJson, scrub, UNSTORABLE_MESSAGE } from '../storable.js';
import type { Completion } from './sql.js';

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

/** The registered function of that name; never one inherited from Object.prototype. */
export function registered(tasks: Record<string, TaskFunction>, name: string): TaskFunction | undefined {
  return Object.hasOwn(tasks, name) ? tasks[name] : undefined;
}

let lastMicros = 0;

/** Wall-clock time in microseconds, strictly increasing within this process. */
function preciseNow(): string {
  let micros = Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
  if (micros <= lastMicros) micros = lastMicros + 1;
  lastMicros = micros;
  const ms = Math.floor(micros / 1000);
  return new Date(ms).toISOString().replace('Z', `${String(micros % 1000).padStart(3, '0')}Z`);
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
 * Settles with `attempt`, or rejects with a TaskTimeout after `seconds` and aborts `controller`.
 * An abort from elsewhere (a stop from the admin) rejects with its reason at once: the task fails
 * then, whether or not its function heeds the signal.
 */
export function withTimeout<T>(attempt: Promise<T>, seconds: number, controller: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
    timer = setTimeout(() => {
      const err = new TaskTimeout(seconds);
      controller.abort(err);
      reject(err);
    }, seconds * 1000);
  });
  return Promise.race([attempt, timedOut]).finally(() => clearTimeout(timer));
}

/**
 * A task's own timeout can shorten the cluster's, never lengthen it: past `retry` its lock would
 * expire while it still runs, and another claim would run it a second time.
 */
export function timeoutOf(pkg: TaskPackage, clusterTimeout: number): number {
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

/** The tasks running in this process, each with the controller that aborts it. */
export class Workers {
  /** package id → abort controller of the task running it */
  readonly #active = new Map<number, AbortController>();
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

  /** Aborts the task running package `qid`; false when none does. */
  cancel(qid: number, reason: Error): boolean {
    this.#active.get(qid)?.abort(reason);
    return this.#active.has(qid);
  }

  /** A stop past its deadline: aborts what still runs and forgets it; returns their package ids. */
  abandon(reason: Error): number[] {
    const qids = [...this.#active.keys()];
    for (const controller of this.#active.values()) controller.abort(reason);
    this.#active.clear();
    return qids;
  }

  run(qid: number, raw: TaskPackage | string): void {
    const controller = new AbortController();
    this.#active.set(qid, controller);
    const pkg: TaskPackage = typeof raw === 'string' ? JSON.parse(raw) : raw;
    const started = preciseNow();
    this.host.began(qid, pkg);
    void this.#execute(qid, pkg, controller).then(({ success, result }) => {
      // A package whose task outlived a stop deadline was released; its result no longer counts.
      if (this.#active.get(qid) !== controller) return;
      this.#active.delete(qid);
      const cancelled = this.host.ended(qid, success);
      this.host.finished({ qid, pkg, result, success, started, stopped: preciseNow(), cancelled });
    });
  }

  async #execute(qid: number, pkg: TaskPackage, controller: AbortController): Promise<{ success: boolean; result: unknown }> {
    const fn = registered(this.host.tasks, pkg.func);
    if (!fn) {
      return { success: false, result: errorResult(new Error(`Task function ${JSON.stringify(pkg.func)} is not registered in cluster ${JSON.stringify(this.host.cluster)}`)) };
    }
    const args = Array.isArray(pkg.args) ? [...pkg.args] : [];
    if (pkg.kwargs && typeof pkg.kwargs === 'object' && Object.keys(pkg.kwargs).length) args.push(pkg.kwargs);
    const context: TaskContext = { id: pkg.id, name: pkg.name, cluster: this.host.cluster, signal: controller.signal };
    const attempt = Promise.resolve().then(() => fn.apply(context, args));
    try {
      const value = await withTimeout(attempt, timeoutOf(pkg, this.host.timeout), controller);
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
}
