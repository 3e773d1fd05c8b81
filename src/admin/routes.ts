/**
 * The API as one table: every page module's routes under `api/<page>`, the routes every list page
 * has (list, filters, count, actions, detail, field), and the admin's own (meta, overview, health).
 * The handler only matches a path in it; no route is known to it by name.
 */
import { HttpError, notFound } from './http.js';
import { listCount } from './count.js';
import { history, type HistoryEntry } from './log.js';
import { isListPage, runAction, type Page, type PageModule, type RequestContext, type Route } from './page.js';
import { db } from '../db/run.js';

const ok = (body: unknown) => ({ status: 200, body });

const TASK_ID = /\b[0-9a-f]{32}\b/g;
const NAMES_TASK = /\b[0-9a-f]{32}\b/;

/**
 * History as the caller may see it. A summary's task id ("Ran now as task …", "Resubmitted … as
 * task …") names a task that ends on Successful or Failed tasks, either one: it is shown to those
 * who may view both, as a schedule's last run whose outcome is not known yet.
 */
export async function visibleHistory(ctx: RequestContext, entries: HistoryEntry[]): Promise<HistoryEntry[]> {
  if (!entries.some((e) => NAMES_TASK.test(e.summary))) return entries;
  if ((await ctx.can('successful', 'view')) && (await ctx.can('failed', 'view'))) return entries;
  return entries.map((e) => ({ ...e, summary: e.summary.replace(TASK_ID, '(hidden)') }));
}

/** What every list page answers: its rows, filter choices and count, its actions, an object and one of its fields. */
function listRoutes(page: Page): Record<string, Route> {
  const view = { page: page.id, action: 'view' };
  const missing = (raw: string) => notFound(`No ${page.id} object with id ${JSON.stringify(raw)}`);
  return {
    '': { method: 'GET', access: view, run: async (ctx, { query }) => ok(await ctx.read((x) => page.list(x, query))) },
    filters: { method: 'GET', access: view, run: async (ctx) => ok(await ctx.read((x) => page.filters(x))) },
    count: {
      method: 'GET',
      access: view,
      async run(ctx, { query }) {
        const count = await ctx.read((x) => listCount(x.em, page.table, page.where(query, x)));
        return ok({ count: count.value, estimated: count.estimated });
      },
    },
    'actions/:action': {
      method: 'POST',
      access({ params }) {
        if (!Object.hasOwn(page.actions, params.action!)) throw notFound(`Unknown action ${JSON.stringify(params.action)} on ${page.id}`);
        return [{ page: page.id, action: params.action! }];
      },
      run: async (ctx, { params, body }) => ok(await runAction(ctx, page, params.action!, body)),
    },
    ':id': {
      method: 'GET',
      access: view,
      async run(ctx, { id, params }) {
        const detail = await ctx.read(async (x) => {
          const found = await page.detail(x, id);
          return (
            found && {
              ...found,
              history: await visibleHistory(x, await history(x.em, page.id, id, page.id === 'successful' || page.id === 'failed')),
            }
          );
        });
        if (!detail) throw missing(params.id!);
        return ok(detail);
      },
    },
    ':id/field/:name': {
      method: 'GET',
      access: view,
      async run(ctx, { id, params }) {
        const name = params.name!;
        if (!page.jsonFields.includes(name)) throw notFound(`${page.id} has no loadable field ${JSON.stringify(name)}`);
        // The name is one of jsonFields, checked above; the row must be on this page.
        const w = page.where({}, ctx).add(`${page.keyset.id} = ?`, id);
        const [row] = await ctx.read((x) => db(x.em).query(`select ${name} from ${page.table} ${w.sql}`, w.params));
        if (!row) throw missing(params.id!);
        return ok(row[name] ?? null);
      },
    },
  };
}

interface Entry {
  segments: string[];
  /** How many segments are literal: the most literal of the paths that match wins ('scheduled/preview' over 'scheduled/:id'). */
  literal: number;
  /** The module the path is under; none for the admin's own routes. */
  page?: PageModule;
  routes: Route[];
}

export interface Matched {
  routes: Route[];
  params: Record<string, string>;
  id: string | number;
}

export class RouteTable {
  private readonly entries: Entry[] = [];

  /** `root` routes live at `api/<path>`; each module's under `api/<its id>`. */
  constructor(root: Record<string, Route>, modules: readonly PageModule[]) {
    for (const [path, route] of Object.entries(root)) this.add(undefined, path, route);
    for (const m of modules) {
      const routes: Record<string, Route | Route[]>[] = [m.routes];
      if (isListPage(m)) routes.unshift(listRoutes(m));
      for (const set of routes) {
        for (const [rest, route] of Object.entries(set)) this.add(m, rest ? `${m.id}/${rest}` : m.id, ...([] as Route[]).concat(route));
      }
    }
  }

  private add(page: PageModule | undefined, path: string, ...routes: Route[]): void {
    const segments = path.split('/');
    const same = this.entries.find((e) => e.segments.join('/') === path);
    if (same) {
      for (const r of routes) {
        if (same.routes.some((x) => x.method === r.method)) throw new Error(`Two routes for ${r.method} api/${path}`);
        same.routes.push(r);
      }
      return;
    }
    this.entries.push({ segments, literal: segments.filter((s) => !s.startsWith(':')).length, page, routes });
  }

  /** The path's routes (one per method), or undefined. An object id the page cannot parse is a 404. */
  match(path: string[]): Matched | undefined {
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (e.segments.length !== path.length || (best && best.literal >= e.literal)) continue;
      if (e.segments.every((s, i) => s.startsWith(':') || s === path[i])) best = e;
    }
    if (!best) return undefined;
    const params: Record<string, string> = {};
    best.segments.forEach((s, i) => {
      if (s.startsWith(':')) params[s.slice(1)] = path[i]!;
    });
    let id: string | number = '';
    if (params.id !== undefined) {
      const parsed = best.page && isListPage(best.page) ? best.page.parseId(params.id) : null;
      if (parsed === null) throw notFound(`No ${best.page?.id ?? ''} object with id ${JSON.stringify(params.id)}`);
      id = parsed;
    }
    return { routes: best.routes, params, id };
  }

  /** Whether every route at the path answers without authorize (the health check). */
  isPublic(path: string[]): boolean {
    try {
      const m = this.match(path);
      return !!m && m.routes.every((r) => r.access === 'public');
    } catch {
      return false;
    }
  }
}

/** A 405 names the methods the path answers, in its message and in the Allow header HTTP asks for. */
export function methodNotAllowed(allow: string): HttpError {
  const err = new HttpError(405, `Method not allowed here (allowed: ${allow})`, undefined);
  err.headers.Allow = allow;
  return err;
}
