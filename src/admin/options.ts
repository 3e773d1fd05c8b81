import type { IncomingMessage } from 'node:http';
import type { LogLevel } from '../log.js';
import { canonicalTimeZone } from '../time.js';
import { checkToken, generateToken, parseAllowedHosts, type HostRule } from './access.js';
import { taskNameSet, type TaskNames } from '../validate.js';

/** Where the admin reports what went wrong unexpectedly (a 500's details); the cluster's `log` fits. */
export type AdminLogger = (level: LogLevel, message: string, detail?: unknown) => void;

export type PageId = 'successful' | 'failed' | 'scheduled' | 'queued' | 'clusters';
export const PAGE_IDS: readonly PageId[] = ['successful', 'failed', 'scheduled', 'queued', 'clusters'];
/** The pages that list a table's rows: columns, counts and the action engine are theirs. */
export type ListPageId = Exclude<PageId, 'clusters'>;
/** Pages that show figures, not rows: `view` is all `authorize` is asked about them. */
export type ViewPageId = 'metrics' | 'activity';
export const VIEW_PAGE_IDS: readonly ViewPageId[] = ['metrics', 'activity'];

/** What each page lets a user do; `authorize` is asked about these names. */
export const PAGE_ACTIONS = {
  successful: ['view', 'delete', 'resubmit'],
  failed: ['view', 'delete', 'resubmit'],
  scheduled: ['view', 'create', 'edit', 'delete', 'pause', 'resume', 'run'],
  queued: ['view', 'edit', 'release', 'delete'],
  clusters: ['view', 'pause', 'resume', 'stop', 'forget', 'release', 'limits'],
} as const satisfies Record<PageId, readonly string[]>;

export interface AuthorizeRequest {
  page: PageId | ViewPageId;
  action: string;
}

/**
 * `Req` is the request type `authorize` and `actor` see: the host's own, with whatever its
 * middleware in front added (`req.user`). ormq passes the request through as it arrives.
 */
export interface QueueAdminOptions<Req extends IncomingMessage = IncomingMessage> {
  /** The registered task names (or the registry object): the schedule form's func picker and check. */
  tasks?: TaskNames;
  /** true: every page is view-only; every action answers 403. It does not open the admin to other machines. */
  readOnly?: boolean;
  /**
   * Asked for every request and every action the UI offers; false → 403 and the UI hides it.
   * Without it the admin answers only requests that carry its access token (`token`).
   */
  authorize?: (req: Req, what: AuthorizeRequest) => boolean | Promise<boolean>;
  /**
   * Without `authorize`: the secret a request must carry (the `Authorization: Bearer` header, or the
   * cookie a browser gets by opening `…/?token=…`). Default `ORMQ_ADMIN_TOKEN`, else a random one
   * made now and written to `log` as the link to open.
   */
  token?: string;
  /**
   * Host names (with an optional `:port`; `.example.com` for it and its subdomains) the admin is
   * served under: a request with any other Host gets 403 on every route, `authorize` or not.
   */
  allowedHosts?: string[];
  /** The name written to the admin log for this request's actions. */
  actor?: (req: Req) => string | null | undefined | Promise<string | null | undefined>;
  /** List columns per page, in order: field keys of that page's rows. */
  columns?: Partial<Record<ListPageId, string[]>>;
  /** Shown in the page header and the document title. */
  title?: string;
  /** The cluster's saveLimit, stated on the Successful tasks page. */
  saveLimit?: number | null;
  /** The cluster's retry (seconds): when a failed task still queued runs again. Default 90, the cluster's. */
  retry?: number;
  /** node:http only: the path the admin lives under; outside it the handler calls next() or answers 404. */
  basePath?: string;
  /** IANA zone schedules are computed in (cron previews, the "today" filter); default UTC. */
  timeZone?: string;
  /** The folder of the built client; default the package's client/dist. */
  clientDir?: string;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
  /** Seconds a package may wait in a key with no live cluster before `api/health` answers 503. Default 60. */
  healthMaxWait?: number;
  /** Milliseconds an admin read may take before it is stopped with a 503; default 5000. */
  statementTimeout?: number;
  /**
   * Requests of this admin that work on the database at once; default 2. Others wait their turn up
   * to a second, then get a 503 with Retry-After: the admin never holds more of the host's pool.
   */
  maxConcurrentReads?: number;
  /** Bytes of JSON a schedule's args or kwargs may hold when saved from the admin; default 64 KB. */
  argsLimit?: number;
  /**
   * Receives what the admin hides from the client: the error behind a 500 (level 'error', the error
   * as `detail`). Default: console.error.
   */
  log?: AdminLogger;
}

const TASK_COLUMNS = [
  'id',
  'name',
  'func',
  'hook',
  'group',
  'cluster',
  'enqueued',
  'started',
  'stopped',
  'timeTaken',
  'success',
  'attemptCount',
  'shortResult',
] as const;
const SCHEDULE_COLUMNS = [
  'id',
  'name',
  'func',
  'hook',
  'scheduleType',
  'minutes',
  'repeats',
  'nextRun',
  'cron',
  'cluster',
  'intendedDateKwarg',
  'version',
  'task',
  'lastRun',
  'args',
  'kwargs',
] as const;
const QUEUED_COLUMNS = [
  'id',
  'key',
  'priority',
  'serial',
  'lock',
  'lockedBy',
  'runAt',
  'enqueued',
  'taskId',
  'name',
  'func',
  'group',
] as const;

const AVAILABLE_COLUMNS: Record<ListPageId, readonly string[]> = {
  successful: TASK_COLUMNS,
  failed: TASK_COLUMNS,
  scheduled: SCHEDULE_COLUMNS,
  queued: QUEUED_COLUMNS,
};

/** The defaults of SPEC §5's table. */
const DEFAULT_COLUMNS: Record<ListPageId, string[]> = {
  successful: ['name', 'func', 'group', 'started', 'stopped', 'timeTaken'],
  failed: ['name', 'func', 'group', 'started', 'stopped', 'shortResult'],
  scheduled: ['id', 'name', 'func', 'scheduleType', 'repeats', 'cluster', 'nextRun', 'lastRun'],
  queued: ['id', 'key', 'priority', 'name', 'func', 'group', 'enqueued', 'lock', 'lockedBy', 'taskId'],
};

export interface ResolvedOptions {
  tasks: string[] | null;
  taskSet: Set<string> | undefined;
  readOnly: boolean;
  authorize?: QueueAdminOptions['authorize'];
  actor?: QueueAdminOptions['actor'];
  /** Without `authorize`: the access token, and whether it was made here (then it is logged). */
  token: { value: string; generated: boolean } | null;
  allowedHosts: HostRule[] | null;
  columns: Record<ListPageId, string[]>;
  title: string;
  saveLimit: number | null;
  retry: number;
  basePath: string | null;
  timeZone: string;
  healthMaxWait: number;
  statementTimeout: number;
  maxConcurrentReads: number;
  argsLimit: number;
  log: AdminLogger;
}

function defaultLog(level: LogLevel, message: string, detail?: unknown): void {
  if (level === 'warn' || level === 'error') console[level](`ormq admin: ${message}`, detail ?? '');
  else if (level === 'info') console.log(`ormq admin: ${message}`);
}

function fail(message: string): never {
  throw new TypeError(`queueAdmin: ${message}`);
}

/** Checks the options once, at start-up, so a typo in a column name stops the app with a clear message. */
export function resolveOptions(options: QueueAdminOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  const columns = { ...DEFAULT_COLUMNS };
  if (options.columns !== undefined) {
    if (typeof options.columns !== 'object' || options.columns === null) fail('columns must be an object of page → column keys');
    for (const [page, list] of Object.entries(options.columns)) {
      if (!Object.hasOwn(AVAILABLE_COLUMNS, page))
        fail(`columns: unknown page ${JSON.stringify(page)} (pages: ${Object.keys(AVAILABLE_COLUMNS).join(', ')})`);
      const allowed = AVAILABLE_COLUMNS[page as ListPageId];
      if (!Array.isArray(list) || list.length === 0) fail(`columns.${page} must be a non-empty array of column keys`);
      for (const key of list) {
        if (!allowed.includes(key)) {
          fail(`columns.${page}: unknown column ${JSON.stringify(key)} (available: ${allowed.join(', ')})`);
        }
      }
      if (new Set(list).size !== list.length) fail(`columns.${page} lists a column twice`);
      columns[page as ListPageId] = [...list];
    }
  }
  const taskSet = taskNameSet(options.tasks);
  if (options.saveLimit !== undefined && options.saveLimit !== null && !Number.isInteger(options.saveLimit)) {
    fail('saveLimit must be a whole number (0 = keep all, -1 = keep none) or null');
  }
  if (options.authorize !== undefined && typeof options.authorize !== 'function') fail('authorize must be a function');
  if (options.actor !== undefined && typeof options.actor !== 'function') fail('actor must be a function');
  if (options.token !== undefined && options.authorize !== undefined)
    fail('token and authorize exclude each other: with authorize, it decides who may use the admin');
  let token: ResolvedOptions['token'] = null;
  if (options.authorize === undefined) {
    const env = process.env.ORMQ_ADMIN_TOKEN;
    if (options.token !== undefined) token = { value: checkToken(options.token, 'queueAdmin: token'), generated: false };
    else if (env !== undefined && env !== '') token = { value: checkToken(env, 'ORMQ_ADMIN_TOKEN'), generated: false };
    else token = { value: generateToken(), generated: true };
  }
  const allowedHosts = options.allowedHosts === undefined ? null : parseAllowedHosts(options.allowedHosts);
  if (options.log !== undefined && typeof options.log !== 'function') fail('log must be a function (level, message, detail)');
  let basePath: string | null = null;
  if (options.basePath !== undefined && options.basePath !== null) {
    if (typeof options.basePath !== 'string' || !options.basePath.startsWith('/')) fail('basePath must be a path starting with "/"');
    basePath = options.basePath.replace(/\/+$/, '');
  }
  if (options.retry !== undefined && !(typeof options.retry === 'number' && Number.isFinite(options.retry) && options.retry > 0)) {
    fail('retry must be a number of seconds above 0');
  }
  const timeZone = options.timeZone ?? 'UTC';
  if (typeof timeZone !== 'string' || canonicalTimeZone(timeZone) === null) fail(`timeZone: unknown time zone ${JSON.stringify(timeZone)}`);
  const healthMaxWait = options.healthMaxWait ?? 60;
  if (typeof healthMaxWait !== 'number' || !(healthMaxWait > 0) || !Number.isFinite(healthMaxWait))
    fail('healthMaxWait must be a number of seconds > 0');
  const statementTimeout = options.statementTimeout ?? 5000;
  if (!Number.isInteger(statementTimeout) || statementTimeout < 1)
    fail('statementTimeout must be a whole number of milliseconds, 1 or more');
  const maxConcurrentReads = options.maxConcurrentReads ?? 2;
  if (!Number.isInteger(maxConcurrentReads) || maxConcurrentReads < 1)
    fail('maxConcurrentReads must be a whole number of requests, 1 or more');
  const argsLimit = options.argsLimit ?? 64 * 1024;
  if (!Number.isInteger(argsLimit) || argsLimit < 2) fail('argsLimit must be a whole number of bytes, 2 or more');
  return {
    tasks: taskSet ? [...taskSet].sort() : null,
    taskSet,
    readOnly: options.readOnly === true,
    authorize: options.authorize,
    actor: options.actor,
    token,
    allowedHosts,
    columns,
    title: options.title ?? 'Task queue',
    saveLimit: options.saveLimit ?? null,
    retry: options.retry ?? 90,
    basePath,
    timeZone,
    healthMaxWait,
    statementTimeout,
    maxConcurrentReads,
    argsLimit,
    log: options.log ?? defaultLog,
  };
}
