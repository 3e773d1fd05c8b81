/**
 * `GET api/health` for load balancers and probes. Public: it answers without `authorize`, so it
 * says nothing but status (no key, host or task names). 200 when the database answers and every
 * key with a package waiting longer than `healthMaxWait` has a live cluster; 503 otherwise.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import type { Route } from './page.js';
import { queuedKeys, servedKeys } from './pages/clusters.js';
import { PAUSE_IN_FORCE } from '../control.js';

/** A probe gives up on a database that does not answer in this time, rather than hanging with it. */
const DB_TIMEOUT = 5_000;

/**
 * The probe's reads, each under the admin's statement timeout. Once the probe has answered (it gave
 * up on a slow database) no further statement is sent: nobody waits for its result.
 */
async function check(em: SqlEntityManager, maxWaitMs: number, answered: { done: boolean }) {
  const [r] = await em.execute('select extract(epoch from now()) * 1000 as ms');
  const now = Number(r!.ms);
  if (answered.done) return null;
  const served = await servedKeys(em);
  if (answered.done) return null;
  const unserved = (await queuedKeys(em, now)).filter((k) => k.oldest !== null && k.oldest > maxWaitMs && !served.has(k.key)).map((k) => k.key);
  if (answered.done) return null;
  // Only the keys in question: anyone may call this, and paused keys are as many as were ever paused.
  const paused = unserved.length
    ? (await em.execute(`select count(*)::int as n from ormq_paused_key where key in (select jsonb_array_elements_text(?::jsonb)) and ${PAUSE_IN_FORCE}`, [JSON.stringify(unserved)]))[0]!.n
    : 0;
  return { clusters: served.size, starving: unserved.length - Number(paused) };
}

export const healthRoute: Route = {
  method: 'GET',
  access: 'public',
  async run(ctx) {
    const maxWait = ctx.options.healthMaxWait;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), DB_TIMEOUT)));
    const answered = { done: false };
    try {
      const result = await Promise.race([ctx.read((r) => check(r.em, maxWait * 1000, answered)), timedOut]);
      if (result === 'timeout' || result === null) return { status: 503, body: { ok: false, problem: `the database did not answer within ${DB_TIMEOUT / 1000} s` } };
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
  },
};
