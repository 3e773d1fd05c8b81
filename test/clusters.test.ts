/**
 * What runs where: heartbeat rows, the Clusters page's API, pausing a key, stuck packages, stopping
 * a running task and the health check, with real clusters on real PostgreSQL through a real server.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { hostname } from 'node:os';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, enqueue, ensureSchema, pauseKey, pausedKeys, queueAdmin, resumeKey, type TaskContext } from '../src/index.js';
import { newTaskId } from '../src/names.js';
import { createTestDb, initOrm, sql, waitFor } from './helpers/db.js';
import { client, close, serve, testClient } from './helpers/admin.js';
import { clustersOf, processRow, sleep, startInto, type Started } from './helpers/cluster.js';
import { adminSuite, type AdminCtx } from './helpers/suites.js';

interface Ctx extends AdminCtx {
  running: Started[];
}

const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string;

/** Tasks the clusters here run; `hold` runs until `release()` (or its signal) ends it. */
let releaseHeld: () => void = () => {};
const held = () => new Promise<void>((r) => (releaseHeld = r));
const TASKS = {
  ok: () => 'fine',
  bad: () => {
    throw new Error('broken');
  },
  hold(this: TaskContext) {
    return new Promise((resolve, reject) => {
      void held().then(() => resolve('released'));
      this.signal.addEventListener('abort', () => reject(this.signal.reason));
    });
  },
  /** Ignores its signal: a stop must fail it all the same. */
  deaf: () => new Promise((r) => setTimeout(() => r('late'), 3_000)),
};

const S = adminSuite<Ctx>('clusters', {
  mount: { healthMaxWait: 1, actor: (req) => (req.headers['x-user'] as string | undefined) ?? null },
  clear: 'truncate ormq_task, ormq_schedule, ormq_queued, ormq_admin_log, ormq_cluster, ormq_paused_key restart identity',
  setup: (ctx) => void (ctx.running = []),
});
S.after.each(async (ctx) => {
  releaseHeld();
  await Promise.all(ctx.running.splice(0).map((s) => s.cluster.stop()));
});

const start = (ctx: Ctx, name: string, options: Record<string, unknown> = {}) =>
  startInto(ctx.running, ctx.orm, name, { tasks: TASKS, ...options });

S(
  'a running cluster process has a row: key, host, pid, version, workers, its running task with elapsed time, done and failed; stopping, then gone',
  async (ctx) => {
    const { cluster } = await start(ctx, 'hb', { workers: 3 });
    await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'hb' });
    await enqueue(ctx.orm.em.fork(), 'bad', [], { cluster: 'hb' });
    const counted = await waitFor(
      async () => (await clustersOf(ctx.api)).clusters.find((c) => c.done === 1 && c.failed === 1),
      'done and failed counted',
    );
    assert.is(counted.id, cluster.processId);
    assert.is(counted.name, 'hb');
    assert.is(counted.host, hostname());
    assert.is(counted.pid, process.pid);
    assert.is(counted.version, VERSION);
    assert.is(counted.workers, 3);
    assert.is(counted.state, 'running');
    assert.is(counted.heartbeatEvery, 100);
    assert.ok(counted.heartbeatAge >= 0 && counted.uptime >= 0);

    const taskId = await enqueue(ctx.orm.em.fork(), 'hold', [], { cluster: 'hb', name: 'held one' });
    const [{ id: qid }] = (await sql<{ id: string }>(ctx.orm, "select id from ormq_queued where payload->>'func' = 'hold'")) as [
      { id: string },
    ];
    const busy = await waitFor(
      async () => (await clustersOf(ctx.api)).clusters.find((c) => c.busy === 1 && c.tasks.length === 1),
      'the running task listed',
    );
    assert.equal(
      { package: busy.tasks[0].package, taskId: busy.tasks[0].taskId, name: busy.tasks[0].name, func: busy.tasks[0].func },
      { package: Number(qid), taskId, name: 'held one', func: 'hold' },
    );
    await sleep(300);
    const later = (await clustersOf(ctx.api)).clusters[0];
    assert.ok(later.tasks[0].elapsed >= 250, `elapsed grows: ${later.tasks[0].elapsed}`);

    const stopping = cluster.stop();
    await waitFor(async () => (await clustersOf(ctx.api)).clusters[0]?.state === 'stopping', 'the row to say stopping');
    releaseHeld();
    await stopping;
    assert.equal((await clustersOf(ctx.api)).clusters, [], 'a graceful stop deletes the row');
    assert.equal(await sql(ctx.orm, 'select 1 from ormq_task where id = ? and success', [taskId]), [{ '?column?': 1 }]);
  },
);

S('a row older than three beats is not responding; rows silent for a day are pruned by the next beat', async (ctx) => {
  await processRow(ctx.orm, 'x', { ageMs: 2_500 });
  await processRow(ctx.orm, 'x', { ageMs: 3_500 });
  const ancient = await processRow(ctx.orm, 'x', { ageMs: 25 * 3_600_000 });
  const states = (await clustersOf(ctx.api)).clusters.map((c) => [c.heartbeatAge < 3_000, c.state]);
  assert.equal(
    states.sort(),
    [
      [false, 'not responding'],
      [false, 'not responding'],
      [true, 'running'],
    ].sort(),
  );
  const overview = await ctx.api.get('api/overview');
  assert.equal(overview.json.clusters, { running: 1, notResponding: 2 });
  await start(ctx, 'y');
  await waitFor(async () => !(await sql(ctx.orm, 'select 1 from ormq_cluster where id = ?', [ancient])).length, 'the day-old row pruned');
  assert.is((await sql(ctx.orm, 'select 1 from ormq_cluster')).length, 3);
});

S(
  'each queue key: waiting, running, stuck, oldest wait, the clusters serving it; waiting packages with no live cluster are flagged',
  async (ctx) => {
    await start(ctx, 'served');
    const gone = await processRow(ctx.orm, 'orphan', { ageMs: 60_000 });
    for (let i = 0; i < 3; i++) await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'orphan' });
    await sql(ctx.orm, 'update ormq_queued set lock = now(), locked_by = ? where id = (select min(id) from ormq_queued)', [gone]);
    await sleep(50);
    const { keys } = await clustersOf(ctx.api);
    const orphan = keys.find((k) => k.key === 'orphan');
    assert.is(orphan.waiting, 2);
    assert.is(orphan.running, 0, 'a dead process runs nothing');
    assert.is(orphan.stuck, 1);
    assert.ok(orphan.oldestWaiting >= 40, `oldest wait ${orphan.oldestWaiting}`);
    assert.is(orphan.live, 0);
    assert.is(orphan.clusters[0].state, 'not responding');
    assert.is(orphan.flagged, true);
    const served = keys.find((k) => k.key === 'served');
    assert.equal(
      { waiting: served.waiting, live: served.live, flagged: served.flagged, paused: served.paused },
      { waiting: 0, live: 1, flagged: false, paused: false },
    );
  },
);

S(
  'pause: claimed-but-waiting packages go back within a second, the running task finishes, nothing more is claimed, a restart stays paused; resume claims again',
  async (ctx) => {
    await enqueue(ctx.orm.em.fork(), 'hold', [], { cluster: 'p' });
    for (let i = 0; i < 3; i++) await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'p' });
    // One claim takes all four: the first runs, three wait for the only worker.
    await start(ctx, 'p', { workers: 1, bulk: 10 });
    await waitFor(async () => (await sql(ctx.orm, 'select 1 from ormq_queued where lock is not null')).length === 4, 'all four claimed');

    const paused = await ctx.api.post('api/clusters/actions/pause', { key: 'p' }, { 'x-user': 'ops' });
    assert.is(paused.status, 200, paused.text);
    assert.equal(paused.json, { key: 'p', paused: true, changed: true });
    const at = Date.now();
    await waitFor(
      async () => (await sql(ctx.orm, 'select 1 from ormq_queued where lock is null')).length === 3,
      'the three waiting packages released',
    );
    assert.ok(Date.now() - at < 1_000, `released after ${Date.now() - at} ms`);
    releaseHeld();
    await waitFor(async () => (await sql(ctx.orm, 'select 1 from ormq_task')).length === 1, 'the running task finished');
    await sleep(400);
    assert.is((await sql(ctx.orm, 'select 1 from ormq_queued where lock is null')).length, 3, 'nothing claimed while paused');
    const log = await sql(ctx.orm, 'select actor, action, page, object_id, summary from ormq_admin_log');
    assert.equal(log, [{ actor: 'ops', action: 'pause', page: 'clusters', object_id: 'p', summary: 'Paused queue key "p" until resumed' }]);
    const page = await clustersOf(ctx.api);
    assert.equal([page.keys[0].key, page.keys[0].paused, page.keys[0].flagged, page.keys[0].waiting], ['p', true, false, 3]);

    await Promise.all(ctx.running.splice(0).map((s) => s.cluster.stop()));
    await start(ctx, 'p');
    await sleep(400);
    assert.is((await sql(ctx.orm, 'select 1 from ormq_queued')).length, 3, 'a restarted cluster of a paused key claims nothing');
    assert.equal(await pausedKeys(ctx.orm.em.fork()), ['p']);
    assert.is(await pauseKey(ctx.orm.em.fork(), 'p'), false, 'already paused');

    assert.is(await resumeKey(ctx.orm.em.fork(), 'p'), true);
    await waitFor(async () => !(await sql(ctx.orm, 'select 1 from ormq_queued')).length, 'resumed: the rest run', 5_000);
    const again = await ctx.api.post('api/clusters/actions/resume', { key: 'p' });
    assert.equal(again.json.changed, false, 'resuming a running key changes nothing');
    assert.is((await sql(ctx.orm, "select 1 from ormq_admin_log where action = 'resume'")).length, 0);
  },
);

S('a pause that lands while a claim is under way: what that claim returns goes back unstarted', async (ctx) => {
  // Each claimed row takes half a second, so the pause commits, and its notification arrives, mid-claim.
  await sql(
    ctx.orm,
    `create function slow_claim() returns trigger language plpgsql as $$
    begin if old.lock is null and new.lock is not null then perform pg_sleep(0.5); end if; return new; end $$`,
  );
  await sql(ctx.orm, 'create trigger slow_claim before update on ormq_queued for each row execute function slow_claim()');
  try {
    await start(ctx, 'slow', { workers: 1 });
    await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'slow' });
    await waitFor(
      async () =>
        (await sql(ctx.orm, "select 1 from pg_stat_activity where datname = current_database() and wait_event = 'PgSleep'")).length,
      'a claim under way',
    );
    await pauseKey(ctx.orm.em.fork(), 'slow');
    // Claimed (locked_by set), then either handed back (lock cleared) or run (a task row).
    const handled = 'select 1 from ormq_queued where locked_by is not null and lock is null union all select 1 from ormq_task';
    await waitFor(async () => (await sql(ctx.orm, handled)).length, 'the claim handled');
    assert.equal(await sql(ctx.orm, 'select id from ormq_task'), [], 'a paused key ran a task');
    assert.is((await sql(ctx.orm, 'select 1 from ormq_queued where lock is null')).length, 1, 'handed back');
    await resumeKey(ctx.orm.em.fork(), 'slow');
    await waitFor(async () => (await sql(ctx.orm, 'select 1 from ormq_task')).length === 1, 'resumed: it runs');
  } finally {
    await sql(ctx.orm, 'drop trigger slow_claim on ormq_queued');
    await sql(ctx.orm, 'drop function slow_claim()');
  }
});

S('pause and resume refuse a bad key with a 400 naming it, and GET', async ({ api, orm }) => {
  for (const body of [{}, { key: '' }, { key: 7 }, { key: 'x'.repeat(101) }, { key: 'a\u0000' }, []]) {
    const r = await api.post('api/clusters/actions/pause', body);
    assert.is(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.ok(r.json.error.fields.key || r.json.error.fields.body, r.text);
  }
  const wrong = await api.get('api/clusters/actions/pause');
  assert.is(wrong.status, 405);
  assert.is(wrong.headers.get('allow'), 'POST', 'a 405 says which method the path takes');
  assert.is((await api.get('api/clusters/nope')).status, 404);
  assert.equal(await sql(orm, 'select * from ormq_paused_key'), []);
});

S('a package locked by a process that stopped beating is stuck: flagged, filterable, released by the Queued page', async (ctx) => {
  const dead = await processRow(ctx.orm, 'k', { ageMs: 10_000 });
  const live = await processRow(ctx.orm, 'k', { beatMs: 60_000 });
  for (const [n, by] of [
    ['on dead', dead],
    ['on live', live],
    ['delayed', null],
  ] as const) {
    await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'k', name: n });
    await sql(ctx.orm, 'update ormq_queued set lock = now(), locked_by = ? where id = (select max(id) from ormq_queued)', [by]);
  }
  const all = await ctx.api.get('api/queued');
  assert.equal(
    all.json.rows.map((r: any) => [r.name, r.stuck]),
    [
      ['delayed', false],
      ['on live', false],
      ['on dead', true],
    ],
  );
  const stuck = await ctx.api.get('api/queued?stuck=yes');
  assert.equal(
    stuck.json.rows.map((r: any) => r.name),
    ['on dead'],
  );
  assert.is(stuck.json.count.value, 1);
  assert.is((await ctx.api.get('api/queued?stuck=maybe')).status, 400);
  const released = await ctx.api.post('api/queued/actions/release', { all: true, filter: { stuck: 'yes' } });
  assert.is(released.status, 200, released.text);
  assert.is(released.json.done, 1);
  assert.equal((await ctx.api.get('api/queued?stuck=yes')).json.rows, []);
  assert.equal(await sql(ctx.orm, "select payload->>'name' as name from ormq_queued where lock is null"), [{ name: 'on dead' }]);
});

S(
  'stop a running task: its signal aborts, it is saved failed with CancelledError and not retried, even when it ignores the signal',
  async (ctx) => {
    const { cluster } = await start(ctx, 's', { workers: 2, timeout: 5, retry: 6 });
    const holdId = await enqueue(ctx.orm.em.fork(), 'hold', [], { cluster: 's' });
    const deafId = await enqueue(ctx.orm.em.fork(), 'deaf', [], { cluster: 's' });
    const row = await waitFor(async () => (await clustersOf(ctx.api)).clusters.find((c) => c.tasks.length === 2), 'both running');
    for (const t of row.tasks) {
      const r = await ctx.api.post('api/clusters/actions/stop', { cluster: cluster.processId, package: t.package }, { 'x-user': 'ops' });
      assert.is(r.status, 202, r.text);
    }
    const failed = await waitFor(async () => {
      const rows = await sql<{ id: string; result: any }>(ctx.orm, 'select id, result from ormq_task where not success order by id');
      return rows.length === 2 && rows;
    }, 'both saved as failed');
    for (const f of failed) assert.is(f.result.error, 'CancelledError', JSON.stringify(f.result));
    assert.equal(failed.map((f) => f.id.trim()).sort(), [holdId, deafId].sort());
    await waitFor(async () => !(await sql(ctx.orm, 'select 1 from ormq_queued')).length, 'acked: nothing left to retry');
    assert.equal(
      (await sql<{ n: number }>(ctx.orm, 'select attempt_count as n from ormq_task')).map((r) => r.n),
      [1, 1],
    );
    const log = await sql<{ summary: string }>(ctx.orm, "select summary from ormq_admin_log where action = 'stop'");
    assert.is(log.length, 2);
    assert.match(log[0]!.summary, /Asked cluster "s" \(.* pid \d+\) to stop/);
  },
);

S(
  'a stop names what is wrong: bad body 400, unknown process 404, a package finished 200, one not held there 409, a dead process 409',
  async (ctx) => {
    const bad = await ctx.api.post('api/clusters/actions/stop', { cluster: 'nope', package: -1 });
    assert.is(bad.status, 400);
    assert.ok(bad.json.error.fields.cluster && bad.json.error.fields.package, bad.text);
    const missing = await ctx.api.post('api/clusters/actions/stop', { cluster: newTaskId(), package: 1 });
    assert.is(missing.status, 404, missing.text);
    const dead = await processRow(ctx.orm, 'k', {
      ageMs: 60_000,
      tasks: [{ package: 9, id: newTaskId(), name: 'n', func: 'f', started: new Date().toISOString(), elapsed: 1 }],
    });
    const finished = await ctx.api.post('api/clusters/actions/stop', { cluster: dead, package: 8 });
    assert.is(finished.status, 200, finished.text);
    assert.is(finished.json.finished, true);
    const [free] = await sql<{ id: number }>(ctx.orm, `insert into ormq_queued (key, payload) values ('k', '{"name":"n"}') returning id`);
    const notHeld = await ctx.api.post('api/clusters/actions/stop', { cluster: dead, package: Number(free!.id) });
    assert.is(notHeld.status, 409, notHeld.text);
    const [mine] = await sql<{ id: number }>(
      ctx.orm,
      `insert into ormq_queued (key, payload, lock, locked_by) values ('k', '{"name":"n"}', now(), ?) returning id`,
      [dead],
    );
    const silent = await ctx.api.post('api/clusters/actions/stop', { cluster: dead, package: Number(mine!.id) });
    assert.is(silent.status, 409, silent.text);
    assert.match(silent.json.error.message, /not responding/);
    assert.equal(await sql(ctx.orm, 'select 1 from ormq_admin_log'), []);
  },
);

S(
  'health: 200 with a live cluster or nothing waiting long; 503 naming the problem (not the key) when a key waits with no live cluster; paused keys do not count',
  async (ctx) => {
    const ok = await ctx.api.get('api/health');
    assert.is(ok.status, 200, ok.text);
    assert.is(ok.json.ok, true);
    assert.is(ok.headers.get('cache-control'), 'no-store');
    await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'secret-orphan' });
    assert.is((await ctx.api.get('api/health')).status, 200, 'waiting less than healthMaxWait');
    await sql(ctx.orm, "update ormq_queued set payload = jsonb_set(payload, '{enqueued}', to_jsonb(now() - interval '5 seconds'))");
    // One check a second: the next one sees the change.
    const bad = await waitFor(async () => {
      const r = await ctx.api.get('api/health');
      return r.status === 503 && r;
    }, 'the next check');
    assert.equal(bad.json, { ok: false, problem: '1 queue key has packages waiting over 1 s and no live cluster' });
    assert.not.match(bad.text, /secret/);
    await pauseKey(ctx.orm.em.fork(), 'secret-orphan');
    await waitFor(async () => (await ctx.api.get('api/health')).status === 200, 'a paused key is meant to wait');
    await sql(ctx.orm, "update ormq_paused_key set until = now() - interval '1 s'");
    await waitFor(async () => (await ctx.api.get('api/health')).status === 503, 'a pause past its end excuses nothing');
    await resumeKey(ctx.orm.em.fork(), 'secret-orphan');
    await start(ctx, 'secret-orphan', { tasks: {} });
    await waitFor(async () => (await ctx.api.get('api/health')).status === 200, 'a live cluster makes it healthy');
    const post = await ctx.api.post('api/health', {});
    assert.is(post.status, 405);
    assert.is(post.headers.get('allow'), 'GET');
  },
);

/** Scans of ormq_paused_key so far and the rows they read, from the server's table statistics (flushed a moment after each statement). */
async function pausedReads(orm: MikroORM): Promise<{ scans: number; rows: number }> {
  const [r] = await sql(
    orm,
    `select seq_scan + coalesce(idx_scan, 0) as scans, seq_tup_read + coalesce(idx_tup_fetch, 0) as rows
    from pg_stat_user_tables where relname = 'ormq_paused_key'`,
  );
  return { scans: Number(r!.scans), rows: Number(r!.rows) };
}

S('health (public) and the Clusters page read the paused keys they need, not every paused key', async (ctx) => {
  await sql(ctx.orm, "insert into ormq_paused_key (key) select 'idle-' || lpad(i::text, 5, '0') from generate_series(1, 50000) i");
  await sql(ctx.orm, 'analyze ormq_paused_key');
  await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'waiting' });
  await sql(ctx.orm, "update ormq_queued set payload = jsonb_set(payload, '{enqueued}', to_jsonb(now() - interval '5 seconds'))");
  await pauseKey(ctx.orm.em.fork(), 'waiting');
  for (const path of ['api/health', 'api/clusters']) {
    const before = await pausedReads(ctx.orm);
    const r = await ctx.api.get(path);
    assert.is(r.status, 200, r.text);
    const after = await waitFor(async () => {
      const now = await pausedReads(ctx.orm);
      return now.scans > before.scans && now;
    }, `the statistics of ${path}`);
    // The page's first keys, then whether each key it shows is paused: two reads of at most 501.
    assert.ok(after.rows - before.rows <= 1_002, `${path} read ${after.rows - before.rows} paused keys`);
    if (path === 'api/clusters') {
      assert.is(r.json.truncated, true);
      assert.is(r.json.keys.length, 500);
      assert.equal(
        r.json.keys.slice(0, 2).map((k: any) => [k.key, k.paused]),
        [
          ['idle-00001', true],
          ['idle-00002', true],
        ],
      );
    }
  }
});

S('health: a statement held up by a lock is cancelled by statementTimeout, answers 503, and leaves nothing waiting', async (ctx) => {
  const { api } = await ctx.start({ statementTimeout: 300 });
  const holder = new pg.Client({ connectionString: ctx.db.url });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('lock table ormq_cluster in access exclusive mode');
    const r = await api.get('api/health');
    assert.is(r.status, 503, r.text);
    assert.equal(r.json, { ok: false, problem: 'the database does not answer' });
    const waiting = await holder.query(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock'`,
    );
    assert.is(waiting.rows[0].n, 0, 'no statement of the probe still waits for the lock');
  } finally {
    await holder.query('rollback');
    await holder.end();
  }
  await waitFor(async () => (await api.get('api/health')).status === 200, 'healthy again once the lock is gone');
});

S('health answers without authorize, which guards the Clusters page and its actions; the database down is a 503', async (ctx) => {
  const asked: string[] = [];
  const dir = testClient();
  const orm = await initOrm(ctx.db.url);
  const nowhere = await initOrm('postgres://postgres@127.0.0.1:1/nowhere');
  const { url, server } = await serve(
    queueAdmin(orm, { clientDir: dir.dir, authorize: (_req, w) => (asked.push(`${w.page}:${w.action}`), false) }) as never,
  );
  const api = client(`${url}/`);
  try {
    const health = await api.get('api/health');
    assert.equal([health.status, health.json], [200, { ok: true }], 'refused every page: the status alone');
    asked.length = 0;
    assert.is((await api.get('api/clusters')).status, 403);
    assert.is((await api.post('api/clusters/actions/pause', { key: 'a' })).status, 403);
    assert.is((await api.post('api/clusters/actions/stop', { cluster: newTaskId(), package: 1 })).status, 403);
    assert.equal(asked, ['clusters:view', 'clusters:pause', 'clusters:stop']);
    const ro = await serve(queueAdmin(ctx.orm, { clientDir: dir.dir, readOnly: true }) as never);
    assert.is((await client(`${ro.url}/`).post('api/clusters/actions/resume', { key: 'a' })).status, 403);
    assert.is((await client(`${ro.url}/`).get('api/clusters')).status, 200);
    await close(ro.server);
    const off = await serve(queueAdmin(nowhere, { clientDir: dir.dir }) as never);
    const down = await client(`${off.url}/`).get('api/health');
    assert.is(down.status, 503, down.text);
    assert.equal(down.json, { ok: false, problem: 'the database does not answer' });
    await close(off.server);
  } finally {
    await orm.close(true);
    await nowhere.close(true);
    await close(server);
    dir.cleanup();
  }
});

S('the heartbeat option is checked when the cluster is made; ensureSchema adds locked_by to a queue made before it', async (ctx) => {
  // Under a millisecond the row's beat is 0 ms, and a process that beats is never responding.
  for (const heartbeat of [0, -1, Number.NaN, 7_200, 0.0004]) {
    assert.throws(() => new Cluster(ctx.orm, { heartbeat }), /heartbeat/, String(heartbeat));
  }
  const db = await createTestDb({ empty: true });
  const orm = await initOrm(db.url);
  try {
    await sql(
      orm,
      'create table ormq_queued (id bigserial primary key, key varchar(100) not null, payload jsonb not null, lock timestamptz null)',
    );
    await sql(orm, `insert into ormq_queued (key, payload) values ('default', '{}')`);
    await ensureSchema(orm);
    await ensureSchema(orm);
    assert.equal(await sql(orm, 'select key, locked_by from ormq_queued'), [{ key: 'default', locked_by: null }]);
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

S.run();
