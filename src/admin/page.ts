/**
 * The shape every page module fills in, and the engine that runs a page's actions on a selection
 * or on "all matching a filter", one chunk per transaction.
 */
import type { IncomingMessage } from 'node:http';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { badRequest, HttpError, isPlainObject } from './http.js';
import { afterCursor, cursorOf, listCount, orderBy, parseCursor, keyColumn, Where, type Count, type Keyset, type Truncated } from './list.js';
import { writeLog, type LogEntry } from './log.js';
import type { PageId, ResolvedOptions } from './options.js';

export interface RequestContext {
  req: IncomingMessage;
  em: SqlEntityManager;
  options: ResolvedOptions;
  actor(): Promise<string | null>;
  /** Whether this request may do `action` on `page` (readOnly and authorize applied). */
  can(page: PageId, action: string): Promise<boolean>;
  /** Throws a 403 unless this request may do `action` on `page`. */
  require(page: PageId, action: string): Promise<void>;
}

export interface ListResult {
  rows: Record<string, unknown>[];
  next: string | null;
  count: Count;
}

export interface Detail {
  /** null: the object is gone, and `extra` says where its work went (a resubmitted failure). */
  object: Record<string, unknown> | null;
  truncated: Record<string, Truncated>;
  /** Page-specific facts shown apart from the fields (a task's attempts, lineage, pending retry). */
  extra?: Record<string, unknown>;
}

type Row = Record<string, unknown>;

/** One action of a page, applied to rows already locked in the caller's transaction. */
export interface Action {
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

export interface Page {
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
  /** JSON fields that may be truncated in a detail and loaded alone. */
  jsonFields: readonly string[];
  field(ctx: RequestContext, id: string | number, name: string): Promise<{ value: unknown } | null>;
  actions: Record<string, Action>;
}

/**
 * An API route of a page that is not a list (Clusters, the health check), at `api/<path>`. `access`
 * is what `authorize` is asked; 'public' routes answer without it, so they must say nothing but status.
 */
export interface Route {
  method: 'GET' | 'POST';
  access: { page: PageId; action: string } | 'public';
  run(ctx: RequestContext, body: unknown): Promise<{ status: number; body: unknown }>;
}

/** Rows per transaction: long enough to be quick, short enough not to hold locks for long. */
export const CHUNK = 500;
/** A selection is handled in one transaction, so it is at most one chunk. */
export const MAX_IDS = CHUNK;

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
    const rows = await tx.execute(
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
  if (!action) throw new HttpError(404, `Unknown action ${JSON.stringify(name)} on ${page.id}`);
  if (!isPlainObject(body)) throw badRequest('Body must be { ids: [...] } or { all: true, filter: {...} }', { body: 'must be an object' });
  const pending = new Where();
  if (action.pending) pending.add(action.pending);

  if (body.ids !== undefined) {
    if (!Array.isArray(body.ids) || body.ids.length === 0) throw badRequest('ids must be a non-empty array', { ids: 'must be a non-empty array' });
    if (body.ids.length > MAX_IDS) {
      throw badRequest(`A selection holds at most ${MAX_IDS} ids (it is handled in one transaction); for more, act on all rows matching a filter`, { ids: `must hold at most ${MAX_IDS} ids` });
    }
    const ids = body.ids.map((raw) => page.parseId(raw));
    const bad = ids.findIndex((id) => id === null);
    if (bad >= 0) throw badRequest(`ids[${bad}] is not an id of ${page.id}`, { ids: `${JSON.stringify(body.ids[bad])} is not a valid id` });
    const scope = page.where({}, ctx).and(pending).add(`${page.keyset.id} in (?)`, [...new Set(ids)]);
    return { done: (await runChunk(ctx, page, action, scope, null, 'for update')).done, remaining: 0 };
  }

  if (body.all !== true) throw badRequest('Body must be { ids: [...] } or { all: true, filter: {...} }', { ids: 'is required (or all: true)' });
  const filter = body.filter ?? {};
  if (!isPlainObject(filter)) throw badRequest('filter must be an object', { filter: 'must be an object' });
  const where = page.where(filter, ctx).and(pending);
  const hasCursor = Object.hasOwn(body, 'cursor');
  if (!action.converges && !hasCursor) {
    throw badRequest(`${name} on all matching rows goes chunk by chunk: send cursor (null on the first call, then the cursor of the previous answer)`, {
      cursor: 'is required for this action (null on the first call)',
    });
  }
  const cursor = parseCursor(page.keyset, body.cursor);

  const chunk = await runChunk(ctx, page, action, where, cursor, 'for update skip locked');
  const nextCursor = chunk.last ? cursorOf(page.keyset, chunk.last) : (hasCursor && typeof body.cursor === 'string' ? body.cursor : null);
  // Without a cursor, a converging action counts from the start: handled rows no longer match.
  const rest = hasCursor ? where.and(afterCursor(page.keyset, parseCursor(page.keyset, nextCursor))) : where;
  // Capped like a list's count: an exact count after every chunk would read up to a million rows each time.
  const remaining = await listCount(ctx.em, page.table, rest);
  const result: ActionResult = { done: chunk.done, remaining: remaining.value };
  if (remaining.estimated) result.estimated = true;
  result.cursor = remaining.value ? nextCursor : null;
  return result;
}
