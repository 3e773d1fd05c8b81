import type { IncomingMessage } from 'node:http';
import { taskNameSet, type TaskNames } from '../validate.js';

export type PageId = 'successful' | 'failed' | 'scheduled' | 'queued';
export const PAGE_IDS: readonly PageId[] = ['successful', 'failed', 'scheduled', 'queued'];

/** What each page lets a user do; `authorize` is asked about these names. */
export const PAGE_ACTIONS = {
  successful: ['view', 'delete', 'resubmit'],
  failed: ['view', 'delete', 'resubmit'],
  scheduled: ['view', 'create', 'edit', 'delete', 'pause', 'resume', 'run'],
  queued: ['view', 'edit', 'release', 'delete'],
} as const satisfies Record<PageId, readonly string[]>;

export type PageAction<P extends PageId = PageId> = (typeof PAGE_ACTIONS)[P][number];

export interface AuthorizeRequest {
  page: PageId;
  action: string;
}

export interface QueueAdminOptions {
  /** The registered task names (or the registry object): the schedule form's func picker and check. */
  tasks?: TaskNames;
  /** true: every page is view-only; every action answers 403. */
  readOnly?: boolean;
  /** Asked for every request and every action the UI offers; false → 403 and the UI hides it. */
  authorize?: (req: IncomingMessage, what: AuthorizeRequest) => boolean | Promise<boolean>;
  /** The name written to the admin log for this request's actions. */
  actor?: (req: IncomingMessage) => string | null | undefined | Promise<string | null | undefined>;
  /** List columns per page, in order: field keys of that page's rows. */
  columns?: Partial<Record<PageId, string[]>>;
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
}

export const TASK_COLUMNS = [
  'id', 'name', 'func', 'hook', 'group', 'cluster', 'enqueued', 'started', 'stopped', 'timeTaken', 'success',
  'attemptCount', 'shortResult',
] as const;
export const SCHEDULE_COLUMNS = [
  'id', 'name', 'func', 'hook', 'scheduleType', 'minutes', 'repeats', 'nextRun', 'cron', 'cluster',
  'intendedDateKwarg', 'version', 'task', 'lastRun', 'args', 'kwargs',
] as const;
export const QUEUED_COLUMNS = ['id', 'key', 'lock', 'taskId', 'name', 'func', 'group'] as const;

export const AVAILABLE_COLUMNS: Record<PageId, readonly string[]> = {
  successful: TASK_COLUMNS,
  failed: TASK_COLUMNS,
  scheduled: SCHEDULE_COLUMNS,
  queued: QUEUED_COLUMNS,
};

/** The defaults of SPEC §5's table. */
export const DEFAULT_COLUMNS: Record<PageId, string[]> = {
  successful: ['name', 'func', 'group', 'started', 'stopped', 'timeTaken'],
  failed: ['name', 'func', 'group', 'started', 'stopped', 'shortResult'],
  scheduled: ['id', 'name', 'func', 'scheduleType', 'repeats', 'cluster', 'nextRun', 'lastRun'],
  queued: ['id', 'key', 'name', 'func', 'group', 'lock', 'taskId'],
};

export interface ResolvedOptions {
  tasks: string[] | null;
  taskSet: Set<string> | undefined;
  readOnly: boolean;
  authorize?: QueueAdminOptions['authorize'];
  actor?: QueueAdminOptions['actor'];
  columns: Record<PageId, string[]>;
  title: string;
  saveLimit: number | null;
  retry: number;
  basePath: string | null;
  timeZone: string;
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
      if (!PAGE_IDS.includes(page as PageId)) fail(`columns: unknown page ${JSON.stringify(page)} (pages: ${PAGE_IDS.join(', ')})`);
      const allowed = AVAILABLE_COLUMNS[page as PageId];
      if (!Array.isArray(list) || list.length === 0) fail(`columns.${page} must be a non-empty array of column keys`);
      for (const key of list) {
        if (!allowed.includes(key)) {
          fail(`columns.${page}: unknown column ${JSON.stringify(key)} (available: ${allowed.join(', ')})`);
        }
      }
      if (new Set(list).size !== list.length) fail(`columns.${page} lists a column twice`);
      columns[page as PageId] = [...list];
    }
  }
  const taskSet = taskNameSet(options.tasks);
  if (options.saveLimit !== undefined && options.saveLimit !== null && !Number.isInteger(options.saveLimit)) {
    fail('saveLimit must be a whole number (0 = keep all, -1 = keep none) or null');
  }
  if (options.authorize !== undefined && typeof options.authorize !== 'function') fail('authorize must be a function');
  if (options.actor !== undefined && typeof options.actor !== 'function') fail('actor must be a function');
  let basePath: string | null = null;
  if (options.basePath !== undefined && options.basePath !== null) {
    if (typeof options.basePath !== 'string' || !options.basePath.startsWith('/')) fail('basePath must be a path starting with "/"');
    basePath = options.basePath.replace(/\/+$/, '');
  }
  if (options.retry !== undefined && !(typeof options.retry === 'number' && Number.isFinite(options.retry) && options.retry > 0)) {
    fail('retry must be a number of seconds above 0');
  }
  const timeZone = options.timeZone ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    fail(`timeZone: unknown time zone ${JSON.stringify(timeZone)}`);
  }
  return {
    tasks: taskSet ? [...taskSet].sort() : null,
    taskSet,
    readOnly: options.readOnly === true,
    authorize: options.authorize,
    actor: options.actor,
    columns,
    title: options.title ?? 'Task queue',
    saveLimit: options.saveLimit ?? null,
    retry: options.retry ?? 90,
    basePath,
    timeZone,
  };
}
