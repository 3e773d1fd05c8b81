/**
 * `GET api/meta` and `GET api/overview`: what the UI needs before it shows a page (the title, each
 * page's columns, what the caller may do there and what each action is called), and the overview's
 * figures, each from the pages the caller may view.
 */
import { findRoute } from './find.js';
import { overview } from './overview.js';
import { isListPage, type Label, type PageModule, type RequestContext, type Route } from './page.js';

async function meta(ctx: RequestContext, pages: readonly PageModule[]) {
  const out: Record<string, unknown> = {
    title: ctx.options.title,
    readOnly: ctx.options.readOnly,
    saveLimit: ctx.options.saveLimit,
    // The zone of schedules that have none of their own.
    timeZone: ctx.options.timeZone,
  };
  const described: Record<string, unknown> = {};
  for (const page of pages) {
    const can: Record<string, boolean> = { view: await ctx.can(page.id, 'view') };
    for (const action of Object.keys(page.labels)) can[action] = await ctx.can(page.id, action);
    const columns = isListPage(page) ? ctx.options.columns[page.id as keyof typeof ctx.options.columns] : null;
    // A page of figures (no actions) is only viewed.
    const actions: Record<string, Label> = {};
    // Only the names: a page's actions carry their SQL and engine settings beside them.
    for (const [name, { label, past, danger }] of Object.entries(page.labels))
      actions[name] = danger ? { label, past, danger } : { label, past };
    described[page.id] = Object.keys(actions).length ? { columns, can, actions } : { can };
    Object.assign(out, page.meta?.(ctx, can.view!));
  }
  out.pages = described;
  return out;
}

/** The admin's own routes beside the pages'. */
export function adminRoutes(pages: readonly PageModule[]): Record<string, Route> {
  return {
    // For any caller who may view a page: the UI needs `can` to show what it may not do there. A
    // caller refused everything learns nothing, not even the title; the client shows the 403.
    meta: { method: 'GET', access: 'any', database: false, run: async (ctx) => ({ status: 200, body: await meta(ctx, pages) }) },
    overview: { method: 'GET', access: 'any', run: async (ctx) => ({ status: 200, body: await ctx.read((x) => overview(x, pages)) }) },
    find: findRoute,
  };
}
