/**
 * A task's failure lineage: the attempts the cluster records, a failure waiting for its retry, and
 * resubmissions linked both ways, on real PostgreSQL through the real completion statement and API.
 */
import * as assert from 'uvu/assert';
import pg from 'pg';
import { COMPLETE } from '../src/cluster/sql.js';
import { sql } from './helpers/db.js';
import { insertTask } from './helpers/admin.js';
import { adminSuite } from './helpers/suites.js';

const L = adminSuite('admin: attempts, retries and resubmission lineage', { mount: { retry: 120 } });

const ID = 'a'.repeat(32);

const PROCESS = 'p'.repeat(32);

/** One finished attempt of task ID, claimed by PROCESS and saved through the cluster's own completion statement. */
async function complete(c: pg.Client, n: number, success: boolean, maxAttempts = 0) {
  const at = new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString();
  const {
    rows: [claim],
  } = await c.query(
    `insert into ormq_queued (id, key, payload, lock, locked_by) values (1, 'default', '{}', now(), $1)
     on conflict (id) do update set lock = now(), locked_by = $1 returning (extract(epoch from lock) * 1000000)::bigint as lock`,
    [PROCESS],
  );
  const input = [
    {
      qid: 1,
      lock: Number(claim.lock),
      id: ID,
      name: 'flaky',
      func: 'work',
      hook: null,
      args: [],
      kwargs: {},
      group: null,
      cluster: n % 2 ? 'east' : 'west',
      result: success ? 'ok' : { error: 'TypeError', message: `attempt ${n} failed`, stack: 'TypeError: …' },
      enqueued: at,
      started: at,
      stopped: at,
      success,
      save: true,
      cancelled: false,
    },
  ];
  // no rollup rows: this test is about the task row
  await c.query({ ...COMPLETE, values: [JSON.stringify(input), false, maxAttempts, '[]', PROCESS, 90] });
}

L(
  'each failed attempt is recorded with its error, time, cluster and the attempt limit; the newest 10 are kept, and a success keeps them',
  async ({ orm, db }) => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      for (let n = 1; n <= 12; n++) await complete(c, n, false, 20);
      let [row] = await sql<any>(orm, 'select attempt_count, attempts from ormq_task where id = ?', [ID]);
      assert.is(row.attempt_count, 12);
      assert.is(row.attempts.length, 10);
      assert.equal(
        row.attempts.map((a: any) => a.error),
        Array.from({ length: 10 }, (_, i) => `TypeError: attempt ${i + 3} failed`),
      );
      assert.equal(row.attempts[9].cluster, 'west');
      assert.is(row.attempts[9].max, 20);
      assert.is(new Date(row.attempts[9].at).toISOString(), new Date(Date.UTC(2026, 0, 1, 0, 12)).toISOString());
      await complete(c, 13, true);
      [row] = await sql<any>(orm, 'select attempt_count, success, attempts from ormq_task where id = ?', [ID]);
      assert.equal([row.attempt_count, row.success, row.attempts.length], [13, true, 10]);
    } finally {
      await c.end();
    }
  },
);

L(
  'a failure whose package is still queued is retrying: attempt, limit, next time and package; the state filter tells retrying from final',
  async ({ orm, api }) => {
    const retrying = await insertTask(orm, { name: 'again', success: false, attemptCount: 2, result: { error: 'Error', message: 'x' } });
    await sql(
      orm,
      `update ormq_task set attempts = '[{"at":"2026-01-01T00:00:00Z","cluster":"east","error":"Error: x","max":3}]' where id = ?`,
      [retrying],
    );
    const final = await insertTask(orm, { name: 'done-for', success: false, result: { error: 'Error', message: 'y' } });
    const lock = '2026-01-01T10:00:00.000Z';
    // as the cluster leaves a failure it will retry: locked, and linked to the task
    await sql(orm, `insert into ormq_queued (key, payload, lock, linked) values ('default', ?::jsonb, ?, true)`, [
      JSON.stringify({ id: retrying, name: 'again', func: 'work' }),
      lock,
    ]);
    const [{ id: qid }] = await sql<any>(orm, 'select id from ormq_queued');

    const detail = await api.get(`api/failed/${retrying}`);
    assert.equal(detail.json.extra.retry, { queuedId: Number(qid), nextAt: '2026-01-01T10:02:00.000Z', attempt: 3, max: 3 });
    assert.is(detail.json.extra.attempts[0].cluster, 'east');
    assert.is((await api.get(`api/failed/${final}`)).json.extra.retry, null);
    // and the package links back to the failure it retries
    assert.equal((await api.get(`api/queued/${qid}`)).json.extra.retrying, { taskId: retrying, name: 'again', attempts: 2 });

    const list = await api.get('api/failed');
    const byName = Object.fromEntries(list.json.rows.map((r: any) => [r.name, r.retrying]));
    assert.equal(byName, { again: { queuedId: Number(qid), nextAt: '2026-01-01T10:02:00.000Z' }, 'done-for': null });
    assert.equal(
      (await api.get('api/failed?state=retrying')).json.rows.map((r: any) => r.name),
      ['again'],
    );
    assert.equal(
      (await api.get('api/failed?state=final')).json.rows.map((r: any) => r.name),
      ['done-for'],
    );
    assert.is((await api.get('api/failed/count?state=final')).json.count, 1);
    const bad = await api.get('api/failed?state=soon');
    assert.is(bad.status, 400);
    assert.is(bad.json.error.fields.state, 'must be "retrying" or "final"');
  },
);

L("the hour filter (the chart's bars) lists the tasks that ended in that hour; a bad hour is refused", async ({ orm, api }) => {
  await insertTask(orm, { name: 'in', success: false, stopped: '2026-03-01T10:59:59.999Z' });
  await insertTask(orm, { name: 'edge', success: false, stopped: '2026-03-01T10:00:00.000Z' });
  await insertTask(orm, { name: 'next-hour', success: false, stopped: '2026-03-01T11:00:00.000Z' });
  const names = (await api.get('api/failed?hour=2026-03-01T10:00:00.000Z')).json.rows.map((r: any) => r.name);
  assert.equal(names, ['in', 'edge']);
  assert.is((await api.get('api/failed/count?hour=2026-03-01T10:00:00.000Z')).json.count, 2);
  const bad = await api.get('api/failed?hour=teatime');
  assert.is(bad.status, 400);
  assert.match(bad.json.error.fields.hour, /ISO 8601 date and time with a zone/);
});

L('a task is found by its id in the search box; another id finds nothing', async ({ orm, api }) => {
  const id = await insertTask(orm, { name: 'needle', success: false });
  await insertTask(orm, { name: 'hay', success: false });
  assert.equal(
    (await api.get(`api/failed?search=${id.toUpperCase()}`)).json.rows.map((r: any) => r.name),
    ['needle'],
  );
  assert.equal((await api.get(`api/failed?search=${'f'.repeat(32)}`)).json.rows, []);
});

L(
  'resubmit links both ways, and a bookmark of the deleted failure (its history kept) leads on through each resubmission to where the task is now',
  async ({ orm, api }) => {
    const first = await insertTask(orm, { name: 'import', success: false, result: { error: 'Error', message: 'down' } });
    assert.is((await api.post('api/failed/actions/resubmit', { ids: [first] })).status, 200);
    const [pkg] = await sql<any>(orm, 'select id, payload from ormq_queued');
    const second = pkg.payload.id as string;

    let gone = await api.get(`api/failed/${first}`);
    assert.is(gone.status, 200);
    assert.is(gone.json.object, null);
    assert.equal(
      gone.json.history.map((h: any) => h.action),
      ['resubmit'],
      'who resubmitted it, and when, is still shown',
    );
    assert.equal(gone.json.extra.successor, {
      taskId: second,
      place: { page: 'queued', id: Number(pkg.id), taskId: second, name: 'import' },
    });

    // the resubmission ran and failed again: the failure row, then resubmitted once more
    await sql(orm, 'delete from ormq_queued');
    await insertTask(orm, { id: second, name: 'import', success: false, result: { error: 'Error', message: 'down again' } });
    gone = await api.get(`api/failed/${first}`);
    assert.equal(gone.json.extra.successor.place, { page: 'failed', id: second, taskId: second, name: 'import' });
    const detail = await api.get(`api/failed/${second}`);
    assert.equal(detail.json.extra.lineage, { from: { taskId: first, place: null }, to: null });

    await api.post('api/failed/actions/resubmit', { ids: [second] });
    const [pkg2] = await sql<any>(orm, 'select payload from ormq_queued');
    const third = pkg2.payload.id as string;
    await sql(orm, 'delete from ormq_queued');
    await insertTask(orm, { id: third, name: 'import', success: true, result: 'ok' });
    gone = await api.get(`api/failed/${first}`);
    assert.equal(gone.json.extra.successor, { taskId: third, place: { page: 'successful', id: third, taskId: third, name: 'import' } });
    assert.equal((await api.get(`api/successful/${third}`)).json.extra.lineage.from, { taskId: second, place: null });

    // a success resubmitted stays, and links forward to its resubmission
    await api.post('api/successful/actions/resubmit', { ids: [third] });
    const [pkg3] = await sql<any>(orm, 'select id, payload from ormq_queued');
    const lineage = (await api.get(`api/successful/${third}`)).json.extra.lineage;
    assert.equal(lineage.to, {
      taskId: pkg3.payload.id,
      place: { page: 'queued', id: Number(pkg3.id), taskId: pkg3.payload.id, name: 'import' },
    });

    // a task deleted without a resubmission is simply not found
    const deleted = await api.get(`api/failed/${'b'.repeat(32)}`);
    assert.is(deleted.status, 404);
    assert.is(deleted.json.extra, undefined);
  },
);

L.run();
