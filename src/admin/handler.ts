/**
 * `queueAdmin(orm, options)`: one Connect-style handler for Express, Koa (through the adapter) and
 * node:http. It serves the built client and the JSON API, both relative to wherever it is mounted,
 * so no base-path setting is needed under Express or Koa or behind a prefix-stripping proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { ValidationError } from '../validate.js';
import { assertSameOrigin, HttpError, MUTATIONS, notFound, queryOf, readJson, securityHeaders, sendError, sendJson } from './http.js';
import { exchangeToken, hasToken, hostAllowed, linkToken, refuseHost, refuseWithoutToken } from './access.js';
import { checkSchema, inSchema, schemaOf } from '../table-names.js';
import { Gate } from './gate.js';
import { healthRoute } from './health.js';
import { adminRoutes } from './meta.js';
import { PAGE_IDS, resolveOptions, type PageId, type QueueAdminOptions, type ResolvedOptions, type ViewPageId } from './options.js';
import type { Access, RequestContext, Route, RouteInput } from './page.js';
import { PAGES } from './pages/index.js';
import { timedReads, type NativePool } from '../db/timed.js';
import { methodNotAllowed, RouteTable } from './routes.js';
import { defaultClientDir, loadClient, serveAsset } from './static.js';

export type NextFunction = (err?: unknown) => void;
export type QueueAdminHandler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;

/**
 * Every API route, by path under api/; each says who may use it (`access`). A 'public' route
 * answers without `authorize` and from anywhere, not only locally: it must reveal nothing about the queue.
 */
const ROUTES = new RouteTable({ ...adminRoutes(PAGES), health: healthRoute }, PAGES);

/**
 * What every request of one admin works through: the host's EntityManager, the pg pool of its reads
 * (a read replica's when the ORM has `replicas`, else the primary's) and the schema of ormq's tables.
 * Writes (actions, the log) go through a fork of the EntityManager, whose `execute` is the primary's.
 */
interface Database {
  root: SqlEntityManager;
  pool(): Promise<NativePool>;
  /** Whether `pool` is a replica's. */
  replica: boolean;
  schema: string | null;
}

class AdminRequest implements RequestContext {
  private actorName: Promise<string | null> | undefined;
  private fork: SqlEntityManager | undefined;
  constructor(
    readonly req: IncomingMessage,
    private readonly emOf: () => SqlEntityManager,
    readonly options: ResolvedOptions,
    private readonly db: Database,
    private readonly decisions = new Map<string, Promise<boolean>>(),
  ) {}

  /** The request's own EntityManager, forked when first used: a read through `read` needs none. */
  get em(): SqlEntityManager {
    return (this.fork ??= this.emOf());
  }

  /**
   * Runs a read with each statement under the admin's statement timeout, so one slow query (a
   * search over a huge table, a lock wait) answers 503 instead of holding a connection.
   */
  async read<T>(fn: (r: AdminRequest) => Promise<T>): Promise<T> {
    const em = timedReads(this.db.root, () => this.em, await this.db.pool(), this.options.statementTimeout, this.db.schema);
    return fn(new AdminRequest(this.req, () => em, this.options, this.db, this.decisions));
  }

  /** Reads go to a read replica of the host's ORM. */
  get replica(): boolean {
    return this.db.replica;
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

  async viewsAny(): Promise<boolean> {
    // A public route (health) is reached without the default's token check: it is asked here.
    if (this.options.token && !hasToken(this.req, this.options.token.value)) return false;
    for (const page of PAGE_IDS) if (await this.can(page, 'view')) return true;
    return false;
  }

  async require(page: PageId | ViewPageId, action: string): Promise<void> {
    if (!(await this.can(page, action))) {
      const why = this.options.readOnly && action !== 'view' ? 'the admin is read-only' : 'not authorized';
      throw new HttpError(403, `Forbidden: ${action} on ${page} (${why})`);
    }
  }
}

/** Asks `authorize` what the route needs, reading the body first when the answer depends on it. */
async function allow(r: AdminRequest, route: Route, input: RouteInput): Promise<void> {
  const rules: Access[] = typeof route.access === 'function' ? route.access(input) : [route.access];
  for (const rule of rules) {
    if (rule === 'public' || rule === 'open') continue;
    if (rule === 'any') {
      if (!(await r.viewsAny())) throw new HttpError(403, 'Forbidden: view on any page (not authorized)');
    } else await r.require(rule.page, rule.action);
  }
}

/** Before a body the access depends on is read: the caller may do at least one of what the route could need. */
async function allowAny(r: AdminRequest, rules: { page: PageId; action: string }[]): Promise<void> {
  for (const { page, action } of rules.slice(0, -1)) if (await r.can(page, action)) return;
  const last = rules[rules.length - 1]!;
  await r.require(last.page, last.action);
}

async function api(r: AdminRequest, gate: Gate, method: string, segments: string[], search: string, res: ServerResponse): Promise<void> {
  const matched = ROUTES.match(segments);
  if (!matched) throw notFound(`No such API route: ${segments.join('/')}`);
  const route = matched.routes.find((x) => x.method === method);
  if (!route) throw methodNotAllowed(matched.routes.map((x) => x.method).join(', '));
  const input: RouteInput = { search, query: queryOf(search), body: undefined, params: matched.params, id: matched.id };
  const reads = route.method !== 'GET';
  if (reads && route.accessReadsBody) {
    await allowAny(r, route.accessReadsBody);
    input.body = await readJson(r.req);
  }
  await allow(r, route, input);
  if (reads && !route.accessReadsBody) input.body = await readJson(r.req);
  const run = () => route.run(r, input);
  const key = `${method} ${segments.join('/')}?${search}`;
  const out = await (route.database === false ? run() : route.shared ? gate.share(key, run) : gate.run(run));
  return sendJson(res, out.status, out.body);
}

/** PostgreSQL's code for a statement stopped by statement_timeout (or cancelled). */
const QUERY_CANCELED = '57014';

/** The database is down, restarting or unreachable: the request may succeed if tried again. */
function isUnavailable(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (
    typeof code === 'string' &&
    (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/.test(code) || /^(08|57P0)/.test(code))
  ) {
    return true;
  }
  return (
    typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message)
  );
}

function fail(res: ServerResponse, err: unknown, log: ResolvedOptions['log']): void {
  if (err instanceof HttpError) return sendError(res, err);
  if (err instanceof ValidationError) return sendError(res, new HttpError(400, err.message, err.errors));
  if ((err as { code?: unknown } | null)?.code === QUERY_CANCELED) {
    res.setHeader('Retry-After', '5');
    return sendError(
      res,
      new HttpError(503, 'The query took longer than the admin allows (statementTimeout); narrow the filter or try again later'),
    );
  }
  if (isUnavailable(err)) {
    res.setHeader('Retry-After', '5');
    return sendError(res, new HttpError(503, 'The database is unavailable; try again in a few seconds'));
  }
  // Unexpected: the details go to the server's log, never to the client.
  try {
    log('error', 'admin request failed', err);
  } catch {
    // A log that throws must not keep the client from its answer.
  }
  sendError(res, new HttpError(500, 'Internal error; the server log has the details'));
}

/**
 * "…/queue-admin" → "./queue-admin/", relative, so it is right under any prefix a proxy adds or
 * strips. The "./" keeps a last segment such as "https:evil.example" (a host's `/:tenant` mount)
 * from reading as a URL of its own.
 */
function toFolder(res: ServerResponse, original: string, search: string): void {
  const last = original.slice(original.lastIndexOf('/') + 1);
  securityHeaders(res);
  res.statusCode = 302;
  res.setHeader('Location', `./${last ? `${last}/` : ''}${search}`);
  res.setHeader('Cache-Control', 'no-store');
  res.end();
}

/**
 * The admin as a Node request handler. `orm` is the host's MikroORM; each request works on its own
 * `orm.em.fork()`. Throws at creation when the options are wrong or the client is not built.
 */
export function queueAdmin<Req extends IncomingMessage = IncomingMessage>(
  orm: { em: EntityManager },
  options: QueueAdminOptions<Req> = {},
): QueueAdminHandler {
  // The handler receives the host's request as it comes; Req only types what the host's middleware added.
  const opts = resolveOptions(options as unknown as QueueAdminOptions);
  const schema = schemaOf(orm.em, checkSchema(options.schema, 'queueAdmin: schema'));
  const assets = loadClient(options.clientDir ?? defaultClientDir());
  const base = opts.basePath;
  if (opts.token?.generated) {
    const link = `${base ?? '…'}/?token=${opts.token.value}`;
    opts.log(
      'info',
      `open ${link} to sign in${base ? '' : ' (… is where the admin is mounted)'}; a new token at each start, set ORMQ_ADMIN_TOKEN to keep one`,
    );
  }
  const pools = new Map<unknown, Promise<NativePool>>();
  const gate = new Gate(opts.maxConcurrentReads);
  const replicas = (orm.em.config.get('replicas') as unknown[] | undefined)?.length ?? 0;
  const db: Database = {
    root: orm.em as SqlEntityManager,
    schema,
    replica: replicas > 0,
    // With replicas, MikroORM's read connection: one of them at random, as its own reads take.
    // A failure (the database unreachable at the first request) is not kept: the next request asks again.
    pool: () => {
      const connection = orm.em.getConnection(replicas > 0 ? 'read' : 'write');
      let pool = pools.get(connection);
      if (!pool) {
        pool = (connection.getNativeClient() as Promise<NativePool>).catch((err: unknown) => {
          pools.delete(connection);
          throw err;
        });
        pools.set(connection, pool);
      }
      return pool;
    },
  };

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
    handle(req, res, path, original, search).catch((err) => fail(res, err, opts.log));
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
    if (opts.allowedHosts && !hostAllowed(opts.allowedHosts, req.headers.host)) return refuseHost(res, req.headers.host);
    const page = !isApi && path === '/' && (method === 'GET' || method === 'HEAD');
    if (page && !original.endsWith('/')) return toFolder(res, original, search);
    // Locked by default: the access token, or the host's own decision through authorize.
    if (opts.token && !ROUTES.isPublic(segments)) {
      if (page && linkToken(search, opts.token.value)) return exchangeToken(req, res, opts.token.value, search);
      if (!hasToken(req, opts.token.value)) return refuseWithoutToken(req, res, isApi, page, search);
    }
    if (MUTATIONS.has(method)) assertSameOrigin(req);

    if (isApi) {
      if (!segments.length) throw notFound('No such API route');
      const r = new AdminRequest(req, () => inSchema(orm.em.fork(), schema) as SqlEntityManager, opts, db);
      return api(r, gate, method, segments, search, res);
    }

    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
    const name = path === '/' ? 'index.html' : path.slice(1);
    if (!serveAsset(assets, name, req, res)) throw notFound(`No such file: ${name}`);
  }
}
