/**
 * ormq under faults and bad input, on real PostgreSQL: cluster processes killed with SIGKILL, the
 * database restarted under running clusters and a mounted admin, expired locks and overrunning
 * tasks, schedules due at one instant under three processes, and the admin fed random and
 * malformed requests. `npm test` runs it small; `npm run test:chaos` (ORMQ_CHAOS=full) at full size.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { freePort, startEmbeddedPostgres, type EmbeddedServer } from '../fixtures/embedded-postgres.js';
import { ensureSchema, queueAdmin, schedule, type Cluster, type TaskContext } from '../src/index.js';
import { QUEUE_CHANNEL } from '../src/db/channels.js';
import { buildPackage } from '../src/producer.js';
import { freshOrm, initOrm, sql, waitFor } from './helpers/db.js';
import { AUTH, client, close, insertTask, serve, testClient } from './helpers/admin.js';
import { FuzzGenerator, LoopMonitor, prng, send, type FuzzResponse, type Ids } from './helpers/fuzz.js';
import { Fleet } from './helpers/fleet.js';
import { sleep, startCluster, waitForDrained } from './helpers/cluster.js';
import { adminSuite, dbSuite, type AdminCtx, type DbCtx } from './helpers/suites.js';

const FULL = process.env.ORMQ_CHAOS === 'full';
const SIZE = FULL
  ? {
      tasks: 10_000,
      produceSeconds: 40,
      killEvery: [2_000, 4_000],
      minKills: 12,
      timeout: 10,
      retry: 12,
      schedules: 300,
      dbRestarts: 3,
      restartTasks: 2_000,
      requests: 20_000,
    }
  : {
      tasks: 400,
      produceSeconds: 4,
      killEvery: [700, 1_200],
      minKills: 3,
      timeout: 3,
      retry: 4,
      schedules: 30,
      dbRestarts: 1,
      restartTasks: 200,
      requests: 2_000,
    };

/** Figures for the Reliability section of CONTRIBUTING.md, printed as each scenario ends. */
function report(scenario: string, figures: Record<string, unknown>): void {
  console.log(
    `\n  [chaos${FULL ? ' full' : ''}] ${scenario}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  );
}

/** ORMQ_CHAOS_ONLY=crash,locks runs only those scenarios. */
const ONLY = process.env.ORMQ_CHAOS_ONLY?.split(',');
function run(s: { run(): void }, scenario: string): void {
  if (!ONLY || ONLY.includes(scenario)) s.run();
}

const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

/** Many packages in one statement (with the NOTIFY enqueue sends), so producing never limits the run. */
async function enqueueMany(orm: MikroORM, items: { func: string; args: unknown[] }[]): Promise<string[]> {
  const payloads = items.map((i) => buildPackage(i.func, i.args).payload);
  await sql(
    orm,
    `with wake as (select pg_notify(?, 'default'))
     insert into ormq_queued (key, payload) select 'default', p from wake, jsonb_array_elements(?::jsonb) p`,
    [QUEUE_CHANNEL, JSON.stringify(payloads)],
  );
  return payloads.map((p) => p.id);
}

interface FleetCtx extends DbCtx {
  fleet: Fleet;
}

// ---------------------------------------------------------------------------------------------
const Crash = dbSuite<FleetCtx>('chaos: three cluster processes, SIGKILLed and restarted', {
  async setup(ctx) {
    await sql(
      ctx.orm,
      'create table chaos_runs (task_id char(32) not null, pid int not null, at timestamptz not null default clock_timestamp())',
    );
    ctx.fleet = new Fleet(ctx.db.url, {
      workers: 4,
      bulk: 10,
      timeout: SIZE.timeout,
      retry: SIZE.retry,
      ackFailures: true,
      saveLimit: 0,
    });
    await ctx.fleet.start(3);
  },
  teardown: (ctx) => ctx.fleet?.stop(),
});

Crash(`${SIZE.tasks} tasks while one process at a time is SIGKILLed: each ends with exactly one result row`, async ({ orm, fleet }) => {
  const expected = new Map<string, boolean>();
  let produced = false;
  const producer = (async () => {
    const batches = SIZE.produceSeconds * 4;
    for (let b = 0; b < batches; b++) {
      const size = Math.floor(SIZE.tasks / batches) + (b < SIZE.tasks % batches ? 1 : 0);
      const items = Array.from({ length: size }, (_, i) => ({ fail: (b * size + i) % 10 === 3, ms: random(0, 20) }));
      const ids = await enqueueMany(
        orm,
        items.map((i) => ({ func: 'chaos', args: [i.ms, i.fail] })),
      );
      ids.forEach((id, i) => expected.set(id, !items[i]!.fail));
      await sleep(250);
    }
    produced = true;
  })();

  // Kill while packages are produced (the pace of both is set so that most kills land then).
  while (!produced || fleet.kills < SIZE.minKills) {
    await sleep(random(SIZE.killEvery[0]!, SIZE.killEvery[1]!));
    const up = fleet.up;
    if (up.length > 1) await fleet.kill(up[random(0, up.length - 1)]!);
  }
  await producer;
  await fleet.settled();
  assert.is(expected.size, SIZE.tasks);

  // Packages a killed process held come back after `retry`; the survivors run them.
  await waitFor(
    async () => {
      const [r] = await sql<{ tasks: string; queued: string }>(
        orm,
        'select (select count(*) from ormq_task) as tasks, (select count(*) from ormq_queued) as queued',
      );
      return Number(r!.tasks) === SIZE.tasks && Number(r!.queued) === 0;
    },
    'every task saved and the queue empty',
    (SIZE.retry * 4 + (FULL ? 300 : 60)) * 1000,
  );

  const rows = await sql<{ id: string; success: boolean; attempt_count: number }>(orm, 'select id, success, attempt_count from ormq_task');
  assert.is(rows.length, SIZE.tasks);
  let wrong = 0;
  for (const r of rows) if (expected.get(r.id) !== r.success) wrong++;
  assert.is(wrong, 0, 'every task saved with the outcome it was built for, and no unknown task');
  const runs = await sql<{ task_id: string; n: number }>(orm, 'select task_id, count(*)::int as n from chaos_runs group by task_id');
  assert.is(runs.length, SIZE.tasks, 'every task ran');
  const twice = runs.filter((r) => r.n > 1);
  const maxRuns = Math.max(...runs.map((r) => r.n));
  report('crashes', {
    tasks: SIZE.tasks,
    processes: 3,
    kills: fleet.kills,
    restarts: fleet.restarts,
    'tasks run more than once': twice.length,
    'extra runs': twice.reduce((a, r) => a + r.n - 1, 0),
    'most runs of one task': maxRuns,
    'rows with attempt_count > 1': rows.filter((r) => r.attempt_count > 1).length,
    lost: SIZE.tasks - rows.length,
  });
});

Crash(`${SIZE.schedules} schedules due at the same instant under three processes: each due run happens once`, async ({ orm, fleet }) => {
  await sql(orm, 'truncate chaos_runs, ormq_task, ormq_queued, ormq_schedule');
  // Every schedule gets the same next_run, a moment ahead on the database's clock.
  const [{ at }] = (await sql<{ at: string }>(orm, "select (date_trunc('second', now()) + interval '3 seconds') as at")) as [
    { at: string },
  ];
  const kinds = ['I', 'O', 'R'] as const;
  const values: string[] = [];
  const params: unknown[] = [];
  for (let i = 0; i < SIZE.schedules; i++) {
    const kind = kinds[i % 3]!;
    // I: every hour, forever; O: once, then deleted; R: every minute, 3 repeats, 2 of them missed (catch-up).
    const type = kind === 'R' ? 'I' : kind;
    const minutes = kind === 'I' ? 60 : kind === 'R' ? 1 : null;
    const repeats = kind === 'R' ? 3 : -1;
    const offset = kind === 'R' ? -120 : 0;
    values.push(`(?, 'chaos', '[0, false]'::jsonb, '{}'::jsonb, ?, ?, ?, ?::timestamptz + make_interval(secs => ?))`);
    params.push(`s${i}-${kind}`, type, minutes, repeats, at, offset);
  }
  await sql(
    orm,
    `insert into ormq_schedule (name, func, args, kwargs, schedule_type, minutes, repeats, next_run) values ${values.join(', ')}`,
    params,
  );
  await sql(orm, "select pg_notify('ormq_schedule', '')");
  const expectedRuns = SIZE.schedules / 3 + SIZE.schedules / 3 + (SIZE.schedules / 3) * 3;
  await waitFor(
    async () => {
      const [r] = await sql<{ n: string; q: string }>(
        orm,
        'select (select count(*) from ormq_task) as n, (select count(*) from ormq_queued) as q',
      );
      return Number(r!.n) >= expectedRuns && Number(r!.q) === 0;
    },
    `${expectedRuns} scheduled runs`,
    FULL ? 180_000 : 60_000,
  );
  // Anything due twice would have been enqueued by now as well.
  await sleep(500);
  const perGroup = await sql<{ group: string; n: number }>(orm, 'select "group", count(*)::int as n from ormq_task group by "group"');
  const counts = new Map(perGroup.map((r) => [r.group, r.n]));
  for (let i = 0; i < SIZE.schedules; i++) {
    const kind = kinds[i % 3]!;
    assert.is(counts.get(`s${i}-${kind}`), kind === 'R' ? 3 : 1, `runs of s${i}-${kind}`);
  }
  const [{ n: executions }] = (await sql<{ n: number }>(orm, 'select count(*)::int as n from chaos_runs')) as [{ n: number }];
  assert.is(executions, expectedRuns, 'each run executed once');
  const left = await sql<{ name: string; repeats: number; next_run: string }>(
    orm,
    'select name, repeats, next_run from ormq_schedule order by id',
  );
  assert.is(left.filter((s) => s.name.endsWith('-O')).length, 0, 'Once schedules deleted after their run');
  for (const s of left) {
    if (s.name.endsWith('-I')) {
      assert.is(s.repeats, -2, s.name);
      assert.is(new Date(s.next_run).getTime(), new Date(at).getTime() + 3_600_000, s.name);
    } else assert.is(s.repeats, 0, s.name);
  }
  const pids = await sql<{ n: number }>(orm, 'select count(distinct pid)::int as n from chaos_runs');
  report('schedules', {
    schedules: SIZE.schedules,
    'due runs': expectedRuns,
    'runs enqueued': perGroup.reduce((a, r) => a + r.n, 0),
    processes: 3,
    'processes that ran them': pids[0]!.n,
  });
});

run(Crash, 'crash');

// ---------------------------------------------------------------------------------------------
const BEAT = 0.25;
interface BeatCtx extends AdminCtx {
  fleet: Fleet;
}
const Beats = adminSuite<BeatCtx>('chaos: heartbeats of SIGKILLed cluster processes', {
  mount: {},
  clear: null,
  async setup(ctx) {
    ctx.fleet = new Fleet(ctx.db.url, { workers: 3, bulk: 3, heartbeat: BEAT, timeout: SIZE.timeout, retry: SIZE.retry, saveLimit: 0 });
    await ctx.fleet.start(2);
  },
  teardown: (ctx) => ctx.fleet?.stop(),
});

Beats(
  `${SIZE.minKills} kills: not responding within three beats, its packages stuck until retry frees them, its restart a new row`,
  async ({ orm, api, fleet }) => {
    const rounds = SIZE.minKills;
    const late: number[] = [];
    let stuckSeen = 0;
    for (let round = 0; round < rounds; round++) {
      const victim = fleet.members[0]!;
      const pid = victim.child.pid!;
      const started = victim.lines.length;
      const payloads = Array.from({ length: 6 }, () => buildPackage('announce', [(SIZE.timeout - 1) * 1000]).payload);
      await sql(orm, `insert into ormq_queued (key, payload) select 'default', p from jsonb_array_elements(?::jsonb) p`, [
        JSON.stringify(payloads),
      ]);
      await sql(orm, "select pg_notify(?, 'default')", [QUEUE_CHANNEL]);
      await waitFor(() => victim.lines.slice(started).some((l) => l.startsWith('started ')), 'the victim to run a task', 30_000);
      const clusters = async () => (await api.get('api/clusters')).json.clusters as { id: string; pid: number; state: string }[];
      const row = (await clusters()).find((c) => c.pid === pid)!;
      assert.ok(row, `process ${pid} has a row`);

      await fleet.kill(0);
      const killed = Date.now();
      await waitFor(
        async () => (await clusters()).find((c) => c.id === row.id)?.state === 'not responding',
        'the killed process to show as not responding',
        30_000,
      );
      late.push(Date.now() - killed);
      const stuck = (await api.get('api/queued?stuck=yes')).json.rows as { id: number }[];
      assert.ok(stuck.length > 0, 'the packages the killed process held show as stuck');
      stuckSeen += stuck.length;
      const held = await sql(orm, 'select 1 from ormq_queued where locked_by = ?', [row.id]);
      assert.is(stuck.length, held.length, 'stuck = exactly the packages it held');

      await waitFor(
        async () => !(await sql(orm, 'select 1 from ormq_queued')).length,
        'retry to free and run them',
        (SIZE.retry * 3 + 30) * 1000,
      );
      assert.equal((await api.get('api/queued?stuck=yes')).json.rows, []);
      await fleet.settled();
      const after = await clusters();
      const fresh = after.find((c) => c.pid === fleet.members[0]!.child.pid);
      assert.ok(fresh && fresh.id !== row.id && fresh.state === 'running', 'the restart is a new row');
      assert.is(after.find((c) => c.id === row.id)?.state, 'not responding', 'the dead row stays until pruned');
    }
    // Three beats after the last one, the last one at most a beat before the kill; the rest is polling and load.
    const bound = 3 * BEAT * 1000 + 1_000;
    assert.ok(
      late.every((ms) => ms <= bound),
      `not responding within ${bound} ms of each kill: ${late.join(', ')}`,
    );
    report('heartbeats', { kills: rounds, beatMs: BEAT * 1000, notRespondingAfterMs: late.join('/'), stuckPackages: stuckSeen });
  },
);

run(Beats, 'heartbeats');

// ---------------------------------------------------------------------------------------------
const Locks = dbSuite('chaos: expired locks and tasks past their timeout', { clear: 'truncate ormq_task, ormq_queued' });

Locks('a package whose lock expired runs again; one whose lock is fresh waits until it expires', async ({ orm }) => {
  const [dead, alive] = await enqueueMany(orm, [
    { func: 'f', args: ['dead'] },
    { func: 'f', args: ['alive'] },
  ]);
  // As a crashed cluster leaves them: one locked an hour ago, one just now.
  await sql(orm, "update ormq_queued set lock = now() - interval '1 hour' where payload->>'id' = ?", [dead]);
  await sql(orm, "update ormq_queued set lock = now() where payload->>'id' = ?", [alive]);
  const [{ lock }] = (await sql<{ lock: string }>(orm, "select lock from ormq_queued where payload->>'id' = ?", [alive])) as [
    { lock: string },
  ];
  const { cluster } = await startCluster(orm, { timeout: 1, retry: 2, tasks: { f: (x: string) => x } });
  try {
    await waitFor(() => sql(orm, 'select 1 from ormq_task where id = ?', [dead]).then((r) => r.length === 1), 'the expired package to run');
    const [row] = await waitFor(
      () =>
        sql<{ started: string; result: string }>(orm, 'select started, result from ormq_task where id = ?', [alive]).then((r) =>
          r.length ? r : null,
        ),
      'the fresh package to run once its lock expired',
    );
    assert.is(row!.result, 'alive');
    assert.ok(new Date(row!.started).getTime() >= new Date(lock).getTime() + 2_000 - 50, 'not taken before its lock expired');
    assert.equal(await sql(orm, 'select id from ormq_queued'), []);
  } finally {
    await cluster.stop();
  }
});

Locks('a task still running past its timeout is not started again beside itself when its lock expires', async ({ orm }) => {
  let running = 0;
  let most = 0;
  let starts = 0;
  const { cluster } = await startCluster(orm, {
    timeout: 0.3,
    retry: 0.6,
    maxAttempts: 3,
    tasks: {
      // Ignores this.signal, as careless task code does: it keeps going long after its timeout.
      async stubborn() {
        starts++;
        running++;
        most = Math.max(most, running);
        await sleep(1_200);
        running--;
        return 'too late';
      },
    },
  });
  try {
    const [id] = await enqueueMany(orm, [{ func: 'stubborn', args: [] }]);
    const [first] = await waitFor(
      () => sql<{ result: { error: string } }>(orm, 'select result from ormq_task where id = ?', [id]).then((r) => (r.length ? r : null)),
      'the timeout to be saved',
    );
    assert.is(first!.result.error, 'TimeoutError', 'the timeout is saved while the function still runs');
    await waitForDrained(orm, 'three attempts', 30_000);
    const [last] = await sql<{ attempt_count: number; success: boolean }>(
      orm,
      'select attempt_count, success from ormq_task where id = ?',
      [id],
    );
    assert.equal(last, { attempt_count: 3, success: false });
    assert.is(starts, 3);
    assert.is(most, 1, 'two attempts of one task never ran at the same time');
  } finally {
    await cluster.stop();
  }
});

run(Locks, 'locks');

// ---------------------------------------------------------------------------------------------
interface RestartCtx {
  dir: string;
  port: number;
  pg: EmbeddedServer;
  orms: MikroORM[];
  clusters: Cluster[];
  server: Server;
  url: string;
  clientDir: ReturnType<typeof testClient>;
}
const Restart = suite<RestartCtx>('chaos: the database restarts under running clusters and a mounted admin');
const pgFlags = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];
Restart.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'ormq-chaos-pg-'));
  chmodSync(ctx.dir, 0o755); // PostgreSQL runs as another user when the tests run as root
  ctx.port = await freePort();
  ctx.pg = await startEmbeddedPostgres({ dir: join(ctx.dir, 'data'), persistent: true, port: ctx.port, flags: pgFlags });
  ctx.orms = [await initOrm(ctx.pg.url), await initOrm(ctx.pg.url)];
  await ensureSchema(ctx.orms[0]!);
  ctx.clusters = [];
  ctx.clientDir = testClient();
  const { server, url } = await serve(queueAdmin(ctx.orms[0]!, { clientDir: ctx.clientDir.dir }) as never);
  ctx.server = server;
  ctx.url = url;
});
Restart.after(async (ctx) => {
  for (const c of ctx.clusters) await c.stop();
  if (ctx.server) await close(ctx.server);
  for (const o of ctx.orms ?? []) await o.close(true);
  await ctx.pg?.stop();
  ctx.clientDir?.cleanup();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

Restart(`clusters and the admin recover without a restart, LISTEN resumes, nothing is lost`, async (ctx) => {
  const [orm] = ctx.orms as [MikroORM];
  const runs = new Map<string, number>();
  const logs: string[] = [];
  for (const o of ctx.orms) {
    const { cluster } = await startCluster(o, {
      // Far longer than the test: every wake-up after the restart must come from LISTEN/NOTIFY.
      poll: 300_000,
      timeout: 2,
      retry: 3,
      ackFailures: true,
      saveLimit: 0,
      log: (level, message) => void (level === 'warn' || level === 'error' ? logs.push(`${level}: ${message}`) : 0),
      tasks: {
        async work(this: TaskContext, ms: number) {
          runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
          await sleep(ms);
          return ms;
        },
      },
    });
    ctx.clusters.push(cluster);
  }
  const api = client(`${ctx.url}/`);
  const ids: string[] = [];
  const saved = async () => Number((await sql<{ n: string }>(orm, 'select count(*) as n from ormq_task'))[0]!.n);
  const outage: Record<number, number> = {};
  let recoveryMs = 0;
  for (let r = 0; r < SIZE.dbRestarts; r++) {
    const batch = Array.from({ length: SIZE.restartTasks }, () => ({ func: 'work', args: [random(0, 40)] }));
    ids.push(...(await enqueueMany(orm, batch)));
    // Stop the server while tasks of this batch are running and others wait.
    const before = ids.length - SIZE.restartTasks;
    await waitFor(async () => (await saved()) >= before + SIZE.restartTasks / 10, 'the batch under way', 60_000);
    // The admin logs each failed request while the database is away; that noise is expected here.
    const consoleError = console.error;
    console.error = () => {};
    try {
      await ctx.pg.stop();
      for (let i = 0; i < 5; i++) {
        const answer = await api.get('api/overview');
        outage[answer.status] = (outage[answer.status] ?? 0) + 1;
        if (answer.status === 503) assert.is(answer.headers.get('retry-after'), '5');
      }
      await sleep(1_000);
      ctx.pg = await startEmbeddedPostgres({ dir: join(ctx.dir, 'data'), persistent: true, port: ctx.port, flags: pgFlags });
      const back = Date.now();
      await waitFor(async () => (await api.get('api/overview')).status === 200, 'the admin to answer again', 60_000);
      recoveryMs = Math.max(recoveryMs, Date.now() - back);
    } finally {
      console.error = consoleError;
    }
  }
  // Packages whose results could not be saved during the outage stay locked and run again after retry.
  await waitFor(
    async () => (await saved()) === ids.length && (await sql(orm, 'select 1 from ormq_queued')).length === 0,
    'every task saved after the restarts',
    120_000,
  );
  // Both LISTEN connections are back; with a 5-minute poll only a notification runs a new task.
  await waitFor(
    () => sql(orm, "select 1 from pg_stat_activity where query ilike 'listen %'").then((r) => r.length === 2),
    'both LISTEN connections',
    30_000,
  );
  const [probe] = await enqueueMany(orm, [{ func: 'work', args: [0] }]);
  const notified = Date.now();
  await waitFor(() => sql(orm, 'select 1 from ormq_task where id = ?', [probe]).then((r) => r.length === 1), 'the notified task', 20_000);
  const notifiedMs = Date.now() - notified;
  const s = await schedule(orm.em.fork(), {
    name: 'after-restart',
    func: 'work',
    args: [0],
    scheduleType: 'O',
    repeats: 1,
    nextRun: new Date(Date.now() + 300),
  });
  await waitFor(
    () => sql(orm, `select 1 from ormq_task where "group" = 'after-restart'`).then((r) => r.length === 1),
    'the schedule after the restart',
    20_000,
  );

  const rows = await sql<{ id: string; success: boolean }>(orm, 'select id, success from ormq_task where id in (?)', [ids]);
  assert.equal(Object.keys(outage), ['503'], `while the database is down the admin answers 503, got ${JSON.stringify(outage)}`);
  assert.is(rows.length, ids.length, 'no task lost');
  assert.ok(
    rows.every((r) => r.success),
    'every task succeeded',
  );
  for (const id of ids) assert.ok((runs.get(id) ?? 0) >= 1, `task ${id} ran`);
  const detail = await api.get(`api/scheduled/${s.id}`);
  assert.is(detail.status, 200);
  const del = await api.post('api/successful/actions/delete', { ids: [probe] });
  assert.equal(del.json, { done: 1, remaining: 0 }, 'the admin writes again');
  const twice = ids.filter((id) => runs.get(id)! > 1).length;
  report('database restart', {
    restarts: SIZE.dbRestarts,
    tasks: ids.length,
    lost: ids.length - rows.length,
    'tasks run more than once': twice,
    'admin answers while down': JSON.stringify(outage),
    'admin back after (ms)': recoveryMs,
    'notified task saved after (ms)': notifiedMs,
    'cluster warnings': logs.length,
  });
});

run(Restart, 'restart');

// ---------------------------------------------------------------------------------------------
interface FuzzCtx {
  writable: Awaited<ReturnType<typeof freshOrm>>;
  guarded: Awaited<ReturnType<typeof freshOrm>>;
  root: string;
  servers: Server[];
}
const Fuzz = suite<FuzzCtx>('chaos: the admin under random and malformed requests');
Fuzz.before(async (ctx) => {
  ctx.writable = await freshOrm();
  ctx.guarded = await freshOrm();
  // A secret beside the client folder: no path may reach it.
  ctx.root = mkdtempSync(join(tmpdir(), 'ormq-fuzz-'));
  mkdirSync(join(ctx.root, 'dist'));
  writeFileSync(join(ctx.root, 'secret.txt'), 'TOP-SECRET-CONTENT');
  writeFileSync(
    join(ctx.root, 'dist', 'index.html'),
    '<!doctype html><title>ormq</title><script type="module" src="./app-AAAAAAAA.js"></script>',
  );
  writeFileSync(join(ctx.root, 'dist', 'app-AAAAAAAA.js'), `export const app = 1;\n${'// padding\n'.repeat(200)}`);
  ctx.servers = [];
});
Fuzz.after(async (ctx) => {
  for (const s of ctx.servers) await close(s);
  await ctx.writable?.close();
  await ctx.guarded?.close();
  if (ctx.root) rmSync(ctx.root, { recursive: true, force: true });
});

/** Rows of every kind, with names that are hard on SQL, LIKE and HTML. */
async function seedRows(orm: MikroORM, n: number): Promise<Ids> {
  const names = ["it's", '100%', 'a_b', 'back\\slash', '<b>bold</b>', '日本語', 'plain'];
  const tasks: string[] = [];
  for (let i = 0; i < n; i++) {
    tasks.push(
      await insertTask(orm, {
        name: `${names[i % names.length]}-${i}`,
        group: names[(i + 3) % names.length],
        cluster: i % 2 ? 'default' : "o'brien",
        success: i % 3 !== 0,
        result: i % 3 ? i : { error: 'Error', message: 'boom' },
        args: i % 5 ? [i] : ['z'.repeat(10_000)],
      }),
    );
  }
  const schedules: number[] = [];
  for (let i = 0; i < Math.ceil(n / 3); i++) {
    const s = await schedule(orm.em.fork(), {
      name: `${names[i % names.length]}-${i}-${Math.random().toString(36).slice(2, 8)}`,
      func: 'work',
      scheduleType: (['D', 'I', 'C', 'O'] as const)[i % 4]!,
      minutes: i % 4 === 1 ? 5 : null,
      cron: i % 4 === 2 ? '*/5 * * * *' : null,
      nextRun: new Date(Date.now() + 3_600_000 * (i - 2)),
    });
    schedules.push(s.id);
  }
  await enqueueMany(
    orm,
    Array.from({ length: Math.ceil(n / 2) }, (_, i) => ({ func: 'work', args: [i, names[i % names.length]] })),
  );
  const queued = (await sql<{ id: string }>(orm, 'select id from ormq_queued order by id desc limit ?', [Math.ceil(n / 2)])).map((r) =>
    Number(r.id),
  );
  return { tasks, schedules, queued };
}

/** Everything the guarded handlers could change, as one digest. */
async function digest(orm: MikroORM): Promise<string> {
  const [r] = await sql<{ d: string }>(
    orm,
    `select md5(concat(
       (select string_agg(t::text, '|' order by id) from ormq_task t),
       (select string_agg(s::text, '|' order by id) from ormq_schedule s),
       (select string_agg(q::text, '|' order by id) from ormq_queued q),
       (select count(*) from ormq_admin_log))) as d`,
  );
  return r!.d;
}

function collectGarbage(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const STACK = /\n\s+at\s|node_modules|\.ts:\d+|\.js:\d+/;

Fuzz(
  `${SIZE.requests} random and malformed requests: no 5xx, no stack, no cross-site or spoofed write, nothing leaked, memory flat, event loop never blocked`,
  async (ctx) => {
    const W = ctx.writable.orm;
    const G = ctx.guarded.orm;
    const clientDir = join(ctx.root, 'dist');
    let writableIds = await seedRows(W, 30);
    const guardedIds = await seedRows(G, 30);
    const before = await digest(G);
    const handlers = {
      writable: queueAdmin(W, { clientDir, tasks: ['work', 'mail.send'] }),
      readOnly: queueAdmin(G, { clientDir, readOnly: true }),
      authorize: queueAdmin(G, { clientDir, authorize: (_req, { action }) => action === 'view' }),
    };
    const targets: { name: keyof typeof handlers; url: URL; gen: FuzzGenerator }[] = [];
    const seed = Number(process.env.ORMQ_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    for (const [i, name] of (['writable', 'readOnly', 'authorize'] as const).entries()) {
      const { server, url } = await serve(handlers[name] as never);
      ctx.servers.push(server);
      const u = new URL(url);
      targets.push({ name, url: u, gen: new FuzzGenerator(seed + i, u.host, () => (name === 'writable' ? writableIds : guardedIds)) });
    }
    const pickTarget = prng(seed ^ 0x5bd1e995);

    const problems: string[] = [];
    const statuses: Record<number, number> = {};
    const socketErrors: Record<string, number> = {};
    let unhandled = 0;
    let serverErrors = 0;
    let writes = 0;
    const onUnhandled = (reason: unknown) => {
      unhandled++;
      if (problems.length < 30) problems.push(`unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`);
    };
    process.on('unhandledRejection', onUnhandled);
    const consoleError = console.error;
    console.error = (...args: unknown[]) => {
      serverErrors++;
      if (problems.length < 30)
        problems.push(
          `server logged: ${args
            .map((a) => String((a as Error)?.stack ?? a))
            .join(' ')
            .slice(0, 600)}`,
        );
    };
    const agents = targets.map(() => new Agent({ keepAlive: true, maxSockets: 8 }));
    const heap: number[] = [];
    // Every handler runs in this process: a check that blocks the loop shows up here. Started after
    // the warm-up's deliberate full GC, which is not the admin's doing.
    const loop = new LoopMonitor();
    let sent = 0;
    const warmUp = Math.floor(SIZE.requests / 10);
    try {
      const worker = async () => {
        while (sent < SIZE.requests) {
          const n = ++sent;
          if (n % 1_000 === 0) writableIds = await seedRows(W, 10);
          const t = pickTarget() < 0.7 ? 0 : pickTarget() < 0.5 ? 1 : 2;
          const target = targets[t]!;
          const r = loop.generate(() => target.gen.next());
          const what = () =>
            `${target.name} ${r.method} ${r.path.slice(0, 300)} ${JSON.stringify(r.headers).slice(0, 200)} body=${r.body?.subarray(0, 200).toString()}`;
          let res: FuzzResponse;
          try {
            res = await send(target.url, agents[t]!, r);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
            socketErrors[code] = (socketErrors[code] ?? 0) + 1;
            // A body over the limit may be cut off mid-upload after the 413; nothing else may fail.
            if (!r.large && !r.oversized && problems.length < 30) problems.push(`socket error ${code}: ${what()}`);
            continue;
          }
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          if (res.status < 300 && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)) writes++;
          const fail = (why: string) =>
            problems.length < 30 && problems.push(`${why} → ${res.status} ${res.text.slice(0, 300)}\n    ${what()}`);
          // A busy admin turns the surplus away by design (maxConcurrentReads): a 503 saying so, with Retry-After.
          const busy = res.status === 503 && /maxConcurrentReads/.test(res.text) && res.headers['retry-after'] !== undefined;
          if (res.status >= 500 && !busy) fail('5xx');
          if (res.status >= 400 && STACK.test(res.text)) fail('stack in an error');
          if (/TOP-SECRET/.test(res.text)) fail('file outside the client folder served');
          if (r.hostile && !r.oversized && res.status !== 403) fail('cross-site mutation not refused');
          // Without authorize only requests with the access token are served, whatever their Host or
          // proxy headers, except api/health, which load balancers ask and which says nothing but status
          // to a caller it does not open to. The path may reach it in any encoding, so its answer tells.
          const bare = /^\{"ok":(true|false)\}$/.test(res.text);
          if (r.tokenless && target.name !== 'authorize' && !r.oversized && !bare && res.status !== 403)
            fail('request without the access token not refused');
          if (target.name !== 'writable' && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) && res.status < 300)
            fail('guarded handler allowed a mutation');
          if (res.status >= 400 && r.method !== 'HEAD' && /^application\/json/.test(String(res.headers['content-type']))) {
            let body: { error?: { status?: number } } | undefined;
            try {
              body = JSON.parse(res.text);
            } catch {
              body = undefined;
            }
            if (body?.error?.status !== res.status) fail('error body is not JSON carrying its status');
          }
          if (n === warmUp) {
            heap.push(collectGarbage());
            loop.start();
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      loop.stop();

      heap.push(collectGarbage());
    } finally {
      process.off('unhandledRejection', onUnhandled);
      console.error = consoleError;
      for (const a of agents) a.destroy();
    }
    // A health flood on every handler, with and without the token: all answered, by one check a second.
    const flood = await Promise.all(
      targets.flatMap((t) =>
        Array.from({ length: 100 }, (_, i) =>
          fetch(new URL('/api/health', t.url), { headers: i % 2 ? AUTH : {} }).then(async (r) => ({
            t: t.name,
            i,
            status: r.status,
            body: await r.text(),
          })),
        ),
      ),
    );
    for (const f of flood) {
      assert.ok(f.status === 200 || f.status === 503, `${f.t} health: ${f.status} ${f.body}`);
      // Without the token (or to an authorize that refuses the probe's request) nothing but the status.
      if (f.i % 2 === 0 && f.t !== 'authorize') assert.match(f.body, /^\{"ok":(true|false)\}$/);
    }
    // Still serving, on every handler.
    for (const t of targets) {
      const meta = await fetch(new URL('/api/meta', t.url), { headers: AUTH });
      assert.is(meta.status, 200, `${t.name} still answers`);
      assert.is((await fetch(new URL('/api/failed', t.url), { headers: AUTH })).status, 200);
    }
    const grew = (heap[1]! - heap[0]!) / 1024 / 1024;
    report('admin fuzz', {
      requests: SIZE.requests,
      seed,
      statuses: JSON.stringify(statuses),
      'writes accepted': writes,
      'health flood (answered / asked)': `${flood.length} / ${targets.length * 100}`,
      'socket errors (bodies over 1 MB cut off)': JSON.stringify(socketErrors),
      '5xx': Object.entries(statuses)
        .filter(([s]) => Number(s) >= 500)
        .reduce((a, [, n]) => a + n, 0),
      'unhandled rejections': unhandled,
      'heap after warm-up (MB)': (heap[0]! / 1024 / 1024).toFixed(1),
      'heap growth (MB)': grew.toFixed(1),
      'event-loop delay p99 with request making / max without it (ms)': `${loop.p99.toFixed(1)} / ${loop.max.toFixed(1)}`,
      'longest stall spent computing (ms)': loop.busiest.toFixed(1),
      'load average': loop.load.toFixed(1),
    });
    assert.equal(problems, [], `seed ${seed}`);
    assert.is(unhandled, 0);
    assert.is(serverErrors, 0);
    assert.is(await digest(G), before, 'readOnly and authorize handlers changed nothing');
    assert.ok(grew < 24, `heap grew by ${grew.toFixed(1)} MB over ${SIZE.requests - warmUp} requests`);
    assert.ok(loop.busiest < 100, `the event loop was blocked for ${loop.busiest.toFixed(1)} ms of computing`);
    // On a machine with more runnable processes than cores, the loop also waits for a core: that
    // delay is the machine's, and only the computing part above is held to the bound.
    if (!loop.oversubscribed) assert.ok(loop.max < 100, `the event loop was delayed by up to ${loop.max.toFixed(1)} ms`);
  },
);

run(Fuzz, 'fuzz');

// ---------------------------------------------------------------------------------------------
const Literal = adminSuite('chaos: admin input PostgreSQL cannot take, and literal search on every page', { mount: {} });

Literal('a NUL character or an unpaired surrogate is a 400 naming the field, never a 500, and writes nothing', async ({ orm, url }) => {
  const api = client(url);
  const s = await schedule(orm.em.fork(), { name: 'keep', func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  await enqueueMany(orm, [{ func: 'work', args: [] }]);
  const [{ id: qid }] = (await sql<{ id: string }>(orm, 'select id from ormq_queued')) as [{ id: string }];
  for (const [param, value] of [
    ['search', 'a\u0000b'],
    ['group', '\u0000'],
    ['cluster', 'x\u0000'],
    ['cursor', '\u0000'],
  ] as const) {
    for (const page of ['successful', 'failed', 'scheduled', 'queued']) {
      const r = await api.get(`api/${page}?${param}=${encodeURIComponent(value)}`);
      assert.is(r.status, 400, `${page} ${param}: ${r.text}`);
      assert.ok(r.json.error.fields[param], `${page}: the error names ${param}`);
    }
  }
  const key = await api.get(`api/queued/count?key=${encodeURIComponent('a\u0000')}`);
  assert.is(key.status, 400, key.text);
  const base = { func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000).toISOString() };
  const bodies: [string, string, Record<string, unknown>, string][] = [
    ['POST', 'api/scheduled', { ...base, name: 'nul\u0000name' }, 'name'],
    ['POST', 'api/scheduled', { ...base, args: ['ok', { deep: ['\u0000'] }] }, 'args'],
    ['POST', 'api/scheduled', { ...base, kwargs: { half: '\ud800' } }, 'kwargs'],
    ['POST', 'api/scheduled', { ...base, kwargs: { ['k\u0000']: 1 } }, 'kwargs'],
    ['PUT', `api/scheduled/${s.id}`, { ...base, version: 1, name: 'x\udc00' }, 'name'],
    ['PATCH', `api/queued/${qid}`, { key: '\u0000' }, 'key'],
    ['POST', 'api/failed/actions/delete', { all: true, filter: { search: '\u0000' } }, 'filter'],
  ];
  for (const [method, path, body, field] of bodies) {
    const r = await api.call(method, path, body);
    assert.is(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${r.text}`);
    assert.ok(r.json.error.fields?.[field], `${method} ${path}: the error names ${field}: ${r.text}`);
  }
  const [after] = await sql<{ name: string; version: number }>(orm, 'select name, version from ormq_schedule');
  assert.equal(after, { name: 'keep', version: 1 });
  assert.equal(
    (await sql<{ key: string }>(orm, 'select key from ormq_queued')).map((r) => r.key),
    ['default'],
  );
  assert.equal(await sql(orm, 'select 1 from ormq_admin_log'), []);
  // Paired surrogates (emoji) are ordinary text.
  const ok = await api.post('api/scheduled', { ...base, name: 'party 🎉' });
  assert.is(ok.status, 201, ok.text);
});

Literal('%, _, \\ and quotes are literal in the search of Scheduled and Queued tasks and in the queue key filter', async ({ orm, url }) => {
  const api = client(url);
  const names = ['100%', '1000', 'a_b', 'axb', 'back\\slash', 'backXslash', "it's", 'say "hi"'];
  for (const name of names) {
    await schedule(orm.em.fork(), { name, func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  }
  await sql(
    orm,
    `insert into ormq_queued (key, payload) select k, jsonb_build_object('id', md5(n), 'name', n, 'func', 'work', 'args', '[]'::jsonb, 'kwargs', '{}'::jsonb)
       from unnest(?::text[], ?::text[]) as x(n, k)`,
    [`{${names.map((n) => JSON.stringify(n)).join(',')}}`, `{${names.map((n) => JSON.stringify(`key-${n}`)).join(',')}}`],
  );
  for (const page of ['scheduled', 'queued']) {
    const search = async (q: string) =>
      ((await api.get(`api/${page}?search=${encodeURIComponent(q)}`)).json.rows as { name: string }[]).map((r) => r.name).sort();
    assert.equal(await search('%'), ['100%'], page);
    assert.equal(await search('_'), ['a_b'], page);
    assert.equal(await search('\\'), ['back\\slash'], page);
    assert.equal(await search("'"), ["it's"], page);
    assert.equal(await search('"hi"'), ['say "hi"'], page);
    const count = await api.get(`api/${page}/count?search=${encodeURIComponent('_')}`);
    assert.is(count.json.count, 1, `${page} count`);
  }
  const byKey = await api.get(`api/queued?key=${encodeURIComponent("key-it's")}`);
  assert.equal(
    byKey.json.rows.map((r: { name: string }) => r.name),
    ["it's"],
  );
  const wildKey = await api.get(`api/queued?key=${encodeURIComponent('key-%')}`);
  assert.equal(wildKey.json.rows, [], 'the key filter is an exact match, not a pattern');
});

run(Literal, 'literal');
