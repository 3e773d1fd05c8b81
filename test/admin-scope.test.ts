/**
 * What a caller may do and see: each change authorized as what it does, answers holding only what
 * the caller may view, and work bounded by limits rather than by what a request or a row holds.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_ACTIONS, PAGE_IDS, VIEW_PAGE_IDS, type PageId } from '../src/admin/options.js';
import { PAGES } from '../src/admin/pages/index.js';
import { enqueue, schedule, ValidationError, type QueueAdminOptions } from '../src/index.js';
import { sql } from './helpers/db.js';
import { insertRollup, insertTask } from './helpers/admin.js';
import { adminSuite } from './helpers/suites.js';

/** authorize from a header listing the caller's grants: `x-can: scheduled:view,queued:edit`. */
const grants: QueueAdminOptions['authorize'] = (req, { page, action }) =>
  String(req.headers['x-can'] ?? '')
    .split(',')
    .includes(`${page}:${action}`);
const as = (...can: string[]) => ({ 'x-can': can.join(',') });

const later = () => new Date(Date.now() + 86_400_000);

// ---------------------------------------------------------------------------------------------
const Actions = adminSuite('admin permissions: each change authorized as what it does');

Actions('clearing a lock through PATCH is a release: an edit-only caller is refused, a release-only caller is not', async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  await enqueue(ctx.orm.em.fork(), 'work');
  await sql(ctx.orm, "update ormq_queued set lock = now() - interval '1 second'");
  const [{ id }] = (await sql<{ id: string }>(ctx.orm, 'select id from ormq_queued')) as [{ id: string }];
  const lock = async () => (await sql<{ lock: unknown }>(ctx.orm, 'select lock from ormq_queued'))[0]!.lock;

  const refused = await api.patch(`api/queued/${id}`, { lock: null }, as('queued:view', 'queued:edit'));
  assert.is(refused.status, 403, refused.text);
  assert.match(refused.json.error.message, /release on queued/);
  assert.ok(await lock(), 'still locked');
  const mixed = await api.patch(`api/queued/${id}`, { lock: null, key: 'other' }, as('queued:view', 'queued:release'));
  assert.is(mixed.status, 403, 'changing the key as well needs edit');

  const released = await api.patch(`api/queued/${id}`, { lock: null }, as('queued:view', 'queued:release'));
  assert.is(released.status, 200, released.text);
  assert.is(await lock(), null);
  const delay = await api.patch(`api/queued/${id}`, { lock: later().toISOString() }, as('queued:view', 'queued:release'));
  assert.is(delay.status, 403, 'setting a lock (a delay) is an edit');
  const edited = await api.patch(`api/queued/${id}`, { lock: later().toISOString() }, as('queued:view', 'queued:edit'));
  assert.is(edited.status, 200, edited.text);
  // A lock moved into the past frees the package for the next claim: a release, whatever it looks like.
  const past = '2000-01-01T00:00:00.000Z';
  const backdated = await api.patch(`api/queued/${id}`, { lock: past }, as('queued:view', 'queued:edit'));
  assert.is(backdated.status, 403, 'a past lock needs release');
  assert.match(backdated.json.error.message, /release on queued/);
  const both = await api.patch(`api/queued/${id}`, { lock: past }, as('queued:view', 'queued:edit', 'queued:release'));
  assert.is(both.status, 200, both.text);
});

Actions('an edit that sets repeats to 0 needs pause, one that sets it from 0 needs resume', async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  const s = await schedule(ctx.orm.em.fork(), { name: 'nightly', func: 'work', scheduleType: 'D', nextRun: later() });
  const stored = async () => (await sql<{ repeats: number; version: number }>(ctx.orm, 'select repeats, version from ormq_schedule'))[0]!;

  const editOnly = as('scheduled:view', 'scheduled:edit');
  const pause = await api.put(`api/scheduled/${s.id}`, { version: 1, repeats: 0 }, editOnly);
  assert.is(pause.status, 403, pause.text);
  assert.match(pause.json.error.message, /pause on scheduled/);
  assert.equal(await stored(), { repeats: -1, version: 1 }, 'unchanged');
  const renamed = await api.put(`api/scheduled/${s.id}`, { version: 1, name: 'renamed' }, editOnly);
  assert.is(renamed.status, 200, 'an edit that does not pause needs only edit');

  const paused = await api.put(
    `api/scheduled/${s.id}`,
    { version: 2, repeats: 0 },
    as('scheduled:view', 'scheduled:edit', 'scheduled:pause'),
  );
  assert.is(paused.status, 200, paused.text);
  const resume = await api.put(
    `api/scheduled/${s.id}`,
    { version: 3, repeats: 5 },
    as('scheduled:view', 'scheduled:edit', 'scheduled:pause'),
  );
  assert.is(resume.status, 403);
  assert.match(resume.json.error.message, /resume on scheduled/);
  assert.equal(await stored(), { repeats: 0, version: 3 });
  const resumed = await api.put(
    `api/scheduled/${s.id}`,
    { version: 3, repeats: 5 },
    as('scheduled:view', 'scheduled:edit', 'scheduled:resume'),
  );
  assert.is(resumed.status, 200, resumed.text);
  assert.equal(await stored(), { repeats: 5, version: 4 });
});

Actions.run();

// ---------------------------------------------------------------------------------------------
const Views = adminSuite('admin answers: only what the caller may view');

Views("a schedule's last run goes only to those who may view the page its outcome puts it on", async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  const ok = await insertTask(ctx.orm, { success: true });
  const bad = await insertTask(ctx.orm, { success: false });
  for (const [name, task] of [
    ['ok', ok],
    ['bad', bad],
    ['pending', 'f'.repeat(32)],
  ] as const) {
    const s = await schedule(ctx.orm.em.fork(), { name, func: 'work', scheduleType: 'D', nextRun: later() });
    await sql(ctx.orm, 'update ormq_schedule set task = ? where id = ?', [task, s.id]);
  }
  const runs = async (...can: string[]) => {
    const list = await api.get('api/scheduled', as('scheduled:view', ...can));
    assert.is(list.status, 200, list.text);
    const out: Record<string, unknown> = {};
    for (const row of list.json.rows) out[row.name] = [row.task, row.lastRun?.success ?? null];
    return out;
  };
  assert.equal(await runs(), { ok: [null, null], bad: [null, null], pending: [null, null] });
  assert.equal(await runs('successful:view'), { ok: [ok, true], bad: [null, null], pending: [null, null] });
  assert.equal(await runs('failed:view'), { ok: [null, null], bad: [bad, false], pending: [null, null] });
  assert.equal(await runs('successful:view', 'failed:view'), { ok: [ok, true], bad: [bad, false], pending: ['f'.repeat(32), null] });
  const [{ id }] = (await sql<{ id: number }>(ctx.orm, "select id from ormq_schedule where name = 'ok'")) as [{ id: number }];
  const detail = await api.get(`api/scheduled/${id}`, as('scheduled:view'));
  assert.equal([detail.json.object.task, detail.json.object.lastRun], [null, null]);
  assert.not.ok(detail.text.includes(ok), 'the task id appears nowhere in the answer');
});

Views("a task's lineage and a package's retried failure are linked only for those who may view the page they are on", async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  const first = await insertTask(ctx.orm, { name: 'import', success: false, result: { error: 'Error', message: 'down' } });
  assert.is((await api.post('api/failed/actions/resubmit', { ids: [first] }, as('failed:view', 'failed:resubmit'))).status, 200);
  const [pkg] = await sql<{ id: number; payload: { id: string } }>(ctx.orm, 'select id, payload from ormq_queued');
  // the deleted failure's bookmark leads to the package on Queued tasks: not for a caller who cannot view that page
  assert.is((await api.get(`api/failed/${first}`, as('failed:view'))).status, 404);
  const shown = await api.get(`api/failed/${first}`, as('failed:view', 'queued:view'));
  assert.is(shown.json.extra.successor.place.page, 'queued');

  // a package that retries a failure names it only to those who may view Failed tasks
  const retried = await insertTask(ctx.orm, { name: 'secret-retry', success: false, result: { error: 'Error', message: 'x' } });
  await sql(ctx.orm, `insert into ormq_queued (key, payload) values ('default', ?::jsonb)`, [
    JSON.stringify({ id: retried, name: 'secret-retry', func: 'work' }),
  ]);
  const [{ id: qid }] = (await sql<{ id: number }>(ctx.orm, "select id from ormq_queued where payload->>'id' = ?", [retried])) as [
    { id: number },
  ];
  assert.is((await api.get(`api/queued/${qid}`, as('queued:view'))).json.extra.retrying, null);
  assert.is((await api.get(`api/queued/${qid}`, as('queued:view', 'failed:view'))).json.extra.retrying.name, 'secret-retry');

  // lineage on the new task's row: its origin is on Failed tasks, hidden from a Successful-only viewer
  await sql(ctx.orm, 'delete from ormq_queued where id = ?', [pkg.id]);
  await insertTask(ctx.orm, { id: pkg.payload.id, name: 'import', success: true, result: 'ok' });
  await insertTask(ctx.orm, { id: first, name: 'import', success: false, result: { error: 'Error', message: 'down' } });
  assert.is((await api.get(`api/successful/${pkg.payload.id}`, as('successful:view'))).json.extra.lineage.from, null);
  assert.is(
    (await api.get(`api/successful/${pkg.payload.id}`, as('successful:view', 'failed:view'))).json.extra.lineage.from.taskId,
    first,
  );
});

Views('each overview series goes only to those who may view its page', async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  // the overview's chart counts attempts from the metrics rollups
  await insertRollup(ctx.orm, { at: new Date().toISOString(), success: true });
  await insertRollup(ctx.orm, { at: new Date().toISOString(), success: false });
  const hourly = async (...can: string[]) =>
    (await api.get('api/overview', as(...can))).json.hourly as { success: number | null; failure: number | null }[] | null;
  const sum = (h: { success: number | null; failure: number | null }[], k: 'success' | 'failure') =>
    h.reduce((n, x) => (x[k] === null ? null : (n ?? 0) + x[k]!), 0 as number | null);
  const s = (await hourly('successful:view'))!;
  assert.equal([sum(s, 'success'), s.every((h) => h.failure === null)], [1, true]);
  const f = (await hourly('failed:view'))!;
  assert.equal([f.every((h) => h.success === null), sum(f, 'failure')], [true, 1]);
  const both = (await hourly('successful:view', 'failed:view'))!;
  assert.equal([sum(both, 'success'), sum(both, 'failure')], [1, 1]);
  assert.is(await hourly('scheduled:view'), null);
});

Views('the object after a create or an edit only to those who may view it; a conflict shows the other change only to them', async (ctx) => {
  const { api } = await ctx.start({ authorize: grants });
  const body = { name: 'blind', func: 'work', scheduleType: 'D', nextRun: later().toISOString(), args: ['secret-arg'] };
  const created = await api.post('api/scheduled', body, as('scheduled:create'));
  assert.is(created.status, 201, created.text);
  assert.equal(Object.keys(created.json), ['id']);
  const id = created.json.id as number;
  const edited = await api.put(`api/scheduled/${id}`, { version: 1, cron: null, kwargs: { k: 'secret-kwarg' } }, as('scheduled:edit'));
  assert.is(edited.status, 200, edited.text);
  assert.equal(edited.json, { id });
  const stale = await api.put(`api/scheduled/${id}`, { version: 1, name: 'x' }, as('scheduled:edit'));
  assert.is(stale.status, 409);
  assert.not.ok('current' in stale.json, 'no copy of the schedule for a caller who may not view it');
  assert.not.match(stale.text, /secret/);
  const seen = await api.put(`api/scheduled/${id}`, { version: 1, name: 'x' }, as('scheduled:edit', 'scheduled:view'));
  assert.equal(seen.json.current.kwargs, { k: 'secret-kwarg' });
  const viewed = await api.put(`api/scheduled/${id}`, { version: 2, name: 'seen' }, as('scheduled:edit', 'scheduled:view'));
  assert.is(viewed.json.object.name, 'seen');

  await enqueue(ctx.orm.em.fork(), 'work', ['secret-payload']);
  const [{ id: qid }] = (await sql<{ id: string }>(ctx.orm, 'select id from ormq_queued')) as [{ id: string }];
  const patched = await api.patch(`api/queued/${qid}`, { key: 'other' }, as('queued:edit'));
  assert.is(patched.status, 200, patched.text);
  assert.equal(patched.json, { id: Number(qid) });
});

Views(
  'overview needs view on a page and shows only the pages the caller may view; meta lists task names only to scheduled viewers',
  async (ctx) => {
    const { api } = await ctx.start({
      tasks: ['work', 'secret.payroll'],
      // x-pages: the pages this caller may view.
      authorize: (req, { page, action }) =>
        action === 'view' &&
        String(req.headers['x-pages'] ?? '')
          .split(',')
          .includes(page),
    });
    await insertTask(ctx.orm, { success: true });
    await insertTask(ctx.orm, { success: false });
    await enqueue(ctx.orm.em.fork(), 'work');
    const as = (pages: string) => ({ 'x-pages': pages });

    const none = await api.get('api/overview', as(''));
    assert.is(none.status, 403, none.text);
    assert.not.match(none.text, /"counts"/);

    const queuedOnly = await api.get('api/overview', as('queued'));
    assert.is(queuedOnly.status, 200, queuedOnly.text);
    assert.equal(queuedOnly.json.counts, { successful: null, failed: null, scheduled: null, queued: { value: 1, estimated: false } });
    assert.is(queuedOnly.json.hourly, null, 'no chart of task outcomes for a queued-only viewer');

    const failedOnly = await api.get('api/overview', as('failed'));
    assert.equal(failedOnly.json.counts.failed, { value: 1, estimated: false });
    assert.is(failedOnly.json.counts.successful, null);
    assert.is(failedOnly.json.hourly.length, 24);

    const meta = await api.get('api/meta', as('queued'));
    assert.is(meta.status, 200, 'meta stays open: the page needs `can`');
    assert.is(meta.json.tasks, null);
    assert.not.match(meta.text, /secret\.payroll/);
    assert.is(meta.json.pages.queued.can.view, true);
    const schedulerMeta = await api.get('api/meta', as('scheduled'));
    assert.equal(schedulerMeta.json.tasks, ['secret.payroll', 'work']);
  },
);

Views('history lines, retry links and meta carry only what the caller may view', async (ctx) => {
  const { api } = await ctx.start({ authorize: grants, title: 'Payroll jobs' });
  // "Ran now as task …": the task ends on Successful or Failed tasks, so its id is for those who may view both.
  const s = await schedule(ctx.orm.em.fork(), { name: 'nightly', func: 'work', scheduleType: 'D', nextRun: later() });
  const ran = await api.post('api/scheduled/actions/run', { ids: [s.id] }, as('scheduled:run'));
  assert.is(ran.status, 200, ran.text);
  const [{ task }] = (await sql<{ task: string }>(ctx.orm, "select payload->>'id' as task from ormq_queued")) as [{ task: string }];
  const historyAs = async (...can: string[]) => {
    const r = await api.get(`api/scheduled/${s.id}`, as('scheduled:view', ...can));
    assert.is(r.status, 200, r.text);
    return r;
  };
  for (const can of [[], ['successful:view'], ['failed:view'], ['queued:view']]) {
    const r = await historyAs(...can);
    assert.match(r.json.history[0].summary, /^Ran now as task/);
    assert.not.ok(r.text.includes(task), `the task id is hidden from ${can.join(',') || 'a scheduled-only viewer'}`);
  }
  assert.is((await historyAs('successful:view', 'failed:view')).json.history[0].summary, `Ran now as task ${task}`);

  // A failure being retried links to its package on Queued tasks only for those who may view that page.
  const retried = await insertTask(ctx.orm, { name: 'retried', success: false, result: { error: 'Error', message: 'x' } });
  await sql(ctx.orm, `insert into ormq_queued (key, payload, linked) values ('default', ?::jsonb, true)`, [
    JSON.stringify({ id: retried, name: 'retried', func: 'work' }),
  ]);
  const [{ id: qid }] = (await sql<{ id: string }>(ctx.orm, "select id from ormq_queued where payload->>'id' = ?", [retried])) as [
    { id: string },
  ];
  const row = async (...can: string[]) =>
    (await api.get('api/failed', as('failed:view', ...can))).json.rows.find((r: { id: string }) => r.id === retried);
  const hidden = await row();
  assert.ok(hidden.retrying, 'still shown as retrying');
  assert.not.ok('queuedId' in hidden.retrying);
  assert.is((await row('queued:view')).retrying.queuedId, Number(qid));
  const detail = await api.get(`api/failed/${retried}`, as('failed:view'));
  assert.ok(detail.json.extra.retry.attempt);
  assert.not.ok('queuedId' in detail.json.extra.retry);
  assert.is((await api.get(`api/failed/${retried}`, as('failed:view', 'queued:view'))).json.extra.retry.queuedId, Number(qid));

  // meta: nothing to a caller who may view no page, not even the title.
  for (const can of [[], ['scheduled:run'], ['queued:edit', 'failed:delete']]) {
    const meta = await api.get('api/meta', as(...can));
    assert.is(meta.status, 403, meta.text);
    assert.not.match(meta.text, /Payroll|saveLimit|timeZone/);
  }
  const viewer = await api.get('api/meta', as('queued:view'));
  assert.is(viewer.status, 200);
  assert.is(viewer.json.title, 'Payroll jobs');
});

Views.run();

// ---------------------------------------------------------------------------------------------
const Bounded = adminSuite('admin work bounded: argument sizes, statement timeout, JSON cut in SQL');

Bounded("a schedule's args or kwargs over argsLimit (64 KB by default) are a 400 naming the field, on create and edit", async (ctx) => {
  const { api } = await ctx.start();
  const base = { func: 'work', scheduleType: 'D', nextRun: later().toISOString() };
  const big = 'x'.repeat(64 * 1024);
  for (const [field, value] of [
    ['args', [big]],
    ['kwargs', { k: big }],
  ] as const) {
    const r = await api.post('api/scheduled', { ...base, [field]: value });
    assert.is(r.status, 400, r.text.slice(0, 200));
    assert.match(r.json.error.fields[field], /at most 65536 bytes/);
  }
  assert.equal(await sql(ctx.orm, 'select 1 from ormq_schedule'), []);
  const fits = await api.post('api/scheduled', { ...base, args: ['x'.repeat(60 * 1024)] });
  assert.is(fits.status, 201);
  const grown = await api.put(`api/scheduled/${fits.json.object.id}`, { version: 1, kwargs: { k: big } });
  assert.is(grown.status, 400);
  assert.ok(grown.json.error.fields.kwargs);
  // Arguments saved larger by host code stay editable in the other fields.
  const hosted = await schedule(ctx.orm.em.fork(), { name: 'hosted', ...base, nextRun: later(), scheduleType: 'D', args: [big, big] });
  const renamed = await api.put(`api/scheduled/${hosted.id}`, { version: 1, name: 'renamed', args: [big, big] });
  assert.is(renamed.status, 200, renamed.text.slice(0, 200));
  const { api: small } = await ctx.start({ argsLimit: 100 });
  const r = await small.post('api/scheduled', { ...base, args: ['y'.repeat(100)] });
  assert.match(r.json.error.fields.args, /at most 100 bytes/);
  await enqueue(ctx.orm.em.fork(), 'work');
  const [{ id: qid }] = (await sql<{ id: string }>(ctx.orm, 'select id from ormq_queued')) as [{ id: string }];
  const queued = await api.patch(`api/queued/${qid}`, { args: [big] });
  assert.is(queued.status, 400);
  assert.ok(queued.json.error.fields.args, "a package's args cannot be edited: the 400 names them");
});

Bounded(
  'string-encoded args and kwargs meet the depth, size and storable limits of arrays and objects, on create, edit and schedule()',
  async (ctx) => {
    const logged: string[] = [];
    const { api } = await ctx.start({ log: (level, message) => void (level === 'error' && logged.push(message)) });
    const base = { func: 'work', scheduleType: 'D', nextRun: later().toISOString() };
    const nested = (levels: number, open = '[', close = ']') => `${open.repeat(levels)}${close.repeat(levels)}`;
    const deepKwargs = (levels: number) => `${'{"k":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
    // The schedule is the first level, as the request body is for an array: args of 100 levels are one too many either way.
    const asArray = await api.post('api/scheduled', { ...base, args: JSON.parse(nested(100)) });
    assert.is(asArray.status, 400, asArray.text.slice(0, 200));
    for (const [field, text] of [
      ['args', nested(100)],
      ['args', nested(101)],
      ['args', nested(5_000)],
      ['args', nested(200_000)],
      ['kwargs', deepKwargs(101)],
      ['kwargs', deepKwargs(5_000)],
    ] as const) {
      const r = await api.post('api/scheduled', { ...base, [field]: text });
      assert.is(r.status, 400, `${field} ${text.length}: ${r.text.slice(0, 200)}`);
      assert.match(r.json.error.fields[field], /nests deeper than 100 levels/);
    }
    // Brackets inside strings are text, not nesting.
    const quoted = await api.post('api/scheduled', { ...base, name: 'quoted', args: JSON.stringify(['['.repeat(500), '"\\[{']) });
    assert.is(quoted.status, 201, quoted.text.slice(0, 200));
    assert.equal(quoted.json.object.args, ['['.repeat(500), '"\\[{']);
    const fits = await api.post('api/scheduled', { ...base, name: 'fits', args: nested(99) });
    assert.is(fits.status, 201, fits.text.slice(0, 200));
    const edited = await api.put(`api/scheduled/${fits.json.object.id}`, { version: 1, kwargs: deepKwargs(5_000) });
    assert.is(edited.status, 400, edited.text.slice(0, 200));
    assert.ok(edited.json.error.fields.kwargs);
    const big = await api.post('api/scheduled', { ...base, args: JSON.stringify(['x'.repeat(64 * 1024)]) });
    assert.is(big.status, 400);
    assert.match(big.json.error.fields.args, /at most 65536 bytes/);
    const nul = await api.post('api/scheduled', { ...base, kwargs: '{"k":"\\u0000"}' });
    assert.is(nul.status, 400, nul.text);
    assert.ok(nul.json.error.fields.kwargs);
    for (const args of [nested(5_000), JSON.parse(nested(5_000)) as unknown[]]) {
      try {
        await schedule(ctx.orm.em.fork(), { ...base, scheduleType: 'D', nextRun: later(), args });
        assert.unreachable('a deep args is refused by schedule() too');
      } catch (e) {
        assert.match((e as ValidationError).errors?.args ?? '', /nests deeper/, String(e));
      }
    }
    assert.equal(
      (await sql(ctx.orm, 'select name from ormq_schedule order by id')).map((r) => r.name),
      ['quoted', 'fits'],
    );
    assert.equal(logged, []);
  },
);

Bounded('an admin read past statementTimeout answers 503 JSON and leaves the connection usable', async (ctx) => {
  const { api } = await ctx.start({ statementTimeout: 200 });
  await schedule(ctx.orm.em.fork(), { name: 's', func: 'work', scheduleType: 'D', nextRun: later() });
  // Another session holds the table: the list waits for it, up to the timeout.
  const holder = ctx.orm.em.fork();
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const blocker = holder.transactional(async (tx) => {
    await tx.execute('lock table ormq_schedule in access exclusive mode');
    locked();
    await held;
  });
  try {
    await isLocked;
    for (const path of ['api/scheduled', 'api/scheduled/count', 'api/overview']) {
      const r = await api.get(path);
      assert.is(r.status, 503, `${path}: ${r.text}`);
      assert.is(r.json.error.status, 503);
      assert.match(r.json.error.message, /statementTimeout/);
    }
  } finally {
    release();
    await blocker;
  }
  const after = await api.get('api/scheduled');
  assert.is(after.status, 200, 'the next read works');
  assert.is(after.json.rows.length, 1);
});

Bounded(
  'large args, kwargs, results and payloads are cut in SQL: lists leave them out, details preview them, a field loads whole',
  async (ctx) => {
    const { api } = await ctx.start();
    const big = Array.from({ length: 3000 }, (_, i) => `v${i}`);
    const s = await schedule(ctx.orm.em.fork(), {
      name: 'big',
      func: 'work',
      scheduleType: 'D',
      nextRun: later(),
      args: big,
      kwargs: { small: 1 },
    });
    const row = (await api.get('api/scheduled')).json.rows[0];
    assert.not.ok('args' in row, 'a large args is left out of the list row');
    assert.equal(row.kwargs, { small: 1 });
    const detail = await api.get(`api/scheduled/${s.id}`);
    assert.ok(detail.json.truncated.args.bytes > 8192);
    assert.is(detail.json.truncated.args.preview.length, 2000);
    assert.equal(JSON.parse((await api.get(`api/scheduled/${s.id}/field/args`)).text), big);
    await enqueue(ctx.orm.em.fork(), 'work', big, { name: 'heavy' });
    const [{ id: qid }] = (await sql<{ id: string }>(ctx.orm, 'select id from ormq_queued')) as [{ id: string }];
    const q = await api.get(`api/queued/${qid}`);
    assert.is(q.json.object.name, 'heavy');
    assert.ok(q.json.truncated.payload.bytes > 8192);
    const released = await api.post('api/queued/actions/release', { all: true });
    assert.is(released.status, 200);
    const run = await api.post('api/scheduled/actions/run', { ids: [s.id] });
    assert.is(run.status, 200, 'run now copies the whole args');
    const [copied] = await sql<{ args: unknown }>(
      ctx.orm,
      "select payload->'args' as args from ormq_queued where payload->>'schedule' is not null",
    );
    assert.equal(copied!.args, big);
  },
);

Bounded('the cron preview is bounded: at most five runs, ending where the series ends, never a 500', async (ctx) => {
  const { api } = await ctx.start();
  const preview = async (q: Record<string, string>) => {
    const r = await api.get(`api/scheduled/preview?${new URLSearchParams(q)}`);
    assert.is(r.status, 200, `${JSON.stringify(q)}: ${r.text}`);
    return r.json.runs as string[];
  };
  assert.is((await preview({ scheduleType: 'C', cron: '*/5 * * * *' })).length, 5);
  // The cron library looks no further than year 3000; PostgreSQL stores no year past 9999.
  assert.equal(await preview({ scheduleType: 'C', cron: '* * * * *', nextRun: '2999-12-31T23:57:00Z' }), [
    '2999-12-31T23:57:00.000Z',
    '2999-12-31T23:58:00.000Z',
    '2999-12-31T23:59:00.000Z',
  ]);
  // Monthly keeps the anchor's day: 30 November, then 30 December, then nothing PostgreSQL can store.
  assert.equal(await preview({ scheduleType: 'M', nextRun: '9999-11-30T00:00:00Z' }), [
    '9999-11-30T00:00:00.000Z',
    '9999-12-30T00:00:00.000Z',
  ]);
  assert.equal((await preview({ scheduleType: 'I', minutes: '32767', nextRun: '9999-12-01T00:00:00Z' })).length, 2);
  // A rare cron (29 February on a Monday) still answers its five runs.
  assert.is((await preview({ scheduleType: 'C', cron: '0 0 29 2 1' })).length, 5);
  const bad = await api.get(`api/scheduled/preview?${new URLSearchParams({ scheduleType: 'C', cron: '* '.repeat(200) })}`);
  assert.is(bad.status, 400);
  assert.ok(bad.json.error.fields.cron);
});

Bounded.run();

const Declared = suite("admin permissions: the names authorize is asked are the pages' own");

Declared('every page module offers exactly the actions PAGE_ACTIONS types for it, and each view page only view', () => {
  for (const page of PAGES) {
    const offered = ['view', ...Object.keys(page.labels)].sort();
    if ((VIEW_PAGE_IDS as readonly string[]).includes(page.id)) assert.equal(offered, ['view'], page.id);
    else assert.equal(offered, [...PAGE_ACTIONS[page.id as PageId]].sort(), page.id);
  }
  assert.equal(PAGES.map((p) => p.id).sort(), [...PAGE_IDS, ...VIEW_PAGE_IDS].sort(), 'every page id has a module');
});

Declared.run();
