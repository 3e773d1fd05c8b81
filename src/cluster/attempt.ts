/** How one attempt of a task is timed and ended: its timestamps, its timeout and its failure. */
import { scrub } from '../storable.js';

let lastMicros = 0;

/** Wall-clock time in microseconds, strictly increasing within this process. */
export function preciseNow(): string {
  let micros = Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
  if (micros <= lastMicros) micros = lastMicros + 1;
  lastMicros = micros;
  const ms = Math.floor(micros / 1000);
  return new Date(ms).toISOString().replace('Z', `${String(micros % 1000).padStart(3, '0')}Z`);
}

export function errorResult(err: unknown): { error: string; message: string; stack: string | null } {
  if (err instanceof Error) return { error: scrub(String(err.name)), message: scrub(String(err.message)), stack: err.stack ? scrub(err.stack) : null };
  return { error: 'Error', message: scrub(String(err)), stack: null };
}

export class TaskTimeout extends Error {
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
