import * as assert from 'uvu/assert';
import pg from 'pg';
import type { MikroORM } from '@mikro-orm/postgresql';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cancel,
  enqueue,
  enqueueChain,
  enqueueIter,
  enqueueMany,
  fetchTask,
  pauseKey,
  queueAdmin,
  result,
  resumeKey,
  ValidationError,
  type TaskSpec,
} from '../src/index.js';
import { client, close, serve, testClient } from './helpers/admin.js';
import { ITER_FINISH, ITER_LOCK, ITER_RECORD } from '../src/iterations.js';
import { sql, waitFor } from './helpers/db.js';
import { sleep, startCluster, waitForDrained } from './helpers/cluster.js';
import { Fleet } from './helpers/fleet.js';
import { dbSuite, type DbCtx } from './helpers/suites.js';

interface Ctx extends DbCtx {
  fleet: Fleet;
}

/** Three cluster processes share the database for the whole suite. */
const F = dbSuite<Ctx>('chains and iterations across cluster processes', {
  clear:
    'delete from ormq_task; delete from ormq_queued; delete from ormq_iter; delete from ormq_iter_result; delete from chaos_runs; delete from task_runs; delete from ormq_paused_key',
  async setup(ctx) {
    await sql(
      ctx.orm,
      'create table chaos_runs (task_id char(32) not null, pid int not null, at timestamptz not null default clock_timestamp())',
    );
    await sql(
      ctx.orm,
      'create table task_runs (id bigserial primary key, task_id char(32) not null, pid int not null, started timestamptz not null default clock_timestamp(), ended timestamptz null)',
    );
    ctx.fleet = new Fleet(ctx.db.url, { workers: 4, timeout: 30, retry: 60, maxAttempts: 1 });
    await ctx.fleet.start(3);
  },
  async teardown(ctx) {
    await ctx.fleet?.stop();
  },
});

const em = (orm: MikroORM) => orm.em.fork();

interface Saved {
  id: string;
  success: boolean;
  result: any;
  started: string;
  stopped: string;
  chain: { id: string; step: number; steps: number; ids: string[]; stopped?: boolean } | null;
}
const savedOf = (orm: MikroORM, ids: string[]) =>
  sql<Saved>(orm, 'select id, success, result, started, stopped, chain from ormq_task where id in (?) order by stopped', [ids]);

async function refused(run: () => Promise<unknown>): Promise<Record<string, string>> {
  try {
    await run();
  } catch (e) {
    assert.instance(e, ValidationError);
    return (e as ValidationError).errors;
  }
  throw new Error('accepted');
}

F('a chain of three runs its steps in order, each after the one before succeeded, and each saved step knows its place', async ({ orm }) => {
  const ids = await enqueueChain(
    em(orm),
    [
      { func: 'chaos', args: [150] },
      { func: 'chaos', args: [100], name: 'second step' },
      { func: 'chaos', args: [50] },
    ],
    { group: 'nightly' },
  );
  assert.is(ids.length, 3);
  const queued = await sql(orm, 'select 1 from ormq_queued');
  assert.is(queued.length, 1, 'only the first step is queued at first');
  const saved = await waitFor(() => savedOf(orm, ids).then((r) => (r.length === 3 ? r : null)), 'the three steps', 30_000);
  assert.equal(
    saved.map((s) => s.id),
    ids,
    'they finished in chain order',
  );
  for (let i = 1; i < 3; i++)
    assert.ok(Date.parse(saved[i]!.started) >= Date.parse(saved[i - 1]!.stopped), `step ${i + 1} started after step ${i} stopped`);
  const runs = await sql<{ task_id: string }>(orm, 'select task_id from chaos_runs order by at');
  assert.equal(
    runs.map((r) => r.task_id),
    ids,
    'each step ran once, in order',
  );
  saved.forEach((s, i) => {
    assert.ok(s.success);
    assert.equal(s.chain, { id: ids[0], step: i + 1, steps: 3, ids });
  });
  const groups = await sql<{ group: string; name: string }>(orm, 'select "group", name from ormq_task where id = ?', [ids[1]]);
  assert.equal(groups, [{ group: 'nightly', name: 'second step' }]);
});

F('a final failure stops the chain: the steps after it never run, and the failed step says where it stopped', async ({ orm }) => {
  const ids = await enqueueChain(em(orm), [
    { func: 'chaos', args: [0] },
    { func: 'chaos', args: [0, true] },
    { func: 'chaos', args: [0] },
  ]);
  const saved = await waitFor(() => savedOf(orm, ids).then((r) => (r.length === 2 ? r : null)), 'two steps saved', 30_000);
  const failed = saved.find((s) => s.id === ids[1])!;
  assert.is(failed.success, false);
  assert.is(failed.result.chain, 'chain stopped at step 2 of 3');
  assert.is(failed.result.message, 'built to fail');
  assert.equal(failed.chain, { id: ids[0], step: 2, steps: 3, ids, stopped: true });
  // Long enough for a third step that had been enqueued to be claimed and run by an idle fleet.
  await sleep(1000);
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0, 'nothing left queued');
  assert.is((await savedOf(orm, [ids[2]!])).length, 0, 'the third step never ran');
  const runs = await sql<{ task_id: string }>(orm, 'select task_id from chaos_runs order by at');
  assert.equal(
    runs.map((r) => r.task_id),
    ids.slice(0, 2),
  );

  // The admin's task detail: "step 2 of 3", stopped, with where each step is now.
  const clientDir = testClient();
  const { url, server } = await serve(queueAdmin(orm, { clientDir: clientDir.dir }) as never);
  try {
    const r = await client(`${url}/`).get(`api/failed/${ids[1]}`);
    assert.is(r.status, 200, r.text);
    const chain = r.json.extra.chain;
    assert.equal([chain.step, chain.steps, chain.stopped], [2, 3, true]);
    assert.equal(
      chain.links.map((l: any) => [l.step, l.taskId, l.place?.page ?? null]),
      [
        [1, ids[0], 'successful'],
        [2, ids[1], 'failed'],
        [3, ids[2], null],
      ],
    );
    const first = await client(`${url}/`).get(`api/successful/${ids[0]}`);
    assert.equal([first.json.extra.chain.step, first.json.extra.chain.stopped], [1, false]);
  } finally {
    await close(server);
    clientDir.cleanup();
  }
});

F('a chain is refused whole when it is empty, too long or has a bad step; nothing is written', async ({ orm }) => {
  assert.ok((await refused(() => enqueueChain(em(orm), []))).steps);
  const long = Array.from({ length: 101 }, () => ({ func: 'echo' }) as TaskSpec);
  assert.match((await refused(() => enqueueChain(em(orm), long))).steps!, /at most 100 steps/);
  const errors = await refused(() => enqueueChain(em(orm), [{ func: 'echo' }, { func: '' } as TaskSpec, { func: 'echo', timeout: -1 }]));
  assert.equal(Object.keys(errors).sort(), ['steps[1].func', 'steps[2].timeout']);
  assert.ok((await refused(() => enqueueChain(em(orm), [{ func: 'echo' }], { group: '' }))).group);
  const same = 'a'.repeat(32);
  assert.ok(
    (
      await refused(() =>
        enqueueChain(em(orm), [
          { func: 'echo', id: same },
          { func: 'echo', id: same },
        ]),
      )
    ).steps,
  );
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
});

F('an iteration of ten runs across the processes and saves one task whose result lists the ten results in order', async ({ orm }) => {
  const args = Array.from({ length: 10 }, (_, i) => [{ n: i, word: `w${i}` }]);
  const id = await enqueueIter(em(orm), 'echo', args, { name: 'ten echoes', group: 'batch' });
  const list = await result(em(orm), id, { wait: 30_000 });
  assert.equal(
    list,
    args.map((a) => a[0]),
  );
  const task = (await fetchTask(em(orm), id))!;
  assert.is(task.name, 'ten echoes');
  assert.is(task.group, 'batch');
  assert.is(task.success, true);
  assert.equal(task.args, args, "the task's args are the list of each run's args");
  assert.is((await sql(orm, 'select 1 from ormq_task')).length, 1, 'the runs themselves keep no rows');
  assert.is((await sql(orm, 'select 1 from ormq_iter union all select 1 from ormq_iter_result')).length, 0, 'its bookkeeping is gone');
});

F('many iterations whose runs end at once in three processes: each saved exactly once, with every result', async ({ orm }) => {
  const ids = await Promise.all(
    Array.from({ length: 6 }, (_, k) =>
      enqueueIter(
        em(orm),
        'chaos',
        Array.from({ length: 5 }, (_, i) => [30 + ((i + k) % 3) * 10]),
      ),
    ),
  );
  for (const id of ids)
    assert.equal(
      await result(em(orm), id, { wait: 30_000 }),
      Array.from({ length: 5 }, (_, i) => 30 + ((i + ids.indexOf(id)) % 3) * 10),
    );
  assert.is((await sql(orm, 'select 1 from ormq_task')).length, 6);
  assert.is((await sql(orm, 'select 1 from chaos_runs')).length, 30);
});

F('a run that fails for good takes its place as its error; the others still run; the iteration is saved failed', async ({ orm }) => {
  const id = await enqueueIter(em(orm), 'chaos', [[0], [0], [0, true], [0]]);
  const task = await waitFor(() => fetchTask(em(orm), id), 'the iteration', 30_000);
  assert.is(task.success, false);
  const r = task.result as { error: string; message: string; results: unknown[] };
  assert.is(r.error, 'IterationError');
  assert.is(r.message, '1 of 4 runs failed; the first, run 3: Error: built to fail');
  assert.is(r.results.length, 4);
  assert.equal([r.results[0], r.results[1], r.results[3]], [0, 0, 0]);
  assert.is((r.results[2] as { message: string }).message, 'built to fail');
  const failures = await sql<{ name: string }>(orm, 'select name from ormq_task where not success and id <> ?', [id]);
  assert.is(failures.length, 1, "the failed run is saved under its own id, as any task's failure");
  assert.match(failures[0]!.name, /\[3\/4\]$/);
});

F('an iteration is refused whole for bad args or options', async ({ orm }) => {
  assert.ok((await refused(() => enqueueIter(em(orm), 'echo', []))).args);
  assert.ok((await refused(() => enqueueIter(em(orm), 'echo', [[1], 2 as never])))['args[1]']);
  assert.ok((await refused(() => enqueueIter(em(orm), 'echo', [[1]], { timeout: 0 }))).timeout);
  assert.ok((await refused(() => enqueueIter(em(orm), '', [[1]]))).func);
  const id = 'b'.repeat(32);
  await enqueueIter(em(orm), 'echo', [[1]], { id, cluster: 'nobody' });
  assert.ok(
    (await refused(() => enqueueIter(em(orm), 'echo', [[2]], { id, cluster: 'nobody' }))).id,
    'an iteration of that id is still running',
  );
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 1);
});

F(
  "cancel of an iteration removes its waiting runs, and the iteration is saved failed with each run's cancel in its place",
  async ({ orm }) => {
    const id = await enqueueIter(em(orm), 'echo', [[1], [2], [3]], { cluster: 'nobody' });
    assert.is(await cancel(em(orm), id, { by: 'ops' }), 'removed');
    assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
    const task = (await fetchTask(em(orm), id))!;
    assert.is(task.success, false);
    const r = task.result as { error: string; message: string; results: { message: string }[] };
    assert.is(r.message, '3 of 3 runs failed; the first, run 1: CancelledError: Task cancelled by ops');
    assert.equal(
      r.results.map((x) => x.message),
      ['Task cancelled by ops', 'Task cancelled by ops', 'Task cancelled by ops'],
    );
    assert.is((await sql(orm, 'select 1 from ormq_iter union all select 1 from ormq_iter_result')).length, 0);
    assert.is(await cancel(em(orm), id), 'not found');
  },
);

F('the last two runs recorded at once on two connections: the second waits for the first, and the task holds both', async ({ orm, db }) => {
  const id = await enqueueIter(em(orm), 'echo', [['a'], ['b']], { cluster: 'nobody' });
  const [a, b] = [new pg.Client({ connectionString: db.url }), new pg.Client({ connectionString: db.url })];
  await Promise.all([a.connect(), b.connect()]);
  const run = (c: pg.Client, s: { text: string }, values: unknown[]) => c.query(s.text, values);
  const outcome = (n: number, value: string) =>
    JSON.stringify([{ iter: id, n, success: true, result: value, started: new Date().toISOString(), stopped: new Date().toISOString() }]);
  try {
    await a.query('begin');
    await run(a, ITER_LOCK, [[id]]);
    assert.equal(
      (await run(a, ITER_RECORD, [outcome(0, 'a')])).rows.map((r) => r.remaining),
      [1],
    );
    await b.query('begin');
    let bLocked = false;
    const bLock = run(b, ITER_LOCK, [[id]]).then(() => (bLocked = true));
    await sleep(200);
    assert.is(bLocked, false, 'the second waits on the iteration while the first is uncommitted');
    assert.is((await run(a, ITER_FINISH, [[id], 'x'])).rows.length, 0, 'one run left: nothing to save');
    await a.query('commit');
    await Promise.race([bLock, sleep(10_000).then(() => Promise.reject(new Error('the second never got the lock')))]);
    assert.equal(
      (await run(b, ITER_RECORD, [outcome(1, 'b')])).rows.map((r) => r.remaining),
      [0],
    );
    // Recording the same run again (it ran twice) counts nothing.
    assert.equal((await run(b, ITER_RECORD, [outcome(1, 'b')])).rows, []);
    assert.equal(
      (await run(b, ITER_FINISH, [[id], 'x'])).rows.map((r) => r.result),
      [['a', 'b']],
    );
    await b.query('commit');
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
  assert.equal(await result(em(orm), id), ['a', 'b']);
});

F("a chain step that fails and is retried continues the chain once it succeeds; an iteration's hook gets its task", async ({ orm }) => {
  let tries = 0;
  const order: string[] = [];
  const hooked: { id: string; result: unknown }[] = [];
  const { cluster } = await startCluster(orm, {
    name: 'local',
    tasks: {
      flaky: () => {
        order.push('flaky');
        if (++tries < 2) throw new Error('first try fails');
        return 'ok';
      },
      after: () => void order.push('after'),
      double: (x: number) => x * 2,
      collect: (task: { id: string; result: unknown }) => void hooked.push(task),
    },
  });
  try {
    const ids = await enqueueChain(em(orm), [
      { func: 'flaky', retry: 0.2, maxAttempts: 3, cluster: 'local' },
      { func: 'after', cluster: 'local' },
    ]);
    await waitFor(() => savedOf(orm, ids).then((r) => r.length === 2 && r.every((s) => s.success)), 'both steps to succeed', 20_000);
    assert.equal(order, ['flaky', 'flaky', 'after']);
    const [first] = await savedOf(orm, [ids[0]!]);
    assert.is(first!.chain!.stopped, undefined, 'a failure that was retried did not stop the chain');
    // An iteration's hook gets its one saved task.
    const iter = await enqueueIter(em(orm), 'double', [[1], [2], [3]], { cluster: 'local', hook: 'collect' });
    await waitFor(() => hooked.length > 0, "the iteration's hook");
    assert.equal(
      hooked.map((t) => [t.id, t.result]),
      [[iter, [2, 4, 6]]],
    );
  } finally {
    await cluster.stop();
  }
});

const PRIORITY_MESSAGE = 'must be an integer from -2147483648 to 2147483647';

F("a chain step and an iteration's runs keep their priority and serial key once queued", async ({ orm }) => {
  const side: string[] = [];
  const prio: string[] = [];
  const record = (into: string[]) => (x: string) => void into.push(x);
  await pauseKey(em(orm), 'prio');
  // Held by nothing but its serial key: no process claims key 'nobody'.
  const blocker = await enqueue(em(orm), 'record' as never, ['blocker'] as never, { key: 'nobody', serial: 'acct' });
  await enqueueMany(em(orm), ['w1', 'w2', 'w3'].map((x) => ({ func: 'record', args: [x], key: 'prio' })) as never);
  const a = await enqueueChain(em(orm), [
    { func: 'record', args: ['a1'], key: 'side' },
    { func: 'record', args: ['a2'], key: 'prio', priority: 5 },
  ] as never);
  const b = await enqueueChain(em(orm), [
    { func: 'record', args: ['b1'], key: 'side', priority: 4 },
    { func: 'record', args: ['b2'], key: 'prio', priority: 9, serial: 'acct' },
  ] as never);
  assert.equal(await sql(orm, `select priority from ormq_queued where payload->>'id' = ?`, [b[0]]), [{ priority: 4 }], 'step 1 too');
  const iter = await enqueueIter(em(orm), 'record' as never, [['i1'], ['i2'], ['i3']] as never, { key: 'prio', priority: 3 });
  const clusters = [
    await startCluster(orm, { name: 'side', workers: 1, tasks: { record: record(side) } }),
    await startCluster(orm, { name: 'prio', workers: 1, bulk: 1, tasks: { record: record(prio) } }),
  ];
  try {
    const steps = await waitFor(
      async () => {
        const rows = await sql<{ id: string; priority: number; serial: string | null }>(
          orm,
          `select payload->>'id' as id, priority, serial from ormq_queued where payload->>'id' in (?) order by priority`,
          [[a[1], b[1]]],
        );
        return rows.length === 2 ? rows : null;
      },
      'both second steps queued once their first steps succeeded',
      20_000,
    );
    assert.equal(steps, [
      { id: a[1], priority: 5, serial: null },
      { id: b[1], priority: 9, serial: 'acct' },
    ]);
    assert.equal(side.sort(), ['a1', 'b1']);
    await resumeKey(em(orm), 'prio');
    await waitFor(() => prio.length === 7, 'seven tasks of key prio', 20_000);
    // Priority 5, then the iteration's runs at 3, then the waiting 0s; b2 (priority 9) waits behind its serial key.
    assert.equal(prio, ['a2', 'i1', 'i2', 'i3', 'w1', 'w2', 'w3']);
    assert.equal(await result(em(orm), iter, { wait: 10_000 }), [null, null, null]);
    await sleep(300);
    assert.is(prio.length, 7, 'b2 is still held by the earlier package of its serial key');
    assert.is(await cancel(em(orm), blocker), 'removed');
    await waitFor(() => prio.length === 8, 'b2 once its serial key is free', 20_000);
    assert.is(prio[7], 'b2');
  } finally {
    for (const c of clusters) await c.cluster.stop();
  }
});

F('an iteration with a serial key runs its runs one at a time, in order, across three processes', async ({ orm }) => {
  const never = join(tmpdir(), `ormq-never-${process.pid}-${Date.now()}`);
  // Paused while it is enqueued, to read which run is which before any starts.
  await pauseKey(em(orm), 'default');
  const id = await enqueueIter(em(orm), 'hold' as never, Array.from({ length: 6 }, () => [never, 60]) as never, { serial: 'x' });
  const runIds = (
    await sql<{ id: string; serial: string }>(
      orm,
      `select payload->>'id' as id, serial from ormq_queued order by (payload->'iter'->>'n')::int`,
    )
  ).map((r) => [r.id, r.serial]);
  assert.equal(
    runIds.map((r) => r[1]),
    Array(6).fill('x'),
  );
  await resumeKey(em(orm), 'default');
  assert.is(((await result(em(orm), id, { wait: 30_000 })) as unknown[]).length, 6);
  await waitForDrained(orm, 'the runs acked');
  const runs = await sql<{ task_id: string; started: Date; ended: Date }>(
    orm,
    'select task_id, started, ended from task_runs order by started, id',
  );
  assert.equal(
    runs.map((r) => r.task_id),
    runIds.map((r) => r[0]),
    'each run started once, in order',
  );
  for (let i = 1; i < runs.length; i++) assert.ok(runs[i]!.started >= runs[i - 1]!.ended, `run ${i + 1} started after run ${i} ended`);
});

F("a chain's or an iteration's bad priority or serial key is refused as enqueue refuses it, and nothing is written", async ({ orm }) => {
  assert.equal(await refused(() => enqueueChain(em(orm), [{ func: 'echo' }, { func: 'echo', priority: 1.5 }])), {
    'steps[1].priority': PRIORITY_MESSAGE,
  });
  assert.equal(await refused(() => enqueueChain(em(orm), [{ func: 'echo', serial: '' }])), {
    'steps[0].serial': 'must be a non-empty string',
  });
  assert.equal(await refused(() => enqueueIter(em(orm), 'echo', [[1]], { priority: 2 ** 31 })), { priority: PRIORITY_MESSAGE });
  assert.equal(await refused(() => enqueueIter(em(orm), 'echo', [[1]], { serial: 'x'.repeat(101) })), {
    serial: 'must be at most 100 characters',
  });
  assert.equal(await sql(orm, 'select 1 from ormq_queued union all select 1 from ormq_iter'), []);
});

F.run();
