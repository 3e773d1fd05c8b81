import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, type ClusterOptions } from '../src/index.js';
import { MetricsUpkeep, metricsUpkeep } from '../src/cluster/rollup.js';
import { laneShard, shardOf } from '../src/metric-rows.js';
import { poolDb, type Queryable } from '../src/db/run.js';
import { addStored, bucketOf, emptyHistogram, HISTOGRAM_BUCKETS, percentile } from '../src/histogram.js';
import { insertRollup } from './helpers/admin.js';
import pg from 'pg';
import { serverUrl, sql, waitFor } from './helpers/db.js';
import { sleep, startCluster, waitForDrained } from './helpers/cluster.js';
import { adminSuite, dbSuite } from './helpers/suites.js';

const withDb = (name: string) => dbSuite(name, { clear: 'delete from ormq_task; delete from ormq_queued; delete from ormq_metric' });

interface Totals {
  success: number;
  failure: number;
}

/** Attempts counted in the rows of one span: the hour rows unless told. */
async function totals(orm: MikroORM, span = 60): Promise<Totals> {
  const rows = await sql<{ success: boolean; n: string }>(
    orm,
    `select success, sum(count) as n from ormq_metric where span_minutes = ? group by success`,
    [span],
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
  const started = await Promise.all(
    Array.from({ length: clusters }, () => startCluster(orm, { bulk: 50, ackFailures: true, tasks: work, ...options })),
  );
  try {
    await waitFor(
      async () => {
        const t = await totals(orm);
        return t.success + t.failure >= expected;
      },
      `${expected} counted attempts`,
      60_000,
    );
    await waitForDrained(orm, 'an empty queue');
  } finally {
    await Promise.all(started.map((s) => s.cluster.stop()));
  }
  return started.flatMap((s) => s.logs);
}

const Counts = withDb('metrics: every attempt counts');

Counts(
  'with the default saveLimit (250) the rollups count all 1,500 successes and 100 failures, where ormq_task keeps 250 and 100',
  async ({ orm }) => {
    await backlog(orm, 1500, 100);
    // Two clusters upsert the same minute rows at once: sorted upserts, so no deadlock and no lost count.
    const logs = await drain(orm, {}, 1600, 2);
    assert.equal(await totals(orm), { success: 1500, failure: 100 });
    assert.equal(await totals(orm, 1), { success: 1500, failure: 100 }, 'the minute rows count the same attempts');
    assert.is(await savedCount(orm, true), 250);
    assert.is(await savedCount(orm, false), 100);
    assert.equal(
      logs.filter((l) => l.level === 'error'),
      [],
    );
  },
);

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
    await waitForDrained(orm, 'the package acked after 3 attempts');
  } finally {
    await cluster.stop();
  }
  assert.equal(await totals(orm), { success: 0, failure: 3 });
  const rows = await sql<{ id: string; attempt_count: number }>(orm, 'select id, attempt_count from ormq_task');
  assert.equal(
    rows.map((r) => [r.id.trim(), r.attempt_count]),
    [[id, 3]],
  );
});

Counts(
  'rows are keyed by minute (and hour), key and func: another cluster name and another func get rows of their own',
  async ({ orm }) => {
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
      'select key, func, sum(count) as n, span_minutes, min(bucket) as bucket from ormq_metric group by key, func, span_minutes order by span_minutes, key, func',
    );
    assert.equal(
      rows.map((r) => [r.span_minutes, r.key, r.func, Number(r.n)]),
      [
        [1, 'east', 'other', 1],
        [1, 'east', 'work', 3],
        [1, 'west', 'work', 1],
        [60, 'east', 'other', 1],
        [60, 'east', 'work', 3],
        [60, 'west', 'work', 1],
      ],
    );
    assert.is(new Date(rows[0]!.bucket).getUTCSeconds(), 0);
    assert.is(new Date(rows[5]!.bucket).getUTCMinutes(), 0);
  },
);

Counts(
  "one process's acks never wait for another's uncommitted rollup rows of the same minutes: each writes its own shard",
  async ({ orm, db }) => {
    const { cluster } = await startCluster(orm, { tasks: work, saveLimit: 0 });
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      const mine = shardOf(cluster.processId);
      // Another process in the middle of its completion: its rows of this minute, the next two and
      // their hours, for the same key, func and outcome, locked until it commits.
      await other.query('begin');
      await other.query(
        `insert into ormq_metric (span_minutes, bucket, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist, shard)
      select distinct s, date_bin(make_interval(mins => s), clock_timestamp() + make_interval(mins => m), 'epoch'::timestamptz), 'default', 'work', true, 1, 0, 0, 0, 0, '{}'::jsonb, '{}'::jsonb, $1::smallint
        from unnest(array[1, 60]) s, generate_series(-1, 2) m`,
        [(mine % 32767) + 1],
      );
      await backlog(orm, 30, 0);
      await waitForDrained(orm, 'the tasks acked while the other transaction is open', 5_000);
      assert.equal(
        // its own shards: one per completion lane
        await sql(orm, 'select span_minutes, sum(count)::int as n from ormq_metric where shard in (?, ?) group by 1 order by 1', [
          mine,
          laneShard(cluster.processId, 1),
        ]),
        [
          { span_minutes: 1, n: 30 },
          { span_minutes: 60, n: 30 },
        ],
      );
    } finally {
      await other.query('rollback').catch(() => {});
      await other.end();
      await cluster.stop();
    }
  },
);

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
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
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
  const stored = await sql<{
    runtime_hist: object;
    wait_hist: object;
    runtime_max: number;
    wait_max: number;
    runtime_sum: number;
    count: string;
  }>(orm, 'select * from ormq_metric where span_minutes = 60');
  const m = {
    n: stored.reduce((s, r) => s + Number(r.count), 0),
    runtime_max: Math.max(...stored.map((r) => r.runtime_max)),
    wait_max: Math.max(...stored.map((r) => r.wait_max)),
    runtime_sum: stored.reduce((s, r) => s + r.runtime_sum, 0),
    runtime_hist: stored.reduce((h, r) => addStored(h, r.runtime_hist), emptyHistogram()),
    wait_hist: stored.reduce((h, r) => addStored(h, r.wait_hist), emptyHistogram()),
  };
  assert.is(m.n, 66);
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

const Upkeep = withDb('metrics: minute rows after 48 hours, and retention');

const pool = async (orm: MikroORM) => poolDb((await orm.em.getConnection().getNativeClient()) as unknown as Queryable, null);

const ago = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString();
const spanCounts = (orm: MikroORM) =>
  sql<{ span_minutes: number; rows: string; n: string }>(
    orm,
    'select span_minutes, count(*) as rows, sum(count) as n from ormq_metric group by 1 order by 1',
  );

/** Rows and attempts of the minute and hour spans, whatever their shards. */
const written = async (orm: MikroORM) =>
  (await spanCounts(orm)).filter((r) => r.span_minutes <= 60).map((r) => [r.span_minutes, Number(r.rows), Number(r.n)]);
/** Attempts of each span, whatever their shards. */
const attempts = async (orm: MikroORM) => (await spanCounts(orm)).map((r) => [r.span_minutes, Number(r.n)]);

Upkeep('minute rows older than 48 hours are dropped; the hour rows keep every attempt they counted', async ({ orm }) => {
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 50 * 3_600_000;
  for (let m = 0; m < 60; m += 5)
    await insertRollup(orm, { at: new Date(hour + m * 60_000).toISOString(), count: 2, runtime: m < 30 ? 3 : 300 });
  await insertRollup(orm, { at: ago(47), count: 4 });
  assert.equal(await written(orm), [
    [1, 13, 28],
    [60, 2, 28],
  ]);
  const result = await metricsUpkeep(await pool(orm), 90);
  assert.equal(result, { folded: 15, minutes: 12, retained: 0 });
  assert.equal(await written(orm), [
    [1, 1, 4],
    [60, 2, 28],
  ]);
  assert.equal(
    await attempts(orm),
    [
      [1, 4],
      [60, 28],
      [360, 28],
      [1440, 28],
    ],
    'the folded hours are in their 6-hour and day rows too',
  );
  const hours = await sql<{ count: string; runtime_hist: Record<string, number> }>(
    orm,
    'select count, runtime_hist from ormq_metric where span_minutes = 60 order by bucket',
  );
  assert.is(Number(hours[0]!.count), 24);
  assert.equal(hours[0]!.runtime_hist, { [bucketOf(3)]: 12, [bucketOf(300)]: 12 });
  assert.equal(await metricsUpkeep(await pool(orm), 90), { folded: 0, minutes: 0, retained: 0 });
});

Upkeep('each pass is bounded, and concurrent passes fold and drop each row once', async ({ orm }) => {
  // One clock reading for all 60: a minute boundary passed between two readings would put two rows in one bucket.
  const start = Date.now() - 60 * 3_600_000;
  for (let m = 0; m < 60; m++) await insertRollup(orm, { at: new Date(start - m * 60_000).toISOString(), shard: 1 + (m % 3) });
  const p = await pool(orm);
  const first = await metricsUpkeep(p, 90, 10);
  assert.equal([first.folded, first.minutes], [10, 10]);
  const passes = await Promise.all([metricsUpkeep(p, 90, 20), metricsUpkeep(p, 90, 20), metricsUpkeep(p, 90, 20)]);
  assert.is(
    passes.reduce((s, r) => s + r.minutes, 0),
    50,
  );
  await metricsUpkeep(p, 90);
  assert.equal(await attempts(orm), [
    [60, 60],
    [360, 60],
    [1440, 60],
  ]);
  assert.equal(await sql(orm, 'select shard from ormq_metric where shard <> 0'), [], 'everything folded');
});

Upkeep('rows older than the retention are dropped: 90 days by default, or the days given', async ({ orm }) => {
  await insertRollup(orm, { at: ago(24 * 91) });
  await insertRollup(orm, { at: ago(24 * 40) });
  await insertRollup(orm, { at: ago(24 * 10) });
  await sql(orm, 'delete from ormq_metric where span_minutes = 1');
  const p = await pool(orm);
  // an hour, its 6 hours and its day
  assert.is((await metricsUpkeep(p, 90)).retained, 3);
  assert.is((await metricsUpkeep(p, 30)).retained, 3);
  const left = await sql<{ bucket: Date }>(orm, 'select bucket from ormq_metric where span_minutes = 60');
  assert.equal(
    left.map((r) => new Date(r.bucket).getTime()),
    [Math.floor(Date.parse(ago(24 * 10)) / 3_600_000) * 3_600_000],
  );
  assert.equal(await attempts(orm), [
    [60, 1],
    [360, 1],
    [1440, 1],
  ]);
});

Upkeep(
  'the upkeep runs in the background, reports a failing pass and keeps going, and stop() waits for a pass under way',
  async ({ orm }) => {
    await insertRollup(orm, { at: ago(50) });
    const errors: Error[] = [];
    const upkeep = new MetricsUpkeep(await pool(orm), 90, (e) => errors.push(e));
    upkeep.start(0);
    await waitFor(async () => !(await sql(orm, 'select 1 from ormq_metric where span_minutes = 1')).length, 'the old minute row dropped');
    await upkeep.stop();
    assert.equal(errors, []);
    assert.is(
      Number((await sql<{ n: string }>(orm, 'select count(*) as n from ormq_metric where span_minutes = 60'))[0]!.n),
      1,
      'the hour row stays',
    );

    const missing = new pg.Pool({ connectionString: serverUrl('ormq_no_such_database'), max: 1 });
    try {
      const failing = new MetricsUpkeep(poolDb(missing as unknown as Queryable, null), 90, (e) => errors.push(e));
      failing.start(0);
      await waitFor(() => errors.length > 0, 'the failure reported');
      await failing.stop();
      assert.match(errors[0]!.message, /ormq_no_such_database/);
    } finally {
      await missing.end();
    }
  },
);

Upkeep('the retention option is checked when the cluster is made', async ({ orm }) => {
  // Whole days: PostgreSQL's make_interval(days => …) refuses 0.5, and 10⁹ days is out of a timestamp's range,
  // either of which would fail every upkeep pass and keep every row.
  for (const bad of [0, -1, Number.NaN, 0.5, 1e9]) {
    await startCluster(orm, { metricsRetention: bad }).then(
      () => assert.unreachable('accepted'),
      (e: Error) => assert.match(e.message, /metricsRetention/),
    );
  }
  await startCluster(orm, { metrics: 'no' as never }).then(
    () => assert.unreachable('accepted'),
    (e: Error) => assert.match(e.message, /metrics must be true or false/),
  );
});

const Api = adminSuite('metrics: the admin API', {
  mount: { authorize: (req, { page }) => req.headers['x-user'] !== 'no-metrics' || page !== 'metrics' },
  clear: 'delete from ormq_metric',
});

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

Api(
  'per func: runs, failures and rate, throughput, runtime p50/p95/max and wait p95, most runs first; the series sums to the runs',
  async ({ orm, api }) => {
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
    assert.is(day.series.length, 24);
    assert.is(day.funcs[0].runs, 1120);
    const onlyReport = (await api.get('api/metrics?range=1h&func=report')).json;
    assert.equal(
      onlyReport.funcs.map((f: any) => f.func),
      ['report'],
    );
    assert.is(
      onlyReport.series.reduce((n: number, b: any) => n + b.success, 0),
      3,
    );
    const east = (await api.get('api/metrics?range=1h&key=east')).json;
    assert.equal(
      east.funcs.map((f: any) => [f.func, f.runs]),
      [['report', 3]],
    );
    assert.equal(east.keys, ['default', 'east'], 'the key choices stay whole under a key filter');
  },
);

Api(
  '24h, 7d and 30d read the hour rows, after their minute rows are gone; bars start on UTC multiples of the step',
  async ({ orm, api }) => {
    await insertRollup(orm, { at: minutesAgo(5), count: 2 });
    await insertRollup(orm, { at: minutesAgo(60 * 24 * 5), count: 7 });
    await insertRollup(orm, { at: minutesAgo(60 * 24 * 20), count: 11, success: false });
    await sql(orm, `delete from ormq_metric where span_minutes = 1 and bucket < now() - interval '48 hours'`);
    const day = (await api.get('api/metrics?range=24h')).json;
    assert.equal([day.series.length, day.step, day.funcs[0].runs], [24, 3_600_000, 2]);
    const week = (await api.get('api/metrics?range=7d')).json;
    assert.equal([week.series.length, week.step, week.funcs[0].runs], [28, 21_600_000, 9]);
    assert.is(Date.parse(week.from) % 21_600_000, 0);
    const month = (await api.get('api/metrics?range=30d')).json;
    assert.equal([month.series.length, month.funcs[0].runs, month.funcs[0].failures], [30, 20, 11]);
    assert.is((await api.get('api/metrics')).json.range, '24h', 'range defaults to 24h');
  },
);

Api('every range reads the same before the upkeep folds the shards, halfway through, and after', async ({ orm, api }) => {
  // Two processes' rows over 30 days and the last hour; integer runtimes, so sums add up exactly in any order.
  for (let i = 0; i < 60; i++) {
    const at = i < 40 ? minutesAgo(3 + i * 1070) : minutesAgo(4 + (i - 40) * 2);
    await insertRollup(orm, {
      at,
      shard: 1 + (i % 2),
      func: i % 3 ? 'a' : 'b',
      success: i % 4 !== 0,
      count: i + 1,
      runtime: 10 * (i + 1),
      wait: i,
      key: i % 5 ? 'default' : 'east',
    });
  }
  // All reads within one minute, so that the 1-hour range's bars are the same ones.
  await waitFor(() => Date.now() % 60_000 < 40_000, 'the start of a minute', 30_000);
  const pages = ['range=1h', 'range=24h', 'range=7d', 'range=30d', 'range=7d&func=a', 'range=30d&key=east'];
  const read = async () => Promise.all(pages.map(async (q) => (await api.get(`api/metrics?${q}`)).json));
  const before = await read();
  assert.ok(before[3].funcs.length === 2 && before[3].funcs[0].runs > 0);
  const p = await pool(orm);
  assert.is((await metricsUpkeep(p, 90, 7)).folded, 7);
  assert.equal(await read(), before, 'halfway through a fold');
  while ((await metricsUpkeep(p, 90)).folded);
  assert.ok((await sql(orm, 'select 1 from ormq_metric where span_minutes = 1440')).length > 0, 'day rows made');
  assert.equal(await read(), before, 'after the fold');
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
  // a page of the admin itself takes GET and HEAD
  const page = await api.call('POST', 'metrics', {});
  assert.is(page.status, 405, page.text);
  assert.is(page.headers.get('allow'), 'GET, HEAD');
});

Counts.run();
Percentiles.run();
Upkeep.run();
Api(
  'identical requests while one is under way share its read: twenty wait on one statement, another range reads on its own',
  async (ctx) => {
    await insertRollup(ctx.orm, { at: minutesAgo(5), func: 'email', count: 7 });
    const waiting = async () =>
      Number(
        (
          await sql(
            ctx.orm,
            `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%ormq_metric%'`,
          )
        )[0]!.n,
      );
    const holder = new pg.Client({ connectionString: ctx.db.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('lock table ormq_metric in access exclusive mode');
    let same: Promise<{ status: number; json: any }[]>;
    let other: Promise<{ status: number; json: any }>;
    try {
      same = Promise.all(Array.from({ length: 20 }, () => ctx.api.get('api/metrics?range=24h')));
      await waitFor(async () => (await waiting()) > 0, 'the read waiting for the lock');
      await sleep(300);
      assert.is(await waiting(), 1, 'one read for the twenty');
      other = ctx.api.get('api/metrics?range=7d');
      await waitFor(async () => (await waiting()) === 2, "the other range's own read");
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    const answers = await same;
    for (const a of answers) assert.equal([a.status, a.json.funcs[0]?.runs], [200, 7]);
    assert.ok(answers.every((a) => JSON.stringify(a.json) === JSON.stringify(answers[0]!.json)));
    const o = await other;
    assert.equal([o.status, o.json.range, o.json.funcs[0]?.runs], [200, '7d', 7]);
    // Once answered, the next request reads anew: an insert since shows at once.
    await insertRollup(ctx.orm, { at: minutesAgo(4), func: 'email', count: 3 });
    assert.is((await ctx.api.get('api/metrics?range=24h')).json.funcs[0].runs, 10);
  },
);

Api.run();
