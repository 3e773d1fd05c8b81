/** The cluster's options: what each means, their defaults, and the checks that refuse bad values at construction. */
import { DEFAULT_MAX_CATCH_UP } from '../schedule-rules.js';
import { checkSchema } from '../table-names.js';
import { assertTimeZone } from '../time.js';
import type { LogLevel } from '../log.js';
import type { ListenConnection } from '../db/listener.js';
import type { TaskFunction } from '../registry.js';
import { backoffErrors, resolveBackoff, type ResolvedBackoff, type RetryBackoff } from '../retries.js';

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
  /**
   * Exponential backoff between a task's failed attempts: the delay before attempt n + 1 is
   * `base × factor^(n − 1)` seconds up to `max`, less up to `jitter` of it at random. true: base
   * 10, factor 2, max 3600, jitter 0.2. Default false: a failed package runs again `retry` seconds
   * after its claim. A task's own `retry` and `retryBackoff` go over it.
   */
  retryBackoff?: boolean | RetryBackoff;
  /** 0 keeps every success, -1 keeps none, N keeps the newest N. Failures are always kept. Default 250. */
  saveLimit?: number;
  /**
   * Apply saveLimit per group, name, func or queue key (`'key'`: this cluster's own successes, so
   * another key's backlog cannot prune them) instead of over all successes. Default null.
   */
  saveLimitPer?: 'group' | 'name' | 'func' | 'key' | null;
  /** A schedule that missed several runs runs once per missed slot (true) or once (false). Default true. */
  catchUp?: boolean;
  /** With catchUp: a schedule runs at most its this many most recent missed slots; older ones are skipped. Default 100. */
  maxCatchUp?: number;
  /** Seconds between writes of this process's row in ormq_cluster; three missed beats = not responding. Default 5. */
  heartbeat?: number;
  /** ms between claims when no notification arrives. Default 1000. */
  poll?: number;
  /**
   * Packages claimed per round trip. Default 10. While a backlog of quick tasks drains (a whole
   * `bulk` starts within 100 ms), the next claim goes out once fewer than `bulk` wait, so up to
   * twice as many are held; slower tasks never claim ahead.
   */
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

export type ResolvedOptions = Required<
  Omit<ClusterOptions, 'saveLimitPer' | 'log' | 'stopTimeout' | 'listenConnection' | 'schema' | 'retryBackoff'>
> &
  Pick<ClusterOptions, 'saveLimitPer' | 'listenConnection' | 'schema'> & {
    stopTimeout: number;
    log: NonNullable<ClusterOptions['log']>;
    /** null: no backoff. */
    retryBackoff: ResolvedBackoff | null;
  };

function defaultLog(level: LogLevel, message: string, detail?: unknown): void {
  if (level === 'warn' || level === 'error') console[level](`[ormq] ${message}`, detail ?? '');
}

/** A bad value as an error shows it: JSON where it has some, never a throw. */
function shown(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
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

export function resolveClusterOptions(o: ClusterOptions): ResolvedOptions {
  const name = o.name ?? 'default';
  if (typeof name !== 'string' || name.trim() === '' || name.length > 100) {
    throw new RangeError('Cluster option name must be a non-empty string of at most 100 characters');
  }
  const timeout = positive('timeout', o.timeout ?? 60);
  const retry = positive('retry', o.retry ?? Math.max(90, timeout * 1.5));
  if (retry <= timeout) {
    throw new RangeError(
      `Cluster option retry (${retry}s) must exceed timeout (${timeout}s): a running task's lock would expire and it would run twice`,
    );
  }
  const saveLimit = o.saveLimit ?? 250;
  if (!Number.isInteger(saveLimit) || saveLimit < -1)
    throw new RangeError('Cluster option saveLimit must be -1, 0 or a positive whole number');
  if (o.saveLimitPer != null && !['group', 'name', 'func', 'key'].includes(o.saveLimitPer)) {
    throw new RangeError(
      `Cluster option saveLimitPer must be 'group', 'name', 'func', 'key' or null, got ${JSON.stringify(o.saveLimitPer)}`,
    );
  }
  const backoff = backoffErrors(o.retryBackoff ?? false);
  const [field, problem] = Object.entries(backoff)[0] ?? [];
  if (field)
    throw new RangeError(
      `Cluster option ${field} ${problem}, got ${shown(field === 'retryBackoff' ? o.retryBackoff : (o.retryBackoff as Record<string, unknown>)[field.slice('retryBackoff.'.length)])}`,
    );
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
    retryBackoff: resolveBackoff(o.retryBackoff),
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
