/**
 * A task id the host chooses is a dedup key: while a package of that id waits or runs, enqueueing
 * it again adds nothing and returns the id.
 */
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, enqueueMany } from '../src/index.js';
import { sql, waitFor } from './helpers/db.js';
import { startCluster, waitForDrained } from './helpers/cluster.js';
import { CLEAR_QUEUE, dbSuite } from './helpers/suites.js';

const em = (orm: MikroORM) => orm.em.fork();
const queuedIds = (orm: MikroORM) =>
  sql<{ task: string; keyed: boolean }>(orm, `select payload->>'id' as task, keyed from ormq_queued order by id`);

const D = dbSuite('dedup: an id given by the host', { clear: CLEAR_QUEUE });

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

D('the same id enqueued twice, or twice in one batch, queues one package and returns the id each time', async ({ orm }) => {
  assert.is(await enqueue(em(orm), 'f', [1], { id: A }), A);
  assert.is(await enqueue(em(orm), 'f', [2], { id: A }), A);
  assert.equal(
    await enqueueMany(em(orm), [{ func: 'f', id: B }, { func: 'f' }, { func: 'f', id: B, args: [3] }, { func: 'f', id: A }]).then((ids) => [
      ids[0],
      ids[2],
      ids[3],
    ]),
    [B, B, A],
  );
  const rows = await queuedIds(orm);
  assert.equal(
    rows.filter((r) => r.keyed).map((r) => r.task),
    [A, B],
  );
  assert.is(rows.length, 3);
  // the first one stays: its args, not the later ones'
  assert.equal(await sql(orm, `select payload->'args' as args from ormq_queued where payload->>'id' = ?`, [B]), [{ args: [] }]);
  // new ids are not keyed and never collide with anything
  assert.is(rows.filter((r) => !r.keyed).length, 1);
});

D("a keyed enqueue rolled back with the host's transaction leaves the id free", async ({ orm }) => {
  await orm.em
    .fork()
    .transactional(async (tx) => {
      await enqueue(tx, 'f', [], { id: A });
      throw new Error('host work failed');
    })
    .catch(() => {});
  assert.equal(await queuedIds(orm), []);
  await enqueue(em(orm), 'f', [], { id: A });
  assert.equal(
    (await queuedIds(orm)).map((r) => r.task),
    [A],
  );
});

D(
  'an id enqueued again while it runs, or while its failure waits for a retry, runs once; after it finished it runs again and its row is overwritten',
  async ({ orm }) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runs: string[] = [];
    let failing = true;
    const { cluster } = await startCluster(orm, {
      timeout: 5,
      retry: 60,
      tasks: {
        async slow(label: string) {
          runs.push(label);
          await gate;
          return label;
        },
        flaky(label: string) {
          runs.push(label);
          if (failing) throw new Error('not yet');
          return label;
        },
      },
    });
    try {
      await enqueue(em(orm), 'slow', ['first'], { id: A });
      await waitFor(() => runs.length === 1, 'the first run');
      assert.is(await enqueue(em(orm), 'slow', ['second'], { id: A }), A);
      release();
      await waitForDrained(orm, 'the first run acked');
      assert.equal(runs, ['first']);

      // a failure waiting for its retry is still queued: a second enqueue adds nothing
      await enqueue(em(orm), 'flaky', ['one'], { id: B });
      await waitFor(async () => (await sql(orm, 'select 1 from ormq_task where id = ? and not success', [B])).length === 1, 'the failure');
      await enqueue(em(orm), 'flaky', ['two'], { id: B });
      assert.equal(await sql(orm, `select payload->'args' as args from ormq_queued`), [{ args: ['one'] }]);

      // finished: the id is free again; the new run's result replaces the saved one and counts as a further attempt
      await enqueue(em(orm), 'slow', ['again'], { id: A });
      await waitFor(
        async () => (await sql<{ result: string }>(orm, 'select result from ormq_task where id = ?', [A]))[0]?.result === 'again',
        'the new run saved',
      );
      assert.equal(runs, ['first', 'one', 'again']);
      assert.equal(await sql(orm, 'select attempt_count, success from ormq_task where id = ?', [A]), [{ attempt_count: 2, success: true }]);
      failing = false;
    } finally {
      release();
      await cluster.stop();
    }
  },
);

D.run();
