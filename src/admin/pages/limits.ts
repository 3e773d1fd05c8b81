/**
 * The limits per func, shown on the Metrics page: each with its use now (`api/clusters/limits`), and
 * setting or removing one (`api/clusters/actions/limits`, the `limits` action for `authorize`).
 * Both go through `limits` and `setLimit`, as a host's code does.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { limits, setLimit } from '../../limits.js';
import { badRequest, isPlainObject } from '../http.js';
import { writeLog } from '../log.js';
import type { Route } from '../page.js';

const describe = (l: { concurrency?: number | null; rate?: { count: number; perSeconds: number } | null } | null) =>
  l === null
    ? 'removed'
    : [l.concurrency != null && `concurrency ${l.concurrency}`, l.rate && `rate ${l.rate.count} per ${l.rate.perSeconds} s`]
        .filter(Boolean)
        .join(', ');

export const limitRoutes: Record<string, Route> = {
  limits: {
    method: 'GET',
    access: { page: 'clusters', action: 'view' },
    run: async (ctx) => ({ status: 200, body: { limits: await ctx.read((c) => limits(c.em)) } }),
  },
  /** `{ func, limit }`: limit is `{ concurrency?, rate?: { count, perSeconds } }`, or null to remove it. */
  'actions/limits': {
    method: 'POST',
    access: { page: 'clusters', action: 'limits' },
    async run(ctx, { body }) {
      if (!isPlainObject(body) || !('limit' in body))
        throw badRequest('Body must be { func, limit } (limit null removes it)', { limit: 'is required (null removes the limit)' });
      const actor = await ctx.actor();
      return ctx.em.transactional(async (em) => {
        const tx = em as SqlEntityManager;
        const set = await setLimit(tx, body.func as string, body.limit as never);
        await writeLog(tx, actor, [
          {
            action: 'limits',
            page: 'clusters',
            objectId: String(body.func).slice(0, 64),
            summary: `Limit of ${JSON.stringify(body.func)}: ${describe(set)}`,
          },
        ]);
        return { status: 200, body: { func: body.func, limit: set } };
      });
    },
  },
};
