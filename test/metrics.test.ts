import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, type ClusterOptions } from '../src/index.js';
import { metricsUpkeep } from '../src/cluster/rollup.js';
import type { Queryable } from '../src/cluster/sql.js';
import { bucketOf, emptyHistogram, HISTOGRAM_BUCKETS, percentile } from '../src/histogram.js';
import type { Server } from 'node:http';
import { queueAdmin } from '../src/index.js';
import { client, close, insertRollup, serve, testClient } from './helpers/admin.js';
import { freshOrm, sql, waitFor } from './helpers/db.js';
import { sleep, startCluster } from './helpers/cluster.js';

type Ctx = { orm: MikroORM; close(): Promise<void> };

function withDb(name: string) {
  const s = suite<Ctx>(name);
  s.before(async (ctx) => {
    Object.assign(ctx, await freshOrm());
  });
  s.after(async (ctx) => ctx.close());
  s.before.each(async ({ orm }) => {
    await sql(orm, 'delete from ormq_task; delete from ormq_queued; delete from ormq_metric');
  });
  return s;
}

interface Totals {
  success: number;
  failure: number;
}

async function totals(orm: MikroORM, func?: string): Promise<Totals> {
  const rows = await sql<{ success: boolean; n: string }>(
    orm,
    `select success, sum(count) as n from ormq_metric ${func ? 'where func = ?' : ''} group by success`,
    func ? [func] : [],
  );
  const t = { success: 0, failure: 0 };
  for (const r of rows) t[r.success ? 'success' : 'failure'] = Number(r.n);
  return t;
}

const savedCount = async (orm: MikroORM, success: boolean) =>
  Number((await sql<{ n: string }>(orm, 'select count(*) as n from ormq_task where success = ?', [success]))[0]!.n);

/** Enqueues `ok` successes and `bad` failures of func `work` in one insert each, as a backlog. */
async function backlog(orm: MikroORM, ok: number, bad: number, options: { save?: boolean } = {}) {
  const em = orm.em.fork();
  await em.transactional(async (tx) => {
    for (let i = 0; i < ok; i++) await enqueue(tx, 'work', [false], { save: options.save });
    for (let i = 0; i < bad; i++) await enqueue(tx, 'work', [true]);
  });
}

const work = {
  work(fail: boolean) {
    if (fail) throw new Error('built to fail');
    return 1;
  },
};

async function drain(orm: MikroORM, options: ClusterOptions, expected: number, clusters = 1) {
  const started = await Promise.all(Array.from({ length: clusters }, () => startCluster(orm, { bulk: 50, ackFailures: true, tasks: work, ...options })));
  try {
    await waitFor(async () => {
      const t = await totals(orm);
      return t.success + t.failure >= expected;
    }, `${expected} counted attempts`, 60_000);
    await waitFor(async () => !(await sql(orm, 'select 1 from ormq_queued limit 1')).length, 'an empty queue');
  } finally {
    await Promise.all(started.map((s) => s.cluster.stop()));
  }
  return started.flatMap((s) => s.logs);
}

const Counts = withDb('metrics: every attempt counts');

Counts('with the default saveLimit (250) the rollups count all 1,500 successes and 100 failures, where ormq_task keeps 250 and 100', async ({ orm }) => {
  await backlog(orm, 1500, 100);
  // Two clusters upsert the same minute rows at once: sorted upserts, so no deadlock and no lost count.
  const logs = await drain(orm, {}, 1600, 2);
  assert.equal(await totals(orm), { success: 1500, failure: 100 });
  assert.is(await savedCount(orm, true), 250);
  assert.is(await savedCount(orm, false), 100);
  assert.equal(logs.filter((l) => l.level === 'error'), []);
});

Counts('with saveLimit -1 nothing is saved, yet every success is counted', async ({ orm }) => {
  await backlog(orm, 120, 7);
  await drain(orm, { saveLimit: -1 }, 127);
  assert.equal(await totals(orm), { success: 120, failure: 7 });
  assert.is(await savedCount(orm, true), 0);
  assert.is(await savedCount(orm, false), 7);
});

Counts('a task enqueued with save: false is counted though its result is not kept', async ({ orm }) => {
  await backlog(orm, 40, 0, { save: false });
  await backlog(orm, 10, 0);
  await drain(orm, { saveLimit: 0 }, 50);
  assert.equal(await totals(orm), { success: 50, failure: 0 });
  assert.is(await savedCount(orm, true), 10);
});

Counts('a retried task counts each attempt: three failures for one task row with attempt_count 3', async ({ orm }) => {
  const id = await enqueue(orm.em.fork(), 'work', [true]);
  const { cluster } = await startCluster(orm, { tasks: work, timeout: 0.1, retry: 0.2, maxAttempts: 3 });
  try {
    await waitFor(async () => !(await sql(orm, 'select 1 from ormq_queued limit 1')).length, 'the package acked after 3 attempts');
  } finally {
    await cluster.stop();
  }
  assert.equal(await totals(orm), { success: 0, failure: 3 });
  const rows = await sql<{ id: string; attempt_count: number }>(orm, 'select id, attempt_count from ormq_task');
  assert.equal(rows.map((r) => [r.id.trim(), r.attempt_count]), [[id, 3]]);
});

Counts('rows are keyed by minute, key and func: another cluster name and another func get rows of their own', async ({ orm }) => {
  const em = orm.em.fork();
  for (let i = 0; i < 3; i++) await enqueue(em, 'work', [false], { cluster: 'east' });
  await enqueue(em, 'other', [], { cluster: 'east' });
  await enqueue(em, 'work', [false], { cluster: 'west' });
  const east = await startCluster(orm, { name: 'east', tasks: { ...work, other: () => 2 } });
  const west = await startCluster(orm, { name: 'west', tasks: work });
  try {
    await waitFor(async () => (await totals(orm)).success === 5, 'five counted successes');
  } finally {
    await Promise.all([east.cluster.stop(), west.cluster.stop()]);
  }
  const rows = await sql<{ key: string; func: string; n: string; span_minutes: number; bucket: Date }>(
    orm,
    'select key, func, sum(count) as n, min(span_minutes) as span_minutes, min(bucket) as bucket from ormq_metric group by key, func order by key, func',
  );
  assert.equal(rows.map((r) => [r.key, r.func, Number(r.n), r.span_minutes]), [['east', 'other', 1, 1], ['east', 'work', 3, 1], ['west', 'work', 1, 1]]);
  assert.is(new Date(rows[0]!.bucket).getUTCSeconds(), 0);
});

Counts('metrics: false records nothing', async ({ orm }) => {
  await backlog(orm, 5, 0);
  const { cluster } = await startCluster(orm, { metrics: false, saveLimit: 0, tasks: work });
  try {
    await waitFor(async () => (await savedCount(orm, true)) === 5, 'five saved successes');
  } finally {
    await cluster.stop();
  }
  assert.equal(await totals(orm), { success: 0, failure: 0 });
});

const Percentiles = withDb('metrics: histograms and percentiles');

/** Exact nearest-rank percentile. */
const exact = (sorted: number[], q: number) => sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;

Percentiles('a percentile read from a histogram is within one bucket of the exact value, from 0.05 ms to days', () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const spread of [1, 10, 1_000, 1e6, 1e9]) {
    const values = Array.from({ length: 2_000 }, () => 0.05 + random() ** 3 * spread);
    const hist = emptyHistogram();
    for (const v of values) hist[bucketOf(v)]!++;
    const sorted = [...values].sort((a, b) => a - b);
    const max = sorted[sorted.length - 1]!;
    for (const q of [0.01, 0.5, 0.9, 0.95, 0.99, 1]) {
      const estimate = percentile(hist, q, max)!;
      const truth = exact(sorted, q);
      assert.ok(Math.abs(bucketOf(estimate) - bucketOf(truth)) <= 1, `p${q * 100} of spread ${spread}: ${estimate} vs ${truth}`);
    }
  }
  assert.is(percentile(emptyHistogram(), 0.5, 0), null);
  assert.is(bucketOf(0), 0);
  assert.is(bucketOf(1e15), HISTOGRAM_BUCKETS - 1);
});

Percentiles('runtime and wait percentiles from the stored rollup match the saved tasks within one bucket', async ({ orm }) => {
  const em = orm.em.fork();
  const delays = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89];
  await em.transactional(async (tx) => {
    for (let i = 0; i < 66; i++) await enqueue(tx, 'nap', [delays[i % delays.length]]);
  });
  const { cluster } = await startCluster(orm, { saveLimit: 0, workers: 8, tasks: { nap: (ms: number) => sleep(ms) } });
  try {
    await waitFor(async () => (await savedCount(orm, true)) === 66, 'all naps saved');
  } finally {
    await cluster.stop();
  }
  const tasks = await sql<{ runtime: number; wait: number }>(
    orm,
    `select extract(epoch from stopped - started) * 1000 as runtime, extract(epoch from started - enqueued) * 1000 as wait from ormq_task`,
  );
  const [m] = await sql<{ runtime_hist: number[]; wait_hist: number[]; runtime_max: number; wait_max: number; runtime_sum: number; n: string }>(
    orm,
    `select sum(count) as n, max(runtime_max) as runtime_max, max(wait_max) as wait_max, sum(runtime_sum) as runtime_sum,
            (select array_agg(s order by i) from (select i, sum(x)::int as s from ormq_metric, unnest(runtime_hist) with ordinality u(x, i) group by i) h) as runtime_hist,
            (select array_agg(s order by i) from (select i, sum(x)::int as s from ormq_metric, unnest(wait_hist) with ordinality u(x, i) group by i) h) as wait_hist
       from ormq_metric`,
  );
  assert.is(Number(m!.n), 66);
  for (const field of ['runtime', 'wait'] as const) {
    const sorted = tasks.map((t) => Number(t[field])).sort((a, b) => a - b);
    const hist = m![`${field}_hist`];
    const max = Number(m![`${field}_max`]);
    assert.ok(Math.abs(max - sorted[sorted.length - 1]!) < 0.01, `${field} max ${max} vs ${sorted[sorted.length - 1]}`);
    for (const q of [0.5, 0.95, 0.99]) {
      const estimate = percentile(hist, q, max)!;
      const truth = exact(sorted, q);
      assert.ok(Math.abs(bucketOf(estimate) - bucketOf(truth)) <= 1, `${field} p${q * 100}: ${estimate} vs ${truth}`);
    }
  }
  const runtimeSum = tasks.reduce((s, t) => s + Number(t.runtime), 0);
  assert.ok(Math.abs(Number(m!.runtime_sum) - runtimeSum) < 0.1, `runtime sum ${m!.runtime_sum} vs ${runtimeSum}`);
});

const Upkeep = withDb('metrics: folding and retention');

const pool = async (orm: MikroORM) => (await orm.em.getConnection().getNativeClient()) as unknown as Queryable;

/** A minute row `minutesAgo` before now, with `n` attempts of runtime `ms` each. */
async function minuteRow(orm: MikroORM, at: string, n: number, ms: number, func = 'work', span = 1) {
  const hist = emptyHistogram();
  hist[bucketOf(ms)] = n;
  await sql(
    orm,
    `insert into ormq_metric (bucket, span_minutes, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist)
     values (?::timestamptz, ?, 'default', ?, true, ?, ?, ?, ?, ?, ?::int[], ?::int[])`,
    [at, span, func, n, n * ms, ms, n * 2, 2, `{${hist.join(',')}}`, `{${hist.join(',')}}`],
  );
}

const hoursAgo = (h: number, minute = 0) => {
  const t = new Date(Date.now() - h * 3_600_000);
  t.setUTCMinutes(minute, 0, 0);
  return t.toISOString();
};

Upkeep('minute rows older than 48 hours fold into one hour row with the same totals; younger ones stay', async ({ orm }) => {
  for (let m = 0; m < 60; m += 5) await minuteRow(orm, hoursAgo(50, m), 2, m < 30 ? 3 : 300);
  await minuteRow(orm, hoursAgo(50, 0), 1, 1, 'other');
  await minuteRow(orm, hoursAgo(47, 10), 4, 3);
  const result = await metricsUpkeep(await pool(orm), 90);
  assert.is(result.folded, 13);
  const rows = await sql<{ bucket: Date; span_minutes: number; func: string; count: string; runtime_sum: number; runtime_max: number; runtime_hist: number[] }>(
    orm,
    'select * from ormq_metric order by bucket, func',
  );
  assert.is(rows.length, 3);
  const [other, hour, young] = rows as [typeof rows[0], typeof rows[0], typeof rows[0]];
  assert.equal([hour.func, hour.span_minutes, Number(hour.count), hour.runtime_sum, hour.runtime_max], ['work', 60, 24, 6 * 2 * 3 + 6 * 2 * 300, 300]);
  assert.is(new Date(hour.bucket).toISOString(), hoursAgo(50, 0));
  assert.is(hour.runtime_hist[bucketOf(3)], 12);
  assert.is(hour.runtime_hist[bucketOf(300)], 12);
  assert.is(hour.runtime_hist.length, HISTOGRAM_BUCKETS);
  assert.equal([other.func, other.span_minutes, Number(other.count)], ['other', 60, 1]);
  assert.equal([young.span_minutes, Number(young.count)], [1, 4]);
  // a second pass finds nothing left to fold
  assert.is((await metricsUpkeep(await pool(orm), 90)).folded, 0);
});

Upkeep('folding is bounded per pass and adds into an hour row already there; concurrent passes lose nothing', async ({ orm }) => {
  await minuteRow(orm, hoursAgo(60, 0), 5, 10, 'work', 60);
  for (let m = 0; m < 60; m++) await minuteRow(orm, hoursAgo(60, m), 1, 10);
  const p = await pool(orm);
  assert.is((await metricsUpkeep(p, 90, 10)).folded, 10);
  const passes = await Promise.all([metricsUpkeep(p, 90, 20), metricsUpkeep(p, 90, 20), metricsUpkeep(p, 90, 20)]);
  assert.is(passes.reduce((s, r) => s + r.folded, 0), 50);
  const rows = await sql<{ span_minutes: number; count: string; runtime_hist: number[] }>(orm, 'select * from ormq_metric');
  assert.is(rows.length, 1);
  assert.equal([rows[0]!.span_minutes, Number(rows[0]!.count), rows[0]!.runtime_hist[bucketOf(10)]], [60, 65, 65]);
});

Upkeep('rows older than the retention are dropped: 90 days by default, or the days given', async ({ orm }) => {
  await minuteRow(orm, hoursAgo(24 * 91), 1, 1, 'work', 60);
  await minuteRow(orm, hoursAgo(24 * 40), 1, 1, 'work', 60);
  await minuteRow(orm, hoursAgo(24 * 10), 1, 1, 'work', 60);
  const p = await pool(orm);
  assert.is((await metricsUpkeep(p, 90)).dropped, 1);
  assert.is((await metricsUpkeep(p, 30)).dropped, 1);
  const left = await sql<{ bucket: Date }>(orm, 'select bucket from ormq_metric');
  assert.equal(left.map((r) => new Date(r.bucket).toISOString()), [hoursAgo(24 * 10)]);
});

Upkeep('the retention option is checked when the cluster is made', async ({ orm }) => {
  for (const bad of [0, -1, Number.NaN]) {
    await startCluster(orm, { metricsRetention: bad }).then(
      () => assert.unreachable('accepted'),
      (e: Error) => assert.match(e.message, /metricsRetention/),
    );
  }
});

type ApiCtx = Ctx & { api: ReturnType<typeof client>; server: Server; dir: ReturnType<typeof testClient> };
const Api = suite<ApiCtx>('metrics: the admin API');
Api.before(async (ctx) => {
  Object.assign(ctx, await freshOrm());
  ctx.dir = testClient();
  const { url, server } = await serve(
    queueAdmin(ctx.orm, {
      clientDir: ctx.dir.dir,
      authorize: (req, { page }) => req.headers['x-user'] !== 'no-metrics' || page !== 'metrics',
    }) as never,
  );
  ctx.server = server;
  ctx.api = client(`${url}/`);
});
Api.after(async (ctx) => {
  await close(ctx.server);
  ctx.dir.cleanup();
  await ctx.close();
});
Api.before.each(async ({ orm }) => void (await sql(orm, 'delete from ormq_metric')));

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

Api('per func: runs, failures and rate, throughput, runtime p50/p95/max and wait p95, most runs first; the series sums to the runs', async ({ orm, api }) => {
  await insertRollup(orm, { at: minutesAgo(1), func: 'email', count: 90, runtime: 20, wait: 5 });
  await insertRollup(orm, { at: minutesAgo(2), func: 'email', count: 10, runtime: 900, wait: 400 });
  await insertRollup(orm, { at: minutesAgo(3), func: 'email', count: 20, success: false, runtime: 30, wait: 5 });
  await insertRollup(orm, { at: minutesAgo(10), func: 'report', count: 3, runtime: 5000, key: 'east' });
  await insertRollup(orm, { at: minutesAgo(90), func: 'email', count: 1000 }); // outside 1h
  const r = await api.get('api/metrics?range=1h');
  assert.is(r.status, 200, r.text);
  assert.is(r.json.range, '1h');
  assert.is(r.json.series.length, 60);
  assert.is(r.json.step, 60_000);
  assert.equal(r.json.keys, ['default', 'east']);
  const [email, report] = r.json.funcs;
  assert.equal([email.func, email.runs, email.failures], ['email', 120, 20]);
  assert.ok(Math.abs(email.failureRate - 20 / 120) < 1e-9);
  assert.ok(Math.abs(email.perMinute - 2) < 1e-9);
  assert.is(email.runtime.max, 900);
  assert.ok(Math.abs(bucketOf(email.runtime.p50) - bucketOf(20)) <= 1, `p50 ${email.runtime.p50}`);
  assert.ok(Math.abs(bucketOf(email.runtime.p95) - bucketOf(900)) <= 1, `p95 ${email.runtime.p95}`);
  assert.ok(Math.abs(bucketOf(email.wait.p95) - bucketOf(400)) <= 1, `wait p95 ${email.wait.p95}`);
  assert.ok(Math.abs(email.runtime.mean - (90 * 20 + 10 * 900 + 20 * 30) / 120) < 1e-9);
  assert.equal([report.func, report.runs, report.failures, report.runtime.max], ['report', 3, 0, 5000]);
  const sum = r.json.series.reduce((t: number[], b: any) => [t[0]! + b.success, t[1]! + b.failure], [0, 0]);
  assert.equal(sum, [103, 20]);

  const day = (await api.get('api/metrics?range=24h')).json;
  assert.is(day.series.length, 96);
  assert.is(day.funcs[0].runs, 1120);
  const onlyReport = (await api.get('api/metrics?range=1h&func=report')).json;
  assert.equal(onlyReport.funcs.map((f: any) => f.func), ['report']);
  assert.is(onlyReport.series.reduce((n: number, b: any) => n + b.success, 0), 3);
  const east = (await api.get('api/metrics?range=1h&key=east')).json;
  assert.equal(east.funcs.map((f: any) => [f.func, f.runs]), [['report', 3]]);
  assert.equal(east.keys, ['default', 'east'], 'the key choices stay whole under a key filter');
});

Api('7d and 30d read hour rows and minute rows alike; bars start on UTC multiples of the step', async ({ orm, api }) => {
  await insertRollup(orm, { at: minutesAgo(5), count: 2 });
  await insertRollup(orm, { at: minutesAgo(60 * 24 * 5), count: 7 });
  await sql(orm, `update ormq_metric set span_minutes = 60, bucket = date_trunc('hour', bucket, 'UTC') where bucket < now() - interval '2 days'`);
  await insertRollup(orm, { at: minutesAgo(60 * 24 * 20), count: 11, success: false });
  const week = (await api.get('api/metrics?range=7d')).json;
  assert.equal([week.series.length, week.step, week.funcs[0].runs], [84, 7_200_000, 9]);
  assert.is(Date.parse(week.from) % 7_200_000, 0);
  const month = (await api.get('api/metrics?range=30d')).json;
  assert.equal([month.series.length, month.funcs[0].runs, month.funcs[0].failures], [120, 20, 11]);
  assert.is((await api.get('api/metrics')).json.range, '24h', 'range defaults to 24h');
});

Api('bad parameters are a 400 naming the field; view on metrics is authorized', async ({ api }) => {
  const cases: [string, string][] = [
    ['range=2h', 'range'],
    ['range=', 'range'],
    ['range=1h&range=24h', 'range'],
    [`func=${'x'.repeat(257)}`, 'func'],
    ['func=', 'func'],
    [`key=${'k'.repeat(101)}`, 'key'],
    ['range=1h&limit=5', 'limit'],
    ['func=%00', 'func'],
  ];
  for (const [query, field] of cases) {
    const r = await api.get(`api/metrics?${query}`);
    assert.is(r.status, 400, query);
    assert.ok(r.json.error.fields[field], `${query}: ${r.text}`);
  }
  assert.is((await api.get('api/metrics', { 'x-user': 'no-metrics' })).status, 403);
  const meta = await api.get('api/meta', { 'x-user': 'no-metrics' });
  assert.equal(meta.json.pages.metrics, { can: { view: false } });
  assert.equal((await api.get('api/meta')).json.pages.metrics, { can: { view: true } });
  assert.is((await api.call('POST', 'api/metrics', {})).status, 405);
});

Counts.run();
Percentiles.run();
Upkeep.run();
Api.run();
