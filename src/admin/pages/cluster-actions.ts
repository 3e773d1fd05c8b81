/**
 * The Clusters page's actions: pause and resume a key (until resumed, or for a while), stop one
 * running task (its cluster aborts the task's signal), and forget a process that stopped answering
 * or release the packages it held.
 */
import { db } from '../../db/run.js';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { checkKey, pauseKey, resumeKey, stopPackage } from '../../control.js';
import { wakeKeys } from '../../producer.js';
import { responding } from '../../liveness.js';
import { badRequest, HttpError, isPlainObject, notFound } from '../http.js';
import { writeLog } from '../log.js';
import type { Route } from '../page.js';

type Row = Record<string, unknown>;

function keyOf(body: unknown): string {
  if (!isPlainObject(body)) throw badRequest('Body must be { key: "…" }', { body: 'must be an object' });
  return checkKey(body.key);
}

/** "15 min", "1 h", "90 s": a pause's length as the log says it. */
function lasting(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

export function pausing(pause: boolean): Route {
  return {
    method: 'POST',
    access: { page: 'clusters', action: pause ? 'pause' : 'resume' },
    async run(ctx, { body }) {
      const key = keyOf(body);
      // `for`: seconds until the pause ends by itself; absent or null: until resumed.
      const seconds = pause && isPlainObject(body) && body.for !== undefined && body.for !== null ? body.for : undefined;
      const actor = await ctx.actor();
      const changed = await ctx.em.transactional(async (em) => {
        const tx = em as SqlEntityManager;
        const done = pause ? await pauseKey(tx, key, { for: seconds as number | undefined, by: actor }) : await resumeKey(tx, key);
        if (done) {
          const how = pause
            ? `Paused queue key ${JSON.stringify(key)}${seconds === undefined ? ' until resumed' : ` for ${lasting(seconds as number)}`}`
            : `Resumed queue key ${JSON.stringify(key)}`;
          await writeLog(tx, actor, [{ action: pause ? 'pause' : 'resume', page: 'clusters', objectId: key.slice(0, 64), summary: how }]);
        }
        return done;
      });
      return { status: 200, body: { key, paused: pause, changed } };
    },
  };
}

const CLUSTER_ID = /^[0-9a-f]{32}$/;

function clusterOf(body: unknown, what: string): string {
  if (!isPlainObject(body)) throw badRequest(`Body must be { cluster: "…" } to ${what}`, { body: 'must be an object' });
  if (typeof body.cluster !== 'string' || !CLUSTER_ID.test(body.cluster)) {
    throw badRequest('Invalid cluster: must be a cluster process id (32 hex digits)', {
      cluster: 'must be a cluster process id (32 hex digits)',
    });
  }
  return body.cluster;
}

const who = (r: Row) => `${JSON.stringify(r.name)} (${r.host as string} pid ${r.pid as number})`;

/**
 * A route acting on a process that stopped answering (`{ cluster }`): its row locked for the change
 * in the route's transaction (404 when gone, 409 while it answers), then `change` with the actor.
 */
function onDeadProcess(
  action: 'forget' | 'release',
  what: string,
  change: (tx: SqlEntityManager, id: string, row: Row, actor: string | null) => Promise<Record<string, unknown>>,
): Route {
  return {
    method: 'POST',
    access: { page: 'clusters', action },
    async run(ctx, { body }) {
      const id = clusterOf(body, what);
      const actor = await ctx.actor();
      return ctx.em.transactional(async (em) => {
        const tx = em as SqlEntityManager;
        const [row] = await db(tx).query(
          `select name, host, pid, ${responding('c')} as alive from ormq_cluster c where id = ? for update`,
          [id],
        );
        if (!row) throw notFound(`No cluster process ${id} (it stopped, or was forgotten)`);
        if (row.alive) throw new HttpError(409, `Cluster ${who(row)} is responding: stop the process itself rather than ${what} it`);
        return { status: 200, body: await change(tx, id, row, actor) };
      });
    },
  };
}

/** Removes the row of a process that stopped answering (the packages it held stay locked until released). */
export const forget = onDeadProcess('forget', 'forget', async (tx, id, row, actor) => {
  await db(tx).query('delete from ormq_cluster where id = ?', [id]);
  await writeLog(tx, actor, [
    { action: 'forget', page: 'clusters', objectId: id, summary: `Forgot cluster process ${who(row)}, which had stopped answering` },
  ]);
  return { forgotten: true, cluster: id };
});

/** Releases the packages a process that stopped answering held, so live clusters of its key claim them now. */
export const release = onDeadProcess('release', 'release the packages of', async (tx, id, row, actor) => {
  // Its packages are of its key: the claim index finds them without reading the rest of the queue.
  const freed = await db(tx).query('update ormq_queued set lock = null where key = ? and locked_by = ? and lock is not null returning id', [
    row.name,
    id,
  ]);
  if (freed.length) {
    await wakeKeys(tx, [row.name as string]);
    await writeLog(tx, actor, [
      {
        action: 'release',
        page: 'clusters',
        objectId: id,
        summary: `Released ${freed.length} package${freed.length === 1 ? '' : 's'} held by cluster process ${who(row)}`,
      },
    ]);
  }
  return { released: freed.length, cluster: id };
});

/**
 * `{ cluster, package }`: asks the process running that package to stop it. The claim is checked as
 * it is now, not as the last heartbeat saw it: a package already gone finished before the stop
 * arrived (200, nothing asked); one the process no longer holds is a 409.
 */
export const stop: Route = {
  method: 'POST',
  access: { page: 'clusters', action: 'stop' },
  async run(ctx, { body }) {
    if (!isPlainObject(body)) throw badRequest('Body must be { cluster: "…", package: N }', { body: 'must be an object' });
    const fields: Record<string, string> = {};
    const cluster = typeof body.cluster === 'string' && CLUSTER_ID.test(body.cluster) ? body.cluster : null;
    const pkg = Number.isSafeInteger(body.package) && (body.package as number) > 0 ? (body.package as number) : null;
    if (cluster === null) fields.cluster = 'must be a cluster process id (32 hex digits)';
    if (pkg === null) fields.package = 'must be a queued package id';
    if (cluster === null || pkg === null)
      throw badRequest(
        `Invalid stop request: ${Object.entries(fields)
          .map(([f, m]) => `${f} ${m}`)
          .join('; ')}`,
        fields,
      );
    const actor = await ctx.actor();
    return ctx.em.transactional(async (em) => {
      const tx = em as SqlEntityManager;
      const [row] = await db(tx).query(`select name, host, pid, ${responding('c')} as alive from ormq_cluster c where c.id = ?`, [cluster]);
      if (!row) throw notFound(`No cluster process ${cluster} (it stopped, or was pruned)`);
      const [held] = await db(tx).query(
        `select lock is not null and locked_by = ? as mine, left(payload->>'name', 100) as name, payload->>'id' as task_id from ormq_queued where id = ?`,
        [cluster, pkg],
      );
      if (!held)
        return {
          status: 200,
          body: { requested: false, finished: true, package: pkg, cluster, message: `Package ${pkg} finished before the stop arrived` },
        };
      if (!held.mine)
        throw new HttpError(409, `Package ${pkg} is no longer held by cluster ${who(row)}: it was released, or another process claimed it`);
      if (!row.alive)
        throw new HttpError(409, `Cluster ${who(row)} is not responding: it cannot stop the task; release its packages instead`);
      await stopPackage(tx, { id: pkg, lockedBy: cluster }, actor ?? null, false);
      const name = JSON.stringify(held.name ?? held.task_id ?? pkg);
      await writeLog(tx, actor, [
        // Under the task's id: the stop shows in the history of the task it failed.
        {
          action: 'stop',
          page: 'clusters',
          objectId: typeof held.task_id === 'string' ? held.task_id.slice(0, 64) : pkg,
          summary: `Asked cluster ${who(row)} to stop ${name} (package ${pkg})`,
        },
      ]);
      return { status: 202, body: { requested: true, package: pkg, cluster } };
    });
  },
};
