/**
 * Activity: every admin action, newest first (who, what, on which object, when), from the admin
 * log, filterable by actor, action and page. A caller sees the actions of the pages it may view.
 */
import { badRequest } from '../http.js';
import { PAGE_ACTIONS, PAGE_IDS, type PageId } from '../options.js';
import { viewRoute, type PageModule, type RequestContext } from '../page.js';
import { visibleHistory } from '../routes.js';
import { db } from '../../db/run.js';

const PAGE_SIZE = 50;

interface ActivityQuery {
  actor: string | null;
  action: string | null;
  page: PageId | null;
  /** Entries older than this id (the `next` of the previous answer). */
  before: number | null;
}

const ACTIONS = new Set(Object.values(PAGE_ACTIONS).flat());

/** The query string as filters; an unknown page or action, or an over-long actor, is a 400 naming it. */
function parseActivityQuery(query: Record<string, string>): ActivityQuery {
  const fields: Record<string, string> = {};
  const text = (name: string) => (typeof query[name] === 'string' && query[name] !== '' ? query[name] : null);
  const actor = text('actor');
  const action = text('action');
  const page = text('page');
  const before = text('before');
  if (actor !== null && actor.length > 150) fields.actor = 'must be at most 150 characters';
  if (action !== null && !ACTIONS.has(action as never))
    fields.action = `must be one of ${[...ACTIONS].filter((a) => a !== 'view').join(', ')}`;
  if (page !== null && !(PAGE_IDS as readonly string[]).includes(page)) fields.page = `must be one of ${PAGE_IDS.join(', ')}`;
  if (before !== null && !/^\d{1,15}$/.test(before)) fields.before = 'must be an entry id';
  if (Object.keys(fields).length)
    throw badRequest(
      `Invalid activity filter: ${Object.entries(fields)
        .map(([f, m]) => `${f} ${m}`)
        .join('; ')}`,
      fields,
    );
  return { actor, action, page: page as PageId | null, before: before === null ? null : Number(before) };
}

async function activity(ctx: RequestContext, q: ActivityQuery) {
  const visible: string[] = [];
  for (const p of PAGE_IDS) if (await ctx.can(p, 'view')) visible.push(p);
  const where = ['page in (select jsonb_array_elements_text(?::jsonb))'];
  const params: unknown[] = [JSON.stringify(visible)];
  if (q.actor !== null) (where.push('actor = ?'), params.push(q.actor));
  if (q.action !== null) (where.push('action = ?'), params.push(q.action));
  if (q.page !== null) (where.push('page = ?'), params.push(q.page));
  if (q.before !== null) (where.push('id < ?'), params.push(q.before));
  const rows = await db(ctx.em).query(
    `select id, at, actor, action, page, object_id, summary from ormq_admin_log where ${where.join(' and ')} order by id desc limit ${PAGE_SIZE + 1}`,
    params,
  );
  const shown = rows.slice(0, PAGE_SIZE);
  const entries = await visibleHistory(
    ctx,
    shown.map((r) => ({
      at: new Date(r.at as string).toISOString(),
      actor: (r.actor as string | null) ?? null,
      action: r.action as string,
      summary: r.summary as string,
    })),
  );
  return {
    rows: shown.map((r, i) => ({
      id: Number(r.id),
      ...entries[i]!,
      page: r.page as string,
      objectId: (r.object_id as string | null) ?? null,
    })),
    next: rows.length > PAGE_SIZE ? String(shown.at(-1)!.id) : null,
  };
}

export const activityPage: PageModule = {
  id: 'activity',
  labels: {},
  routes: { '': viewRoute('activity', ({ query }) => parseActivityQuery(query), activity) },
};
