/**
 * Retries that end: a task's own maxAttempts and retry over the cluster's, exponential backoff
 * stored as each failed package's next attempt time, and a function that is not registered failing
 * once. Also saveLimitPer 'key', which keeps each queue key's successes apart.
 */
import * as assert from 'uvu/assert';
import pg from 'pg';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, enqueue, enqueueMany, result, schedule, ValidationError } from '../src/index.js';
import { COMPLETE } from '../src/cluster/sql.js';
import { completeValues, type Completion } from '../src/cluster/completion.js';
import { resolveClusterOptions } from '../src/cluster/options.js';
import { sql, waitFor } from './helpers/db.js';
import { startCluster, waitForDrained } from './helpers/cluster.js';
import { adminSuite, CLEAR_QUEUE, dbSuite } from './helpers/suites.js';

const em = (orm: MikroORM) => orm.em.fork();
type Row = { id: string; success: boolean; attempt_count: number; attempts: { max: number }[]; result: any; cluster: string };
const saved = (orm: MikroORM) =>
  sql<Row>(orm, 'select id, success, attempt_count, attempts, result, cluster from ormq_task order by stopped, id');

const Attempts = dbSuite("retries: a task's own attempts and retry", { clear: CLEAR_QUEUE });

Attempts("a task's maxAttempts ends it sooner or later than the cluster's; without one it takes the cluster's", async ({ orm }) => {
  const calls = new Map<string, number>();
  const { cluster } = await startCluster(orm, {
    timeout: 5,
    retry: 60,
    maxAttempts: 3,
    tasks: {
      never(this: { id: string }) {
        calls.set(this.id, (calls.get(this.id) ?? 0) + 1);
        throw new Error('always');
      },
    },
  });
  try {
    // retry 0.05: the next attempt 50 ms after a failure, not 60 s after the claim
    const once = await enqueue(em(orm), 'never', [], { maxAttempts: 1, retry: 0.05 });
    const five = await enqueue(em(orm), 'never', [], { maxAttempts: 5, retry: 0.05 });
    const [dflt, forever] = await enqueueMany(em(orm), [
      { func: 'never', retry: 0.05 },
      { func: 'never', retry: 0.05, maxAttempts: 0 },
    ]);
    await waitFor(
      async () => (await sql(orm, 'select 1 from ormq_queued')).length === 1 && (calls.get(forever!) ?? 0) >= 6,
      'three tasks ended and one past six attempts',
      20_000,
    );
    const rows = new Map((await saved(orm)).map((r) => [r.id, r]));
    assert.equal(
      [once, five, dflt].map((id) => [calls.get(id!), rows.get(id!)!.attempt_count, rows.get(id!)!.attempts.at(-1)!.max]),
      [
        [1, 1, 1],
        [5, 5, 5],
        [3, 3, 3],
      ],
    );
    // maxAttempts 0 over the cluster's 3: retried until it succeeds
    const [left] = await sql<{ task: string }>(orm, `select payload->>'id' as task from ormq_queued`);
    assert.is(left!.task, forever);
  } finally {
    await cluster.stop();
  }
});

Attempts('a function that is not registered fails once with an error naming it and the cluster, and is acked', async ({ orm }) => {
  const { cluster, logs } = await startCluster(orm, {
    name: 'east',
    timeout: 1,
    retry: 2,
    retryBackoff: { base: 0.01 },
    tasks: { known: () => 1 },
  });
  try {
    const id = await enqueue(em(orm), 'missing', [], { cluster: 'east' });
    await waitForDrained(orm, 'the ack');
    const rows = await saved(orm);
    assert.equal(
      rows.map((r) => [r.id, r.success, r.attempt_count]),
      [[id, false, 1]],
    );
    assert.is(rows[0]!.result.message, 'Task function "missing" is not registered in cluster "east"; not retried');
    assert.ok(logs.some((l) => l.level === 'info' && l.message.includes('not registered in cluster "east"')));
  } finally {
    await cluster.stop();
  }
});

Attempts(
  'retryBackoff, retry and maxAttempts are checked: at construction with the option named, at enqueue by field, nothing written',
  async ({ orm }) => {
    assert.throws(
      () => resolveClusterOptions({ retryBackoff: { factor: 0.5 } }),
      /^Cluster option retryBackoff\.factor must be a number from 1 to 1000, got 0\.5$/,
    );
    assert.throws(() => resolveClusterOptions({ retryBackoff: { base: 100, max: 10 } }), /retryBackoff\.max must be at least base \(100\)/);
    assert.throws(
      () => resolveClusterOptions({ retryBackoff: { maxDelay: 10 } as never }),
      /retryBackoff\.maxDelay is not an option \(base, factor, max, jitter\)/,
    );
    assert.throws(() => resolveClusterOptions({ retryBackoff: 'yes' as never }), /retryBackoff must be true, false or an object/);
    assert.throws(
      () => resolveClusterOptions({ retryBackoff: { jitter: 2n } as never }),
      /retryBackoff\.jitter must be a number from 0 to 1, got 2$/,
    );
    assert.equal(resolveClusterOptions({ retryBackoff: true }).retryBackoff, { base: 10, factor: 2, max: 3600, jitter: 0.2 });
    assert.equal(resolveClusterOptions({ retryBackoff: { base: 1 } }).retryBackoff, { base: 1, factor: 2, max: 3600, jitter: 0.2 });
    assert.is(resolveClusterOptions({}).retryBackoff, null);
    const refused = async (write: () => Promise<unknown>) =>
      write().then(
        () => assert.unreachable('accepted'),
        (e: unknown) => (assert.instance(e, ValidationError), (e as ValidationError).errors),
      );
    assert.equal(
      await refused(() => enqueue(em(orm), 'f', [], { maxAttempts: -1, retry: 0, retryBackoff: { jitter: -1, base: Infinity } })),
      {
        maxAttempts: 'must be a whole number from 0 to 2147483647',
        retry: 'must be a number of seconds above 0, at most 3,000,000,000',
        'retryBackoff.base': 'must be a number of seconds above 0, at most 3,000,000,000',
        'retryBackoff.jitter': 'must be a number from 0 to 1',
      },
    );
    assert.equal(await refused(() => enqueueMany(em(orm), [{ func: 'f' }, { func: 'f', retryBackoff: [] as never }])), {
      'tasks[1].retryBackoff': 'must be true, false or an object of base, factor, max and jitter',
    });
    assert.equal(await sql(orm, 'select 1 from ormq_queued'), []);
    // Given ones are stored on the package, only the known fields; the others are left out.
    await enqueue(em(orm), 'f', [], { retry: 5, retryBackoff: { factor: 3 } });
    await enqueue(em(orm), 'f');
    const payloads = await sql<{ payload: Record<string, unknown> }>(orm, 'select payload from ormq_queued order by id');
    assert.equal(
      payloads.map((p) => [p.payload.maxAttempts, p.payload.retry, p.payload.retryBackoff]),
      [
        [undefined, 5, { factor: 3 }],
        [undefined, undefined, undefined],
      ],
    );
  },
);

Attempts.run();

const Backoff = dbSuite('retries: backoff stored as the next attempt time', { clear: CLEAR_QUEUE });

const PROCESS = 'p'.repeat(32);

/**
 * Fails package 1 `times` times through the cluster's own completion, each claimed as CLAIM would,
 * in one transaction so that now() stands still: returns each next attempt as seconds from now.
 */
async function fail(
  c: pg.Client,
  times: number,
  options: Parameters<typeof resolveClusterOptions>[0],
  pkg: Record<string, unknown> = {},
): Promise<number[]> {
  const o = resolveClusterOptions({ retry: 90, ...options });
  const delays: number[] = [];
  await c.query('begin');
  try {
    await c.query(`insert into ormq_queued (id, key, payload) values (1, 'default', '{}')`);
    for (let n = 0; n < times; n++) {
      const {
        rows: [claim],
      } = await c.query(
        `update ormq_queued set lock = now(), locked_by = $1 where id = 1 returning (extract(epoch from lock) * 1000000)::bigint as lock`,
        [PROCESS],
      );
      const at = new Date().toISOString();
      const f = {
        qid: 1,
        lock: Number(claim.lock),
        success: false,
        cancelled: false,
        started: at,
        stopped: at,
        startedMs: 0,
        stoppedMs: 0,
        pkg: {
          id: 'a'.repeat(32),
          name: 'n',
          func: 'f',
          args: [],
          kwargs: {},
          group: null,
          hook: null,
          timeout: null,
          save: null,
          enqueued: at,
          ...pkg,
        },
        result: { error: 'Error', message: 'no' },
      } as Completion;
      await c.query({ ...COMPLETE, values: completeValues([f], { ...o, metrics: false }, PROCESS) });
      const {
        rows: [q],
      } = await c.query(`select extract(epoch from run_at - now())::float8 as s, lock, locked_by from ormq_queued where id = 1`);
      assert.equal([q.lock, q.locked_by], [null, null]);
      delays.push(Math.round(q.s * 1000) / 1000);
    }
  } finally {
    await c.query('rollback');
  }
  return delays;
}

Backoff(
  "each failure waits base × factor^(n − 1) up to max; jitter only shortens; a task's own retry and backoff go over the cluster's",
  async ({ db }) => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      assert.equal(await fail(c, 6, { retryBackoff: { base: 1, factor: 3, max: 50, jitter: 0 } }), [1, 3, 9, 27, 50, 50]);
      // no backoff: `retry` after the claim, as its lock would have expired
      assert.equal(await fail(c, 2, {}), [90, 90]);
      // a task's retry alone: that many seconds after each failure
      assert.equal(await fail(c, 2, {}, { retry: 7 }), [7, 7]);
      // its retry is the base of the cluster's backoff
      assert.equal(await fail(c, 3, { retryBackoff: { base: 1, factor: 2, jitter: 0 } }, { retry: 5 }), [5, 10, 20]);
      // its own backoff over the cluster's, and false to have none
      assert.equal(await fail(c, 3, { retryBackoff: true }, { retryBackoff: { base: 2, jitter: 0 } }), [2, 4, 8]);
      assert.equal(await fail(c, 2, { retryBackoff: true }, { retryBackoff: false }), [90, 90]);
      // settings written into a package by other means, which enqueue would refuse, are ignored: the failure is still saved
      assert.equal(
        await fail(
          c,
          2,
          { retryBackoff: { base: 1, factor: 3, jitter: 0 } },
          { retry: 'soon', maxAttempts: 'x', retryBackoff: { factor: -1 } },
        ),
        [1, 3],
      );
      const jittered = await fail(c, 40, { retryBackoff: { base: 4, factor: 1, max: 4, jitter: 0.5 } });
      assert.ok(
        jittered.every((d) => d >= 2 && d <= 4),
        String(jittered),
      );
      assert.ok(new Set(jittered).size > 1, 'jitter varies the delays');
    } finally {
      await c.end();
    }
  },
);

Backoff('the power is capped: a package with thousands of failures gets max, not an overflow', async ({ db }) => {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query('begin');
    await c.query(`insert into ormq_queued (id, key, payload, failures) values (1, 'default', '{}', 100000)`);
    const {
      rows: [claim],
    } = await c.query(
      `update ormq_queued set lock = now(), locked_by = $1 where id = 1 returning (extract(epoch from lock) * 1000000)::bigint as lock`,
      [PROCESS],
    );
    const at = new Date().toISOString();
    const f = {
      qid: 1,
      lock: Number(claim.lock),
      success: false,
      cancelled: false,
      started: at,
      stopped: at,
      startedMs: 0,
      stoppedMs: 0,
      pkg: {
        id: 'a'.repeat(32),
        name: 'n',
        func: 'f',
        args: [],
        kwargs: {},
        group: null,
        hook: null,
        timeout: null,
        save: null,
        enqueued: at,
      },
      result: { error: 'Error', message: 'no' },
    } as Completion;
    const o = resolveClusterOptions({ retryBackoff: { base: 1, factor: 1000, max: 86400, jitter: 0 } });
    await c.query({ ...COMPLETE, values: completeValues([f], { ...o, metrics: false }, PROCESS) });
    const {
      rows: [q],
    } = await c.query(`select extract(epoch from run_at - now())::float8 as s, failures from ormq_queued where id = 1`);
    assert.equal([q.s, q.failures], [86400, 100001]);
  } finally {
    await c.query('rollback').catch(() => {});
    await c.end();
  }
});

Backoff.run();

const Admin = adminSuite('retries: the Failed page shows the next attempt the cluster stored', {
  clear: CLEAR_QUEUE,
  mount: { retry: 90 },
});

Admin(
  "a failure waiting on its backoff is unlocked, and its next attempt time is the package's run_at, on the list and the detail",
  async ({ orm, api }) => {
    const { cluster } = await startCluster(orm, {
      retry: 90,
      timeout: 5,
      retryBackoff: { base: 600, jitter: 0 },
      tasks: {
        never: () => {
          throw new Error('no');
        },
      },
    });
    try {
      const id = await enqueue(em(orm), 'never', [], { maxAttempts: 4 });
      await waitFor(async () => (await saved(orm)).length === 1, 'the failure');
      const [q] = await sql<{ run_at: string; lock: null; locked_by: null; after: number }>(
        orm,
        `select to_char(q.run_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as run_at, q.lock, q.locked_by, extract(epoch from q.run_at - t.stopped)::float8 as after
       from ormq_queued q join ormq_task t on t.id = (q.payload->>'id')::char(32)`,
      );
      assert.equal([q!.lock, q!.locked_by], [null, null]);
      // 600 s after the failure was saved, which was just after the attempt stopped (a stop's
      // microseconds come from performance.now(), within a millisecond of the database's clock)
      const after = q!.after;
      assert.ok(after >= 599.999 && after < 660, String(after));
      const detail = (await api.get(`api/failed/${id}`)).json;
      assert.equal([detail.extra.retry.nextAt, detail.extra.retry.attempt, detail.extra.retry.max], [q!.run_at, 2, 4]);
      const row = (await api.get('api/failed')).json.rows.find((r: { id: string }) => r.id === id);
      assert.is(row.retrying.nextAt, q!.run_at);
      // and Queued tasks shows it as waiting, not stuck, once its cluster is gone
      await cluster.stop();
      const queued = (await api.get('api/queued')).json.rows;
      assert.equal(
        queued.map((r: { stuck: boolean; runAt: string }) => [r.stuck, r.runAt]),
        [[false, q!.run_at]],
      );
    } finally {
      await cluster.stop();
    }
  },
);

Admin.run();

const Keep = dbSuite('retries: saveLimitPer key', { clear: CLEAR_QUEUE });

Keep(
  "saveLimitPer 'key' keeps the newest N successes of each queue key: a backlog on one key prunes none of another's",
  async ({ orm }) => {
    const east = await startCluster(orm, { name: 'east', saveLimit: 3, saveLimitPer: 'key', workers: 1, tasks: { f: (i: number) => i } });
    const west = await startCluster(orm, { name: 'west', saveLimit: 3, saveLimitPer: 'key', workers: 1, tasks: { f: (i: number) => i } });
    try {
      const mine = await enqueue(em(orm), 'f', [-1], { cluster: 'west' });
      await waitForDrained(orm, 'the west task');
      for (let i = 0; i < 10; i++) await enqueue(em(orm), 'f', [i], { cluster: 'east' });
      await waitForDrained(orm, 'the east backlog');
      await waitFor(async () => (await saved(orm)).length === 4, 'east pruned to 3');
      const rows = await saved(orm);
      assert.equal(
        rows.map((r) => [r.cluster, r.result]),
        [
          ['west', -1],
          ['east', 7],
          ['east', 8],
          ['east', 9],
        ],
      );
      assert.is(await result(em(orm), mine), -1);
    } finally {
      await east.cluster.stop();
      await west.cluster.stop();
    }
  },
);

Keep('saveLimitPer refuses what it does not know, naming the value', async ({ orm }) => {
  assert.throws(
    () => new Cluster(orm, { saveLimitPer: 'queue' as never }),
    /saveLimitPer must be 'group', 'name', 'func', 'key' or null, got "queue"/,
  );
});

Keep.run();

const Scheduled = dbSuite("retries: a schedule's own maxAttempts and retry", { clear: `${CLEAR_QUEUE}; delete from ormq_schedule` });

Scheduled("a schedule stores maxAttempts and retry and each run's package carries them over the cluster's", async ({ orm }) => {
  const calls: number[] = [];
  const s = await schedule(em(orm), { name: 'nightly', func: 'never', maxAttempts: 2, retry: 0.05 });
  assert.equal([s.maxAttempts, s.retry], [2, 0.05]);
  const plain = await schedule(em(orm), { name: 'plain', func: 'never', nextRun: new Date(Date.now() + 3600_000) });
  assert.equal([plain.maxAttempts, plain.retry], [null, null]);
  const { cluster } = await startCluster(orm, {
    maxAttempts: 5,
    retry: 60,
    timeout: 5,
    tasks: {
      never() {
        calls.push(Date.now());
        throw new Error('no');
      },
    },
  });
  try {
    await waitFor(
      async () => (await saved(orm)).length === 1 && (await sql(orm, 'select 1 from ormq_queued')).length === 0,
      'the run ended after two attempts',
      15_000,
    );
    const [row] = await saved(orm);
    assert.equal([calls.length, row!.attempt_count, row!.attempts.at(-1)!.max], [2, 2, 2]);
  } finally {
    await cluster.stop();
  }
  // an upsert by name writes them too; bad values are refused by field
  const updated = await schedule(em(orm), { name: 'plain', func: 'never', maxAttempts: 0, retry: 30 }, { ifExists: 'update' });
  assert.equal([updated.maxAttempts, updated.retry], [0, 30]);
  const refused = await schedule(em(orm), { name: 'bad', func: 'never', maxAttempts: 1.5, retry: -1 }).then(
    () => null,
    (e: ValidationError) => e.errors,
  );
  assert.equal(refused, { maxAttempts: 'must be a whole number', retry: 'must be a number of seconds above 0, at most 3,000,000,000' });
});

Scheduled.run();
