/**
 * When a failed task runs again: the retry settings a cluster has as defaults and a task can carry
 * in its package, checked the same way for both.
 */

/**
 * Exponential backoff: the delay before failed attempt n + 1 is `base × factor^(n − 1)` seconds, at
 * most `max`, then shortened by up to `jitter` of itself at random (so that tasks that failed
 * together do not all run again in the same instant).
 */
export interface RetryBackoff {
  /** Seconds before the second attempt. Default 10; a task's own `retry` replaces it. */
  base?: number;
  /** Each further delay is this many times the one before. Default 2. */
  factor?: number;
  /** The ceiling of a delay in seconds. Default 3600. */
  max?: number;
  /** 0..1: the share of a delay taken off at random. Default 0.2. */
  jitter?: number;
}

export type ResolvedBackoff = Required<RetryBackoff>;

const DEFAULT_BACKOFF: ResolvedBackoff = { base: 10, factor: 2, max: 3600, jitter: 0.2 };

/** Longest delay or retry in seconds, as a task's `delay` allows: about 95 years, within a timestamp's range. */
const MAX_SECONDS = 3e9;

const seconds = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= MAX_SECONDS;

/**
 * The problems of a `retryBackoff` value, by field (`retryBackoff.factor`), or none. Every field is
 * looked at once; an unknown field is named, so a typo (`maxDelay`) is not silently ignored.
 */
export function backoffErrors(value: unknown, field = 'retryBackoff'): Record<string, string> {
  if (value === true || value === false) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { [field]: 'must be true, false or an object of base, factor, max and jitter' };
  }
  const errors: Record<string, string> = {};
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULT_BACKOFF)) errors[`${field}.${k.slice(0, 50)}`] = 'is not an option (base, factor, max, jitter)';
  }
  if (o.base !== undefined && !seconds(o.base)) errors[`${field}.base`] = 'must be a number of seconds above 0, at most 3,000,000,000';
  if (o.max !== undefined && !seconds(o.max)) errors[`${field}.max`] = 'must be a number of seconds above 0, at most 3,000,000,000';
  if (o.factor !== undefined && !(typeof o.factor === 'number' && o.factor >= 1 && o.factor <= 1000))
    errors[`${field}.factor`] = 'must be a number from 1 to 1000';
  if (o.jitter !== undefined && !(typeof o.jitter === 'number' && o.jitter >= 0 && o.jitter <= 1))
    errors[`${field}.jitter`] = 'must be a number from 0 to 1';
  if (
    !errors[`${field}.base`] &&
    !errors[`${field}.max`] &&
    ((o.base as number | undefined) ?? DEFAULT_BACKOFF.base) > ((o.max as number | undefined) ?? DEFAULT_BACKOFF.max)
  ) {
    errors[`${field}.max`] = `must be at least base (${String((o.base as number | undefined) ?? DEFAULT_BACKOFF.base)})`;
  }
  return errors;
}

/** A checked `retryBackoff` with its defaults filled in; null when off. */
export function resolveBackoff(value: boolean | RetryBackoff | null | undefined): ResolvedBackoff | null {
  if (value === undefined || value === null || value === false) return null;
  if (value === true) return { ...DEFAULT_BACKOFF };
  return { ...DEFAULT_BACKOFF, ...Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) };
}

/** A task's `retry`: seconds from a failure to its next attempt. */
export function retryError(value: unknown): string | null {
  return seconds(value) ? null : 'must be a number of seconds above 0, at most 3,000,000,000';
}

/** A task's `maxAttempts`: 0 retries until it succeeds, as the cluster's option. */
export function maxAttemptsError(value: unknown): string | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 2_147_483_647
    ? null
    : 'must be a whole number from 0 to 2147483647';
}

/** What COMPLETE needs to time a failed package's next attempt: see FAILED_NEXT in src/cluster/sql.ts. */
export interface NextAttempt {
  base: number;
  factor: number;
  cap: number;
  jitter: number;
}

/**
 * How a failed package's next attempt is timed, from its own settings over the cluster's: null
 * leaves it `retry` seconds after its claim, as when its lock expires. A package's settings were
 * checked when it was enqueued; one written into the table by other means that does not pass the
 * same checks is ignored here, so that it cannot make the completion statement fail (and the
 * package run again and again without its failure ever being saved).
 */
export function nextAttempt(
  task: { retry?: number; retryBackoff?: boolean | RetryBackoff },
  clusterBackoff: ResolvedBackoff | null,
): NextAttempt | null {
  const own = task.retryBackoff !== undefined && !Object.keys(backoffErrors(task.retryBackoff)).length;
  const backoff = own ? resolveBackoff(task.retryBackoff) : clusterBackoff;
  const retry = task.retry !== undefined && retryError(task.retry) === null ? task.retry : undefined;
  if (backoff) {
    const base = retry ?? backoff.base;
    return { base, factor: backoff.factor, cap: Math.max(backoff.max, base), jitter: backoff.jitter };
  }
  if (retry !== undefined) return { base: retry, factor: 1, cap: retry, jitter: 0 };
  return null;
}

/** A package's own maxAttempts when it has a valid one (see nextAttempt), else undefined: the cluster's. */
export function ownMaxAttempts(task: { maxAttempts?: number }): number | undefined {
  return task.maxAttempts !== undefined && maxAttemptsError(task.maxAttempts) === null ? task.maxAttempts : undefined;
}
