import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, deleteGroup, enqueue, type TaskRecord } from '../src/index.js';
import { initOrm, sql, waitFor } from './helpers/db.js';
import { NEXT_EXPIRY } from '../src/cluster/sql.js';
import { sleep, startCluster, startClusters, waitForDrained, waitForSaved } from './helpers/cluster.js';
import { CLEAR_QUEUE, dbSuite } from './helpers/suites.js';

type TaskRow = {
  id: string;
  name: string;
  func: string;
  result: unknown;
  success: boolean;
  attempt_count: number;
  cluster: string;
  group: string | null;
};

const withDb = (name: string) => dbSuite(name, { clear: CLEAR_QUEUE });

const tasks = (orm: MikroORM) => sql<TaskRow>(orm, 'select * from ormq_task order by stopped, id');
const queued = (orm: MikroORM) => sql<{ id: string; lock: string | null }>(orm, 'select id, lock from ormq_queued');
const em = (orm: MikroORM) => orm.em.fork();

const Run = withDb('cluster: running tasks');

Run('runs a registered function and saves its result, then acks the package', async ({ orm }) => {
  const seen: unknown[][] = [];
  const { cluster } = await startCluster(orm, {
    name: 'default',
    tasks: {
      add(a: number, b: number, ...rest: unknown[]) {
        seen.push(rest);
        return a + b;
      },
    },
  });
  try {
    const id = await enqueue(em(orm), 'add', [2, 3], { group: 'maths' });
    const id2 = await enqueue(em(orm), 'add', [1, 1], { kwargs: { precise: true } });
    const rows = await waitFor(async () => ((await tasks(orm)).length === 2 ? tasks(orm) : null), 'two saved tasks');
    const row = rows.find((r) => r.id === id)!;
    assert.is(row.result, 5);
    assert.is(row.success, true);
    assert.is(row.attempt_count, 1);
    assert.is(row.cluster, 'default');
    assert.is(row.group, 'maths');
    assert.ok(rows.find((r) => r.id === id2));
    // kwargs arrive as a final options argument only when non-empty.
    assert.equal(
      seen.sort((a, b) => a.length - b.length),
      [[], [{ precise: true }]],
    );
    assert.is((await queued(orm)).length, 0);
  } finally {
    await cluster.stop();
  }
});

Run('a cluster only claims packages with its own key', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { name: 'east', tasks: { f: () => 1 } });
  try {
    await enqueue(em(orm), 'f', [], { cluster: 'west' });
    const mine = await enqueue(em(orm), 'f', [], { cluster: 'east' });
    await waitFor(async () => (await tasks(orm)).length === 1, 'the east task');
    await sleep(150);
    const rows = await tasks(orm);
    assert.equal(
      rows.map((r) => r.id),
      [mine],
    );
    assert.is((await queued(orm)).length, 1);
  } finally {
    await cluster.stop();
  }
});

Run('an unknown func fails the task with a clear message', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { ackFailures: true, tasks: {} });
  try {
    await enqueue(em(orm), 'os.system', ['rm -rf /']);
    const [row] = await waitForSaved<TaskRow>(orm, 1, 'the failure');
    assert.is(row!.success, false);
    assert.match((row!.result as { message: string }).message, /"os.system" is not registered/);
  } finally {
    await cluster.stop();
  }
});

Run('a throwing or rejecting function is saved as a failure with error, message and stack', async ({ orm }) => {
  const { cluster } = await startCluster(orm, {
    ackFailures: true,
    tasks: {
      sync() {
        throw new TypeError('bad thing');
      },
      async later() {
        throw new RangeError('worse thing');
      },
    },
  });
  try {
    await enqueue(em(orm), 'sync');
    await enqueue(em(orm), 'later');
    const rows = await waitFor(() => tasks(orm).then((r) => (r.length === 2 ? r : null)), 'two failures');
    const results = rows
      .map((r) => r.result as { error: string; message: string; stack: string })
      .sort((a, b) => a.error.localeCompare(b.error));
    assert.equal(
      results.map((r) => [r.error, r.message]),
      [
        ['RangeError', 'worse thing'],
        ['TypeError', 'bad thing'],
      ],
    );
    assert.match(results[0]!.stack, /worse thing/);
    assert.is((await queued(orm)).length, 0);
  } finally {
    await cluster.stop();
  }
});

Run('a task past its timeout fails with a timeout error and its signal is aborted', async ({ orm }) => {
  let aborted = false;
  const { cluster } = await startCluster(orm, {
    ackFailures: true,
    timeout: 0.2,
    retry: 5,
    tasks: {
      async slow(this: { signal: AbortSignal }) {
        this.signal.addEventListener('abort', () => (aborted = true));
        await sleep(2_000);
      },
    },
  });
  try {
    await enqueue(em(orm), 'slow');
    const [row] = await waitForSaved<TaskRow>(orm, 1, 'the timeout');
    assert.is(row!.success, false);
    assert.match((row!.result as { message: string }).message, /timeout of 0.2s/);
    assert.ok(aborted);
  } finally {
    await cluster.stop();
  }
});

Run('a per-task timeout overrides the cluster timeout', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { ackFailures: true, timeout: 30, tasks: { slow: () => sleep(2_000) } });
  try {
    await enqueue(em(orm), 'slow', [], { timeout: 0.1 });
    const [row] = await waitForSaved<TaskRow>(orm, 1, 'the timeout');
    assert.match((row!.result as { message: string }).message, /timeout of 0.1s/);
  } finally {
    await cluster.stop();
  }
});

Run('a result that is not JSON fails the task instead of losing it', async ({ orm }) => {
  const { cluster } = await startCluster(orm, { ackFailures: true, tasks: { big: () => 10n } });
  try {
    await enqueue(em(orm), 'big');
    const [row] = await waitForSaved<TaskRow>(orm, 1, 'the failure');
    assert.is(row!.success, false);
    assert.match((row!.result as { message: string }).message, /BigInt/);
  } finally {
    await cluster.stop();
  }
});

Run('the hook is called with the saved task; a throwing hook is logged and the task kept', async ({ orm }) => {
  const hooked: TaskRecord[] = [];
  const { cluster, logs } = await startCluster(orm, {
    tasks: {
      work: () => 'ok',
      record: (t: TaskRecord) => void hooked.push(t),
      explode: () => {
        throw new Error('hook blew up');
      },
    },
  });
  try {
    const a = await enqueue(em(orm), 'work', [], { hook: 'record' });
    const b = await enqueue(em(orm), 'work', [], { hook: 'explode' });
    await waitFor(() => tasks(orm).then((r) => r.length === 2), 'both tasks');
    await waitFor(() => hooked.length === 1 && logs.some((l) => l.message.includes('hook blew up')), 'the hooks');
    assert.is(hooked[0]!.id, a);
    assert.is(hooked[0]!.result, 'ok');
    assert.is(hooked[0]!.success, true);
    assert.is(hooked[0]!.attemptCount, 1);
    // The package left its defaults out; the record has them.
    assert.is(hooked[0]!.group, null);
    assert.equal(hooked[0]!.kwargs, {});
    assert.is(hooked[0]!.hook, 'record');
    assert.ok((await tasks(orm)).some((r) => r.id === b && r.success));
  } finally {
    await cluster.stop();
  }
});

Run.run();

const Save = withDb('cluster: saveLimit');

async function drain(
  orm: MikroORM,
  options: ConstructorParameters<typeof Cluster>[1],
  enqueueAll: () => Promise<unknown>,
  expectRows: (n: number) => boolean,
) {
  await enqueueAll();
  const { cluster } = await startCluster(orm, { bulk: 3, ...options });
  try {
    await waitForDrained(orm, 'an empty queue');
    await waitFor(async () => expectRows((await tasks(orm)).length), 'the saved rows');
  } finally {
    await cluster.stop();
  }
}

Save('0 keeps every success', async ({ orm }) => {
  await drain(
    orm,
    { saveLimit: 0, tasks: { f: (i: number) => i } },
    async () => {
      for (let i = 0; i < 12; i++) await enqueue(em(orm), 'f', [i]);
    },
    (n) => n === 12,
  );
  assert.is((await tasks(orm)).length, 12);
});

Save('-1 keeps no success but every failure', async ({ orm }) => {
  await drain(
    orm,
    {
      saveLimit: -1,
      ackFailures: true,
      tasks: {
        f: (i: number) => {
          if (i % 3 === 0) throw new Error('x');
          return i;
        },
      },
    },
    async () => {
      for (let i = 0; i < 9; i++) await enqueue(em(orm), 'f', [i]);
    },
    (n) => n === 3,
  );
  const rows = await tasks(orm);
  assert.is(rows.length, 3);
  assert.ok(rows.every((r) => !r.success));
});

Save('N keeps the newest N successes, and failures are never pruned', async ({ orm }) => {
  await drain(
    orm,
    {
      saveLimit: 4,
      workers: 1,
      ackFailures: true,
      tasks: {
        f: (i: number) => {
          if (i >= 100) throw new Error('x');
          return i;
        },
      },
    },
    async () => {
      for (let i = 0; i < 10; i++) await enqueue(em(orm), 'f', [i]);
      for (let i = 100; i < 103; i++) await enqueue(em(orm), 'f', [i]);
    },
    (n) => n === 7,
  );
  const rows = await tasks(orm);
  const successes = rows.filter((r) => r.success).map((r) => r.result);
  assert.equal(successes, [6, 7, 8, 9]);
  assert.is(rows.filter((r) => !r.success).length, 3);
});

Save('save: false on a task keeps its success out of the table', async ({ orm }) => {
  await drain(
    orm,
    { saveLimit: 0, tasks: { f: () => 1 } },
    async () => {
      await enqueue(em(orm), 'f', [], { save: false });
      await enqueue(em(orm), 'f', [], { name: 'kept' });
    },
    (n) => n === 1,
  );
  assert.equal(
    (await tasks(orm)).map((r) => r.name),
    ['kept'],
  );
});

for (const per of ['group', 'name', 'func'] as const) {
  Save(`saveLimitPer '${per}' keeps the newest N of each ${per}`, async ({ orm }) => {
    await drain(
      orm,
      { saveLimit: 2, saveLimitPer: per, workers: 1, tasks: { a: (i: number) => i, b: (i: number) => i } },
      async () => {
        for (let i = 0; i < 5; i++) {
          for (const scope of ['a', 'b']) {
            await enqueue(
              em(orm),
              per === 'func' ? scope : 'a',
              [i],
              per === 'group' ? { group: scope } : per === 'name' ? { name: scope } : {},
            );
          }
        }
      },
      (n) => n === 4,
    );
    const rows = await tasks(orm);
    const byScope = new Map<string, unknown[]>();
    for (const r of rows) {
      const key = per === 'group' ? r.group! : per === 'name' ? r.name : r.func;
      byScope.set(key, [...(byScope.get(key) ?? []), r.result]);
    }
    assert.equal([...byScope.entries()].sort(), [
      ['a', [3, 4]],
      ['b', [3, 4]],
    ]);
  });
}

Save(`saveLimitPer 'group' keeps the newest N of the tasks without a group`, async ({ orm }) => {
  await drain(
    orm,
    { saveLimit: 2, saveLimitPer: 'group', workers: 1, tasks: { a: (i: number) => i } },
    async () => {
      for (let i = 0; i < 5; i++) await enqueue(em(orm), 'a', [i]);
    },
    (n) => n === 2,
  );
  assert.equal((await tasks(orm)).map((r) => r.result).sort(), [3, 4]);
});

Save.run();

const Retry = withDb('cluster: failures, retries and acks');

Retry('a failed package runs again after its lock expires, updating the same row', async ({ orm }) => {
  let calls = 0;
  const { cluster } = await startCluster(orm, {
    timeout: 0.2,
    retry: 0.4,
    tasks: {
      flaky() {
        calls++;
        if (calls < 3) throw new Error(`attempt ${calls} failed`);
        return 'third time lucky';
      },
    },
  });
  try {
    const id = await enqueue(em(orm), 'flaky');
    const [row] = await waitFor(() => tasks(orm).then((r) => (r[0]?.success ? r : null)), 'the success', 15_000);
    assert.is(row!.id, id);
    assert.is(row!.attempt_count, 3);
    assert.is(row!.result, 'third time lucky');
    assert.is((await tasks(orm)).length, 1);
    assert.is((await queued(orm)).length, 0);
  } finally {
    await cluster.stop();
  }
});

Retry('maxAttempts acks the package after that many failures', async ({ orm }) => {
  let calls = 0;
  const { cluster } = await startCluster(orm, {
    timeout: 0.2,
    retry: 0.3,
    maxAttempts: 2,
    tasks: {
      never() {
        calls++;
        throw new Error('always');
      },
    },
  });
  try {
    await enqueue(em(orm), 'never');
    await waitForDrained(orm, 'the ack', 15_000);
    const [row] = await tasks(orm);
    assert.is(row!.attempt_count, 2);
    assert.is(row!.success, false);
    await sleep(700);
    assert.is(calls, 2);
  } finally {
    await cluster.stop();
  }
});

Retry('maxAttempts ends a failing task even when its saved failures are deleted between attempts', async ({ orm }) => {
  let calls = 0;
  const wiped: { attempt: number; deleted: number }[] = [];
  const { cluster } = await startCluster(orm, {
    timeout: 0.2,
    retry: 0.3,
    maxAttempts: 2,
    tasks: {
      never() {
        calls++;
        throw new Error('always');
      },
      // After each saved failure, the group's saved tasks go, as a host clearing a group would.
      async wipe(task: TaskRecord) {
        wiped.push({ attempt: task.attemptCount, deleted: await deleteGroup(em(orm), task.group!) });
      },
    },
  });
  try {
    const id = await enqueue(em(orm), 'never', [], { group: 'g', hook: 'wipe' });
    await waitForDrained(orm, 'the ack after the second failure', 15_000);
    assert.is(calls, 2);
    await waitFor(() => wiped.length === 2, 'the second hook');
    // The second failure's row counts both attempts, although the first one's row had been deleted.
    assert.equal(wiped, [
      { attempt: 1, deleted: 1 },
      { attempt: 2, deleted: 1 },
    ]);
    assert.is(calls, 2);
    assert.is((await tasks(orm)).filter((t) => t.id === id).length, 0);
  } finally {
    await cluster.stop();
  }
});

Retry(
  'a task that stalls the event loop past retry, with no other process to claim its package, is saved once and not run again',
  async ({ orm }) => {
    let calls = 0;
    const { cluster, logs } = await startCluster(orm, {
      timeout: 0.2,
      retry: 0.3,
      tasks: {
        stall() {
          calls++;
          const pause = new Int32Array(new SharedArrayBuffer(4));
          Atomics.wait(pause, 0, 0, 800);
          return 'late';
        },
      },
    });
    try {
      const id = await enqueue(em(orm), 'stall');
      await waitForDrained(orm, 'the ack', 15_000);
      const saved = await tasks(orm);
      assert.equal(
        saved.map((t) => [t.id, t.result, t.success, t.attempt_count]),
        [[id, 'late', true, 1]],
      );
      assert.is(calls, 1);
      assert.equal(
        logs.filter((l) => /not saved/.test(l.message)),
        [],
      );
    } finally {
      await cluster.stop();
    }
  },
);

Retry(
  'without ackFailures or maxAttempts a failed package stays queued, delayed to retry after its claim, unlocked, and linked to its failure',
  async ({ orm }) => {
    const { cluster } = await startCluster(orm, {
      timeout: 5,
      retry: 60,
      tasks: {
        never: () => {
          throw new Error('no');
        },
      },
    });
    try {
      const id = await enqueue(em(orm), 'never');
      const waiting = await enqueue(em(orm), 'never', [], { cluster: 'elsewhere' });
      await waitFor(() => tasks(orm).then((r) => r.length === 1), 'the failure');
      // Waiting for its retry, `retry` seconds after its claim (between enqueue and start), held by no process;
      // linked, so the admin finds it by task id, unlike a package that never failed. A task's start has
      // its microseconds from performance.now(), within a millisecond of the clock the claim read.
      const rows = await sql(
        orm,
        `select payload->>'id' as task, lock is not null as locked, locked_by, linked,
      run_at between t.enqueued + interval '60 s' - interval '1 ms' and t.started + interval '60 s' + interval '1 ms' as due
      from ormq_queued left join ormq_task t on t.id = (payload->>'id')::char(32) order by ormq_queued.id`,
      );
      assert.equal(rows, [
        { task: id, locked: false, locked_by: null, linked: true, due: true },
        { task: waiting, locked: false, locked_by: null, linked: false, due: null },
      ]);
    } finally {
      await cluster.stop();
    }
  },
);

Retry('ackFailures acks a failure at once', async ({ orm }) => {
  const { cluster } = await startCluster(orm, {
    ackFailures: true,
    tasks: {
      never: () => {
        throw new Error('no');
      },
    },
  });
  try {
    await enqueue(em(orm), 'never');
    await waitFor(() => tasks(orm).then((r) => r.length === 1), 'the failure');
    await waitForDrained(orm, 'the ack');
  } finally {
    await cluster.stop();
  }
});

Retry('a result PostgreSQL cannot store fails that task alone; the others in its batch are saved once', async ({ orm }) => {
  const runs = new Map<string, number>();
  const { cluster } = await startCluster(orm, {
    ackFailures: true,
    bulk: 10,
    tasks: {
      value(this: { id: string }, v: string) {
        runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
        return v === 'nul' ? 'a\u0000b' : v === 'lone' ? 'lone \ud800 surrogate' : v;
      },
      broken(this: { id: string }) {
        runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
        throw new Error('bad \u0000 byte');
      },
    },
  });
  try {
    const ids = [
      await enqueue(em(orm), 'value', ['fine']),
      await enqueue(em(orm), 'value', ['nul']),
      await enqueue(em(orm), 'value', ['lone']),
      await enqueue(em(orm), 'broken'),
      await enqueue(em(orm), 'value', ['also fine']),
    ];
    await waitForDrained(orm, 'every package acked');
    const rows = await tasks(orm);
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.is(byId.get(ids[0]!)!.result, 'fine');
    assert.is(byId.get(ids[4]!)!.result, 'also fine');
    for (const id of [ids[1]!, ids[2]!]) {
      assert.is(byId.get(id)!.success, false);
      assert.match((byId.get(id)!.result as { message: string }).message, /cannot store/);
    }
    assert.match((byId.get(ids[3]!)!.result as { message: string }).message, /bad \ufffd byte/);
    assert.ok(
      [...runs.values()].every((n) => n === 1),
      JSON.stringify([...runs]),
    );
  } finally {
    await cluster.stop();
  }
});

Retry('a package waiting for a worker is released, not started, once it could not finish before its lock expires', async ({ orm, db }) => {
  const runs = new Map<number, number>();
  const orms = [orm, await initOrm(db.url)];
  const clusters = await startClusters(orms, {
    workers: 1,
    bulk: 4,
    timeout: 1,
    retry: 1.5,
    ackFailures: true,
    tasks: {
      async busy(n: number, ms: number) {
        runs.set(n, (runs.get(n) ?? 0) + 1);
        await sleep(ms);
      },
    },
  });
  try {
    for (let n = 0; n < 8; n++) await enqueue(em(orm), 'busy', [n, n % 2 ? 900 : 700]);
    await waitForDrained(orm, 'an empty queue', 30_000);
    assert.equal(
      [...runs.entries()].filter(([, count]) => count > 1),
      [],
      'no task ran twice',
    );
    assert.is(runs.size, 8);
  } finally {
    await clusters.stop();
    await orms[1]!.close(true);
  }
});

Retry('tasks slower than a claim hold no more packages than the workers or bulk take', async ({ orm }) => {
  const finished = new Set<number>();
  const slow = async (n: number) => {
    await sleep(150);
    finished.add(n);
  };
  const { cluster } = await startCluster(orm, { workers: 2, bulk: 3, tasks: { slow } });
  try {
    for (let n = 0; n < 16; n++) await enqueue(em(orm), 'slow', [n]);
    let most = 0;
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      const locked = await sql<{ n: number }>(
        orm,
        "select (payload->'args'->>0)::int as n from ormq_queued where lock > now() - interval '60 seconds'",
      );
      // A package whose task has finished is only waiting for its ack, however long a busy machine takes to write it.
      most = Math.max(most, locked.filter((r) => !finished.has(Number(r.n))).length);
      await sleep(20);
    }
    // A claim goes out only when a worker is free and nothing waits here, and takes `bulk` (3): with
    // the other worker busy, that is two running and two waiting. The rest of a backlog of slow
    // tasks stays claimable by other clusters.
    assert.ok(most > 0 && most <= 4, `held at most ${most}`);
  } finally {
    await cluster.stop();
  }
});

Retry('a backlog of quick tasks drained by two clusters claiming ahead runs each task once', async ({ orm, db }) => {
  const runs = new Map<string, number>();
  const orms = [orm, await initOrm(db.url)];
  const clusters = await startClusters(orms, {
    workers: 4,
    bulk: 50,
    saveLimit: -1,
    tasks: {
      quick(this: { id: string }) {
        runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
      },
    },
  });
  try {
    await sql(
      orm,
      `insert into ormq_queued (key, payload)
      select 'default', jsonb_build_object('id', md5(g::text), 'name', 'q' || g, 'func', 'quick', 'args', '[]'::jsonb, 'kwargs', '{}'::jsonb, 'enqueued', now())
      from generate_series(1, 3000) g`,
    );
    await sql(orm, "select pg_notify('ormq_queued', 'default')");
    await waitForDrained(orm, 'an empty queue', 30_000);
    assert.is(runs.size, 3000);
    assert.equal(
      [...runs.values()].filter((n) => n !== 1),
      [],
      'no task ran twice',
    );
  } finally {
    await clusters.stop();
    await orms[1]!.close(true);
  }
});

Retry("a task's own timeout cannot exceed the cluster's", async ({ orm }) => {
  const { cluster } = await startCluster(orm, { ackFailures: true, timeout: 0.2, retry: 5, tasks: { slow: () => sleep(2_000) } });
  try {
    await enqueue(em(orm), 'slow', [], { timeout: 600 });
    const [row] = await waitForSaved<TaskRow>(orm, 1, 'the timeout');
    assert.match((row!.result as { message: string }).message, /timeout of 0.2s/);
  } finally {
    await cluster.stop();
  }
});

Retry('a hook that never returns holds up neither saving nor stopping', async ({ orm }) => {
  const runs = new Map<string, number>();
  const { cluster, logs } = await startCluster(orm, {
    timeout: 0.5,
    retry: 1,
    stopTimeout: 200,
    tasks: {
      work(this: { id: string }) {
        runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
        return 'ok';
      },
      forever: () => new Promise(() => {}),
    },
  });
  const first = await enqueue(em(orm), 'work', [], { hook: 'forever' });
  await waitFor(() => tasks(orm).then((r) => r.length === 1), 'the first task');
  const later = [];
  for (let i = 0; i < 5; i++) later.push(await enqueue(em(orm), 'work'));
  await waitFor(() => tasks(orm).then((r) => r.length === 6), 'the tasks after the hook');
  await waitFor(() => logs.some((l) => /hook "forever" .* failed: Task exceeded its timeout/.test(l.message)), 'the hook timeout');
  await cluster.stop();
  assert.ok([first, ...later].every((id) => runs.get(id) === 1));
});

Retry('two packages that carry the same task id are both acked', async ({ orm }) => {
  const id = '0123456789abcdef0123456789abcdef';
  await enqueue(em(orm), 'twice', [1], { id });
  await enqueue(em(orm), 'twice', [2], { id });
  const { cluster } = await startCluster(orm, { bulk: 10, tasks: { twice: (n: number) => n } });
  try {
    await waitForDrained(orm, 'both packages acked');
    const rows = await tasks(orm);
    assert.is(rows.length, 1);
    assert.is(rows[0]!.id, id);
  } finally {
    await cluster.stop();
  }
});

Retry('a package whose lock expires is claimed then, not at the next poll', async ({ orm }) => {
  await enqueue(em(orm), 'left', []);
  // Locked a moment ago by a cluster that died; no notification will come for it.
  await sql(orm, 'update ormq_queued set lock = now()');
  const { cluster } = await startCluster(orm, { poll: 60_000, timeout: 0.5, retry: 1, tasks: { left: () => 'picked up' } });
  try {
    const [row] = await waitForSaved<TaskRow>(orm, 1, 'the expired package', 8_000);
    assert.is(row!.result, 'picked up');
  } finally {
    await cluster.stop();
  }
});

Retry('an idle cluster with nothing locked or delayed claims once per poll, not every few ms', async ({ orm }) => {
  const pool = (await orm.em.getConnection().getNativeClient()) as unknown as { query(config: unknown, ...rest: unknown[]): unknown };
  const query = pool.query;
  let claims = 0;
  pool.query = function (this: unknown, config: unknown, ...rest: unknown[]) {
    if (String((config as { name?: unknown } | null)?.name ?? '').startsWith('ormq_claim')) claims++;
    return query.call(this, config, ...rest);
  };
  const { cluster } = await startCluster(orm, { poll: 200, tasks: {} });
  try {
    await sleep(1_000);
  } finally {
    await cluster.stop();
    pool.query = query;
  }
  // One claim at start and one a poll: about 6. Sleeping as if a lock had just expired, it made ~100.
  assert.ok(claims >= 2 && claims <= 10, `${claims} claims in one idle second at poll 200 ms`);
});

Retry(
  'an idle claim loop waits for what comes due: a delayed package already due is now, one running is not, a paused key waits for its resume',
  async ({ orm }) => {
    const pool = (await orm.em.getConnection().getNativeClient()) as unknown as {
      query(config: unknown): Promise<{ rows: { ms: number | null }[] }>;
    };
    const wait = async () => (await pool.query({ text: NEXT_EXPIRY.text, values: ['default', 60] })).rows[0]?.ms ?? null;
    assert.is(await wait(), null, 'nothing queued: the poll');
    // Came due after the claim that missed it: claimable now, not after a whole poll.
    await sql(orm, `insert into ormq_queued (key, payload, run_at) values ('default', '{}', now() - interval '1 second')`);
    assert.is(await wait(), 0);
    // Claimed and running: its lock's expiry, about a minute away.
    await sql(orm, 'update ormq_queued set lock = now()');
    const ms = (await wait())!;
    assert.ok(ms > 55_000 && ms <= 60_000, String(ms));
    await sql(orm, `insert into ormq_queued (key, payload, run_at) values ('default', '{}', now() + interval '5 seconds')`);
    const soon = (await wait())!;
    assert.ok(soon > 3_000 && soon <= 5_000, String(soon));
    await sql(orm, `insert into ormq_paused_key (key) values ('default')`);
    try {
      assert.is(await wait(), null, 'paused: a resume nudges the loop');
    } finally {
      await sql(orm, `delete from ormq_paused_key`);
    }
  },
);

Retry.run();

const Options = suite('cluster: options');

Options('retry must exceed timeout, and bad options name themselves', () => {
  const orm = {} as MikroORM;
  assert.throws(() => new Cluster(orm, { timeout: 60, retry: 60 }), /retry \(60s\) must exceed timeout \(60s\)/);
  assert.throws(() => new Cluster(orm, { workers: 0 }), /workers/);
  assert.throws(() => new Cluster(orm, { saveLimit: -2 }), /saveLimit/);
  assert.throws(() => new Cluster(orm, { saveLimitPer: 'user' as never }), /saveLimitPer/);
  assert.throws(() => new Cluster(orm, { timeZone: 'Mars/Olympus' }), /unknown time zone/);
  assert.throws(() => new Cluster(orm, { tasks: { f: 'not a function' as never } }), /tasks\.f/);
});

Options.run();
