/**
 * ormq behind a real PgBouncer in transaction mode: a server connection serves one transaction,
 * then goes to another client, so named prepared statements and LISTEN do not survive. The cluster
 * runs with `preparedStatements: false` and LISTENs on a direct connection; enqueue, the waiters
 * and the admin go through PgBouncer.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Server } from 'node:http';
import { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, enqueue, enqueueMany, fetchTask, queueAdmin, queueEntities, result } from '../src/index.js';
import { freshOrm, sql, waitFor, type TestDb } from './helpers/db.js';
import { client, close, serve, testClient } from './helpers/admin.js';
import { startPgBouncer, type Bouncer } from './helpers/pgbouncer.js';

interface Ctx {
  direct: MikroORM;
  db: TestDb;
  close(): Promise<void>;
  bouncer: Bouncer;
  orm: MikroORM;
  cluster: Cluster;
  logs: string[];
}

const B = suite<Ctx>('through PgBouncer in transaction mode');
B.before(async (ctx) => {
  const fresh = await freshOrm();
  Object.assign(ctx, { direct: fresh.orm, db: fresh.db, close: fresh.close });
  ctx.bouncer = await startPgBouncer(fresh.db.url);
  ctx.orm = await MikroORM.init({ clientUrl: ctx.bouncer.through(fresh.db.url), entities: queueEntities, pool: { min: 0, max: 6 } });
  ctx.logs = [];
  ctx.cluster = new Cluster(ctx.orm, {
    preparedStatements: false,
    listenConnection: fresh.db.url,
    // Only notifications can make this cluster prompt; a lost LISTEN would show as a minute's wait.
    poll: 60_000,
    workers: 4,
    bulk: 20,
    ackFailures: true,
    log: (level, message) => ctx.logs.push(`${level}: ${message}`),
    tasks: {
      add: (a: number, b: number) => a + b,
      boom: () => {
        throw new Error('failed on purpose');
      },
    },
  });
  await ctx.cluster.start();
});
B.after(async (ctx) => {
  await ctx.cluster.stop();
  await ctx.orm.close(true);
  await ctx.bouncer.stop();
  await ctx.close();
});

B('PgBouncer really is in front: the pool is in transaction mode', async ({ orm }) => {
  // Two transactions in a row of one client may land on different server sessions: a session
  // setting made outside a transaction does not stay with the client.
  const pids = new Set<number>();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const [r] = await orm.em.fork().execute('select pg_backend_pid() as pid, pg_sleep(0.05)');
      pids.add(Number(r!.pid));
    }),
  );
  assert.ok(pids.size <= 4, `at most default_pool_size server sessions (${pids.size})`);
  const [app] = await orm.em.fork().execute("select current_setting('application_name') as a");
  assert.ok(app, 'answers');
});

B('enqueue and enqueueMany in a host transaction; the cluster runs them; result waits for them', async ({ orm, db, logs }) => {
  const one = await orm.em.fork().transactional((em) => enqueue(em, 'add', [2, 3]));
  assert.is(await result(orm.em.fork(), one, { wait: 20_000, listenConnection: db.url }), 5);
  const ids = await orm.em.fork().transactional((em) =>
    enqueueMany(
      em,
      Array.from({ length: 50 }, (_, i) => ({ func: 'add', args: [i, 1] })),
    ),
  );
  for (const [i, id] of ids.entries()) assert.is(await result(orm.em.fork(), id, { wait: 20_000, listenConnection: db.url }), i + 1);
  const delayed = await enqueue(orm.em.fork(), 'add', [1, 1], { delay: 0.5 });
  const task = await fetchTask(orm.em.fork(), delayed, { wait: 20_000, listenConnection: db.url });
  assert.is(task!.result, 2);
  assert.equal(
    logs.filter((l) => /^(warn|error)/.test(l)),
    [],
    'no claim, save or LISTEN errors',
  );
});

B('the admin lists and acts through PgBouncer', async ({ orm, direct, db, logs }) => {
  const failed = await enqueue(orm.em.fork(), 'boom');
  await fetchTask(orm.em.fork(), failed, { wait: 20_000, listenConnection: db.url });
  const clientDir = testClient();
  let server: Server | undefined;
  try {
    const served = await serve(queueAdmin(orm, { clientDir: clientDir.dir }) as never);
    server = served.server;
    const api = client(`${served.url}/`);
    const list = await api.get('api/failed');
    assert.is(list.status, 200, list.text);
    assert.ok(list.json.rows.some((r: { id: string }) => r.id === failed));
    const overview = await api.get('api/overview');
    assert.is(overview.status, 200, overview.text);
    const resubmit = await api.post('api/failed/actions/resubmit', { ids: [failed] });
    assert.is(resubmit.status, 200, resubmit.text);
    // The resubmitted copy runs (and fails again) through the same path.
    await waitFor(
      async () =>
        (await sql<{ n: string }>(direct, 'select count(*) as n from ormq_task where func = ?', ['boom']))[0]!.n === '1' &&
        (await sql(direct, 'select 1 from ormq_queued')).length === 0,
      'the resubmitted task ran',
    );
    // logged on the failure and, for its lineage, on the new task
    const log = await sql<{ action: string }>(direct, 'select action from ormq_admin_log order by action');
    assert.equal(
      log.map((l) => l.action),
      ['resubmit', 'resubmitted'],
    );
  } finally {
    if (server) await close(server);
    clientDir.cleanup();
  }
  assert.equal(
    logs.filter((l) => /^(warn|error)/.test(l)),
    [],
  );
});

B.run();
