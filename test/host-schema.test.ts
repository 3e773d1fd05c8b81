/**
 * ormq in the host's schema: MikroORM's `schema` option, or ormq's own `schema` option where the
 * ORM has none. The database's public schema has no ormq tables, so any statement that missed the
 * schema fails instead of passing by accident.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Server } from 'node:http';
import { MikroORM } from '@mikro-orm/postgresql';
import {
  Cluster,
  countGroup,
  enqueue,
  enqueueMany,
  ensureSchema,
  fetchTask,
  pauseKey,
  pausedKeys,
  queueAdmin,
  queueEntities,
  result,
  resumeKey,
  schedule,
  Task,
} from '../src/index.js';
import { createTestDb, sql, waitFor, type TestDb } from './helpers/db.js';
import { client, close, serve, testClient } from './helpers/admin.js';

const TABLES = [
  'ormq_admin_log',
  'ormq_cluster',
  'ormq_iter',
  'ormq_iter_result',
  'ormq_limit',
  'ormq_metric',
  'ormq_paused_key',
  'ormq_queued',
  'ormq_schedule',
  'ormq_task',
  'ormq_wait',
];

async function tablesBySchema(orm: MikroORM): Promise<string[]> {
  const rows = await sql<{ t: string }>(
    orm,
    "select schemaname || '.' || tablename as t from pg_tables where tablename like 'ormq_%' order by 1",
  );
  return rows.map((r) => r.t);
}

async function adminWorks(orm: MikroORM, schema?: string): Promise<void> {
  const clientDir = testClient();
  let server: Server | undefined;
  try {
    const served = await serve(queueAdmin(orm, { clientDir: clientDir.dir, ...(schema ? { schema } : {}) }) as never);
    server = served.server;
    const api = client(`${served.url}/`);
    for (const page of ['successful', 'failed', 'scheduled', 'queued']) {
      const r = await api.get(`api/${page}`);
      assert.is(r.status, 200, `${page}: ${r.text}`);
    }
    const ov = await api.get('api/overview');
    assert.is(ov.status, 200, ov.text);
    // The search reads the table's statistics by its name; the counts plan by it too.
    const searched = await api.get('api/successful?search=add');
    assert.is(searched.status, 200, searched.text);
    const ok = await api.get('api/successful');
    assert.ok(ok.json.rows.length >= 1, 'the saved task is listed');
    const run = await api.post('api/successful/actions/resubmit', { ids: [ok.json.rows[0].id] });
    assert.is(run.status, 200, run.text);
  } finally {
    if (server) await close(server);
    clientDir.cleanup();
  }
}

const H = suite<{ db: TestDb }>("the host's schema");
H.before.each(async (ctx) => {
  ctx.db = await createTestDb({ empty: true });
});
H.after.each(async (ctx) => ctx.db.drop());

H("MikroORM's schema option: ensureSchema, enqueue, the cluster, results, the admin and the entities all use it", async ({ db }) => {
  const orm = await MikroORM.init({ clientUrl: db.url, entities: queueEntities, schema: 'app', pool: { min: 0, max: 4 } });
  const logs: string[] = [];
  const cluster = new Cluster(orm, {
    poll: 100,
    log: (level, m) => void logs.push(`${level}: ${m}`),
    tasks: { add: (a: number, b: number) => a + b },
  });
  try {
    await ensureSchema(orm);
    assert.equal(
      await tablesBySchema(orm),
      TABLES.map((t) => `app.${t}`),
    );
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    assert.equal(
      diff.split('\n').filter((l) => /ormq_/.test(l)),
      [],
      diff,
    );
    await cluster.start();
    const id = await orm.em.fork().transactional((em) => enqueue(em, 'add', [1, 2], { group: 'g' }));
    await enqueueMany(orm.em.fork(), [{ func: 'add', args: [3, 4], group: 'g' }]);
    assert.is(await result(orm.em.fork(), id, { wait: 20_000 }), 3);
    await waitFor(async () => (await countGroup(orm.em.fork(), 'g')) === 2, 'both saved');
    const entity = await orm.em.fork().findOne(Task, id);
    assert.is(entity!.result, 3, 'the entity reads app.ormq_task');
    await schedule(orm.em.fork(), { func: 'add', args: [5, 5], scheduleType: 'O', nextRun: new Date() });
    await waitFor(
      async () =>
        (await countGroup(orm.em.fork(), 'g')) === 2 &&
        (await sql(orm, 'select 1 from app.ormq_task where result = ?', ['10'])).length === 1,
      'the schedule ran',
    );
    await adminWorks(orm);
    assert.is(await pauseKey(orm.em.fork(), 'default'), true);
    assert.equal(await pausedKeys(orm.em.fork()), ['default']);
    assert.is(await resumeKey(orm.em.fork(), 'default'), true);
    const [beat] = await sql<{ n: string }>(orm, 'select count(*) as n from app.ormq_cluster');
    assert.ok(Number(beat!.n) >= 1, 'the heartbeat wrote app.ormq_cluster');
    await cluster.stop();
    assert.equal(
      logs.filter((l) => /^(warn|error)/.test(l)),
      [],
      'heartbeat, metrics and claims all found their tables',
    );
  } finally {
    await cluster.stop();
    await orm.close(true);
  }
});

H("ormq's own schema option where the ORM has none", async ({ db }) => {
  const orm = await MikroORM.init({ clientUrl: db.url, entities: queueEntities, pool: { min: 0, max: 4 } });
  const schema = 'Jobs "q"';
  const logs: string[] = [];
  const cluster = new Cluster(orm, {
    schema,
    poll: 100,
    log: (level, m) => void logs.push(`${level}: ${m}`),
    tasks: { add: (a: number, b: number) => a + b },
  });
  try {
    await ensureSchema(orm, { schema });
    assert.equal(
      await tablesBySchema(orm),
      TABLES.map((t) => `${schema}.${t}`),
    );
    await cluster.start();
    const id = await enqueue(orm.em.fork(), 'add', [2, 2], { schema });
    const [many] = await enqueueMany(orm.em.fork(), [{ func: 'add', args: [1, 1] }], { schema });
    assert.is(await result(orm.em.fork(), id, { wait: 20_000, schema }), 4);
    assert.is((await fetchTask(orm.em.fork(), many!, { wait: 20_000, schema }))!.result, 2);
    await adminWorks(orm, schema);
    assert.is(await pauseKey(orm.em.fork(), 'default', { schema }), true);
    assert.equal(await pausedKeys(orm.em.fork(), { schema }), ['default']);
    await cluster.stop();
    assert.equal(
      logs.filter((l) => /^(warn|error)/.test(l)),
      [],
      'heartbeat, metrics and claims all found their tables',
    );
  } finally {
    await cluster.stop();
    await orm.close(true);
  }
});

H("a schema named o'q: the quote reaches no statement unescaped, from ensureSchema to the admin", async ({ db }) => {
  const orm = await MikroORM.init({ clientUrl: db.url, entities: queueEntities, pool: { min: 0, max: 4 } });
  const schema = "o'q";
  const logs: string[] = [];
  const cluster = new Cluster(orm, {
    schema,
    poll: 100,
    log: (level, m) => void logs.push(`${level}: ${m}`),
    tasks: { add: (a: number, b: number) => a + b },
  });
  try {
    await ensureSchema(orm, { schema });
    // A second run takes the upgrade paths, whose DO blocks name the tables inside literals.
    await ensureSchema(orm, { schema });
    assert.equal(
      await tablesBySchema(orm),
      TABLES.map((t) => `${schema}.${t}`),
    );
    await cluster.start();
    const id = await enqueue(orm.em.fork(), 'add', [2, 3], { schema });
    await enqueueMany(orm.em.fork(), [{ func: 'add', args: [1, 1] }], { schema });
    assert.is(await result(orm.em.fork(), id, { wait: 20_000, schema }), 5);
    await schedule(orm.em.fork(), { func: 'add', args: [5, 5], scheduleType: 'O', nextRun: new Date() }, { schema });
    await waitFor(async () => (await sql(orm, `select 1 from "o'q".ormq_task where result = '10'`)).length === 1, 'the schedule ran');
    await waitFor(async () => (await sql(orm, `select 1 from "o'q".ormq_queued`)).length === 0, 'the cluster drained the queue');
    await adminWorks(orm, schema);
    await cluster.stop();
    assert.equal(
      logs.filter((l) => /^(warn|error)/.test(l)),
      [],
      'heartbeat, metrics and claims all found their tables',
    );
  } finally {
    await cluster.stop();
    await orm.close(true);
  }
});

H(
  'a schema name holding "?" is refused where it is given: MikroORM would read it as a placeholder and put a value inside the name',
  async ({ db }) => {
    const orm = await MikroORM.init({ clientUrl: db.url, entities: queueEntities, pool: { min: 0, max: 2 } });
    const ormWith = await MikroORM.init({ clientUrl: db.url, entities: queueEntities, schema: 'o?q', pool: { min: 0, max: 2 } });
    const clientDir = testClient();
    const rejects = async (fn: () => Promise<unknown>, message: RegExp) => {
      const error = await fn().then(
        () => null,
        (e: Error) => e,
      );
      assert.ok(error, `accepted where ${message} was expected`);
      assert.match(error.message, message);
    };
    try {
      const named = /schema must be a schema name of 1 to 63 characters without NUL or \?/;
      await rejects(() => ensureSchema(orm, { schema: 'o?q' }), named);
      await rejects(() => enqueue(orm.em.fork(), 'add', [1, 2], { schema: 'o?q' }), named);
      assert.throws(() => queueAdmin(orm, { clientDir: clientDir.dir, schema: 'o?q' }), named);
      assert.throws(() => new Cluster(orm, { schema: 'o?q' }), named);
      // The ORM's own option, which ormq reads when none of its own is given.
      const orms = /the ORM's schema option must be a schema name/;
      await rejects(() => ensureSchema(ormWith), orms);
      assert.throws(() => queueAdmin(ormWith, { clientDir: clientDir.dir }), orms);
      assert.equal(await sql(orm, "select 1 from pg_namespace where nspname = 'o?q'"), [], 'nothing created');
    } finally {
      clientDir.cleanup();
      await orm.close(true);
      await ormWith.close(true);
    }
  },
);

H.run();
