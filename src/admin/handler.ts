/**
 * `queueAdmin(orm, options)`: one Connect-style handler for Express, Koa (through the adapter) and
 * node:http. It serves the built client and the JSON API, both relative to wherever it is mounted,
 * so no base-path setting is needed under Express or Koa or behind a prefix-stripping proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { SCHEDULE_TYPES } from '../schedule-rules.js';
import { ValidationError } from '../validate.js';
import { assertSameOrigin, HttpError, MUTATIONS, notFound, queryOf, readJson, securityHeaders, sendError, sendJson } from './http.js';
import { listCount } from './list.js';
import { notLocal, refuseNotLocal } from './local.js';
import { history } from './log.js';
import { healthRoute } from './health.js';
import { PAGE_ACTIONS, PAGE_IDS, resolveOptions, VIEW_PAGE_IDS, type ListPageId, type PageId, type QueueAdminOptions, type ResolvedOptions, type ViewPageId } from './options.js';
import { overview } from './overview.js';
import { runAction, type Page, type RequestContext, type Route } from './page.js';
import { clusterRoutes } from './pages/clusters.js';
import { failed } from './pages/failed.js';
import { metrics, parseMetricsQuery } from './pages/metrics.js';
import { editQueued, queued, queuedEditActions } from './pages/queued.js';
import { createSchedule, editSchedule, previewRuns } from './pages/schedule-form.js';
import { scheduled } from './pages/scheduled.js';
import { successful } from './pages/successful.js';
import { defaultClientDir, loadClient, serveAsset } from './static.js';

export type NextFunction = (err?: unknown) => void;
export type QueueAdminHandler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;

const PAGES: Record<ListPageId, Page> = { successful, failed, scheduled, queued };

/**
 * The routes of pages that are not lists, by path under api/; each says who may use it (`access`).
 * A 'public' route answers without `authorize` and from anywhere, not only locally: it must reveal
 * nothing about the queue.
 */
const ROUTES: Record<string, Route> = { ...clusterRoutes, health: healthRoute };

class Request implements RequestContext {
  private actorName: Promise<string | null> | undefined;
  constructor(
    readonly req: IncomingMessage,
    readonly em: SqlEntityManager,
    readonly options: ResolvedOptions,
    private readonly decisions = new Map<string, Promise<boolean>>(),
  ) {}

  /**
   * Runs a read in its own transaction under the admin's statement timeout, so one slow query
   * (a search over a huge table, a lock wait) answers 503 instead of holding a connection.
   */
  read<T>(fn: (r: Request) => Promise<T>): Promise<T> {
    return this.em.transactional(async (tx) => {
      await tx.execute(`set local statement_timeout = ${this.options.statementTimeout}`);
      return fn(new Request(this.req, tx as SqlEntityManager, this.options, this.decisions));
    });
  }

  actor(): Promise<string | null> {
    this.actorName ??= Promise.resolve(this.options.actor ? this.options.actor(this.req) : null).then((a) =>
      typeof a === 'string' && a !== '' ? a : null,
    );
    return this.actorName;
  }

  /** readOnly allows only `view`; `authorize` has the last word on everything it is asked. */
  can(page: PageId | ViewPageId, action: string): Promise<boolean> {
    const key = `${page}:${action}`;
    let decision = this.decisions.get(key);
    if (!decision) {
      decision =
        this.options.readOnly && action !== 'view'
          ? Promise.resolve(false)
          : Promise.resolve(this.options.authorize ? this.options.authorize(this.req, { page, action }) : true).then((v) => v === true);
      this.decisions.set(key, decision);
    }
    return decision;
  }

  async require(page: PageId | ViewPageId, action: string): Promise<void> {
    if (!(await this.can(page, action))) {
      const why = this.options.readOnly && action !== 'view' ? 'the admin is read-only' : 'not authorized';
      throw new HttpError(403, `Forbidden: ${action} on ${page} (${why})`);
    }
  }
}

async function meta(r: Request) {
  const pages: Record<string, unknown> = {};
  for (const page of PAGE_IDS) {
    const can: Record<string, boolean> = {};
    for (const action of PAGE_ACTIONS[page]) can[action] = await r.can(page, action);
    pages[page] = { columns: page === 'clusters' ? null : r.options.columns[page], can };
  }
  for (const page of VIEW_PAGE_IDS) pages[page] = { can: { view: await r.can(page, 'view') } };
  return {
    title: r.options.title,
    readOnly: r.options.readOnly,
    saveLimit: r.options.saveLimit,
    // The registry's names say what the app does: only for those who may see its schedules.
    tasks: (pages.scheduled as { can: Record<string, boolean> }).can.view ? r.options.tasks : null,
    scheduleTypes: SCHEDULE_TYPES,
    // The zone of schedules that have none of their own.
    timeZone: r.options.timeZone,
    pages,
  };
}

function methodNotAllowed(allow: string): HttpError {
  return new HttpError(405, `Method not allowed here (allowed: ${allow})`, undefined);
}

/** The route an API path names among ROUTES, if any. */
function routeOf(segments: string[]): Route | undefined {
  const path = segments.join('/');
  return Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
}

/** The object after a change, for those who may view it; the others learn only its id. */
async function changed(r: Request, page: PageId, object: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await r.can(page, 'view')) ? { object } : { id: object.id };
}

async function api(r: Request, method: string, segments: string[], search: string, res: ServerResponse): Promise<void> {
  const query = queryOf(search);
  const [first, second, third, fourth, ...rest] = segments;
  const only = (allowed: string) => {
    if (method !== allowed) throw methodNotAllowed(allowed);
  };

  const route = routeOf(segments);
  if (route) {
    only(route.method);
    if (route.access !== 'public') await r.require(route.access.page, route.access.action);
    const out = await route.run(r, route.method === 'POST' ? await readJson(r.req) : undefined);
    return sendJson(res, out.status, out.body);
  }
  if (segments.length === 1 && first === 'meta') {
    only('GET');
    return sendJson(res, 200, await meta(r));
  }
  if (segments.length === 1 && first === 'overview') {
    only('GET');
    const visible = new Set<PageId>();
    for (const page of PAGE_IDS) if (await r.can(page, 'view')) visible.add(page);
    if (!visible.size) throw new HttpError(403, 'Forbidden: view on any page (not authorized)');
    return sendJson(res, 200, await r.read((x) => overview(x.em, visible)));
  }
  if (segments.length === 1 && first === 'metrics') {
    only('GET');
    await r.require('metrics', 'view');
    const q = parseMetricsQuery(search);
    return sendJson(res, 200, await r.read((x) => metrics(x.em, q)));
  }
  if (!first || !Object.hasOwn(PAGES, first) || rest.length) throw notFound(`No such API route: ${segments.join('/')}`);
  const pageId = first as ListPageId;
  const page = PAGES[pageId];

  if (second === undefined) {
    if (method === 'POST' && pageId === 'scheduled') {
      await r.require(pageId, 'create');
      const object = await createSchedule(r, await readJson(r.req));
      return sendJson(res, 201, await changed(r, pageId, object));
    }
    only('GET');
    await r.require(pageId, 'view');
    return sendJson(res, 200, await r.read((x) => page.list(x, query)));
  }

  if (third === undefined && (second === 'filters' || second === 'count' || (second === 'preview' && pageId === 'scheduled'))) {
    only('GET');
    await r.require(pageId, 'view');
    if (second === 'filters') return sendJson(res, 200, await r.read((x) => page.filters(x)));
    if (second === 'count') {
      const count = await r.read((x) => listCount(x.em, page.table, page.where(query, x)));
      return sendJson(res, 200, { count: count.value, estimated: count.estimated });
    }
    return sendJson(res, 200, { runs: await previewRuns(r, query) });
  }

  if (second === 'actions' && third !== undefined && fourth === undefined) {
    only('POST');
    if (!Object.hasOwn(page.actions, third)) throw notFound(`Unknown action ${JSON.stringify(third)} on ${pageId}`);
    await r.require(pageId, third);
    return sendJson(res, 200, await runAction(r, page, third, await readJson(r.req)));
  }

  const id = page.parseId(second);
  if (id === null) throw notFound(`No ${pageId} object with id ${JSON.stringify(second)}`);

  if (third === undefined) {
    if (method === 'PUT' && pageId === 'scheduled') {
      await r.require(pageId, 'edit');
      return sendJson(res, 200, await changed(r, pageId, await editSchedule(r, id as number, await readJson(r.req))));
    }
    if (method === 'PATCH' && pageId === 'queued') {
      const body = await readJson(r.req);
      // Clearing a lock is a release, whoever asks for it through an edit.
      for (const action of queuedEditActions(body)) await r.require(pageId, action);
      return sendJson(res, 200, await changed(r, pageId, await editQueued(r, id as number, body)));
    }
    only('GET');
    await r.require(pageId, 'view');
    const detail = await r.read(async (x) => {
      const found = await page.detail(x, id);
      return found && { ...found, history: await history(x.em, pageId, id) };
    });
    if (!detail) throw notFound(`No ${pageId} object with id ${JSON.stringify(second)}`);
    return sendJson(res, 200, detail);
  }

  if (third === 'field' && fourth !== undefined) {
    only('GET');
    await r.require(pageId, 'view');
    if (!page.jsonFields.includes(fourth)) throw notFound(`${pageId} has no loadable field ${JSON.stringify(fourth)}`);
    const field = await r.read((x) => page.field(x, id, fourth));
    if (!field) throw notFound(`No ${pageId} object with id ${JSON.stringify(second)}`);
    return sendJson(res, 200, field.value);
  }
  throw notFound(`No such API route: ${segments.join('/')}`);
}

/** PostgreSQL's code for a statement stopped by statement_timeout (or cancelled). */
const QUERY_CANCELED = '57014';

/** The database is down, restarting or unreachable: the request may succeed if tried again. */
function isUnavailable(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/.test(code) || /^(08|57P0)/.test(code))) {
    return true;
  }
  return typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}

function fail(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpError) return sendError(res, err);
  if (err instanceof ValidationError) return sendError(res, new HttpError(400, err.message, err.errors));
  if ((err as { code?: unknown } | null)?.code === QUERY_CANCELED) {
    res.setHeader('Retry-After', '5');
    return sendError(res, new HttpError(503, 'The query took longer than the admin allows (statementTimeout); narrow the filter or try again later'));
  }
  if (isUnavailable(err)) {
    res.setHeader('Retry-After', '5');
    return sendError(res, new HttpError(503, 'The database is unavailable; try again in a few seconds'));
  }
  // Unexpected: the details go to the server's log, never to the client.
  console.error('ormq admin:', err);
  sendError(res, new HttpError(500, 'Internal error; the server log has the details'));
}

/**
 * The admin as a Node request handler. `orm` is the host's MikroORM; each request works on its own
 * `orm.em.fork()`. Throws at creation when the options are wrong or the client is not built.
 */
export function queueAdmin(orm: { em: EntityManager }, options: QueueAdminOptions = {}): QueueAdminHandler {
  const opts = resolveOptions(options);
  const assets = loadClient(options.clientDir ?? defaultClientDir());
  const base = opts.basePath;

  return function ormqAdmin(req, res, next) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    const search = q < 0 ? '' : url.slice(q);
    let original: string;
    if (base) {
      if (path !== base && !path.startsWith(`${base}/`)) {
        if (next) return next();
        return sendError(res, notFound());
      }
      original = path;
      path = path.slice(base.length) || '/';
    } else {
      // Express and the Koa adapter strip the mount path from req.url and keep the full one here.
      original = ((req as { originalUrl?: string }).originalUrl ?? url).split('?')[0]!;
    }
    if (!path.startsWith('/')) path = `/${path}`;
    handle(req, res, path, original, search).catch((err) => fail(res, err));
  };

  async function handle(req: IncomingMessage, res: ServerResponse, path: string, original: string, search: string): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const isApi = path === '/api' || path.startsWith('/api/');
    let segments: string[] = [];
    if (isApi) {
      try {
        segments = path.slice(5).split('/').map(decodeURIComponent);
      } catch {
        segments = [];
      }
    }
    // Locked by default: the host opens the admin by passing authorize.
    if (!opts.authorize && routeOf(segments)?.access !== 'public') {
      const why = notLocal(req);
      if (why) return refuseNotLocal(res, why, isApi);
    }
    if (MUTATIONS.has(method)) assertSameOrigin(req);

    if (isApi) {
      if (!segments.length) throw notFound('No such API route');
      const r = new Request(req, orm.em.fork() as SqlEntityManager, opts);
      return api(r, method, segments, search, res);
    }

    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
    if (path === '/' && !original.endsWith('/')) {
      // Relative, so it is right under any prefix a proxy adds or strips: ".../queue-admin" → "queue-admin/".
      const last = original.slice(original.lastIndexOf('/') + 1);
      securityHeaders(res);
      res.statusCode = 302;
      res.setHeader('Location', `${last || '.'}/${search}`);
      res.setHeader('Cache-Control', 'no-store');
      res.end();
      return;
    }
    const name = path === '/' ? 'index.html' : path.slice(1);
    if (!serveAsset(assets, name, req, res)) throw notFound(`No such file: ${name}`);
  }
}
