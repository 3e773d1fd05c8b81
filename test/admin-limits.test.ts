/**
 * The admin's side of priorities, serial keys and limits per func: the Queued page shows, filters
 * and edits a package's priority and says what a serial package waits behind; the limits are listed
 * with their use and changed only by callers `authorize` lets do `limits` on Clusters.
 */
import * as assert from 'uvu/assert';
import { enqueue, enqueueMany, limits, setLimit, type QueueAdminOptions } from '../src/index.js';
import { sql } from './helpers/db.js';
import { adminSuite } from './helpers/suites.js';

const grants: QueueAdminOptions['authorize'] = (req, { page, action }) =>
  String(req.headers['x-can'] ?? '')
    .split(',')
    .includes(`${page}:${action}`);
const as = (...can: string[]) => ({ 'x-can': can.join(',') });

const A = adminSuite('admin: priority, serial keys and limits', {
  clear: 'truncate ormq_queued, ormq_admin_log, ormq_limit restart identity',
});

A('the Queued list shows and filters by priority, and an edit changes it (a bad one is refused naming the field)', async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  const em = ctx.orm.em.fork();
  await enqueueMany(em, [{ func: 'a', priority: 5 }, { func: 'b' }, { func: 'c', priority: -2, serial: 'acct-1' }]);
  const list = await api.get('api/queued', as('queued:view'));
  assert.is(list.status, 200, list.text);
  assert.equal(
    list.json.rows.map((r: { func: string; priority: number; serial: string | null }) => [r.func, r.priority, r.serial]),
    [
      ['c', -2, 'acct-1'],
      ['b', 0, null],
      ['a', 5, null],
    ],
  );
  const filters = await api.get('api/queued/filters', as('queued:view'));
  assert.equal(filters.json.priority, ['5', '0', '-2']);
  const five = await api.get('api/queued?priority=5', as('queued:view'));
  assert.equal(
    five.json.rows.map((r: { func: string }) => r.func),
    ['a'],
  );
  const bad = await api.get('api/queued?priority=high', as('queued:view'));
  assert.is(bad.status, 400);

  const id = list.json.rows[1].id;
  const refused = await api.patch(`api/queued/${id}`, { priority: 1.5 }, as('queued:view', 'queued:edit'));
  assert.is(refused.status, 400);
  assert.equal(refused.json.error.fields, { priority: 'must be an integer from -2147483648 to 2147483647' });
  const edited = await api.patch(`api/queued/${id}`, { priority: 9 }, as('queued:view', 'queued:edit'));
  assert.is(edited.status, 200, edited.text);
  assert.is(edited.json.object.priority, 9);
  assert.equal(await sql(ctx.orm, 'select priority from ormq_queued where id = ?', [id]), [{ priority: 9 }]);
  const log = await sql<{ summary: string }>(ctx.orm, 'select summary from ormq_admin_log');
  assert.match(log[0]!.summary, /priority → 9/);
});

A("a waiting package's detail names its serial key and the package it waits behind", async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  const em = ctx.orm.em.fork();
  await enqueue(em, 'sync', [], { serial: 'acct-7', name: 'first sync' });
  await enqueue(em, 'sync', [], { serial: 'acct-7', name: 'second sync' });
  const [first, second] = (await sql<{ id: string }>(ctx.orm, 'select id from ormq_queued order by id')).map((r) => Number(r.id));
  await sql(ctx.orm, 'update ormq_queued set lock = now() where id = ?', [first]);
  const detail = await api.get(`api/queued/${second}`, as('queued:view'));
  assert.is(detail.status, 200, detail.text);
  assert.is(detail.json.object.serial, 'acct-7');
  assert.equal(detail.json.extra.waitsBehind, { id: first, name: 'first sync', running: true });
  const head = await api.get(`api/queued/${first}`, as('queued:view'));
  assert.is(head.json.extra.waitsBehind, null);
});

A('limits are listed with their use for Clusters viewers and changed only with the limits action, each change logged', async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  await setLimit(ctx.orm.em.fork(), 'send', { concurrency: 2 });
  const listed = await api.get('api/clusters/limits', as('clusters:view'));
  assert.is(listed.status, 200, listed.text);
  assert.equal(
    listed.json.limits.map((l: { func: string; concurrency: number; running: number }) => [l.func, l.concurrency, l.running]),
    [['send', 2, 0]],
  );
  assert.is((await api.get('api/clusters/limits', as('queued:view'))).status, 403);

  const body = { func: 'send', limit: { concurrency: 5, rate: { count: 10, perSeconds: 60 } } };
  const refused = await api.post('api/clusters/actions/limits', body, as('clusters:view', 'clusters:pause'));
  assert.is(refused.status, 403);
  assert.equal((await limits(ctx.orm.em.fork()))[0]!.concurrency, 2, 'unchanged');

  const set = await api.post('api/clusters/actions/limits', body, as('clusters:view', 'clusters:limits'));
  assert.is(set.status, 200, set.text);
  assert.equal(
    (await limits(ctx.orm.em.fork())).map((l) => [l.func, l.concurrency, l.rate]),
    [['send', 5, { count: 10, perSeconds: 60 }]],
  );
  const bad = await api.post('api/clusters/actions/limits', { func: 'send', limit: { concurrency: -1 } }, as('clusters:limits'));
  assert.is(bad.status, 400);
  assert.equal(bad.json.error.fields, { concurrency: 'must be a whole number from 1 to 2147483647' });
  const removed = await api.post('api/clusters/actions/limits', { func: 'send', limit: null }, as('clusters:limits'));
  assert.is(removed.status, 200, removed.text);
  assert.equal(await limits(ctx.orm.em.fork()), []);
  const log = await sql<{ action: string; summary: string }>(ctx.orm, 'select action, summary from ormq_admin_log order by id');
  assert.equal(log, [
    { action: 'limits', summary: 'Limit of "send": concurrency 5, rate 10 per 60 s' },
    { action: 'limits', summary: 'Limit of "send": removed' },
  ]);
  // readOnly refuses it whatever authorize says
  const { api: readOnly } = await ctx.start({ authorize: grants, readOnly: true });
  assert.is((await readOnly.post('api/clusters/actions/limits', body, as('clusters:limits'))).status, 403);
});

A.run();
