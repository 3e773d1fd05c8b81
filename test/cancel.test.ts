import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { cancel, CancelledError, enqueue, enqueueIter, queueAdmin, ValidationError, type TaskContext } from '../src/index.js';
import { client, close, serve, testClient } from './helpers/admin.js';
import { sql, waitFor } from './helpers/db.js';
import { sleep, startCluster } from './helpers/cluster.js';
import { Fleet } from './helpers/fleet.js';
import { CLEAR_QUEUE, dbSuite } from './helpers/suites.js';

const C = dbSuite('cancel(em, id): remove a waiting package, stop a running task', { clear: CLEAR_QUEUE });

const em = (orm: MikroORM) => orm.em.fork();

C('a waiting package is removed and never runs; a second cancel finds nothing', async ({ orm }) => {
  const id = await enqueue(em(orm), 'echo', ['x'], { delay: 3600 });
  const other = await enqueue(em(orm), 'echo', ['y'], { delay: 3600 });
  assert.is(await cancel(em(orm), id), 'removed');
  const left = await sql<{ id: string }>(orm, "select payload->>'id' as id from ormq_queued");
  assert.equal(
    left.map((r) => r.id),
    [other],
    'only the cancelled package is gone',
  );
  assert.is(await cancel(em(orm), id), 'not found');
  assert.is(await cancel(em(orm), 'f'.repeat(32)), 'not found');
  assert.is((await sql(orm, 'select 1 from ormq_task')).length, 0, 'a removed package saves nothing');
});

C('inside the host transaction, a cancel takes effect only when it commits', async ({ orm }) => {
  const id = await enqueue(em(orm), 'echo', ['x'], { delay: 3600 });
  await em(orm)
    .transactional(async (tx) => {
      assert.is(await cancel(tx, id), 'removed');
      throw new Error('host rolls back');
    })
    .catch(() => {});
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 1);
});

C('bad ids are refused with the field named', async ({ orm }) => {
  for (const bad of ['', 'ABC', 'z'.repeat(32), 42]) {
    try {
      await cancel(em(orm), bad as string);
      assert.unreachable(`accepted ${JSON.stringify(bad)}`);
    } catch (e) {
      assert.instance(e, ValidationError);
      assert.ok((e as ValidationError).errors.id, JSON.stringify((e as ValidationError).errors));
    }
  }
});

C('bad ids and options are refused with the field named, at once whatever their size; nothing changes', async ({ orm }) => {
  const id = await enqueue(em(orm), 'echo', ['x'], { delay: 3600 });
  const t = performance.now();
  for (const bad of [null, undefined, {}, [id], 10n, Symbol('id'), { toString: () => id }, `${id}\n`, id.repeat(300_000)]) {
    try {
      await cancel(em(orm), bad as string);
      assert.unreachable(`accepted ${typeof bad}`);
    } catch (e) {
      assert.instance(e, ValidationError);
      assert.equal((e as ValidationError).errors, { id: 'must be 32 lowercase hex digits' });
    }
  }
  const refusedWith = async (options: unknown) => {
    try {
      await cancel(em(orm), id, options as never);
      assert.unreachable(`accepted ${String(options)}`);
    } catch (e) {
      assert.instance(e, ValidationError);
      return (e as ValidationError).errors;
    }
  };
  assert.equal(await refusedWith(null), { options: 'must be an object' });
  assert.equal(await refusedWith({ by: 7 }), { by: 'must be a string' });
  const unstorable = 'contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store';
  assert.equal(await refusedWith({ by: 'ops\u0000' }), { by: unstorable });
  assert.equal(await refusedWith({ by: '\ud800' }), { by: unstorable });
  assert.ok(performance.now() - t < 2_000, 'a 9.6 MB id is refused without reading it');
  assert.equal(
    (await sql<{ id: string }>(orm, "select payload->>'id' as id from ormq_queued")).map((r) => r.id),
    [id],
    'the package is still there',
  );
});

C('an iteration cancelled by a long name keeps its first 150 characters in each run, never half of an emoji', async ({ orm }) => {
  const iter = await enqueueIter(em(orm), 'echo', [[1], [2], [3]], { cluster: 'nobody' });
  assert.is(await cancel(em(orm), iter, { by: 'x'.repeat(1_000_000) }), 'removed');
  const [saved] = await sql<{ n: number; messages: string[] }>(
    orm,
    `select length(result::text) as n, array(select e->>'message' from jsonb_array_elements(result->'results') e) as messages
     from ormq_task where id = ?`,
    [iter],
  );
  assert.ok(saved!.n < 2_000, `the saved iteration holds ${saved!.n} characters`);
  assert.equal(saved!.messages, Array(3).fill(`Task cancelled by ${'x'.repeat(150)}`));
  // A pair across the 150th character is left out whole: half of it would fail the statement that saves the runs.
  const split = await enqueueIter(em(orm), 'echo', [[1]], { cluster: 'nobody' });
  assert.is(await cancel(em(orm), split, { by: `${'x'.repeat(149)}\u{1F642}` }), 'removed');
  const [run] = await sql<{ m: string }>(orm, "select result->'results'->0->>'message' as m from ormq_task where id = ?", [split]);
  assert.is(run!.m, `Task cancelled by ${'x'.repeat(149)}`);
  assert.is((await sql(orm, 'select 1 from ormq_iter union all select 1 from ormq_iter_result')).length, 0);
});

C('a task running in another process is stopped there, saved failed as cancelled and not retried', async ({ orm, db }) => {
  const fleet = new Fleet(db.url, { timeout: 60, retry: 120, maxAttempts: 0 });
  const children = fleet.members;
  try {
    await fleet.start(2);
    // `announce` ignores its abort signal: the stop must not depend on the function's cooperation.
    const id = await enqueue(em(orm), 'announce', [60_000]);
    await waitFor(() => children.some((c) => c.lines.includes(`started ${id}`)), 'the task to start in a child', 20_000);
    assert.is(await cancel(em(orm), id, { by: 'billing job' }), 'stopping');
    const [row] = await waitFor(
      () =>
        sql<{ success: boolean; result: { error: string; message: string } }>(orm, 'select success, result from ormq_task where id = ?', [
          id,
        ]).then((r) => (r.length ? r : null)),
      'the cancelled task to be saved',
      20_000,
    );
    assert.is(row!.success, false);
    assert.is(row!.result.error, 'CancelledError');
    assert.is(row!.result.message, 'Task cancelled by billing job');
    assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0, 'acked, so it is not retried');
    assert.is(await cancel(em(orm), id), 'not found');
  } finally {
    await fleet.stop();
  }
});

C('a package claimed but not started yet is stopped as it starts, without running', async ({ orm }) => {
  const dir = mkdtempSync(join(tmpdir(), 'ormq-cancel-'));
  const go = join(dir, 'go');
  const ran: string[] = [];
  // Both claimed at once (bulk 10), one worker: the second waits in the claim's buffer.
  await enqueue(em(orm), 'block');
  const id = await enqueue(em(orm), 'record', ['cancelled one']);
  const { cluster } = await startCluster(orm, {
    workers: 1,
    bulk: 10,
    tasks: {
      async block() {
        while (!existsSync(go)) await sleep(20);
      },
      record: (x: string) => void ran.push(x),
    },
  });
  try {
    await waitFor(() => cluster.busy === 1, 'the blocking task to run');
    await waitFor(
      () => sql(orm, "select 1 from ormq_queued where payload->>'id' = ? and lock is not null", [id]).then((r) => r.length > 0),
      'the claim',
    );
    assert.is(await cancel(em(orm), id), 'stopping');
    await sleep(100);
    writeFileSync(go, '');
    const [row] = await waitFor(
      () =>
        sql<{ result: { message: string } }>(orm, 'select result from ormq_task where id = ? and not success', [id]).then((r) =>
          r.length ? r : null,
        ),
      'the stopped package to be saved',
    );
    assert.is(row!.result.message, 'Task cancelled');
    assert.equal(ran, [], 'its function never ran');
  } finally {
    writeFileSync(go, '');
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

C("the admin's delete of a running package removes it and stops its task in the process running it", async ({ orm }) => {
  let aborted: unknown = null;
  const { cluster, logs } = await startCluster(orm, {
    tasks: {
      async long(this: TaskContext) {
        await new Promise((resolve) => this.signal.addEventListener('abort', resolve));
        aborted = this.signal.reason;
      },
    },
  });
  const clientDir = testClient();
  const { url, server } = await serve(queueAdmin(orm, { clientDir: clientDir.dir }) as never);
  try {
    const id = await enqueue(em(orm), 'long');
    await waitFor(() => cluster.busy === 1, 'the task to run');
    // The heartbeat's row says the process responds.
    await waitFor(() => sql(orm, 'select 1 from ormq_cluster').then((r) => r.length > 0), 'the heartbeat row');
    const [pkg] = await sql<{ id: string }>(orm, "select id from ormq_queued where payload->>'id' = ?", [id]);
    const r = await client(`${url}/`).post('api/queued/actions/delete', { ids: [Number(pkg!.id)] });
    assert.is(r.status, 200, r.text);
    assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0, 'deleted at once');
    await waitFor(() => aborted !== null, "the task's signal to abort");
    assert.instance(aborted, CancelledError);
    await waitFor(() => cluster.busy === 0, 'the worker to be free');
    const log = await sql<{ summary: string }>(orm, "select summary from ormq_admin_log where action = 'delete'");
    assert.match(log[0]!.summary, /and asked the process running it to stop it$/);
    await waitFor(
      () => logs.some((l) => l.level === 'warn' && /results were not saved/.test(l.message)),
      'the stopped run to be found deleted',
    );
    assert.is((await sql(orm, 'select 1 from ormq_task')).length, 0, 'a deleted package saves no result');
  } finally {
    await cluster.stop();
    await close(server);
    clientDir.cleanup();
  }
});

C.run();
