import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, enqueueMany } from '../src/index.js';
import { initOrm, sql, waitFor } from './helpers/db.js';
import { sleep, startCluster, startClusters, waitForDrained } from './helpers/cluster.js';
import { spawnCluster, type ChildCluster } from './helpers/fleet.js';
import { CLEAR_QUEUE, dbSuite } from './helpers/suites.js';
import { CLAIM } from '../src/cluster/sql.js';

const P = dbSuite('cluster: stops, crashes and many clusters', { clear: CLEAR_QUEUE });

const em = (orm: MikroORM) => orm.em.fork();

P('graceful stop lets short tasks finish and releases the locks of unfinished ones', async ({ orm }) => {
  const { cluster } = await startCluster(orm, {
    workers: 2,
    stopTimeout: 300,
    tasks: { quick: () => sleep(100).then(() => 'done'), endless: () => sleep(60_000) },
  });
  const quick = await enqueue(em(orm), 'quick');
  const endless = await enqueue(em(orm), 'endless');
  await waitFor(() => cluster.busy === 2, 'both tasks running');
  await cluster.stop();
  const saved = await sql<{ id: string }>(orm, 'select id from ormq_task');
  assert.equal(
    saved.map((r) => r.id),
    [quick],
  );
  const left = await sql<{ lock: string | null; id: string }>(orm, "select lock, payload->>'id' as id from ormq_queued");
  assert.equal(left, [{ lock: null, id: endless }]);
  // Released, so another cluster takes it at once rather than after `retry`.
  const next = await startCluster(orm, { retry: 3600, timeout: 60, tasks: { endless: () => 'now it ends' } });
  try {
    await waitFor(() => sql(orm, 'select 1 from ormq_task where id = ?', [endless]).then((r) => r.length === 1), 'the released task');
  } finally {
    await next.cluster.stop();
  }
});

P('a cluster killed with SIGKILL mid-task loses nothing: the package runs again after retry', async ({ orm, db }) => {
  const { child, lines } = spawnCluster(db.url, { timeout: 30, retry: 60 });
  try {
    await waitFor(() => lines.includes('ready'), 'the child cluster');
    const id = await enqueue(em(orm), 'announce', [60_000]);
    await waitFor(() => lines.includes(`started ${id}`), 'the task to start in the child');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const [pkg] = await sql<{ lock: string | null }>(orm, 'select lock from ormq_queued');
    assert.ok(pkg?.lock, 'the package is still there, locked by the dead cluster');
    // A cluster whose retry is 1 s treats that lock as expired a second after it was taken.
    const { cluster } = await startCluster(orm, { timeout: 0.5, retry: 1, tasks: { announce: () => 'ran again' } });
    try {
      const [row] = await waitFor(
        () =>
          sql<{ result: string; attempt_count: number }>(orm, 'select result, attempt_count from ormq_task where id = ?', [id]).then((r) =>
            r.length ? r : null,
          ),
        'the re-run',
      );
      assert.is(row!.result, 'ran again');
      assert.is(row!.attempt_count, 1);
      assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
    } finally {
      await cluster.stop();
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

P('three clusters on one database run each package exactly once', async ({ orm, db }) => {
  const runs = new Map<string, number>();
  const orms = await Promise.all([initOrm(db.url), initOrm(db.url), initOrm(db.url)]);
  const clusters = await startClusters(orms, {
    workers: 4,
    bulk: 5,
    saveLimit: 0,
    tasks: {
      count(this: { id: string }) {
        runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
        return sleep(Math.random() * 3);
      },
    },
  });
  try {
    const ids = [];
    for (let i = 0; i < 300; i++) ids.push(await enqueue(em(orm), 'count', []));
    await waitForDrained(orm, 'an empty queue', 30_000);
    assert.is(runs.size, 300);
    assert.ok(
      [...runs.values()].every((n) => n === 1),
      'no package ran twice',
    );
    const clustersUsed = await sql<{ n: number }>(orm, 'select count(*)::int as n from ormq_task');
    assert.is(clustersUsed[0]!.n, 300);
  } finally {
    await clusters.stop();
    await Promise.all(orms.map((o) => o.close(true)));
  }
});

P(
  'a process stalled past retry neither releases nor reruns what another process claimed meanwhile: no package runs in both at once, each result is saved once',
  async ({ orm, db }) => {
    const dir = mkdtempSync(join(tmpdir(), 'ormq-stall-'));
    const wake = join(dir, 'wake');
    const done = join(dir, 'done');
    await sql(orm, 'drop table if exists task_runs');
    await sql(
      orm,
      'create table task_runs (id bigserial primary key, task_id char(32) not null, pid int not null, started timestamptz not null default clock_timestamp(), ended timestamptz null)',
    );
    // The same retry and timeout in both; A has one worker, so what it claims with the stalling task waits in its buffer.
    const options = { retry: 6, timeout: 5, bulk: 10 };
    const a = spawnCluster(db.url, { ...options, workers: 1 });
    let b: ChildCluster | null = null;
    try {
      await waitFor(() => a.lines.includes('ready'), 'process A', 30_000);
      // One statement, so that A claims them all at once: the stalling task first.
      const [stall, ...held] = await enqueueMany(em(orm), [
        { func: 'stall', args: [a.child.pid!, wake] },
        ...Array.from({ length: 9 }, () => ({ func: 'hold', args: [done, 4_000] })),
      ]);
      await waitFor(
        () => sql<{ n: number }>(orm, 'select count(*)::int as n from ormq_queued where lock is not null').then((r) => r[0]!.n === 10),
        'A to claim all ten',
      );
      // A's event loop now stands still. B takes the ten once their locks expire, and runs them.
      b = spawnCluster(db.url, { ...options, workers: 10 });
      const bPid = b.child.pid!;
      await waitFor(
        () => sql<{ n: number }>(orm, 'select count(*)::int as n from task_runs where pid = ?', [bPid]).then((r) => r[0]!.n === 9),
        'B to start the packages A still holds in its buffer',
        30_000,
      );
      writeFileSync(wake, '');
      // A's stalled task ends after B saved its own run of the same package: A's result is logged, not saved.
      await waitFor(
        () => a.lines.some((l) => l.startsWith('log warn:') && l.includes(`not saved: ${stall}`)),
        "A's late result to be logged",
        30_000,
      );
      // A's claim loop polls every 50 ms: half a second gives it ten claims to take what B runs.
      await sleep(500);
      writeFileSync(done, '');
      await waitForDrained(orm, 'every package acked', 30_000);

      const overlaps = await sql(
        orm,
        `select x.task_id, x.pid as first, y.pid as second from task_runs x join task_runs y on x.task_id = y.task_id and x.id < y.id
       where x.started < coalesce(y.ended, 'infinity') and y.started < coalesce(x.ended, 'infinity')`,
      );
      assert.equal(overlaps, [], 'no package ran in two places at once');
      const runs = await sql<{ task_id: string; pid: number }>(orm, 'select task_id, pid from task_runs order by task_id');
      assert.equal(
        runs,
        held.sort().map((id) => ({ task_id: id, pid: bPid })),
        'each held package ran once, in B',
      );
      const saved = await sql<{ id: string; result: number; success: boolean; attempt_count: number }>(
        orm,
        'select id, result, success, attempt_count from ormq_task order by id',
      );
      assert.equal(
        saved,
        [stall!, ...held].sort().map((id) => ({ id, result: bPid, success: true, attempt_count: 1 })),
        "each result saved once: B's",
      );
    } finally {
      for (const c of [a, b]) if (c && c.child.exitCode === null) c.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      await sql(orm, 'drop table if exists task_runs');
    }
  },
);

P(
  'a claim answered while the process stalls is not started after the stall: its packages may be running elsewhere by then',
  async ({ orm, db }) => {
    const dir = mkdtempSync(join(tmpdir(), 'ormq-stall-'));
    const [go, blocked, wake, done] = ['go', 'blocked', 'wake', 'done'].map((f) => join(dir, f));
    await sql(orm, 'drop table if exists task_runs');
    await sql(
      orm,
      'create table task_runs (id bigserial primary key, task_id char(32) not null, pid int not null, started timestamptz not null default clock_timestamp(), ended timestamptz null)',
    );
    const options = { retry: 6, timeout: 5, bulk: 1 };
    const a = spawnCluster(db.url, { ...options, workers: 2 });
    let b: ChildCluster | null = null;
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await waitFor(() => a.lines.includes('ready'), 'process A', 30_000);
      await enqueue(em(orm), 'stallLater', [a.child.pid!, go, blocked, wake]);
      await waitFor(
        () => sql(orm, 'select 1 from ormq_queued where lock is not null').then((r) => r.length === 1),
        'A to start the stalling task',
      );
      // Due in an hour; then the queue's updates held up, so A's next claim goes out and waits in the
      // database, where the package comes due before the claim gets to it.
      const hold = await enqueue(em(orm), 'hold', [done, 30_000], { delay: 3600 });
      await holder.query('begin');
      await holder.query('lock table ormq_queued in share mode');
      await holder.query("update ormq_queued set run_at = null where payload->>'id' = $1", [hold]);
      await waitFor(
        // The statement's start: pg_stat_activity keeps only the first 1 KB of its text.
        () =>
          sql(
            orm,
            "select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and starts_with(query, ?)",
            [CLAIM.text.slice(0, 200)],
          ).then((r) => r.length === 1),
        "A's claim waiting in the database",
      );
      // A's event loop stops; its claim then takes the package, and the answer waits for A.
      writeFileSync(go, '');
      await waitFor(() => existsSync(blocked), 'A to stall');
      await holder.query('commit');
      await waitFor(
        () => sql(orm, "select 1 from ormq_queued where payload->>'id' = ? and lock is not null", [hold]).then((r) => r.length === 1),
        'the claim',
      );
      b = spawnCluster(db.url, { ...options, workers: 2 });
      const bPid = b.child.pid!;
      await waitFor(
        () => sql(orm, 'select 1 from task_runs where pid = ?', [bPid]).then((r) => r.length === 1),
        'B to run the package once its lock expired',
        30_000,
      );
      writeFileSync(wake, '');
      await waitFor(
        () => a.lines.some((l) => l.startsWith('log warn:') && l.includes('not saved')),
        "A's late result to be logged",
        30_000,
      );
      await sleep(500);
      writeFileSync(done, '');
      await waitForDrained(orm, 'every package acked', 30_000);
      const runs = await sql<{ pid: number }>(orm, 'select pid from task_runs order by id');
      assert.equal(runs, [{ pid: bPid }], 'the package ran once, in B; A did not start it after its stall');
    } finally {
      for (const c of [a, b]) if (c && c.child.exitCode === null) c.child.kill('SIGKILL');
      await holder.end();
      rmSync(dir, { recursive: true, force: true });
      await sql(orm, 'drop table if exists task_runs');
    }
  },
);

P('a cluster in another process is woken by NOTIFY and stops on SIGTERM', async ({ orm, db }) => {
  const { child, lines } = spawnCluster(db.url, { poll: 60_000 });
  try {
    await waitFor(() => lines.includes('ready'), 'the child cluster');
    const id = await enqueue(em(orm), 'echo', ['hello']);
    // With a 60 s poll, only the notification can make it run within the wait.
    await waitFor(() => sql(orm, 'select 1 from ormq_task where id = ?', [id]).then((r) => r.length === 1), 'the notified run', 5_000);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    assert.is(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

P('the LISTEN connection reconnects after the server drops it, and notifications work again', async ({ orm, db }) => {
  const { cluster, logs } = await startCluster(orm, { poll: 60_000, tasks: { echo: (x: unknown) => x } });
  try {
    const dbName = new URL(db.url).pathname.slice(1);
    const listeners = () =>
      sql<{ pid: number }>(orm, "select pid from pg_stat_activity where datname = ? and query ilike 'listen%'", [dbName]);
    const [before] = await waitFor(() => listeners().then((r) => (r.length ? r : null)), 'the LISTEN connection');
    await sql(orm, 'select pg_terminate_backend(?)', [before!.pid]);
    await waitFor(() => logs.some((l) => /LISTEN connection lost/.test(l.message)), 'the lost connection to be noticed');
    await waitFor(() => listeners().then((r) => r.length === 1 && r[0]!.pid !== before!.pid), 'a new LISTEN connection');
    const id = await enqueue(em(orm), 'echo', [1]);
    await waitFor(() => sql(orm, 'select 1 from ormq_task where id = ?', [id]).then((r) => r.length === 1), 'the notified run', 5_000);
  } finally {
    await cluster.stop();
  }
});

P.run();
