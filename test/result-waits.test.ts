/**
 * A producer already waiting with `result(em, id, { wait })` reads its success even when saveLimit
 * would prune it at once: its ormq_wait row keeps the row until it has read it.
 */
import pg from 'pg';
import * as assert from 'uvu/assert';
import { enqueue, enqueueMany, result } from '../src/index.js';
import { createTestDb, sql, waitFor } from './helpers/db.js';
import { startCluster } from './helpers/cluster.js';
import { PRUNE_EVERY } from '../src/cluster/prune.js';
import { dbSuite } from './helpers/suites.js';

const W = dbSuite('result waits and saveLimit', { clear: 'delete from ormq_task; delete from ormq_queued; delete from ormq_wait' });

const liveWaits = async (orm: Parameters<typeof sql>[0]) =>
  Number((await sql<{ n: string }>(orm, 'select count(*) as n from ormq_wait where until > now()'))[0]!.n);
const successes = async (orm: Parameters<typeof sql>[0]) =>
  Number((await sql<{ n: string }>(orm, 'select count(*) as n from ormq_task where success'))[0]!.n);

W(
  'saveLimit 1 and a burst of 20: each of 20 waiting producers gets its result; once they have read, the next pass prunes to the limit',
  async ({ orm }) => {
    // The producers hear ormq_saved on a database of their own, where the test says it once the
    // burst was saved and pruning had every chance to run: producers slow to read, made certain.
    const elsewhere = await createTestDb({ empty: true });
    const heard = new pg.Client({ connectionString: elsewhere.url });
    await heard.connect();
    let hooked = 0;
    let started: Awaited<ReturnType<typeof startCluster>> | null = null;
    try {
      // Queued while no cluster runs, so the cluster's first claim takes all 20 and saves them in one batch.
      const ids = await orm.em.fork().transactional((em) =>
        enqueueMany(
          em,
          Array.from({ length: 20 }, (_, i) => ({ func: 'double', args: [i], hook: 'counted' })),
        ),
      );
      const answers = Promise.all(ids.map((id) => result(orm.em.fork(), id, { wait: 15_000, listenConnection: elsewhere.url })));
      await waitFor(async () => (await liveWaits(orm)) === 20, 'every producer waiting');
      await waitFor(
        async () =>
          (await heard.query("select 1 from pg_stat_activity where datname = $1 and query ilike 'listen%'", [elsewhere.name])).rowCount ===
          1,
        'the producers listening',
      );
      started = await startCluster(orm, { saveLimit: 1, tasks: { double: (n: number) => n * 2, counted: () => void hooked++ } });
      await waitFor(() => hooked === 20, 'the burst saved');
      // Two pruning intervals: a pass ran over the burst, and kept every row a producer waits on.
      await new Promise((r) => setTimeout(r, 2 * PRUNE_EVERY + 200));
      assert.is(await successes(orm), 20);
      await heard.query("select pg_notify('ormq_saved', $1)", [ids.join(',')]);
      assert.equal(
        await answers,
        ids.map((_, i) => i * 2),
        'every waiter read its result',
      );
      assert.is(await liveWaits(orm), 0, 'each waiter let go of its row once it had read');
      const next = await enqueue(orm.em.fork(), 'double', [100]);
      await waitFor(
        async () => (await sql(orm, 'select 1 from ormq_task where id = ? and success', [next])).length === 1,
        'the next task saved',
      );
      await waitFor(async () => (await successes(orm)) === 1, 'pruned down to saveLimit');
      assert.equal(await sql(orm, 'select id from ormq_task'), [{ id: next }], 'the newest is the one kept');
      assert.equal(
        started.logs.filter((l) => l.level !== 'info'),
        [],
      );
    } finally {
      await started?.cluster.stop();
      await heard.end();
      await elsewhere.drop();
    }
  },
);

W('a waiter that times out leaves no row behind', async ({ orm }) => {
  assert.is(await result(orm.em.fork(), 'a'.repeat(32), { wait: 300 }), null);
  assert.equal(await sql(orm, 'select * from ormq_wait'), []);
  assert.is(await result(orm.em.fork(), 'a'.repeat(32)), null, 'a look without wait writes nothing either');
  assert.equal(await sql(orm, 'select * from ormq_wait'), []);
});

W("a wait past its end (its producer died) protects nothing, and a cluster's heartbeat deletes it", async ({ orm }) => {
  const row = (id: string, ago: string) =>
    sql(
      orm,
      `insert into ormq_task (id, name, func, enqueued, started, stopped, success) values (?, 'old', 'f', now(), now(), now() - ?::interval, true)`,
      [id, ago],
    );
  await row('a'.repeat(32), '2 hours');
  await row('b'.repeat(32), '1 hour');
  await sql(orm, `insert into ormq_wait (task, until) values (?, now() - interval '1 second'), (?, now() + interval '1 hour')`, [
    'a'.repeat(32),
    'b'.repeat(32),
  ]);
  const { cluster } = await startCluster(orm, { saveLimit: 1, tasks: { f: () => 1 } });
  try {
    await waitFor(async () => (await sql(orm, 'select 1 from ormq_wait')).length === 1, 'the expired wait deleted');
    assert.equal(await sql(orm, 'select task from ormq_wait'), [{ task: 'b'.repeat(32) }], 'the live wait stays');
    const id = await enqueue(orm.em.fork(), 'f');
    await waitFor(async () => (await sql(orm, 'select 1 from ormq_task where id = ?', [id])).length === 1, 'saved');
    await waitFor(
      async () => (await sql(orm, 'select 1 from ormq_task where id = ?', ['a'.repeat(32)])).length === 0,
      'the expired wait no longer protects',
    );
    assert.equal(
      (await sql<{ id: string }>(orm, 'select id from ormq_task')).map((r) => r.id).sort(),
      ['b'.repeat(32), id].sort(),
      'the live wait still protects',
    );
  } finally {
    await cluster.stop();
  }
});

W("a wait inside the host's transaction holds outside it at once, and lets go when its look fails", async ({ orm }) => {
  const id = 'c'.repeat(32);
  await orm.em.fork().transactional(async (em) => {
    const waiting = result(em, id, { wait: 15_000 });
    await waitFor(async () => (await liveWaits(orm)) === 1, 'the wait seen from another connection while the host transaction is open');
    await sql(
      orm,
      `insert into ormq_task (id, name, func, result, enqueued, started, stopped, success) values (?, 'n', 'f', '42', now(), now(), now(), true)`,
      [id],
    );
    await sql(orm, "select pg_notify('ormq_saved', ?)", [id]);
    assert.is(await waiting, 42);
  });
  assert.is(await liveWaits(orm), 0);
  const failed = await orm.em
    .fork()
    .transactional(async (em) => {
      await em.execute('select 1 / 0').catch(() => {});
      return result(em, 'd'.repeat(32), { wait: 15_000 });
    })
    .then(
      () => null,
      (e: Error) => e,
    );
  assert.match(failed?.message ?? '', 'current transaction is aborted', 'the look failed in the aborted host transaction');
  assert.is(await liveWaits(orm), 0, 'the failed waiter let go of its row');
});

W(
  'on tables from before ormq_wait (a producer upgraded before ensureSchema ran), a wait still reads its result, without the hold',
  async ({ orm }) => {
    await sql(orm, 'drop table ormq_wait');
    const id = 'e'.repeat(32);
    assert.is(await result(orm.em.fork(), id, { wait: 300 }), null, 'nothing saved: the wait runs out as before');
    await sql(
      orm,
      `insert into ormq_task (id, name, func, result, enqueued, started, stopped, success) values (?, 'n', 'f', '7', now(), now(), now(), true)`,
      [id],
    );
    assert.is(await result(orm.em.fork(), id, { wait: 15_000 }), 7);
  },
);

W.run();
