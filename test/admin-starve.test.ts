/**
 * The admin never starves its host: its requests share `maxConcurrentReads` places on the host's
 * pool, api/health runs one check per second whatever the number of probes, and every read
 * (the Clusters page and the schedule preview included) stops at `statementTimeout`.
 */
import pg from 'pg';
import * as assert from 'uvu/assert';
import { enqueue, limits, queueAdmin, schedule, setLimit, type QueueAdminOptions } from '../src/index.js';
import { sql, waitFor } from './helpers/db.js';
import { insertManyTasks, insertTask } from './helpers/admin.js';
import { adminSuite, type AdminCtx } from './helpers/suites.js';

const S = adminSuite('admin never starves its host', {
  clear: 'truncate ormq_task, ormq_schedule, ormq_queued, ormq_admin_log, ormq_cluster, ormq_paused_key, ormq_limit restart identity',
});

/** Another session holding `table` in access exclusive mode until `release`. */
async function lockTable(ctx: AdminCtx, table: string): Promise<{ release(): Promise<void> }> {
  const holder = new pg.Client({ connectionString: ctx.db.url });
  await holder.connect();
  await holder.query('begin');
  await holder.query(`lock table ${table} in access exclusive mode`);
  return {
    async release() {
      await holder.query('rollback');
      await holder.end();
    },
  };
}

/** Statements of this database, other than `holder`'s, waiting for a lock. */
const lockWaiters = async (ctx: AdminCtx) =>
  Number(
    (
      await sql(ctx.orm, `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)
    )[0]!.n,
  );

/** The median time of the host's own `select 1` through the ORM's pool, `n` in a row. */
async function hostSelect1(ctx: AdminCtx, n = 15): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await ctx.orm.em.fork().execute('select 1');
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)]!;
}

S('maxConcurrentReads is checked when the admin is made', async (ctx) => {
  for (const bad of [0, -1, 1.5, Number.NaN, '2']) {
    assert.throws(
      () => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, maxConcurrentReads: bad as never }),
      /maxConcurrentReads must be a whole number/,
      String(bad),
    );
  }
});

S(
  'a flood of 100 admin requests while ormq_queued is locked leaves the host its pool: its select 1 stays near idle, the surplus gets 503 with Retry-After',
  async (ctx) => {
    const { api } = await ctx.start({ statementTimeout: 2_000 });
    await enqueue(ctx.orm.em.fork(), 'work', [], { cluster: 'k' });
    const s = await schedule(ctx.orm.em.fork(), {
      name: 's',
      func: 'work',
      scheduleType: 'D',
      nextRun: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const idle = await hostSelect1(ctx);
    const lock = await lockTable(ctx, 'ormq_queued');
    const paths = [
      'api/clusters',
      'api/overview',
      'api/queued',
      'api/queued?search=zq',
      'api/successful?search=@@',
      `api/scheduled/preview?id=${s.id}&scheduleType=D`,
      'api/failed',
    ];
    let answers: { status: number; headers: Headers; json: any }[];
    let during: number;
    try {
      const flood = Promise.all(Array.from({ length: 100 }, (_, i) => api.get(paths[i % paths.length]!)));
      await waitFor(() => lockWaiters(ctx), 'admin reads waiting for the lock');
      during = await hostSelect1(ctx);
      // Held up by the lock: the admin's places, and no more.
      assert.ok((await lockWaiters(ctx)) <= 2, "at most maxConcurrentReads of the admin's statements wait");
      answers = await flood;
    } finally {
      await lock.release();
    }
    assert.ok(during <= idle + 50, `the host's select 1 took ${during.toFixed(1)} ms (p50) during the flood, ${idle.toFixed(1)} ms idle`);
    const busy = answers.filter((r) => r.status === 503 && /maxConcurrentReads/.test(r.json?.error?.message));
    assert.ok(busy.length > 0, 'some of the flood was turned away');
    for (const r of busy) assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
    for (const r of answers) assert.ok(r.status === 200 || r.status === 503, `only answers or 503s: ${r.status}`);
    assert.is((await api.get('api/clusters')).status, 200, 'the admin answers again once the flood is over');
  },
);

S(
  'a flood of 100 reads of the limits and of the lists with args while their tables are locked: without the token each is refused before any statement; with it the host keeps its pool',
  async (ctx) => {
    const { api } = await ctx.start({ statementTimeout: 2_000 });
    await setLimit(ctx.orm.em.fork(), 'send', { concurrency: 2 });
    await insertTask(ctx.orm, { name: 'with args', success: false });
    const idle = await hostSelect1(ctx);
    const locks = [await lockTable(ctx, 'ormq_queued'), await lockTable(ctx, 'ormq_task')];
    const paths = [
      'api/clusters/limits',
      'api/failed?columns=args',
      'api/successful?columns=args,attemptCount',
      'api/failed?columns=attemptCount',
    ];
    let answers: { status: number; headers: Headers; json: any }[];
    let during: number;
    try {
      const refused = await Promise.all(Array.from({ length: 100 }, (_, i) => api.get(paths[i % paths.length]!, { authorization: '' })));
      for (const r of refused) assert.equal([r.status, /access token/.test(r.json?.error?.message)], [403, true]);
      assert.is(await lockWaiters(ctx), 0, 'no request without the token reached the database');
      const flood = Promise.all(Array.from({ length: 100 }, (_, i) => api.get(paths[i % paths.length]!)));
      await waitFor(() => lockWaiters(ctx), 'admin reads waiting for the locks');
      during = await hostSelect1(ctx);
      assert.ok((await lockWaiters(ctx)) <= 2, "at most maxConcurrentReads of the admin's statements wait");
      answers = await flood;
    } finally {
      for (const lock of locks) await lock.release();
    }
    assert.ok(during <= idle + 50, `the host's select 1 took ${during.toFixed(1)} ms (p50) during the flood, ${idle.toFixed(1)} ms idle`);
    const busy = answers.filter((r) => r.status === 503);
    assert.ok(busy.length > 0, 'some of the flood was turned away');
    for (const r of busy) assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
    for (const r of answers) assert.ok(r.status === 200 || r.status === 503, `only answers or 503s: ${r.status}`);
    const again = await Promise.all(paths.map((p) => api.get(p)));
    assert.equal(
      again.map((r) => r.status),
      paths.map(() => 200),
      'the admin answers again once the flood is over',
    );
    assert.equal(
      again[0]!.json.limits.map((l: { func: string }) => l.func),
      ['send'],
    );
    assert.is(again[1]!.json.rows[0].args, '[]', 'the args come with the rows');
  },
);

const grants: QueueAdminOptions['authorize'] = (req, { page, action }) =>
  String(req.headers['x-can'] ?? '')
    .split(',')
    .includes(`${page}:${action}`);

/** Limit write `i` of a flood: each sets a different limit, so the row left says whose it is. */
const limitWrite = (i: number) => ({
  func: 'send',
  limit: { concurrency: i + 1, ...(i % 2 ? { rate: { count: i + 1, perSeconds: 60 } } : {}) },
});

S(
  'a flood of 100 limit writes, the first ones held by a lock on ormq_limit: the host keeps its pool, each write is whole or not made, and the row left is one write',
  async (ctx) => {
    const { api } = await ctx.start({ authorize: grants });
    const can = { 'x-can': 'clusters:view,clusters:limits' };
    const denied = await Promise.all(
      Array.from({ length: 100 }, (_, i) => api.post('api/clusters/actions/limits', limitWrite(i), { 'x-can': 'clusters:view' })),
    );
    for (const r of denied) assert.is(r.status, 403, r.text);
    assert.equal(await limits(ctx.orm.em.fork()), [], 'nothing written by callers without the limits action');

    const idle = await hostSelect1(ctx);
    const lock = await lockTable(ctx, 'ormq_limit');
    let released = false;
    let answers: { status: number; headers: Headers; json: any }[];
    let during: number;
    try {
      const flood = Promise.all(Array.from({ length: 100 }, (_, i) => api.post('api/clusters/actions/limits', limitWrite(i), can)));
      await waitFor(() => lockWaiters(ctx), 'limit writes waiting for the lock');
      during = await hostSelect1(ctx);
      // Writes have no statementTimeout: the gate alone bounds how many of them hold the host's connections.
      assert.ok((await lockWaiters(ctx)) <= 2, "at most maxConcurrentReads of the admin's writes wait");
      released = true;
      await lock.release();
      answers = await flood;
    } finally {
      if (!released) await lock.release();
    }
    assert.ok(during <= idle + 50, `the host's select 1 took ${during.toFixed(1)} ms (p50) during the flood, ${idle.toFixed(1)} ms idle`);
    const made = answers.flatMap((r, i) => (r.status === 200 ? [i] : []));
    for (const r of answers) {
      assert.ok(r.status === 200 || r.status === 503, `only answers or 503s: ${r.status}`);
      if (r.status === 503) assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
    }
    assert.ok(made.length > 0, 'the writes go through once the lock is gone');
    for (const i of made) {
      const { limit } = limitWrite(i);
      assert.equal(
        [answers[i]!.json.limit.concurrency, answers[i]!.json.limit.rate],
        [limit.concurrency, limit.rate ?? null],
        `write ${i}`,
      );
    }
    const [left] = await limits(ctx.orm.em.fork());
    const whose = made.filter((i) => {
      const { limit } = limitWrite(i);
      return left!.concurrency === limit.concurrency && JSON.stringify(left!.rate) === JSON.stringify(limit.rate ?? null);
    });
    assert.is(whose.length, 1, `the row left (${JSON.stringify(left)}) is the one of a write that was answered 200`);
    assert.equal((await limits(ctx.orm.em.fork())).length, 1);
    const logged = await sql<{ n: number }>(ctx.orm, "select count(*)::int as n from ormq_admin_log where action = 'limits'");
    assert.is(logged[0]!.n, made.length, 'one log row per write made, none for a write refused');
  },
);

S('the Clusters page and the schedule preview stop at statementTimeout with a 503 instead of waiting for a lock', async (ctx) => {
  const { api } = await ctx.start({ statementTimeout: 300 });
  const s = await schedule(ctx.orm.em.fork(), {
    name: 's',
    func: 'work',
    scheduleType: 'D',
    nextRun: new Date(Date.now() + 3_600_000).toISOString(),
  });
  for (const [table, path] of [
    ['ormq_queued', 'api/clusters'],
    ['ormq_schedule', `api/scheduled/preview?id=${s.id}&scheduleType=I&minutes=5`],
  ] as const) {
    const lock = await lockTable(ctx, table);
    try {
      const r = await api.get(path);
      assert.is(r.status, 503, `${path}: ${r.text}`);
      assert.match(r.json.error.message, /statementTimeout/);
    } finally {
      await lock.release();
    }
    assert.is((await api.get(path)).status, 200, `${path} answers once the lock is gone`);
  }
});

S('100 health probes against a locked table share one check: one statement waits, none is left after the answers', async (ctx) => {
  const { api } = await ctx.start({ statementTimeout: 500 });
  const lock = await lockTable(ctx, 'ormq_cluster');
  let answers: { status: number; json: any }[];
  try {
    const probes = Promise.all(Array.from({ length: 100 }, () => api.get('api/health')));
    await waitFor(() => lockWaiters(ctx), 'the check waiting for the lock');
    assert.is(await lockWaiters(ctx), 1, 'one check for all the probes');
    answers = await probes;
    assert.is(await lockWaiters(ctx), 0, 'nothing of the probes still waits');
  } finally {
    await lock.release();
  }
  for (const r of answers) assert.equal([r.status, r.json], [503, { ok: false, problem: 'the database does not answer' }]);
});

S(
  'a check still waiting on the database after its probe gave up is not doubled by the next probe: health holds one connection however long statementTimeout is',
  async (ctx) => {
    const { api } = await ctx.start({ statementTimeout: 30_000 });
    const lock = await lockTable(ctx, 'ormq_cluster');
    try {
      const first = await api.get('api/health');
      assert.equal([first.status, first.json.problem], [503, 'the database did not answer within 5 s']);
      // The check's statement still waits for the lock (for up to 30 s): a new one would hold a second connection.
      for (let i = 0; i < 3; i++) {
        const next = await api.get('api/health');
        assert.equal([next.status, next.json.problem], [503, 'the database did not answer within 5 s']);
        assert.is(await lockWaiters(ctx), 1, `probe ${i + 2}: still the one check waiting`);
      }
    } finally {
      await lock.release();
    }
    await waitFor(async () => (await api.get('api/health')).status === 200, 'a new check once the first has ended');
  },
);

S('health tells a caller the admin does not open to only whether all is well', async (ctx) => {
  const open = await ctx.start({ authorize: () => true });
  const refused = await ctx.start({ authorize: () => false });
  const locked = await ctx.start();
  const full = await open.api.get('api/health');
  assert.equal([full.status, full.json], [200, { ok: true, liveKeys: 0 }]);
  assert.equal((await refused.api.get('api/health')).json, { ok: true });
  const throwing = await ctx.start({ authorize: (req) => (req as unknown as { user: { admin: boolean } }).user.admin });
  assert.equal((await throwing.api.get('api/health')).json, { ok: true }, 'an authorize that throws on a probe without a session');
  assert.equal((await locked.api.get('api/health')).json, { ok: true, liveKeys: 0 }, 'a request with the access token sees the figures');
  assert.equal((await locked.api.get('api/health', { authorization: '' })).json, { ok: true }, 'one without it does not');
  await enqueue(ctx.orm.em.fork(), 'work', [], { cluster: 'orphan' });
  await sql(ctx.orm, "update ormq_queued set payload = jsonb_set(payload, '{enqueued}', to_jsonb(now() - interval '2 minutes'))");
  const bad = await waitFor(async () => {
    const r = await refused.api.get('api/health');
    return r.status === 503 && r;
  }, 'the next check');
  assert.equal(bad.json, { ok: false }, 'no count of starving keys');
  assert.match((await open.api.get('api/health')).json.problem, /1 queue key has packages waiting/);
});

S('a search term the trigram index cannot serve is looked for in the newest 10,000 tasks, and the answer says so', async (ctx) => {
  const { api } = await ctx.start();
  await insertTask(ctx.orm, { name: 'old-zq a b', stopped: new Date(Date.now() - 3_600_000).toISOString() });
  await insertManyTasks(ctx.orm, 10_000);
  await insertTask(ctx.orm, { name: 'new-zq a b' });
  await insertTask(ctx.orm, { name: 'failed-zq', success: false });
  for (const term of ['zq', 'Q', '-zq a', 'a b']) {
    const r = await api.get(`api/successful?search=${encodeURIComponent(term)}`);
    assert.is(r.status, 200, r.text);
    assert.equal(
      r.json.rows.map((x: any) => x.name),
      ['new-zq a b'],
      term,
    );
    assert.equal(
      r.json.searchBound,
      { rows: 10_000, note: 'Searched the newest 10,000 tasks: the term has no three letters or digits in a row' },
      term,
    );
  }
  assert.is((await api.get('api/successful/count?search=zq')).json.count, 1, 'the count is of the same rows');
  assert.equal(
    (await api.get('api/failed?search=zq')).json.rows.map((x: any) => x.name),
    ['failed-zq'],
    'the newest of the page, not of the table',
  );
  const indexed = await api.get('api/successful?search=old-zq');
  assert.equal(
    indexed.json.rows.map((x: any) => x.name),
    ['old-zq a b'],
  );
  assert.is(indexed.json.searchBound, undefined, 'a term with three letters in a row searches everything');
  // "All matching" acts on what the list showed.
  const done = await api.post('api/successful/actions/delete', { all: true, filter: { search: 'zq' } });
  assert.equal([done.status, done.json.done, done.json.remaining], [200, 1, 0], done.text);
  assert.equal(
    (await sql(ctx.orm, "select name from ormq_task where name like '%zq%' order by name")).map((r) => r.name),
    ['failed-zq', 'old-zq a b'],
  );
});

S('a Queued search (no index serves it) is looked for in the newest 10,000 packages', async (ctx) => {
  const { api } = await ctx.start();
  await enqueue(ctx.orm.em.fork(), 'work', [], { name: 'old-match' });
  await sql(
    ctx.orm,
    "insert into ormq_queued (key, payload) select key, jsonb_set(payload, '{name}', to_jsonb('bulk-' || i)) from ormq_queued, generate_series(1, 10000) i",
  );
  await enqueue(ctx.orm.em.fork(), 'work', [], { name: 'new-match' });
  const r = await api.get('api/queued?search=match');
  assert.is(r.status, 200, r.text);
  assert.equal(
    r.json.rows.map((x: any) => x.name),
    ['new-match'],
  );
  assert.equal(r.json.searchBound, { rows: 10_000, note: 'Searched the newest 10,000 queued tasks: queued tasks have no search index' });
  assert.is((await api.get('api/queued')).json.searchBound, undefined);
});

/** Scans of ormq_queued so far and the rows they read, from the server's table statistics (flushed a moment after each statement). */
async function queuedReads(ctx: AdminCtx): Promise<{ scans: number; rows: number }> {
  const [r] = await sql(
    ctx.orm,
    `select seq_scan + coalesce(idx_scan, 0) as scans, seq_tup_read + coalesce(idx_tup_fetch, 0) as rows
    from pg_stat_user_tables where relname = 'ormq_queued'`,
  );
  return { scans: Number(r!.scans), rows: Number(r!.rows) };
}

S.run();

/** A database of its own: the statistics below count no other test's reads, flushed late. */
const H = adminSuite('health reads', { clear: null });

H("health looks at a key's first 1,000 packages for a waiting one, not at every stuck package ahead of it", async (ctx) => {
  const { api } = await ctx.start({ healthMaxWait: 1 });
  await enqueue(ctx.orm.em.fork(), 'work', [], { cluster: 'stuck' });
  await enqueue(ctx.orm.em.fork(), 'work', [], { cluster: 'stuck' });
  const start = await queuedReads(ctx);
  // Ahead of the second package, 20,001 claimed by a process that is gone; all five minutes old. Set
  // up while the table holds two rows, on one connection whose statistics are flushed at the end.
  const setup = new pg.Client({ connectionString: ctx.db.url });
  await setup.connect();
  try {
    await setup.query(`update ormq_queued set payload = jsonb_set(payload, '{enqueued}', to_jsonb(now() - interval '5 minutes')),
      lock = case when id = 1 then now() - interval '1 hour' end, locked_by = case when id = 1 then md5('gone') end`);
    await setup.query(`with one as materialized (select key, payload, lock, locked_by from ormq_queued where id = 1)
      insert into ormq_queued (id, key, payload, lock, locked_by) select -i, key, payload, lock, locked_by from one, generate_series(1, 20000) i`);
    // As autovacuum would after such a change: the planner knows the key holds every row.
    await setup.query('analyze ormq_queued');
    await setup.query('select pg_stat_force_next_flush()');
  } finally {
    await setup.end();
  }
  const before = await waitFor(async () => {
    const now = await queuedReads(ctx);
    return now.scans >= start.scans + 2 && now;
  }, 'the statistics of the setup');
  const r = await api.get('api/health');
  assert.equal([r.status, r.json], [503, { ok: false, problem: '1 queue key has packages waiting over 1 s and no live cluster' }]);
  const after = await waitFor(async () => {
    const now = await queuedReads(ctx);
    return now.scans > before.scans && now;
  }, 'the statistics of the probe');
  assert.ok(after.rows - before.rows <= 3_000, `the probe read ${after.rows - before.rows} packages`);
  const key = (await api.get('api/clusters')).json.keys.find((k: any) => k.key === 'stuck');
  assert.ok(key.oldestWaiting >= 299_000, 'the Clusters page: waiting since the first package, five minutes');
});

H.run();
