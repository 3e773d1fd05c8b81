/**
 * `GET api/health` for load balancers and probes. Public: it answers without `authorize`, so it
 * never names a key, host or task, and a caller the admin does not open to (refused every page, or
 * not let in by the default) learns only `{ ok }`. 200 when the database answers and every key with
 * a package waiting longer than `healthMaxWait` has a live cluster; 503 otherwise. One check runs
 * per admin per second, whatever the number of probes.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import type { RequestContext, Route } from './page.js';
import { queuedKeys, servedKeys } from './keys.js';
import { PAUSE_IN_FORCE } from '../control.js';
import { db } from '../db/run.js';

/** A probe gives up on a database that does not answer in this time, rather than hanging with it. */
const DB_TIMEOUT = 5_000;

/**
 * The probe's reads, each under the admin's statement timeout. Once the probe has answered (it gave
 * up on a slow database) no further statement is sent: nobody waits for its result.
 */
async function check(em: SqlEntityManager, maxWaitMs: number, answered: { done: boolean }) {
  const [r] = await db(em).query('select extract(epoch from now()) * 1000 as ms');
  const now = Number(r!.ms);
  if (answered.done) return null;
  const served = await servedKeys(em);
  if (answered.done) return null;
  const unserved = (await queuedKeys(em, now))
    .filter((k) => k.oldest !== null && k.oldest > maxWaitMs && !served.has(k.key))
    .map((k) => k.key);
  if (answered.done) return null;
  // Only the keys in question: anyone may call this, and paused keys are as many as were ever paused.
  const paused = unserved.length
    ? (
        await db(em).query(
          `select count(*)::int as n from ormq_paused_key where key in (select jsonb_array_elements_text(?::jsonb)) and ${PAUSE_IN_FORCE}`,
          [JSON.stringify(unserved)],
        )
      )[0]!.n
    : 0;
  return { clusters: served.size, starving: unserved.length - Number(paused) };
}

/** One check per admin at most this often; every probe within it gets the same answer. */
const CHECK_EVERY_MS = 1_000;

interface Answer {
  status: number;
  body: { ok: boolean; problem?: string; liveKeys?: number };
}

/**
 * The check under way or last done, per admin (its resolved options). A flood of probes shares one
 * check: the admin holds at most one connection for them, however many come, and a 100-probe flood
 * against a locked table left nothing waiting after it had answered.
 */
interface Check {
  at: number;
  answer: Promise<Answer>;
  /** Its reads have ended: answered or not, the check holds no connection and waits for none. */
  idle: boolean;
}
const checks = new WeakMap<object, Check>();

async function answer(ctx: RequestContext, done: () => void): Promise<Answer> {
  const maxWait = ctx.options.healthMaxWait;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), DB_TIMEOUT)));
  const answered = { done: false };
  const reads = ctx.read((r) => check(r.em, maxWait * 1000, answered));
  reads.then(done, done);
  try {
    const result = await Promise.race([reads, timedOut]);
    if (result === 'timeout' || result === null)
      return { status: 503, body: { ok: false, problem: `the database did not answer within ${DB_TIMEOUT / 1000} s` } };
    if (result.starving) {
      const keys = result.starving === 1 ? '1 queue key has' : `${result.starving} queue keys have`;
      return { status: 503, body: { ok: false, problem: `${keys} packages waiting over ${maxWait} s and no live cluster` } };
    }
    return { status: 200, body: { ok: true, liveKeys: result.clusters } };
  } catch {
    return { status: 503, body: { ok: false, problem: 'the database does not answer' } };
  } finally {
    answered.done = true;
    clearTimeout(timer);
  }
}

export const healthRoute: Route = {
  method: 'GET',
  access: 'public',
  // Its own bound: one check at a time, so a probe is not refused because the admin's users are busy.
  database: false,
  async run(ctx) {
    let last = checks.get(ctx.options);
    // A check still under way is joined rather than doubled, however long it takes. One that gave up
    // on the database (503 after DB_TIMEOUT) may still wait for it, up to statementTimeout: until
    // it ends, probes get its answer, or each would add a statement waiting on the host's pool.
    if (!last || (last.idle && Date.now() - last.at >= CHECK_EVERY_MS)) {
      const check = { at: Date.now(), idle: false } as Check;
      check.answer = answer(ctx, () => (check.idle = true));
      checks.set(ctx.options, (last = check));
    }
    const { status, body } = await last.answer;
    // Anyone may ask: the figures and the reason are for those the admin opens to. An authorize that
    // throws on a probe without a session (`req.user.isAdmin`) must not fail the probe.
    const opens = await ctx.viewsAny().catch(() => false);
    return { status, body: opens ? body : { ok: body.ok } };
  },
};
