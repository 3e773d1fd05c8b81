/**
 * The admin where a host's setup or a long-lived queue meets it: packages still queued for a task
 * shown as failed, impossible crons and dates, permissions on the overview, proxies that rewrite
 * Host, body parsers mounted in front, large counts, selections and resumed schedules.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { request, type Server } from 'node:http';
import express from 'express';
import Koa from 'koa';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, queueAdmin, schedule, type QueueAdminOptions } from '../src/index.js';
import { koa } from '../src/admin/adapters/koa.js';
import { ValidationError } from '../src/validate.js';
import { freshOrm, sql } from './helpers/db.js';
import { client, close, insertManyTasks, insertTask, listen, serve, testClient } from './helpers/admin.js';

type Api = ReturnType<typeof client>;
interface Ctx {
  orm: MikroORM;
  close(): Promise<void>;
  clientDir: ReturnType<typeof testClient>;
  servers: Server[];
  /** An admin on node:http with these options, and a client for it. */
  start(options?: QueueAdminOptions): Promise<{ api: Api; url: string }>;
  /** A host app (Express, Koa) serving on an ephemeral port. */
  host(server: Server): Promise<string>;
}

function fixSuite(name: string) {
  const s = suite<Ctx>(name);
  s.before(async (ctx) => {
    Object.assign(ctx, await freshOrm());
    ctx.clientDir = testClient();
    ctx.servers = [];
    ctx.start = async (options = {}) => {
      const { url, server } = await serve(queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, ...options }) as never);
      ctx.servers.push(server);
      return { url, api: client(`${url}/`) };
    };
    ctx.host = async (server) => {
      ctx.servers.push(server);
      return listen(server);
    };
  });
  s.after(async (ctx) => {
    for (const server of ctx.servers) await close(server);
    ctx.clientDir.cleanup();
    await ctx.close();
  });
  s.before.each(async (ctx) => {
    await sql(ctx.orm, 'truncate ormq_task, ormq_schedule, ormq_queued, ormq_admin_log restart identity');
  });
  return s;
}

/** A task that failed while its package stays queued for a retry, as a cluster with default settings leaves it. */
async function failedWithRetryQueued(orm: MikroORM, name: string): Promise<string> {
  const id = await enqueue(orm.em.fork(), 'work', [name], { name });
  await insertTask(orm, { id, name, func: 'work', args: [name], success: false, result: { error: 'Error', message: 'boom' } });
  return id;
}

const queuedTaskIds = async (orm: MikroORM) =>
  (await sql<{ id: string }>(orm, `select payload->>'id' as id from ormq_queued order by id`)).map((r) => r.id);

/** A request with exactly these headers (fetch will not send a Host of our choosing). */
function post(url: string, path: string, body: unknown, headers: Record<string, string>) {
  return new Promise<{ status: number; json: any; text: string }>((resolve, reject) => {
    const u = new URL(url);
    const text = JSON.stringify(body);
    const req = request(
      { host: u.hostname, port: u.port, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const t = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, text: t, json: t ? JSON.parse(t) : undefined });
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

// ---------------------------------------------------------------------------------------------
const Retries = fixSuite('admin fixes: a failed task whose package is still queued');

Retries('resubmitting failures removes their queued retry packages in the same transaction, so each runs once', async (ctx) => {
  const { api } = await ctx.start();
  const a = await failedWithRetryQueued(ctx.orm, 'a');
  const b = await failedWithRetryQueued(ctx.orm, 'b');
  const other = await enqueue(ctx.orm.em.fork(), 'work', ['unrelated']);
  const r = await api.post('api/failed/actions/resubmit', { ids: [a] });
  assert.equal(r.json, { done: 1, remaining: 0 }, r.text);
  const queued = await queuedTaskIds(ctx.orm);
  assert.is(queued.length, 3, 'b, the unrelated package and the new one for a');
  assert.not.ok(queued.includes(a), "a's retry package is gone");
  assert.ok(queued.includes(b) && queued.includes(other));

  // "All matching" takes the same path.
  const all = await api.post('api/failed/actions/resubmit', { all: true, filter: {} });
  assert.is(all.json.done, 1, all.text);
  const after = await queuedTaskIds(ctx.orm);
  assert.not.ok(after.includes(b), "b's retry package is gone");
  assert.is(after.length, 3);
  assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 0);
});

Retries('deleting failures (and successes) removes their queued packages too', async (ctx) => {
  const { api } = await ctx.start();
  const a = await failedWithRetryQueued(ctx.orm, 'a');
  const b = await failedWithRetryQueued(ctx.orm, 'b');
  const c = await enqueue(ctx.orm.em.fork(), 'work', ['c']);
  await insertTask(ctx.orm, { id: c, name: 'c', success: true });
  const keep = await enqueue(ctx.orm.em.fork(), 'work', ['keep']);
  assert.equal((await api.post('api/failed/actions/delete', { ids: [a] })).json, { done: 1, remaining: 0 });
  assert.equal((await api.post('api/failed/actions/delete', { all: true, filter: { search: 'b' } })).json, { done: 1, remaining: 0, cursor: null });
  assert.equal((await api.post('api/successful/actions/delete', { ids: [c] })).json, { done: 1, remaining: 0 });
  assert.equal(await queuedTaskIds(ctx.orm), [keep]);
  assert.not.ok((await queuedTaskIds(ctx.orm)).includes(b));
  // The lookup by task id is an index probe, not a scan of the whole queue.
  assert.is((await sql(ctx.orm, `select 1 from pg_indexes where indexname = 'ormq_queued_task_idx'`)).length, 1);
});

Retries.run();

// ---------------------------------------------------------------------------------------------
const Dates = fixSuite('admin fixes: impossible crons and dates PostgreSQL cannot store');

Dates('a cron that never matches is a 400 on cron, with or without a next run, on create, edit and preview', async (ctx) => {
  const { api } = await ctx.start();
  const bodies = [
    { func: 'work', scheduleType: 'C', cron: '0 0 31 2 *' },
    { func: 'work', scheduleType: 'C', cron: '0 0 30 2 *', nextRun: new Date(Date.now() + 60_000).toISOString() },
  ];
  for (const body of bodies) {
    const r = await api.post('api/scheduled', body);
    assert.is(r.status, 400, r.text);
    assert.match(r.json.error.fields.cron, /never matches/);
  }
  const s = await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  const edit = await api.put(`api/scheduled/${s.id}`, { version: s.version, scheduleType: 'C', cron: '0 0 31 2 *' });
  assert.is(edit.status, 400, edit.text);
  assert.ok(edit.json.error.fields.cron);
  for (const q of ['scheduleType=C&cron=0+0+31+2+*', `scheduleType=C&cron=0+0+31+2+*&nextRun=${encodeURIComponent(new Date().toISOString())}`]) {
    const p = await api.get(`api/scheduled/preview?${q}`);
    assert.is(p.status, 400, `${q}: ${p.text}`);
    assert.ok(p.json.error.fields.cron);
  }
  // A next run beyond the years the cron library computes names nextRun.
  const far = await api.get(`api/scheduled/preview?scheduleType=C&cron=0+0+*+*+*&nextRun=${encodeURIComponent('3500-01-01T00:00:00Z')}`);
  assert.is(far.status, 400, far.text);
  assert.ok(far.json.error.fields.nextRun);
  try {
    await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'C', cron: '0 0 31 2 *' });
    assert.unreachable('schedule() accepted a cron with no run');
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.ok((e as ValidationError).errors.cron);
  }
  assert.is((await sql(ctx.orm, 'select 1 from ormq_schedule')).length, 1);
});

Dates('dates outside years 1 to 9999 are a 400 naming the field on create, edit, preview and queued lock', async (ctx) => {
  const { api } = await ctx.start();
  const s = await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  const id = await enqueue(ctx.orm.em.fork(), 'work');
  const [q] = await sql<{ id: string }>(ctx.orm, `select id from ormq_queued where payload->>'id' = ?`, [id]);
  for (const date of ['-010000-01-01T00:00:00Z', '+010000-01-01T00:00:00Z', '0000-06-01T00:00:00Z', '9999-12-31T23:00:00-05:00']) {
    const created = await api.post('api/scheduled', { func: 'work', scheduleType: 'D', nextRun: date });
    assert.is(created.status, 400, `${date}: ${created.text}`);
    assert.ok(created.json.error.fields.nextRun);
    const edited = await api.put(`api/scheduled/${s.id}`, { version: s.version, nextRun: date });
    assert.is(edited.status, 400, `${date}: ${edited.text}`);
    assert.ok(edited.json.error.fields.nextRun);
    const preview = await api.get(`api/scheduled/preview?scheduleType=D&nextRun=${encodeURIComponent(date)}`);
    assert.is(preview.status, 400, `${date}: ${preview.text}`);
    assert.ok(preview.json.error.fields.nextRun);
    const lock = await api.patch(`api/queued/${q!.id}`, { lock: date });
    assert.is(lock.status, 400, `${date}: ${lock.text}`);
    assert.ok(lock.json.error.fields.lock);
  }
  // The edges of the range are fine.
  const edge = await api.post('api/scheduled', { func: 'work', scheduleType: 'O', nextRun: '9999-12-31T23:59:59Z' });
  assert.is(edge.status, 201, edge.text);
  assert.is((await api.patch(`api/queued/${q!.id}`, { lock: '0001-01-01T00:00:00Z' })).status, 200);
});

Dates.run();

// ---------------------------------------------------------------------------------------------
const Overview = fixSuite('admin fixes: the overview and meta follow authorize');

Overview('overview needs view on a page and shows only the pages the caller may view; meta lists task names only to scheduled viewers', async (ctx) => {
  const { api } = await ctx.start({
    tasks: ['work', 'secret.payroll'],
    // x-pages: the pages this caller may view.
    authorize: (req, { page, action }) => action === 'view' && String(req.headers['x-pages'] ?? '').split(',').includes(page),
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
});

Overview.run();

// ---------------------------------------------------------------------------------------------
const Proxy = fixSuite('admin fixes: mutations behind a proxy that rewrites Host');

Proxy('Sec-Fetch-Site: same-origin is enough whatever Host says; otherwise Origin must match Host or X-Forwarded-Host', async (ctx) => {
  // Behind a proxy the admin needs authorize: without it, it answers only direct local requests.
  const { url } = await ctx.start({ authorize: () => true });
  const path = '/api/queued/actions/delete';
  const ok = async (headers: Record<string, string>) => {
    await enqueue(ctx.orm.em.fork(), 'work');
    const r = await post(url, path, { all: true, filter: {} }, headers);
    assert.is(r.status, 200, `${JSON.stringify(headers)}: ${r.text}`);
    assert.is(r.json.done, 1);
  };
  const refused = async (headers: Record<string, string>) => {
    const r = await post(url, path, { all: true, filter: {} }, headers);
    assert.is(r.status, 403, `${JSON.stringify(headers)}: ${r.text}`);
    assert.match(r.json.error.message, /Cross-site/);
  };
  // nginx's default `proxy_set_header Host $proxy_host`: the app sees the upstream's name.
  const proxied = { host: 'backend:3000', origin: 'https://admin.example.com' };
  await ok({ ...proxied, 'sec-fetch-site': 'same-origin' });
  await ok({ ...proxied, 'x-forwarded-host': 'admin.example.com' });
  await ok({ host: 'backend:3000', origin: 'http://backend:3000' });
  await refused(proxied);
  await refused({ ...proxied, 'x-forwarded-host': 'evil.example' });
  await refused({ ...proxied, origin: 'https://evil.example', 'x-forwarded-host': 'admin.example.com' });
  await refused({ ...proxied, 'x-forwarded-host': 'admin.example.com', 'sec-fetch-site': 'cross-site' });
  await refused({ ...proxied, 'x-forwarded-host': 'admin.example.com', 'sec-fetch-site': 'same-site' });
  await refused({ host: 'admin.example.com', origin: 'https://admin.example.com', 'sec-fetch-site': 'none' });
});

Proxy.run();

// ---------------------------------------------------------------------------------------------
const Parsers = fixSuite('admin fixes: body parsers mounted in front of the admin');

/** The failure this guards against is a request that never ends: give up well before the suite would. */
const guarded = (api: Api, path: string, body: unknown) =>
  Promise.race([api.post(path, body), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${path} never answered`)), 10_000).unref())]);

Parsers('behind express.json() the admin uses the parsed body; a body read and dropped is a 400 saying so', async (ctx) => {
  const app = express();
  // A host middleware that drains the body without keeping it.
  app.use('/drained', (req, _res, next) => {
    req.resume();
    req.on('end', () => next());
  }, queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }));
  app.use(express.json());
  app.use('/qa', queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }));
  const url = await ctx.host(app.listen(0, '127.0.0.1') as unknown as Server);
  await enqueue(ctx.orm.em.fork(), 'work');
  const r = await guarded(client(`${url}/qa/`), 'api/queued/actions/delete', { all: true, filter: {} });
  assert.equal([r.json.done, r.json.remaining], [1, 0], r.text);
  const drained = await guarded(client(`${url}/drained/`), 'api/queued/actions/delete', { all: true, filter: {} });
  assert.is(drained.status, 400, drained.text);
  assert.match(drained.json.error.message, /already read by another middleware; mount the admin before body parsers/);
});

Parsers('under Koa, a body parser that sets ctx.request.body leaves the admin working', async (ctx) => {
  const app = new Koa();
  app.use(async (c, next) => {
    const chunks: Buffer[] = [];
    for await (const chunk of c.req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    (c.request as unknown as { body?: unknown }).body = text ? JSON.parse(text) : undefined;
    await next();
  });
  app.use(koa(queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }), { prefix: '/qa' }));
  const url = await ctx.host(app.listen(0, '127.0.0.1'));
  await enqueue(ctx.orm.em.fork(), 'work');
  const s = await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  const api = client(`${url}/qa/`);
  const r = await guarded(api, 'api/queued/actions/delete', { all: true, filter: {} });
  assert.equal([r.json.done, r.json.remaining], [1, 0], r.text);
  const created = await guarded(api, 'api/scheduled', { func: 'work', scheduleType: 'H', nextRun: new Date(Date.now() + 60_000).toISOString() });
  assert.is(created.status, 201, created.text);
  const paused = await guarded(api, 'api/scheduled/actions/pause', { ids: [s.id] });
  assert.equal(paused.json, { done: 1, remaining: 0 });
});

Parsers.run();

// ---------------------------------------------------------------------------------------------
const Bulk = fixSuite('admin fixes: counts, selections and chunked "all matching" actions');

Bulk('a selection is one transaction of at most 500 ids; 501 is a 400 naming ids', async (ctx) => {
  const logged: [string, string, unknown][] = [];
  const { api } = await ctx.start({ log: (level, message, detail) => logged.push([level, message, detail]) });
  const ids: string[] = [];
  for (let i = 0; i < 501; i++) ids.push(i.toString(16).padStart(32, '0'));
  const over = await api.post('api/failed/actions/delete', { ids });
  assert.is(over.status, 400, over.text);
  assert.match(over.json.error.fields.ids, /at most 500/);

  // 500 failures, the last refused by the database: none of them is resubmitted.
  await insertManyTasks(ctx.orm, 499, { success: false, func: 'work' });
  await insertTask(ctx.orm, { success: false, func: 'explode' });
  const all = (await sql<{ id: string }>(ctx.orm, 'select id from ormq_task')).map((r) => r.id.trim());
  await sql(ctx.orm, `create function ormq_test_refuse() returns trigger language plpgsql as $$
    begin if new.payload->>'func' = 'explode' then raise exception 'refused by test trigger'; end if; return new; end $$`);
  await sql(ctx.orm, 'create trigger ormq_test_refuse before insert on ormq_queued for each row execute function ormq_test_refuse()');
  try {
    const r = await api.post('api/failed/actions/resubmit', { ids: all });
    assert.is(r.status, 500);
    assert.not.match(r.text, /refused by test trigger/, 'the details stay on the server');
    assert.is(logged.length, 1, 'the log option receives the error behind the 500');
    assert.is(logged[0]![0], 'error');
    assert.match(String((logged[0]![2] as Error).message), /refused by test trigger/);
  } finally {
    await sql(ctx.orm, 'drop trigger ormq_test_refuse on ormq_queued');
    await sql(ctx.orm, 'drop function ormq_test_refuse()');
  }
  assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 500, 'no failure row deleted');
  assert.is((await sql(ctx.orm, 'select 1 from ormq_queued')).length, 0, 'no package written');
});

Bulk('"all matching" on rows that still match afterwards is chunked from a null cursor; without one it is a 400, never a one-shot', async (ctx) => {
  const { api } = await ctx.start();
  await insertManyTasks(ctx.orm, 1_050, { success: true, group: 'nightly' });
  const bare = await api.post('api/successful/actions/resubmit', { all: true, filter: { group: 'nightly' } });
  assert.is(bare.status, 400, bare.text);
  assert.ok(bare.json.error.fields.cursor);
  assert.is((await sql(ctx.orm, 'select 1 from ormq_queued')).length, 0);

  const first = await api.post('api/successful/actions/resubmit', { all: true, filter: { group: 'nightly' }, cursor: null });
  assert.is(first.json.done, 500);
  assert.is(first.json.remaining, 550);
  assert.type(first.json.cursor, 'string');
  const second = await api.post('api/successful/actions/resubmit', { all: true, filter: { group: 'nightly' }, cursor: first.json.cursor });
  assert.equal([second.json.done, second.json.remaining], [500, 50]);
  const third = await api.post('api/successful/actions/resubmit', { all: true, filter: { group: 'nightly' }, cursor: second.json.cursor });
  assert.equal(third.json, { done: 50, remaining: 0, cursor: null });
  assert.is((await sql(ctx.orm, 'select 1 from ormq_queued')).length, 1_050);

  // Delete converges: it needs no cursor.
  const del = await api.post('api/successful/actions/delete', { all: true, filter: { group: 'nightly' } });
  assert.equal([del.json.done, del.json.remaining], [500, 550]);
});

Bulk('on a large table the count endpoint and the remaining after a chunk are estimates, marked so; narrow ones stay exact', async (ctx) => {
  const { api } = await ctx.start();
  await insertManyTasks(ctx.orm, 120_000, { success: false, group: 'bulk' });
  await insertManyTasks(ctx.orm, 7, { success: false, group: 'rare' });
  await sql(ctx.orm, 'analyze ormq_task');
  const count = await api.get('api/failed/count');
  assert.is(count.json.estimated, true, count.text);
  assert.ok(Math.abs(count.json.count - 120_007) < 12_000, `estimate ${count.json.count}`);
  assert.equal((await api.get('api/failed/count?group=rare')).json, { count: 7, estimated: false });

  const chunk = await api.post('api/failed/actions/delete', { all: true, filter: { group: 'bulk' } });
  assert.is(chunk.json.done, 500);
  assert.is(chunk.json.estimated, true, chunk.text);
  assert.ok(Math.abs(chunk.json.remaining - 119_500) < 12_000, `remaining ${chunk.json.remaining}`);
  const rare = await api.post('api/failed/actions/delete', { all: true, filter: { group: 'rare' } });
  assert.equal(rare.json, { done: 7, remaining: 0, cursor: null }, 'exact, and no estimated flag');
});

Bulk.run();

// ---------------------------------------------------------------------------------------------
const Resume = fixSuite('admin fixes: resuming a schedule paused long ago');

Resume('resume moves a past next run to the first future slot; a future one stays', async (ctx) => {
  const { api } = await ctx.start();
  const em = ctx.orm.em.fork();
  const weekAgo = new Date(Date.now() - 7 * 86_400_000 + 30_000);
  const later = new Date(Date.now() + 3 * 3_600_000);
  const stale = await schedule(em, { name: 'every-minute', func: 'work', scheduleType: 'I', minutes: 1, nextRun: weekAgo, repeats: 0 });
  const cron = await schedule(em, { name: 'cron', func: 'work', scheduleType: 'C', cron: '15 * * * *', nextRun: weekAgo, repeats: 0 });
  const future = await schedule(em, { name: 'future', func: 'work', scheduleType: 'D', nextRun: later, repeats: 0 });
  const before = Date.now();
  const r = await api.post('api/scheduled/actions/resume', { ids: [stale.id, cron.id, future.id] });
  assert.equal(r.json, { done: 3, remaining: 0 }, r.text);
  const rows = await sql<{ name: string; repeats: number; next_run: string }>(ctx.orm, 'select name, repeats, next_run from ormq_schedule order by id');
  const next = Object.fromEntries(rows.map((row) => [row.name, new Date(row.next_run)]));
  assert.ok(rows.every((row) => row.repeats === -1));
  const minute = next['every-minute']!.getTime();
  assert.ok(minute > before && minute <= Date.now() + 60_000, `every-minute next run ${next['every-minute']!.toISOString()}`);
  assert.is((minute - weekAgo.getTime()) % 60_000, 0, 'still on its one-minute grid');
  assert.ok(next.cron!.getTime() > before && next.cron!.getUTCMinutes() === 15 && next.cron!.getTime() <= before + 3_600_000);
  assert.is(next.future!.getTime(), later.getTime());
  const [log] = await sql<{ summary: string }>(ctx.orm, `select summary from ormq_admin_log where object_id = ?`, [String(stale.id)]);
  assert.match(log!.summary, /next run/);
});

Resume.run();
