/**
 * Triage on the admin's API, on real PostgreSQL: failures grouped by cause, search in errors and
 * args, finding a task by id or name, and the overview's list of what needs attention.
 */
import * as assert from 'uvu/assert';
import { enqueue, ensureSchema, type QueueAdminOptions } from '../src/index.js';
import { newTaskId } from '../src/names.js';
import { sql, waitFor } from './helpers/db.js';
import { insertRollup, insertTask } from './helpers/admin.js';
import { adminSuite } from './helpers/suites.js';
import { startCluster } from './helpers/cluster.js';
import { stageBadDay } from './helpers/bad-day.js';

const OPTIONS: QueueAdminOptions = { actor: (req) => (req.headers['x-user'] as string | undefined) ?? null };
const CLEAR = 'truncate ormq_task, ormq_schedule, ormq_queued, ormq_admin_log, ormq_metric, ormq_cluster, ormq_paused_key restart identity';
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
const failure = (error: string, message: string) => ({ error, message, stack: `${error}: ${message}\n    at somewhere` });

const Groups = adminSuite('failure groups: failures counted by func, error type and folded message', { mount: OPTIONS, clear: CLEAR });

Groups(
  'messages differing only in numbers, ids, quoted values and e-mail addresses are one group; func and error type split groups',
  async ({ orm, api }) => {
    const smtp = [
      'SMTP 451: mailbox of bob@example.com unavailable (try 3)',
      'SMTP 452: mailbox of alice.x+y@mail.example.org unavailable (try 12)',
      'SMTP 451: mailbox of carol@example.net unavailable (try 1)',
    ];
    for (const [i, m] of smtp.entries())
      await insertTask(orm, { func: 'email.send', success: false, result: failure('Error', m), stopped: minutesAgo(10 + i) });
    await insertTask(orm, {
      func: 'email.send',
      success: false,
      result: failure('TypeError', 'SMTP 451: mailbox of bob@example.com unavailable (try 3)'),
      stopped: minutesAgo(5),
    });
    await insertTask(orm, {
      func: 'report.build',
      success: false,
      result: failure('Error', 'row 3fa85f64-5717-4562-b3fc-2c963f66afa6 of "north" not found'),
      stopped: minutesAgo(30),
    });
    await insertTask(orm, {
      func: 'report.build',
      success: false,
      result: failure('Error', "row 0x0a1b2c3d4e of 'south-2' not found"),
      stopped: minutesAgo(20),
    });
    // older than a day: outside the default span
    await insertTask(orm, {
      func: 'email.send',
      success: false,
      result: failure('Error', 'SMTP 451: mailbox of dan@example.com unavailable (try 1)'),
      stopped: minutesAgo(60 * 30),
    });
    await insertTask(orm, { func: 'email.send', success: true, result: 'SMTP 451 ok' });

    const r = await api.get('api/failed/groups');
    assert.is(r.status, 200, r.text);
    const groups = r.json.groups as any[];
    assert.equal(
      groups.map((g) => [g.func, g.error, g.count]),
      [
        ['email.send', 'Error', 3],
        ['report.build', 'Error', 2],
        ['email.send', 'TypeError', 1],
      ],
    );
    const [mail, rows] = groups;
    assert.is(mail.message, 'SMTP 451: mailbox of bob@example.com unavailable (try 3)', 'the sample is the newest of the group');
    assert.ok(mail.first < mail.last);
    assert.is(mail.retrying, 0);
    assert.match(mail.id, /^[0-9a-f]{16}$/);
    assert.ok(r.json.from, 'the span it covers');

    // the group opens the list filtered by it, with the same span: the count is the group's
    const listed = await api.get(`api/failed?errorGroup=${mail.id}&from=${encodeURIComponent(r.json.from)}`);
    assert.is(listed.status, 200, listed.text);
    assert.is(listed.json.rows.length, 3);
    assert.is(listed.json.count.value, 3);
    const all = await api.get(`api/failed?errorGroup=${mail.id}`);
    assert.is(all.json.rows.length, 4, 'without the span: the older failure of the same cause too');
    const reportRows = await api.get(`api/failed?errorGroup=${rows.id}`);
    assert.equal(
      reportRows.json.rows.map((x: any) => x.func),
      ['report.build', 'report.build'],
    );

    // a span of its own
    const older = await api.get(
      `api/failed/groups?from=${encodeURIComponent(minutesAgo(60 * 48))}&to=${encodeURIComponent(minutesAgo(60 * 24))}`,
    );
    assert.equal(
      older.json.groups.map((g: any) => [g.id, g.count]),
      [[mail.id, 1]],
    );
    // the list's other filters narrow it
    const byFunc = await api.get('api/failed/groups?func=report.build');
    assert.equal(
      byFunc.json.groups.map((g: any) => g.id),
      [rows.id],
    );
  },
);

Groups('"all matching" delete and resubmit act on one group only', async ({ orm, api }) => {
  for (let i = 0; i < 3; i++)
    await insertTask(orm, { func: 'email.send', success: false, result: failure('Error', `quota ${i * 7} exceeded`) });
  const other = await insertTask(orm, { func: 'email.send', success: false, result: failure('Error', 'no such host') });
  const { groups } = (await api.get('api/failed/groups')).json;
  const quota = groups.find((g: any) => g.count === 3);
  const del = await api.post('api/failed/actions/delete', { all: true, filter: { errorGroup: quota.id } });
  assert.is(del.status, 200, del.text);
  assert.equal([del.json.done, del.json.remaining], [3, 0]);
  const left = await sql<{ id: string }>(orm, 'select id from ormq_task');
  assert.equal(
    left.map((r) => r.id),
    [other],
  );

  const resubmit = await api.post('api/failed/actions/resubmit', {
    all: true,
    filter: { errorGroup: groups.find((g: any) => g.count === 1).id },
    cursor: null,
  });
  assert.is(resubmit.status, 200, resubmit.text);
  assert.is(resubmit.json.done, 1);
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 1, 'one task enqueued again');
});

Groups('a bad group id is a 400 naming errorGroup, in the list, the groups and an action', async ({ api }) => {
  for (const path of [
    'api/failed?errorGroup=xyz',
    'api/failed/groups?errorGroup=ABCDEF0123456789',
    `api/failed?errorGroup=${'a'.repeat(17)}`,
  ]) {
    const r = await api.get(path);
    assert.is(r.status, 400, path);
    assert.match(r.text, /errorGroup/);
  }
  const r = await api.post('api/failed/actions/delete', { all: true, filter: { errorGroup: { $ne: 1 } } });
  assert.is(r.status, 400);
  assert.match(r.text, /errorGroup/);
});

Groups('a cluster saves each failure with its group, and counts its retries', async ({ orm, api }) => {
  const { cluster } = await startCluster(orm, {
    retry: 3600,
    maxAttempts: 5,
    poll: 50,
    tasks: {
      'mail.send': (to: string) => {
        throw new Error(`mailbox ${to} is full (code 552)`);
      },
      ok: () => 1,
    },
  });
  try {
    await orm.em.fork().transactional(async (em) => {
      for (const to of ['a@example.com', 'b@example.org', 'c@example.net']) await enqueue(em, 'mail.send', [to]);
      await enqueue(em, 'ok', []);
    });
    await waitFor(async () => (await sql(orm, 'select 1 from ormq_task')).length === 4, 'four tasks saved');
  } finally {
    await cluster.stop();
  }
  const rows = await sql<{ success: boolean; error_group: string | null }>(orm, 'select success, error_group from ormq_task');
  assert.is(new Set(rows.filter((r) => !r.success).map((r) => r.error_group)).size, 1);
  assert.is(rows.find((r) => r.success)!.error_group, null);
  const { groups } = (await api.get('api/failed/groups')).json;
  assert.equal(
    groups.map((g: any) => [g.func, g.error, g.count, g.retrying]),
    [['mail.send', 'Error', 3, 3]],
  );
});

Groups('a table from before failure groups gets the column at start-up, and its failures their groups', async ({ orm, api }) => {
  for (const n of [3, 40]) await insertTask(orm, { func: 'sync', success: false, result: failure('Error', `timeout after ${n} s`) });
  await insertTask(orm, { func: 'sync', success: true });
  await sql(orm, 'alter table ormq_task drop column error_group');
  await ensureSchema(orm);
  const { groups } = (await api.get('api/failed/groups')).json;
  assert.equal(
    groups.map((g: any) => [g.func, g.message, g.count]),
    [['sync', 'timeout after 40 s', 2]],
  );
  const [idx] = await sql<{ d: string }>(orm, "select pg_get_indexdef(to_regclass('ormq_task_error_group_idx')) as d");
  assert.match(idx!.d, /WHERE \(NOT success\)/);
});

Groups('only for those who may view Failed tasks', async ({ start }) => {
  const { api } = await start({ authorize: (_req, { page }) => page !== 'failed' });
  const r = await api.get('api/failed/groups');
  assert.is(r.status, 403);
});

Groups.run();

const Search = adminSuite('search: what operators type finds failures by error and tasks by args', { mount: OPTIONS, clear: CLEAR });

Search("the Failed list's search matches the error type and message; Successful tasks' results are not searched", async ({ orm, api }) => {
  const type = await insertTask(orm, {
    name: 'resize-1',
    func: 'image.resize',
    success: false,
    result: failure('TypeError', 'cannot read x of undefined'),
  });
  const smtp = await insertTask(orm, {
    name: 'mail-1',
    func: 'email.send',
    success: false,
    result: failure('Error', 'SMTP 451: mailbox unavailable'),
  });
  const text = await insertTask(orm, { name: 'odd-1', func: 'odd', success: false, result: 'a plain smtp string' });
  await insertTask(orm, { name: 'fine', func: 'email.send', success: true, result: { note: 'SMTP fine TypeError' } });
  const ids = async (path: string) => {
    const r = await api.get(path);
    assert.is(r.status, 200, r.text);
    return r.json.rows.map((x: any) => x.id).sort();
  };
  assert.equal(await ids('api/failed?search=TypeError'), [type]);
  assert.equal(await ids('api/failed?search=typeerror: cannot'), [type], 'type and message as one text, any case');
  assert.equal(await ids('api/failed?search=SMTP'), [smtp, text].sort());
  assert.equal(await ids('api/failed?search=mail'), [smtp], 'the name still matches');
  assert.equal(await ids('api/successful?search=SMTP'), []);
  const count = await api.get('api/failed/count?search=SMTP');
  assert.is(count.json.count, 2);
});

Search('both task lists filter by text inside args, with the other filters and the search', async ({ orm, api }) => {
  const a = await insertTask(orm, {
    name: 'bill-a',
    func: 'billing.charge',
    args: [{ invoice: 'invoice-3' }, 10],
    success: false,
    result: failure('Error', 'card declined'),
  });
  const b = await insertTask(orm, { name: 'bill-b', func: 'billing.charge', args: ['INVOICE-3'], success: true });
  await insertTask(orm, { name: 'bill-c', func: 'billing.charge', args: ['invoice-30x'], success: true, stopped: minutesAgo(1) });
  await insertTask(orm, { name: 'bill-d', func: 'billing.charge', args: ['invoice-4'], success: true });
  const ids = async (path: string) => (await api.get(path)).json.rows.map((x: any) => x.id);
  assert.equal(await ids('api/failed?args=invoice-3'), [a]);
  assert.is((await ids('api/successful?args=invoice-3')).length, 2, 'a substring, any case');
  assert.equal(await ids('api/successful?args=%22INVOICE-3%22'), [b], 'a quoted value matches the JSON text');
  assert.equal(await ids('api/failed?args=invoice-3&search=declined'), [a]);
  assert.equal(await ids('api/failed?args=invoice-4'), []);
  const del = await api.post('api/successful/actions/delete', { all: true, filter: { args: 'invoice-4' } });
  assert.equal([del.json.done, del.json.remaining], [1, 0]);
  for (const bad of ['x'.repeat(201), 'a\u0000b']) {
    const r = await api.get(`api/successful?args=${encodeURIComponent(bad)}`);
    assert.is(r.status, 400, r.text);
    assert.ok(r.json.error.fields.args, r.text);
  }
});

Search.run();

const Attention = adminSuite('needs attention: the overview says what is wrong, where to see it and what fixes it', {
  mount: OPTIONS,
  clear: CLEAR,
});

Attention('a bad day: each kind with its count, its things by name and a link to the filtered page', async ({ orm, api }) => {
  const day = await stageBadDay(orm);
  const r = await api.get('api/overview');
  assert.is(r.status, 200, r.text);
  const items = r.json.attention as any[];
  assert.equal(
    items.map((i) => i.kind),
    ['not_responding', 'stuck', 'failing', 'slow_wait', 'paused_waiting', 'retrying'],
  );
  const by = Object.fromEntries(items.map((i) => [i.kind, i]));
  for (const i of items) assert.ok(i.action.length > 10, `${i.kind} says what fixes it`);

  assert.is(by.not_responding.count, 1);
  assert.equal(
    by.not_responding.items.map((p: any) => [p.id, p.name, p.host, p.pid]),
    [[day.dead, 'mail', 'box-1', 4242]],
  );
  assert.equal(by.not_responding.link, { page: 'clusters', query: {} });

  assert.is(by.stuck.count, 3);
  assert.equal(by.stuck.link, { page: 'queued', query: { stuck: 'yes' } });
  const stuckList = await api.get('api/queued?stuck=yes');
  assert.is(stuckList.json.rows.length, 3, 'the link lists what the count counted');

  assert.is(by.failing.count, 1);
  assert.equal(
    by.failing.items.map((f: any) => [f.func, f.failures, f.attempts]),
    [['email.send', 8, 20]],
  );
  assert.is(by.failing.link.query.func, 'email.send');
  const failingList = await api.get(`api/failed?${new URLSearchParams(by.failing.link.query)}`);
  assert.is(failingList.json.rows.length, 8, "the last hour's failures of the func");

  assert.is(by.slow_wait.count, 1);
  assert.equal(
    by.slow_wait.items.map((k: any) => [k.key, k.served]),
    [['images', false]],
  );
  assert.ok(by.slow_wait.items[0].waited >= 9 * 60_000);
  assert.equal(by.slow_wait.items[0].link, { page: 'queued', query: { key: 'images' } });

  assert.is(by.paused_waiting.count, 1);
  const [paused] = by.paused_waiting.items;
  assert.equal([paused.key, paused.waiting, paused.by], ['reports', 4, 'ops@example.com']);
  assert.ok(Date.now() - Date.parse(paused.since) > 59 * 60_000, 'since when');

  assert.is(by.retrying.count, 1);
  assert.equal(by.retrying.link, { page: 'failed', query: { state: 'retrying' } });
  const retryingList = await api.get('api/failed?state=retrying');
  assert.equal(
    retryingList.json.rows.map((x: any) => x.id),
    [day.retryingTask],
  );
});

Attention(
  'nothing wrong: an empty list; a paused key with nothing waiting and a func failing rarely are not problems',
  async ({ orm, api }) => {
    await sql(orm, `insert into ormq_paused_key (key) values ('idle')`);
    await insertRollup(orm, { at: minutesAgo(3), func: 'work', success: false, count: 4 });
    await insertRollup(orm, { at: minutesAgo(3), func: 'rare', success: false, count: 5 });
    await insertRollup(orm, { at: minutesAgo(3), func: 'rare', success: true, count: 100 });
    // failed often, but more than an hour ago
    await insertRollup(orm, { at: minutesAgo(90), func: 'old', success: false, count: 50 });
    const r = await api.get('api/overview');
    assert.equal(r.json.attention, []);
  },
);

Attention(
  'drift: a key whose live processes run with different saveLimit, retry, timeout or maxAttempts; dead ones and keys that agree are not',
  async ({ orm, api }) => {
    const beat = (name: string, config: object | null, alive = true) =>
      sql(
        orm,
        `insert into ormq_cluster (id, name, host, pid, started, heartbeat, beat_ms, state, workers, busy, done, failed, version, tasks, config)
       values (?, ?, 'box', 1, now() - interval '1 hour', now() - ? * interval '1 ms', 3600000, 'running', 4, 0, 0, 0, '0.0.1', '[]'::jsonb, ?::jsonb)`,
        [newTaskId(), name, alive ? 0 : 24 * 3_600_000 - 1, JSON.stringify(config)],
      );
    const base = { workers: 4, saveLimit: 250, retry: 90, timeout: 60, maxAttempts: 0 };
    await beat('mail', base);
    await beat('mail', { ...base, saveLimit: 5000, workers: 8 });
    await beat('mail', { ...base, saveLimit: 5000, timeout: 30 });
    await beat('images', base);
    await beat('images', { ...base, workers: 16 });
    await beat('images', { ...base, retry: 10 }, false);
    await beat('old', null);
    await beat('old', base);
    const drift = (await api.get('api/overview')).json.attention.find((i: any) => i.kind === 'drift');
    assert.ok(drift, 'the drifting key is named');
    assert.is(drift.count, 1, 'workers may differ, a dead process and a row without options do not count');
    assert.equal(drift.items, [{ key: 'mail', processes: 3, fields: ['saveLimit', 'timeout'] }]);
    assert.equal(drift.link, { page: 'clusters', query: {} });
  },
);

Attention('a pause from code has no actor; a pause from the admin names who paused it', async ({ orm, start }) => {
  const { api } = await start(OPTIONS);
  await sql(
    orm,
    `insert into ormq_queued (key, payload) values ('k1', '{"id":"a","name":"n","func":"f"}'), ('k2', '{"id":"b","name":"n","func":"f"}')`,
  );
  await sql(orm, `insert into ormq_paused_key (key) values ('k1')`);
  const paused = await api.post('api/clusters/actions/pause', { key: 'k2' }, { 'x-user': 'alice' });
  assert.is(paused.status, 200, paused.text);
  const items = (await api.get('api/overview')).json.attention.find((i: any) => i.kind === 'paused_waiting').items;
  assert.equal(
    items.map((k: any) => [k.key, k.by]),
    [
      ['k1', null],
      ['k2', 'alice'],
    ],
  );
});

Attention('each item only for those who may view the page it links to', async ({ orm, start }) => {
  await stageBadDay(orm);
  const kinds = async (allowed: string[]) => {
    const { api } = await start({ authorize: (_req, { page, action }) => action === 'view' && allowed.includes(page) });
    const r = await api.get('api/overview');
    assert.is(r.status, 200, r.text);
    return r.json.attention.map((i: any) => i.kind);
  };
  assert.equal(await kinds(['failed']), ['failing', 'retrying']);
  assert.equal(await kinds(['queued']), ['stuck']);
  assert.equal(await kinds(['clusters']), ['not_responding', 'slow_wait', 'paused_waiting']);
  assert.equal(await kinds(['successful', 'metrics', 'scheduled']), []);
  // clusters without queued: the slow key is named, without a link to a page the caller cannot open
  const { api } = await start({ authorize: (_req, { page, action }) => action === 'view' && page === 'clusters' });
  const slow = (await api.get('api/overview')).json.attention.find((i: any) => i.kind === 'slow_wait');
  assert.equal(
    slow.items.map((k: any) => [k.key, 'link' in k]),
    [['images', false]],
  );
});

Attention.run();

const Find = adminSuite('go to id or name: api/find says which page holds it', { mount: OPTIONS, clear: CLEAR });

Find('a task id, a task name, a package id, a schedule id or name, a process id: each on its page', async ({ orm, api }) => {
  const day = await stageBadDay(orm);
  const ok = await insertTask(orm, { name: 'nightly-report', func: 'report.build' });
  const older = await insertTask(orm, { name: 'nightly-report', func: 'report.build', stopped: minutesAgo(60) });
  await insertTask(orm, {
    name: 'nightly-report',
    func: 'report.build',
    success: false,
    stopped: minutesAgo(30),
    result: failure('Error', 'x'),
  });
  await sql(
    orm,
    `insert into ormq_schedule (name, func, schedule_type, next_run) values ('hourly-sync', 'sync', 'H', now() + interval '1 hour')`,
  );
  const found = async (q: string) => {
    const r = await api.get(`api/find?q=${encodeURIComponent(q)}`);
    assert.is(r.status, 200, r.text);
    return r.json.found.map((f: any) => [f.page, f.id]);
  };
  assert.equal(await found(ok), [['successful', ok]]);
  assert.equal(await found(ok.toUpperCase()), [['successful', ok]], 'an id in capitals');
  assert.equal(await found(older), [['successful', older]]);
  const [failedRow] = await sql<{ id: string }>(orm, `select id from ormq_task where name = 'nightly-report' and not success`);
  assert.equal(
    await found('nightly-report'),
    [
      ['successful', ok],
      ['failed', failedRow!.id.trim()],
    ],
    'a name: the newest task of that name on each page',
  );
  // the retrying failure: on Failed tasks, and its package on Queued tasks
  const [pkg] = await sql<{ id: string }>(orm, `select id from ormq_queued where payload->>'id' = ?`, [day.retryingTask]);
  assert.equal(await found(day.retryingTask), [
    ['failed', day.retryingTask],
    ['queued', Number(pkg!.id)],
  ]);
  const [resize] = await sql<{ id: string }>(orm, `select id from ormq_queued where payload->>'name' = 'resize-1'`);
  assert.equal(await found('resize-1'), [['queued', Number(resize!.id)]], 'a waiting package by its name');
  assert.equal(await found('hourly-sync'), [['scheduled', 1]]);
  assert.equal(
    await found('1'),
    [
      ['queued', 1],
      ['scheduled', 1],
    ],
    'a number: a package and a schedule',
  );
  assert.equal(await found(day.dead), [['clusters', day.dead]]);
  assert.equal(await found('no-such-thing'), []);
  assert.equal(await found('%'), [], 'literal, not a pattern');
});

Find('only pages the caller may view; q is required, bounded and checked', async ({ orm, start }) => {
  const id = await insertTask(orm, { name: 'secret', success: false, result: failure('Error', 'x') });
  const { api } = await start({ authorize: (_req, { page }) => page !== 'failed' });
  const r = await api.get(`api/find?q=${id}`);
  assert.is(r.status, 200, r.text);
  assert.equal(r.json.found, []);
  for (const [q, status] of [
    ['', 400],
    ['x'.repeat(257), 400],
    ['a\u0000b', 400],
  ] as const) {
    const bad = await api.get(`api/find?q=${encodeURIComponent(q)}`);
    assert.is(bad.status, status, `${JSON.stringify(q)}: ${bad.text}`);
    assert.ok(bad.json.error.fields.q, bad.text);
  }
});

Find.run();
