import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { schedule } from '../src/index.js';
import { nextDue, runDueSchedules } from '../src/cluster/scheduler.js';
import { initOrm, sql, waitFor } from './helpers/db.js';
import { startCluster } from './helpers/cluster.js';
import { dbSuite } from './helpers/suites.js';

type SRow = { id: number; repeats: number; next_run: string; task: string | null; version: number };
type QRow = {
  key: string;
  payload: { id: string; func: string; group: string; args: unknown; kwargs: Record<string, unknown>; schedule: number };
};

const S = dbSuite('scheduler', { clear: 'delete from ormq_schedule; delete from ormq_queued; delete from ormq_task' });

const broken: string[] = [];
const options = {
  cluster: 'default',
  isDefault: true,
  timeZone: 'UTC',
  catchUp: true,
  onBroken: (_: unknown, e: Error) => void broken.push(e.message),
};
const ago = (ms: number) => new Date(Date.now() - ms);
const em = (orm: MikroORM) => orm.em.fork();
const row = async (orm: MikroORM, id: number) => (await sql<SRow>(orm, 'select * from ormq_schedule where id = ?', [id]))[0];
const packages = (orm: MikroORM) => sql<QRow>(orm, 'select key, payload from ormq_queued order by id');

S('a due schedule enqueues its task, counts repeats down and moves next run on', async ({ orm }) => {
  const due = ago(1000);
  const s = await schedule(em(orm), {
    name: 'report',
    func: 'report',
    args: [1],
    kwargs: { x: 1 },
    scheduleType: 'H',
    repeats: 24,
    nextRun: due,
  });
  assert.is(await runDueSchedules(orm, options), 1);
  const [p] = await packages(orm);
  assert.is(p!.key, 'default');
  assert.is(p!.payload.func, 'report');
  assert.is(p!.payload.group, 'report');
  assert.equal(p!.payload.args, [1]);
  assert.is(p!.payload.schedule, s.id);
  const after = await row(orm, s.id);
  assert.is(after!.repeats, 23);
  assert.is(new Date(after!.next_run).getTime(), due.getTime() + 3_600_000);
  assert.is(after!.task?.trim(), p!.payload.id);
  assert.is(after!.version, s.version + 1);
  assert.is(await runDueSchedules(orm, options), 0);
});

S('an unnamed schedule groups its tasks under its id', async ({ orm }) => {
  const s = await schedule(em(orm), { func: 'f', scheduleType: 'D', nextRun: ago(10) });
  await runDueSchedules(orm, options);
  assert.is((await packages(orm))[0]!.payload.group, String(s.id));
});

S('negative repeats run indefinitely and still count down', async ({ orm }) => {
  const s = await schedule(em(orm), { func: 'f', scheduleType: 'I', minutes: 1, repeats: -1, nextRun: ago(10) });
  await runDueSchedules(orm, options);
  assert.is((await row(orm, s.id))!.repeats, -2);
});

S('a positive count stops at 0', async ({ orm }) => {
  const s = await schedule(em(orm), { func: 'f', scheduleType: 'I', minutes: 1, repeats: 2, nextRun: ago(150_000) });
  await runDueSchedules(orm, options); // two slots are due: both run, then it stops
  assert.is((await row(orm, s.id))!.repeats, 0);
  assert.is((await packages(orm)).length, 2);
  await sql(orm, 'update ormq_schedule set next_run = ? where id = ?', [ago(10).toISOString(), s.id]);
  assert.is(await runDueSchedules(orm, options), 0);
});

S('repeats 0 is paused; any other value resumes it', async ({ orm }) => {
  const s = await schedule(em(orm), { func: 'f', scheduleType: 'D', repeats: 0, nextRun: ago(10) });
  assert.is(await runDueSchedules(orm, options), 0);
  await sql(orm, 'update ormq_schedule set repeats = -1 where id = ?', [s.id]);
  assert.is(await runDueSchedules(orm, options), 1);
});

S('Once with negative repeats is deleted after it runs', async ({ orm }) => {
  const s = await schedule(em(orm), { func: 'f', scheduleType: 'O', repeats: -1, nextRun: ago(10) });
  assert.is(await runDueSchedules(orm, options), 1);
  assert.is(await row(orm, s.id), undefined);
  assert.is((await packages(orm)).length, 1);
});

S('Once with positive repeats is kept with repeats 0 and runs again only when resumed', async ({ orm }) => {
  const s = await schedule(em(orm), { func: 'f', scheduleType: 'O', repeats: 1, nextRun: ago(10) });
  assert.is(await runDueSchedules(orm, options), 1);
  const kept = await row(orm, s.id);
  assert.is(kept!.repeats, 0);
  assert.ok(kept!.task);
  assert.is(await runDueSchedules(orm, options), 0);
  await sql(orm, 'update ormq_schedule set repeats = 1 where id = ?', [s.id]);
  assert.is(await runDueSchedules(orm, options), 1);
});

S('catchUp true runs once per missed slot; false runs once and moves to the next future slot', async ({ orm }) => {
  const base = Date.now() - 210_000; // 3.5 minutes ago
  const a = await schedule(em(orm), { name: 'a', func: 'f', scheduleType: 'I', minutes: 1, nextRun: new Date(base) });
  assert.is(await runDueSchedules(orm, options), 4);
  assert.is(new Date((await row(orm, a.id))!.next_run).getTime(), base + 240_000);
  await sql(orm, 'delete from ormq_queued');
  const b = await schedule(em(orm), { name: 'b', func: 'f', scheduleType: 'I', minutes: 1, nextRun: new Date(base) });
  assert.is(await runDueSchedules(orm, { ...options, catchUp: false }), 1);
  assert.is(new Date((await row(orm, b.id))!.next_run).getTime(), base + 240_000);
});

S('intendedDateKwarg passes the scheduled time, not the time it ran', async ({ orm }) => {
  const due = ago(90_000);
  await schedule(em(orm), { func: 'f', scheduleType: 'H', nextRun: due, intendedDateKwarg: 'forDate', kwargs: { a: 1 } });
  await runDueSchedules(orm, options);
  assert.equal((await packages(orm))[0]!.payload.kwargs, { a: 1, forDate: due.toISOString() });
});

S('a broken schedule is reported and skipped; the others run', async ({ orm }) => {
  broken.length = 0;
  await sql(
    orm,
    `insert into ormq_schedule (func, args, kwargs, schedule_type, next_run) values ('f', '{"not": "an array"}', '{}', 'H', now() - interval '1 minute')`,
  );
  await sql(
    orm,
    `insert into ormq_schedule (func, args, kwargs, schedule_type, cron, next_run) values ('f', '[]', '{}', 'C', 'not a cron', now() - interval '1 minute')`,
  );
  const good = await schedule(em(orm), { name: 'good', func: 'f', scheduleType: 'D', nextRun: ago(10) });
  assert.is(await runDueSchedules(orm, options), 1);
  assert.is(broken.length, 2);
  const ps = await packages(orm);
  assert.equal(
    ps.map((p) => p.payload.schedule),
    [good.id],
  );
});

S('schedules of another cluster are left to it; null cluster belongs to the default one', async ({ orm }) => {
  await schedule(em(orm), { func: 'f', scheduleType: 'D', nextRun: ago(10), key: 'east' });
  await schedule(em(orm), { func: 'g', scheduleType: 'D', nextRun: ago(10) });
  assert.is(await runDueSchedules(orm, { ...options, cluster: 'west', isDefault: false }), 0);
  assert.is(await runDueSchedules(orm, { ...options, cluster: 'east', isDefault: false }), 1);
  assert.is(await runDueSchedules(orm, options), 1);
  assert.equal(
    (await packages(orm)).map((p) => [p.key, p.payload.func]),
    [
      ['east', 'f'],
      ['default', 'g'],
    ],
  );
});

S('three schedulers on one database run each due slot exactly once', async ({ orm, db }) => {
  for (let i = 0; i < 40; i++) await schedule(em(orm), { func: 'f', scheduleType: 'I', minutes: 1, nextRun: ago(150_000) });
  const orms = await Promise.all([initOrm(db.url), initOrm(db.url), initOrm(db.url)]);
  try {
    const runs = await Promise.all(orms.map((o) => runDueSchedules(o, options)));
    assert.is(
      runs.reduce((a, b) => a + b, 0),
      120,
    ); // 40 schedules × 3 missed slots
    const ps = await packages(orm);
    assert.is(ps.length, 120);
    assert.is(new Set(ps.map((p) => p.payload.id)).size, 120);
  } finally {
    await Promise.all(orms.map((o) => o.close(true)));
  }
});

S('a running cluster picks up a schedule created while it sleeps and saves the task in its group', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { tasks: { ping: () => 'pong' } });
  try {
    await schedule(em(orm), { name: 'pinger', func: 'ping', scheduleType: 'D', nextRun: new Date(Date.now() + 300) });
    const [t] = await waitFor(
      () => sql<{ group: string; result: string }>(orm, 'select "group", result from ormq_task').then((r) => (r.length ? r : null)),
      'the scheduled task',
    );
    assert.is(t!.group, 'pinger');
    assert.is(t!.result, 'pong');
  } finally {
    await cluster.stop();
  }
});

S('a broken schedule is held back after it fails, not retried on every pass', async ({ orm }) => {
  await sql(
    orm,
    `insert into ormq_schedule (func, args, kwargs, schedule_type, cron, next_run) values ('f', '[]', '{}', 'C', 'not a cron', now() - interval '1 minute')`,
  );
  const good = await schedule(em(orm), { func: 'f', scheduleType: 'D', nextRun: new Date(Date.now() + 3_600_000) });
  const reports: string[] = [];
  const held = new Map<number, number>();
  const opts = { ...options, held, onBroken: (_: unknown, e: Error) => void reports.push(e.message) };
  await runDueSchedules(orm, opts);
  await runDueSchedules(orm, opts);
  assert.is(reports.length, 1);
  // With the broken one held back, the next due time is the good schedule's, not the past one.
  const due = await nextDue(orm, opts);
  assert.is(due!.getTime(), good.nextRun.getTime());
});

S('a Minutes schedule years behind runs only its most recent maxCatchUp slots, then is back on time', async ({ orm }) => {
  const s = await schedule(em(orm), {
    func: 'f',
    scheduleType: 'I',
    minutes: 1,
    nextRun: new Date('1970-01-01T00:00:00Z'),
    intendedDateKwarg: 'at',
  });
  const before = Date.now();
  assert.is(await runDueSchedules(orm, { ...options, maxCatchUp: 120 }), 120);
  const ps = await packages(orm);
  assert.is(ps.length, 120);
  const times = ps.map((p) => new Date(p.payload.kwargs.at as string).getTime());
  assert.ok(
    times.every((t, i) => i === 0 || t - times[i - 1]! === 60_000),
    'consecutive minutes, each once',
  );
  assert.ok(times[0]! > before - 121 * 60_000 && times.at(-1)! <= Date.now(), 'the most recent slots');
  const after = await row(orm, s.id);
  assert.ok(new Date(after!.next_run).getTime() > Date.now() - 1000, 'next run is the first future slot');
  assert.is(after!.repeats, -121);
  assert.is(await runDueSchedules(orm, { ...options, maxCatchUp: 120 }), 0);
});

S('a Monthly schedule from 31 January catches up on month ends, not on the 28th', async ({ orm }) => {
  await schedule(em(orm), { func: 'f', scheduleType: 'Monthly', nextRun: new Date('2024-01-31T09:00:00Z'), intendedDateKwarg: 'at' });
  assert.is(await runDueSchedules(orm, { ...options, maxCatchUp: 14 }), 14);
  const days = (await packages(orm)).map((p) => new Date(p.payload.kwargs.at as string));
  for (const day of days) {
    const monthEnd = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + 1, 0)).getUTCDate();
    assert.is(day.getUTCDate(), monthEnd, day.toISOString());
    assert.is(day.getUTCHours(), 9);
  }
});

S('a cron schedule after a two-day outage runs once and moves to the next match after now', async ({ orm }) => {
  const s = await schedule(em(orm), { func: 'f', scheduleType: 'C', cron: '*/15 * * * *', nextRun: ago(2 * 86_400_000) });
  assert.is(await runDueSchedules(orm, options), 1);
  const next = new Date((await row(orm, s.id))!.next_run);
  assert.ok(next.getTime() > Date.now() - 1000 && next.getTime() <= Date.now() + 15 * 60_000, next.toISOString());
  assert.is(next.getUTCMinutes() % 15, 0);
});

S('a row written without an anchor counts from its next run and gets the anchor stored', async ({ orm }) => {
  await sql(orm, `insert into ormq_schedule (func, schedule_type, next_run) values ('f', 'M', '2024-01-31T09:00:00Z')`);
  assert.is(await runDueSchedules(orm, { ...options, maxCatchUp: 3 }), 3);
  const [r] = await sql<{ anchor: Date; next_run: Date }>(orm, 'select anchor, next_run from ormq_schedule');
  assert.is(new Date(r!.anchor).toISOString(), '2024-01-31T09:00:00.000Z');
  assert.is(new Date(r!.next_run).getUTCHours(), 9);
});

S('a cluster stops within its stopTimeout while schedules are catching up', async ({ orm }) => {
  const maxCatchUp = 1000;
  for (let i = 0; i < 20; i++)
    await schedule(em(orm), { func: 'noop', scheduleType: 'I', minutes: 1, nextRun: new Date('1970-01-01T00:00:00Z') });
  const stopTimeout = 3000;
  const { cluster } = await startCluster(orm, { tasks: { noop: () => null }, maxCatchUp, stopTimeout, saveLimit: -1 });
  let stopped = false;
  try {
    await waitFor(() => sql(orm, 'select 1 from ormq_queued limit 1').then((r) => (r.length ? r : null)), 'the first catch-up run');
    const t = Date.now();
    await cluster.stop();
    stopped = true;
    const elapsed = Date.now() - t;
    assert.ok(elapsed < stopTimeout, `stop took ${elapsed} ms`);
  } finally {
    if (!stopped) await cluster.stop();
  }
  // Whatever was done before the stop, no schedule ran more than maxCatchUp slots.
  const perSchedule = await sql<{ runs: number }>(orm, 'select -repeats - 1 as runs from ormq_schedule');
  assert.ok(
    perSchedule.every((r) => r.runs <= maxCatchUp),
    JSON.stringify(perSchedule),
  );
  assert.ok(
    perSchedule.some((r) => r.runs < maxCatchUp),
    'the stop came while catching up',
  );
});

S.run();
