/**
 * How one attempt of a task runs: the function looked up in the registry, its timeout and
 * AbortSignal, its timestamps, and its result or failure.
 */
import type { StoredPackage } from '../rows.js';
import { scrub } from '../storable.js';
import type { TaskContext, TaskFunction } from '../registry.js';

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
export function preciseNow(): string {
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

/** The last preciseNow() in milliseconds, with its microseconds as the fraction. */
export const lastStampMs = (): number => lastMicros / 1000;

export function errorResult(err: unknown): { error: string; message: string; stack: string | null } {
  if (err instanceof Error)
    return { error: scrub(String(err.name)), message: scrub(String(err.message)), stack: err.stack ? scrub(err.stack) : null };
  return { error: 'Error', message: scrub(String(err)), stack: null };
}

export class TaskTimeout extends Error {
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
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * A task's own timeout can shorten the cluster's, never lengthen it: past `retry` its lock would
 * expire while it still runs, and another claim would run it a second time.
 */
export function timeoutOf(pkg: StoredPackage, clusterTimeout: number): number {
  const own = typeof pkg.timeout === 'number' && pkg.timeout > 0 ? pkg.timeout : Infinity;
  return Math.min(own, clusterTimeout);
}
