/**
 * saveLimit pruning off the save path: a running cluster brings the successes down to the limit
 * within a pass or two, failures and waited-on successes stay, and two processes pruning at once
 * delete nothing beyond the limit.
 */
import pg from 'pg';
import * as assert from 'uvu/assert';
import { enqueueMany } from '../src/index.js';
import { prune, PRUNE_EVERY, type PruneScope } from '../src/cluster/prune.js';
import { poolDb } from '../src/db/run.js';
import { sql, waitFor } from './helpers/db.js';
import { startCluster, waitForDrained } from './helpers/cluster.js';
import { dbSuite } from './helpers/suites.js';

const P = dbSuite('saveLimit pruning', { clear: 'delete from ormq_task; delete from ormq_queued; delete from ormq_wait' });

const count = async (orm: Parameters<typeof sql>[0], where: string) =>
  Number((await sql<{ n: string }>(orm, `select count(*) as n from ormq_task where ${where}`))[0]!.n);

P('a running cluster settles at saveLimit a pass after a burst, keeping the newest successes and every failure', async ({ orm }) => {
  const n = 1200;
  await orm.em.fork().transactional((em) =>
    enqueueMany(
      em,
      Array.from({ length: n }, (_, i) => ({ func: 'f', args: [i] })),
    ),
  );
  const { cluster, logs } = await startCluster(orm, {
    saveLimit: 50,
    bulk: 100,
    workers: 4,
    ackFailures: true,
    tasks: {
      f: (i: number) => {
        if (i % 10 === 0) throw new Error('x');
        return i;
      },
    },
  });
  try {
    await waitForDrained(orm, 'the burst run');
    // The cluster keeps running: its timer, not its stop, prunes.
    await waitFor(async () => (await count(orm, 'success')) === 50, 'pruned to saveLimit', 3 * PRUNE_EVERY + 5_000);
    assert.is(await count(orm, 'not success'), n / 10, 'no failure pruned');
    const kept = await sql<{ id: string }>(orm, 'select id from ormq_task where success order by id');
    const newest = await sql<{ id: string }>(
      orm,
      'select id from (select id from ormq_task where success order by stopped desc, id desc limit 50) x order by id',
    );
    assert.equal(kept, newest);
    assert.equal(
      logs.filter((l) => l.level !== 'info'),
      [],
    );
  } finally {
    await cluster.stop();
  }
  assert.is(await count(orm, 'success'), 50);
});

P('a cluster stopped before its next pass leaves the table at saveLimit', async ({ orm }) => {
  await orm.em.fork().transactional((em) =>
    enqueueMany(
      em,
      Array.from({ length: 300 }, (_, i) => ({ func: 'f', args: [i] })),
    ),
  );
  const { cluster } = await startCluster(orm, { saveLimit: 7, bulk: 300, tasks: { f: (i: number) => i } });
  await waitForDrained(orm, 'the tasks run');
  await cluster.stop();
  assert.is(await count(orm, 'success'), 7);
});

/** 20,000 successes (a second apart, in 4 groups and none) and 1,000 failures, straight into the table. */
async function seed(orm: Parameters<typeof sql>[0]): Promise<void> {
  await sql(
    orm,
    `insert into ormq_task (id, name, func, "group", enqueued, started, stopped, success)
    select md5(i::text), 'n' || i, 'f', case when i % 5 = 0 then null else 'g' || (i % 5) end,
           now(), now(), now() - make_interval(secs => 30000 - i), i % 21 <> 0
      from generate_series(1, 21000) i`,
  );
}

/** What a keep-the-newest-`limit` of each scope value must leave: the ids, by scope. */
async function expected(orm: Parameters<typeof sql>[0], limit: number, per: PruneScope | null): Promise<string[]> {
  const part = per === null ? '' : `partition by "${per}"`;
  const rows = await sql<{ id: string }>(
    orm,
    `select id from (select id, success, row_number() over (${part} order by stopped desc, id desc) as r
      from ormq_task where success) x where r <= ${limit}
    union all select id from ormq_task where not success
    union all select task from ormq_wait where until > now()
    order by id`,
  );
  return [...new Set(rows.map((r) => r.id))].sort();
}

for (const per of [null, 'group'] as const) {
  P(
    `two processes pruning at once (${per ?? 'all successes'}) delete exactly what is past the limit, in bounded statements`,
    async ({ orm, db }) => {
      await seed(orm);
      // An old success a producer waits on stays.
      await sql(orm, `insert into ormq_wait (task, until) values (md5('3'), now() + interval '1 hour')`);
      const limit = 300;
      const want = await expected(orm, limit, per);
      const pools = [new pg.Pool({ connectionString: db.url, max: 1 }), new pg.Pool({ connectionString: db.url, max: 1 })];
      try {
        const runners = pools.map((p) => poolDb(p, null));
        const scopes = new Set<string | null>(per === null ? [null] : ['g1', 'g2', 'g3', 'g4', null]);
        let deleted = 0;
        let passes = 0;
        // Each process goes on while it has scopes left (another held the lock, or a statement was full).
        await Promise.all(
          runners.map(async (run) => {
            let left = new Set(scopes);
            const deadline = Date.now() + 30_000;
            while (left.size) {
              assert.ok(Date.now() < deadline, 'pruning finished in time');
              const pass = await prune(run, limit, per, left, 1000);
              deleted += pass.deleted;
              passes++;
              left = pass.left;
            }
          }),
        );
        const kept = (await sql<{ id: string }>(orm, 'select id from ormq_task order by id')).map((r) => r.id).sort();
        assert.equal(kept, want);
        assert.is(deleted, 21000 - want.length, 'each row deleted once');
        assert.ok(passes > 2, 'bounded: more than one statement each');
        assert.is(await count(orm, 'not success'), 1000);
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    },
  );
}

P('a process deletes nothing while another prunes, and tries again later', async ({ orm, db }) => {
  await seed(orm);
  const holder = new pg.Client({ connectionString: db.url });
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query(`select pg_advisory_xact_lock(${0x6f726d70}, ('ormq_task'::regclass)::oid::int)`);
    const pass = await prune(poolDb(pool, null), 10, null, new Set([null]));
    assert.equal([pass.deleted, [...pass.left]], [0, [null]]);
    await holder.query('commit');
    const again = await prune(poolDb(pool, null), 10, null, new Set([null]), 50_000);
    assert.equal([again.deleted, again.left.size], [20000 - 10, 0]);
  } finally {
    await holder.end();
    await pool.end();
  }
});

P.run();
