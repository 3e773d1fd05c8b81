import * as assert from 'uvu/assert';
import pg from 'pg';
import {
  countGroup,
  deleteGroup,
  enqueue,
  enqueueChain,
  enqueueIter,
  enqueueMany,
  fetchTask,
  result,
  resultGroup,
  schedule,
  ValidationError,
} from '../src/index.js';
import { CLAIM } from '../src/cluster/sql.js';
import { sql, waitFor } from './helpers/db.js';
import { sleep, startCluster } from './helpers/cluster.js';
import { dbSuite } from './helpers/suites.js';

/** A client LISTENing on ormq_queued that records what it hears. */
async function listen(url: string, channel = 'ormq_queued'): Promise<{ heard: string[]; end(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const heard: string[] = [];
  client.on('notification', (m) => heard.push(m.payload ?? ''));
  await client.query(`listen ${channel}`);
  return { heard, end: () => client.end() };
}

const Many = dbSuite('enqueueMany', { clear: 'delete from ormq_queued' });

Many('writes every task in order, returns their ids, and notifies once per distinct key', async ({ orm, db }) => {
  const l = await listen(db.url);
  try {
    const tasks = Array.from({ length: 2500 }, (_, i) => ({ func: 'work', args: [i], cluster: i % 2 ? 'odd' : 'even' }));
    const ids = await orm.em.fork().transactional((em) => enqueueMany(em, tasks));
    assert.is(ids.length, 2500);
    assert.is(new Set(ids).size, 2500);
    const rows = await sql<{ key: string; payload: { id: string; args: number[] } }>(
      orm,
      'select key, payload from ormq_queued order by id',
    );
    assert.equal(
      rows.map((r) => r.payload.id),
      ids,
    );
    assert.equal(
      rows.map((r) => r.payload.args[0]),
      tasks.map((_, i) => i),
    );
    assert.is(rows[3]!.key, 'odd');
    await waitFor(() => l.heard.length >= 2, 'notifications');
    await sleep(100);
    assert.equal([...l.heard].sort(), ['even', 'odd']);
  } finally {
    await l.end();
  }
});

Many('rolls back with the host transaction and wakes no one', async ({ orm, db }) => {
  const l = await listen(db.url);
  try {
    await orm.em
      .fork()
      .transactional(async (em) => {
        await enqueueMany(em, [{ func: 'a' }, { func: 'b' }]);
        throw new Error('host work failed');
      })
      .catch(() => {});
    assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
    await enqueue(orm.em.fork(), 'after');
    await waitFor(() => l.heard.length >= 1, 'notification');
    assert.equal(l.heard, ['default']);
  } finally {
    await l.end();
  }
});

Many('a bad task is named by its index and nothing is written', async ({ orm }) => {
  try {
    await enqueueMany(orm.em.fork(), [{ func: 'ok' }, { func: '' }, { func: 'x', args: 'no' as never }, null as never]);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, ValidationError);
    const errors = (e as ValidationError).errors;
    assert.ok(errors['tasks[1].func']);
    assert.ok(errors['tasks[2].args']);
    assert.ok(errors['tasks[3]']);
    assert.not.ok(Object.keys(errors).some((k) => k.startsWith('tasks[0]')));
  }
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
  assert.equal(await enqueueMany(orm.em.fork(), []), []);
});

Many('a task PostgreSQL cannot store (NUL, unpaired surrogate, a cycle) is named by its index and nothing is written', async ({ orm }) => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  try {
    await enqueueMany(orm.em.fork(), [
      { func: 'ok', args: ['fine'] },
      { func: 'x', args: ['a\u0000b'] },
      { func: 'y', kwargs: { s: '\ud800' } },
      { func: 'z', args: [cyclic] },
    ]);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.equal(Object.keys((e as ValidationError).errors).sort(), ['tasks[1].args', 'tasks[2].kwargs', 'tasks[3].args']);
  }
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
});

Many('each task of a batch keeps its own key, runAt and delay', async ({ orm }) => {
  const at = new Date('2031-05-06T07:08:09.123Z');
  const ids = await enqueueMany(orm.em.fork(), [
    { func: 'a', key: 'k1' },
    { func: 'b', key: 'k2', runAt: at },
    { func: 'c', delay: 3600 },
    { func: 'd', key: 'k1' },
  ]);
  const rows = await sql<{ key: string; func: string; run_at: string | null; secs: number | null }>(
    orm,
    `select key, payload->>'func' as func, run_at, extract(epoch from run_at - now())::float8 as secs from ormq_queued order by id`,
  );
  assert.equal(
    rows.map((r) => [r.key, r.func]),
    [
      ['k1', 'a'],
      ['k2', 'b'],
      ['default', 'c'],
      ['k1', 'd'],
    ],
  );
  assert.is(rows[0]!.run_at, null);
  assert.is(new Date(rows[1]!.run_at!).toISOString(), at.toISOString());
  assert.ok(rows[2]!.secs! > 3590 && rows[2]!.secs! <= 3600, `delay: ${rows[2]!.secs}`);
  assert.is(rows[3]!.run_at, null);
  const enqueued = await sql<{ n: number }>(
    orm,
    `select count(distinct payload->>'enqueued')::int as n from ormq_queued where payload->>'id' in (?)`,
    [ids],
  );
  assert.is(enqueued[0]!.n, 1, 'one enqueue time for the whole call');
});

Many('a queue key PostgreSQL cannot store is named by its index and nothing is written', async ({ orm }) => {
  try {
    await enqueueMany(orm.em.fork(), [{ func: 'ok' }, { func: 'x', key: 'a\u0000b' }]);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.equal(Object.keys((e as ValidationError).errors), ['tasks[1].key']);
    assert.match((e as ValidationError).errors['tasks[1].key']!, /NUL character/);
  }
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
});

Many('the cluster runs every task of a batch', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { tasks: { double: (n: number) => n * 2 }, bulk: 50 });
  try {
    const ids = await enqueueMany(
      orm.em.fork(),
      Array.from({ length: 120 }, (_, i) => ({ func: 'double', args: [i], group: 'batch' })),
    );
    await waitFor(async () => (await countGroup(orm.em.fork(), 'batch')) === 120, 'all saved');
    assert.is(await result(orm.em.fork(), ids[7]!), 14);
  } finally {
    await cluster.stop();
  }
});

Many(
  'a chain or an iteration whose args JSON cannot hold is refused naming the step or run; too many is refused by count; nothing is written',
  async ({ orm }) => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown[] = [];
    const root = deep;
    for (let i = 0; i < 200_000; i++) deep = deep[0] = [] as unknown[];
    const getter = Object.defineProperty({}, 'v', {
      enumerable: true,
      get() {
        throw new Error('no');
      },
    });
    const bad: [string, unknown][] = [
      ['a cycle', cyclic],
      ['a BigInt', 10n],
      ['a toJSON that throws', { toJSON: () => assert.unreachable('toJSON') }],
      ['a getter that throws', getter],
      ['200,000 levels', root],
    ];
    const refused = async (what: string, fn: () => Promise<unknown>): Promise<Record<string, string>> => {
      try {
        await fn();
      } catch (e) {
        assert.instance(e, ValidationError, `${what}: ${String(e)}`);
        return (e as ValidationError).errors;
      }
      throw new Error(`${what}: accepted`);
    };
    for (const [what, value] of bad) {
      assert.equal(Object.keys(await refused(what, () => enqueueChain(orm.em.fork(), [{ func: 'a' }, { func: 'b', args: [value] }]))), [
        'steps[1].args',
      ]);
      assert.equal(Object.keys(await refused(what, () => enqueueChain(orm.em.fork(), [{ func: 'a', kwargs: { value } }]))), [
        'steps[0].kwargs',
      ]);
      assert.equal(Object.keys(await refused(what, () => enqueueIter(orm.em.fork(), 'a', [[1], [value]]))), ['args[1].args']);
      assert.equal(Object.keys(await refused(what, () => enqueueIter(orm.em.fork(), 'a', [[1]], { kwargs: { value } }))), ['kwargs']);
    }
    const steps = Array.from({ length: 100_000 }, () => ({ func: 'a' }));
    assert.match((await refused('100,000 steps', () => enqueueChain(orm.em.fork(), steps))).steps!, /at most 100 steps, got 100000/);
    const runs = Array.from({ length: 100_000 }, (_, i) => [i]);
    assert.match(
      (await refused('100,000 runs', () => enqueueIter(orm.em.fork(), 'a', runs))).args!,
      /at most 10000 argument arrays, got 100000/,
    );
    assert.ok((await refused('options null', () => enqueueChain(orm.em.fork(), [{ func: 'a' }], null as never))).options);
    assert.ok((await refused('options null', () => enqueueIter(orm.em.fork(), 'a', [[1]], null as never))).options);
    assert.equal(await sql(orm, 'select (select count(*) from ormq_queued)::int as q, (select count(*) from ormq_iter)::int as i'), [
      { q: 0, i: 0 },
    ]);
  },
);

Many.run();

const Results = dbSuite('result and fetchTask');

Results('waits for the result of a running task and returns it', async ({ orm }) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  // A long poll: only the cluster's own NOTIFY and ormq_saved can make this prompt.
  const { cluster } = await startCluster(orm, { poll: 60_000, tasks: { slow: async (x: string) => (await gate, `done ${x}`) } });
  try {
    const id = await enqueue(orm.em.fork(), 'slow', ['a']);
    assert.is(await fetchTask(orm.em.fork(), id), null, 'not saved yet, no wait: null at once');
    const waiting = result(orm.em.fork(), id, { wait: 30_000 });
    setTimeout(release, 200);
    assert.is(await waiting, 'done a');
    const task = await fetchTask(orm.em.fork(), id, { wait: 1000 });
    assert.is(task!.success, true);
    assert.is(task!.func, 'slow');
    assert.equal(task!.args, ['a']);
  } finally {
    await cluster.stop();
  }
});

Results('a waiter is woken by the save notification, not by polling', async ({ orm }) => {
  const id = 'c'.repeat(32);
  let settled = false;
  const waiting = fetchTask(orm.em.fork(), id, { wait: 30_000 }).then((t) => ((settled = true), t));
  await sleep(300);
  await sql(
    orm,
    `insert into ormq_task (id, name, func, args, kwargs, result, enqueued, started, stopped, success)
     values (?, 'n', 'f', '[]', '{}', '42', now(), now(), now(), true)`,
    [id],
  );
  await sleep(500);
  assert.is(settled, false, 'a saved row without its notification is not seen: nothing polls');
  await sql(orm, `select pg_notify('ormq_saved', ?)`, [`${'d'.repeat(32)},${id}`]);
  const task = await waiting;
  assert.is(task!.result, 42);
});

Results('no result: never saved within the wait, save: false, or a bad id', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { tasks: { f: () => 'x' } });
  try {
    const id = await enqueue(orm.em.fork(), 'f', [], { save: false });
    const start = Date.now();
    assert.is(await result(orm.em.fork(), id, { wait: 600 }), null);
    assert.ok(Date.now() - start >= 600, 'waited the whole time');
    await waitFor(async () => (await sql(orm, 'select 1 from ormq_queued')).length === 0, 'acked');
    assert.is(await result(orm.em.fork(), id), null);
  } finally {
    await cluster.stop();
  }
  for (const bad of ['nope', 'A'.repeat(32)]) {
    try {
      await result(orm.em.fork(), bad);
      assert.unreachable();
    } catch (e) {
      assert.instance(e, ValidationError);
    }
  }
  try {
    await result(orm.em.fork(), 'e'.repeat(32), { wait: -1 });
    assert.unreachable();
  } catch (e) {
    assert.equal((e as ValidationError).errors, { wait: 'must be a whole number of ms from 0 to 2147483647' });
  }
});

Results('a failure is saved too: its result is the error', async ({ orm }) => {
  const { cluster } = await startCluster(orm, {
    ackFailures: true,
    tasks: {
      boom: () => {
        throw new Error('bad luck');
      },
    },
  });
  try {
    const id = await enqueue(orm.em.fork(), 'boom');
    const r = (await result(orm.em.fork(), id, { wait: 20_000 })) as { message: string };
    assert.is(r.message, 'bad luck');
  } finally {
    await cluster.stop();
  }
});

Results('group helpers: results, counts of successes and failures, delete', async ({ orm }) => {
  const { cluster } = await startCluster(orm, {
    ackFailures: true,
    tasks: {
      maybe: (n: number) => {
        if (n < 0) throw new Error('negative');
        return n;
      },
    },
  });
  try {
    const ids = await enqueueMany(
      orm.em.fork(),
      [1, -1, 2, 3].map((n) => ({ func: 'maybe', args: [n], group: 'g1' })),
    );
    await enqueue(orm.em.fork(), 'maybe', [9], { group: 'other' });
    for (const id of ids) await fetchTask(orm.em.fork(), id, { wait: 20_000 });
    assert.equal([...(await resultGroup(orm.em.fork(), 'g1'))].sort(), [1, 2, 3]);
    assert.is(await countGroup(orm.em.fork(), 'g1'), 3);
    assert.is(await countGroup(orm.em.fork(), 'g1', { failures: true }), 1);
    assert.is(((await resultGroup(orm.em.fork(), 'g1', { failures: true }))[0] as { message: string }).message, 'negative');
    assert.is(await deleteGroup(orm.em.fork(), 'g1'), 4);
    assert.is(await countGroup(orm.em.fork(), 'g1'), 0);
    await waitFor(async () => (await countGroup(orm.em.fork(), 'other')) === 1, 'other group kept');
    try {
      await countGroup(orm.em.fork(), '');
      assert.unreachable();
    } catch (e) {
      assert.instance(e, ValidationError);
    }
  } finally {
    await cluster.stop();
  }
});

Results.run();

const Delay = dbSuite('delayed tasks', { clear: 'delete from ormq_queued' });

Delay('runAt and delay: not claimed before then, run soon after even with a long poll', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { poll: 60_000, tasks: { f: (x: string) => x } });
  try {
    const runAt = new Date(Date.now() + 1200);
    const a = await enqueue(orm.em.fork(), 'f', ['a'], { runAt });
    const b = await enqueue(orm.em.fork(), 'f', ['b'], { delay: 1.2 });
    const now = await enqueue(orm.em.fork(), 'f', ['now']);
    assert.is(await result(orm.em.fork(), now, { wait: 20_000 }), 'now');
    for (const id of [a, b]) {
      const task = await fetchTask(orm.em.fork(), id, { wait: 20_000 });
      assert.ok(task, 'ran');
      const [row] = await sql<{ ok: boolean }>(orm, "select started >= enqueued + interval '1 second' as ok from ormq_task where id = ?", [
        id,
      ]);
      assert.ok(row!.ok, 'started after its time');
    }
    assert.ok((await fetchTask(orm.em.fork(), a))!.started.getTime() >= runAt.getTime());
  } finally {
    await cluster.stop();
  }
});

Delay('bad runAt and delay are field errors', async ({ orm }) => {
  for (const [options, field] of [
    [{ runAt: new Date('nope') }, 'runAt'],
    [{ runAt: '2030-01-01' }, 'runAt'],
    [{ delay: -1 }, 'delay'],
    [{ delay: Infinity }, 'delay'],
    [{ delay: 1, runAt: new Date() }, 'runAt'],
  ] as const) {
    try {
      await enqueue(orm.em.fork(), 'f', [], options as never);
      assert.unreachable();
    } catch (e) {
      assert.ok((e as ValidationError).errors[field], `${JSON.stringify(options)} names ${field}`);
    }
  }
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
});

Delay('the claim is one scan of the claim index with delayed packages in the queue', async ({ orm }) => {
  await sql(
    orm,
    `insert into ormq_queued (key, payload, run_at)
     select case when g % 10 = 0 then 'other' else 'default' end, jsonb_build_object('id', md5(g::text)),
            case when g % 3 = 0 then now() + interval '1 hour' end
     from generate_series(1, 20000) g`,
  );
  await sql(orm, 'analyze ormq_queued');
  const conn = (await orm.em.getConnection().getNativeClient()) as unknown as pg.Pool;
  const client = await conn.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query({ text: `explain (analyze, format json) ${CLAIM.text}`, values: ['default', 90, 10, null] });
    await client.query('rollback');
    const plan = JSON.stringify(rows[0]['QUERY PLAN']);
    // The candidates: one index scan in claim order under LockRows (no sort, no sequential scan),
    // then each claimed row is updated through the primary key. The serial check (o) and the
    // limits' holders (hq) probe their indexes, and only when there is something to probe.
    const relationScans = [...plan.matchAll(/"Node Type":"([^"]*Scan)"[^{}]*?"Relation Name":"ormq_queued","Alias":"(\w+)"/g)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    assert.equal(relationScans.sort(), ['Index Only Scan o', 'Index Scan hq', 'Index Scan ormq_queued', 'Index Scan q'], plan);
    assert.not.match(
      plan,
      /"Node Type":"(Seq Scan|Bitmap Heap Scan)","Parallel Aware":false,"Async Capable":false,"Relation Name":"ormq_queued"/,
    );
    // The one sort is the limits' count per func over the candidates, and it never ran: no limit is set.
    assert.equal(
      [...plan.matchAll(/"Node Type":"Sort"[^{}]*?"Actual Loops":(\d+)/g)].map((m) => m[1]),
      ['0'],
      plan,
    );
    const [, removed] = plan.match(/"Alias":"ormq_queued"[^{}]*"Rows Removed by Filter":(\d+)/) ?? [];
    assert.ok(Number(removed) < 100, `the scan stops soon after ${removed} rows passed over`);
  } finally {
    client.release();
  }
});

Delay.run();

const Alias = dbSuite('the queue key: key, and cluster as its deprecated name', { clear: 'truncate ormq_queued, ormq_schedule' });

Alias('enqueue: key, the old cluster, or both the same put the package in that queue', async ({ orm }) => {
  await enqueue(orm.em.fork(), 'a', [], { key: 'k-new' });
  await enqueue(orm.em.fork(), 'b', [], { cluster: 'k-old' });
  await enqueue(orm.em.fork(), 'c', [], { key: 'k-both', cluster: 'k-both' });
  await enqueueMany(orm.em.fork(), [{ func: 'd', cluster: 'k-old' }]);
  const rows = await sql<{ key: string; func: string }>(orm, `select key, payload->>'func' as func from ormq_queued order by id`);
  assert.equal(
    rows.map((r) => [r.func, r.key]),
    [
      ['a', 'k-new'],
      ['b', 'k-old'],
      ['c', 'k-both'],
      ['d', 'k-old'],
    ],
  );
});

Alias('enqueue: key and cluster that differ are an error on key naming both; nothing is written', async ({ orm }) => {
  for (const call of [
    () => enqueue(orm.em.fork(), 'a', [], { key: 'east', cluster: 'west' }),
    () => enqueueMany(orm.em.fork(), [{ func: 'a', key: 'east', cluster: 'west' }]),
  ]) {
    try {
      await call();
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, ValidationError);
      const [field, message] = Object.entries((e as ValidationError).errors)[0]!;
      assert.match(field, /(^|\.)key$/);
      assert.match(message!, /cluster.*deprecated.*"east".*"west"/);
    }
  }
  // An error on the old name is reported under the name the caller wrote.
  try {
    await enqueue(orm.em.fork(), 'a', [], { cluster: 'x'.repeat(101) });
    assert.unreachable('should throw');
  } catch (e) {
    assert.equal(Object.keys((e as ValidationError).errors), ['cluster']);
  }
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
});

Alias('schedule: key or the old cluster is the queue its runs go to; differing is an error', async ({ orm }) => {
  const s1 = await schedule(orm.em.fork(), { name: 'new', func: 'f', scheduleType: 'D', key: 'reports' });
  const s2 = await schedule(orm.em.fork(), { name: 'old', func: 'f', scheduleType: 'D', cluster: 'reports' });
  assert.is(s1.key, 'reports');
  assert.is(s2.key, 'reports');
  assert.is(s2.cluster, 'reports', 'the record keeps the old name too');
  const stored = await sql<{ cluster: string }>(orm, `select cluster from ormq_schedule order by id`);
  assert.equal(
    stored.map((r) => r.cluster),
    ['reports', 'reports'],
  );
  try {
    await schedule(orm.em.fork(), { name: 'both', func: 'f', scheduleType: 'D', key: 'a', cluster: 'b' });
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.equal(Object.keys((e as ValidationError).errors), ['key']);
  }
  assert.is((await sql(orm, `select 1 from ormq_schedule where name = 'both'`)).length, 0);
});

Alias.run();
