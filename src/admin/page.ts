/**
 * The shape every page module fills in, and the engine that runs a page's actions on a selection
 * or on "all matching a filter", one chunk per transaction.
 */
import type { IncomingMessage } from 'node:http';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { badRequest, isPlainObject, notFound } from './http.js';
import { listCount, type Count } from './count.js';
import { Where } from './filters.js';
import { afterCursor, cursorOf, orderBy, parseCursor, keyColumn, type Keyset } from './list.js';
import type { Truncated } from './fields.js';
import { writeLog, type LogEntry } from './log.js';
import type { PageId, ResolvedOptions, ViewPageId } from './options.js';
import { db } from '../db/run.js';

export interface RequestContext {
  req: IncomingMessage;
  em: SqlEntityManager;
  options: ResolvedOptions;
  actor(): Promise<string | null>;
  /** Whether this request may do `action` on `page` (readOnly and authorize applied). */
  can(page: PageId | ViewPageId, action: string): Promise<boolean>;
  /** Whether the admin opens to this request at all and it may view one of the pages. */
  viewsAny(): Promise<boolean>;
  /** Throws a 403 unless this request may do `action` on `page`. */
  require(page: PageId | ViewPageId, action: string): Promise<void>;
  /**
   * Runs a read with each statement under the admin's statement timeout (`em.transactional` for
   * statements that must share one, which go to the primary), on a read replica when the ORM has them.
   */
  read<T>(fn: (ctx: RequestContext) => Promise<T>): Promise<T>;
  /** Whether `read` reads from a replica. */
  readonly replica: boolean;
}

interface ListResult {
  rows: Record<string, unknown>[];
  next: string | null;
  count: Count;
  /** Present when the search was looked for only in the newest `rows` rows; `note` says so and why, for the page. */
  searchBound?: { rows: number; note: string };
}

interface Detail {
  /** null: the object is gone, and `extra` says where its work went (a resubmitted failure). */
  object: Record<string, unknown> | null;
  truncated: Record<string, Truncated>;
  /** Page-specific facts shown apart from the fields (a task's attempts, lineage, pending retry). */
  extra?: Record<string, unknown>;
}

type Row = Record<string, unknown>;

/** How the UI names an action: its button ("Resubmit") and what the notice says was done ("Resubmitted"). */
export interface Label {
  label: string;
  past: string;
  /** The action cannot be undone: the UI asks first and shows it as dangerous. */
  danger?: true;
}

/** Every list page's delete. */
export const DELETE = { label: 'Delete', past: 'Deleted', danger: true } as const satisfies Label;

/** One action of a page, applied to rows already locked in the caller's transaction. */
export interface Action extends Label {
  /**
   * Extra condition a row must meet to need the action (e.g. `repeats <> 0` to pause). Handled rows
   * stop meeting it, so repeating an "all matching" call never handles a row twice.
   */
  pending?: string;
  /**
   * true when a handled row leaves the filter (deleted) or stops meeting `pending`. Otherwise the
   * caller's cursor is what keeps repeated calls from handling a row twice.
   */
  converges: boolean;
  /** Columns `apply` reads, when not the page's `actionColumns`: a chunk loads nothing it does not use. */
  columns?: string;
  apply(tx: SqlEntityManager, rows: Row[], ctx: RequestContext): Promise<LogEntry[]>;
}

/**
 * What every page module declares: its id, the labels of the actions the UI offers (sent through
 * `api/meta`), its routes under `api/<id>`, and its part of the overview.
 */
export interface PageModule {
  id: PageId | ViewPageId;
  /** By the action name `authorize` is asked about; `view` needs none. */
  labels: Record<string, Label>;
  /**
   * Routes under `api/<id>`, by the rest of the path: '' is the page itself, `:id` an object of it
   * (parsed by `parseId`), other segments are literal or, with a leading colon, named parameters.
   */
  routes: Record<string, Route | Route[]>;
  /** Its part of `api/overview`, asked only when the caller may view the page. */
  overview?(ctx: RequestContext): Promise<unknown>;
  /** Facts `api/meta` adds for the UI; `visible` says whether the caller may view the page. */
  meta?(ctx: RequestContext, visible: boolean): Record<string, unknown>;
}

export interface Page extends PageModule {
  id: PageId;
  table: string;
  keyset: Keyset;
  /** Columns the action engine reads for `apply`. */
  actionColumns: string;
  parseId(raw: unknown): string | number | null;
  /** The rows of this page (e.g. success = false) narrowed by a filter and search. */
  where(filter: Record<string, unknown>, ctx: RequestContext): Where;
  list(ctx: RequestContext, query: Record<string, string>): Promise<ListResult>;
  filters(ctx: RequestContext): Promise<Record<string, string[]>>;
  detail(ctx: RequestContext, id: string | number): Promise<Detail | null>;
  /** JSON fields that may be truncated in a detail and loaded alone (`api/<page>/<id>/field/<name>`). */
  jsonFields: readonly string[];
  actions: Record<string, Action>;
  /** The overview's chart of attempts per hour shows this outcome's series for this page's viewers. */
  hourly?: 'success' | 'failure';
}

/**
 * Who may use a route. A page's action is what `authorize` is asked; 'any' is a view of any page;
 * 'open' asks nothing (what it answers is narrowed by what the caller may do); 'public' answers
 * without `authorize` and from anywhere, not only locally, so it must say nothing but status.
 */
export type Access = { page: PageId | ViewPageId; action: string } | 'any' | 'open' | 'public';

export interface RouteInput {
  /** The query string as it came (with its "?"), and parsed. */
  search: string;
  query: Record<string, string>;
  /** The JSON body of a POST, PUT or PATCH. */
  body: unknown;
  /** The path's named parameters, and `id` parsed by the page. */
  params: Record<string, string>;
  id: string | number;
}

/** An API route: its method, who may use it and what it answers. */
export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  /** A function decides from the request (an action's name, an edit's fields); it may throw a 404. */
  access: Access | ((input: RouteInput) => Access[]);
  /**
   * The access rule reads the body. Before the body is read, the caller must be allowed at least
   * one of these (every rule `access` could return), so a refused caller never makes the server
   * take in a body; the precise rule is asked once it is read.
   */
  accessReadsBody?: { page: PageId; action: string }[];
  /**
   * false: the route keeps out of the admin's bound on concurrent database work (`maxConcurrentReads`),
   * because it does none (meta) or bounds its own (health: one check at a time).
   */
  database?: false;
  /**
   * A GET whose answer is the same for every caller allowed it: identical requests while one is
   * under way wait for its answer rather than reading again (Gate.share).
   */
  shared?: true;
  run(ctx: RequestContext, input: RouteInput): Promise<{ status: number; body: unknown }>;
}

/**
 * The GET route of a page that is one view: the request read by `parse` (a 400 naming what is wrong)
 * before any database work, then `read` under the admin's statement timeout.
 */
export function viewRoute<Q>(
  page: PageId | ViewPageId,
  parse: (input: RouteInput) => Q,
  read: (ctx: RequestContext, q: Q) => Promise<unknown>,
): Route {
  return {
    method: 'GET',
    access: { page, action: 'view' },
    async run(ctx, input) {
      const q = parse(input);
      return { status: 200, body: await ctx.read((x) => read(x, q)) };
    },
  };
}

/** Rows per transaction: long enough to be quick, short enough not to hold locks for long. */
const CHUNK = 500;
/** A selection is handled in one transaction, so it is at most one chunk. */
const MAX_IDS = CHUNK;

export interface ActionResult {
  done: number;
  remaining: number;
  /** Present (true) when `remaining` is the planner's estimate rather than a count. */
  estimated?: true;
  cursor?: string | null;
}

async function runChunk(
  ctx: RequestContext,
  page: Page,
  action: Action,
  where: Where,
  cursor: ReturnType<typeof parseCursor>,
  lockMode: string,
): Promise<{ done: number; last: Row | null }> {
  const w = where.and(afterCursor(page.keyset, cursor));
  const actor = await ctx.actor();
  return ctx.em.transactional(async (em) => {
    const tx = em as SqlEntityManager;
    const rows = await db(tx).query(
      `select ${action.columns ?? page.actionColumns}${keyColumn(page.keyset)} from ${page.table} ${w.sql} ${orderBy(page.keyset)} limit ${CHUNK} ${lockMode}`,
      w.params,
    );
    if (!rows.length) return { done: 0, last: null };
    const entries = await action.apply(tx, rows, ctx);
    await writeLog(tx, actor, entries);
    return { done: entries.length, last: rows[rows.length - 1]! };
  });
}

/**
 * `{ ids }` handles that selection in one transaction; `{ all: true, filter }` handles the next
 * chunk of rows matching the filter and reports how many still match, so the client can show
 * progress and repeat. `cursor` (from the previous answer) continues after the rows already
 * handled. An action whose rows keep matching after it ran (resubmit of successes, run now) needs
 * it, null on the first call: a caller repeating the call without one would run rows twice.
 */
export async function runAction(ctx: RequestContext, page: Page, name: string, body: unknown): Promise<ActionResult> {
  const action = page.actions[name];
  if (!action) throw notFound(`Unknown action ${JSON.stringify(name)} on ${page.id}`);
  if (!isPlainObject(body)) throw badRequest('Body must be { ids: [...] } or { all: true, filter: {...} }', { body: 'must be an object' });
  const pending = new Where();
  if (action.pending) pending.add(action.pending);

  if (body.ids !== undefined) {
    if (!Array.isArray(body.ids) || body.ids.length === 0)
      throw badRequest('ids must be a non-empty array', { ids: 'must be a non-empty array' });
    if (body.ids.length > MAX_IDS) {
      throw badRequest(
        `A selection holds at most ${MAX_IDS} ids (it is handled in one transaction); for more, act on all rows matching a filter`,
        { ids: `must hold at most ${MAX_IDS} ids` },
      );
    }
    const ids = body.ids.map((raw) => page.parseId(raw));
    const bad = ids.findIndex((id) => id === null);
    if (bad >= 0) throw badRequest(`ids[${bad}] is not an id of ${page.id}`, { ids: `${JSON.stringify(body.ids[bad])} is not a valid id` });
    const scope = page
      .where({}, ctx)
      .and(pending)
      .add(`${page.keyset.id} in (?)`, [...new Set(ids)]);
    return { done: (await runChunk(ctx, page, action, scope, null, 'for update')).done, remaining: 0 };
  }

  if (body.all !== true)
    throw badRequest('Body must be { ids: [...] } or { all: true, filter: {...} }', { ids: 'is required (or all: true)' });
  const filter = body.filter ?? {};
  if (!isPlainObject(filter)) throw badRequest('filter must be an object', { filter: 'must be an object' });
  const where = page.where(filter, ctx).and(pending);
  const hasCursor = Object.hasOwn(body, 'cursor');
  if (!action.converges && !hasCursor) {
    throw badRequest(
      `${name} on all matching rows goes chunk by chunk: send cursor (null on the first call, then the cursor of the previous answer)`,
      {
        cursor: 'is required for this action (null on the first call)',
      },
    );
  }
  const cursor = parseCursor(page.keyset, body.cursor);

  const chunk = await runChunk(ctx, page, action, where, cursor, 'for update skip locked');
  const nextCursor = chunk.last ? cursorOf(page.keyset, chunk.last) : hasCursor && typeof body.cursor === 'string' ? body.cursor : null;
  // Without a cursor, a converging action counts from the start: handled rows no longer match.
  const rest = hasCursor ? where.and(afterCursor(page.keyset, parseCursor(page.keyset, nextCursor))) : where;
  // Capped like a list's count: an exact count after every chunk would read up to a million rows each time.
  const remaining = await listCount(ctx.em, page.table, rest);
  const result: ActionResult = { done: chunk.done, remaining: remaining.value };
  if (remaining.estimated) result.estimated = true;
  result.cursor = remaining.value ? nextCursor : null;
  return result;
}

/** A page module with a list (a table): the others have only their own routes. */
export function isListPage(m: PageModule): m is Page {
  return 'table' in m;
}

/** The object after a change, for those who may view it; the others learn only its id. */
export async function changed(ctx: RequestContext, page: Page['id'], object: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await ctx.can(page, 'view')) ? { object } : { id: object.id };
}
