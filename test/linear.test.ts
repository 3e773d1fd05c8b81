/**
 * Input checks take time linear in their input: a value built to make a check backtrack (a long
 * run of backslashes) goes through the checks of enqueue, the admin and a task's result in well
 * under 100 ms.
 */
import * as assert from 'uvu/assert';
import { enqueue } from '../src/index.js';
import { isStorableJson } from '../src/storable.js';
import { buildPackage } from '../src/producer.js';
import { sql, waitFor } from './helpers/db.js';
import { adminSuite, type AdminCtx, type Api } from './helpers/suites.js';
import { startCluster } from './helpers/cluster.js';

interface Ctx extends AdminCtx {
  small: Api;
  /** What the `small` admin spent on each request, from its head arriving to its answer sent. */
  handled: Spent[];
}

const BACKSLASHES = '\\'.repeat(500_000);
/** Ends in "x", so no escape follows the run: the case that made the old regex backtrack on every backslash. */
const HOSTILE = `${BACKSLASHES}x`;
const BOUND_MS = 100;

/**
 * Time spent, as CPU time (ms) and wall time. The bound is on CPU time: on a machine with more
 * runnable processes than cores, wall time also counts the waits for a core, which are not the
 * check's; on an idle machine the two are the same for this synchronous work.
 */
interface Spent {
  cpu: number;
  wall: number;
}

function meter(): () => Spent {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { cpu: (used.user + used.system) / 1000, wall: performance.now() - wall };
  };
}

const show = (t: Spent) => `${t.cpu.toFixed(1)} ms of CPU (${t.wall.toFixed(1)} ms of wall time)`;

async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; spent: Spent }> {
  const stop = meter();
  const value = await fn();
  return { value, spent: stop() };
}

const L = adminSuite<Ctx>('input checks are linear', {
  async setup(ctx) {
    // Arguments this large are refused by default (argsLimit): `api` raises it so the value is stored.
    ctx.api = (await ctx.start({ argsLimit: 2 * 1024 * 1024 })).api;
    ctx.handled = [];
    const small = await ctx.start({}, (admin) => (req, res) => {
      const stop = meter();
      res.on('finish', () => ctx.handled.push(stop()));
      admin(req, res);
    });
    ctx.small = small.api;
  },
});

L('isStorableJson finds NUL and lone surrogates, escaped or not, and nothing else', () => {
  const cases: [string, boolean][] = [
    [JSON.stringify(['\u0000']), false],
    [JSON.stringify(['a\ud800']), false],
    [JSON.stringify(['\udc00x']), false],
    [JSON.stringify({ ['k\u0000']: 1 }), false],
    [JSON.stringify(['\\\u0000']), false],
    [JSON.stringify(['🙂']), true],
    ['["\\ud83d\\ude42"]', true],
    ['["\\ude42\\ud83d"]', false],
    ['["\\uD800"]', false],
    [JSON.stringify(['\\u0000']), true],
    [JSON.stringify(['\\\\u0000']), true],
    ['["\\u00e9"]', true],
    [JSON.stringify([HOSTILE]), true],
    [JSON.stringify([`${BACKSLASHES}\u0000`]), false],
  ];
  for (const [text, storable] of cases) assert.is(isStorableJson(text), storable, text.slice(0, 40));
});

/**
 * The checks are timed apart from the write: MikroORM's em.execute escapes parameters into the SQL
 * text one character at a time, which costs 80-200 ms for any 1 MB value on this machine, checked or not.
 */
L(`500,000 backslashes through enqueue's checks take under ${BOUND_MS} ms, and the value is stored intact`, async ({ orm }) => {
  buildPackage('work', [HOSTILE]);
  const { spent } = await timed(() => buildPackage('work', [HOSTILE]));
  assert.ok(spent.cpu < BOUND_MS, `enqueue's checks took ${show(spent)}`);
  const bad = await timed(() =>
    enqueue(orm.em.fork(), 'work', [`${BACKSLASHES}\u0000`]).then(
      () => 'stored',
      (e: Error) => e.message,
    ),
  );
  assert.ok(bad.spent.cpu < BOUND_MS, `refusing took ${show(bad.spent)}`);
  assert.match(bad.value, /args: contains a NUL/);
  const id = await enqueue(orm.em.fork(), 'work', [HOSTILE]);
  const [row] = await sql<{ arg: string }>(orm, "select payload->'args'->>0 as arg from ormq_queued where payload->>'id' = ?", [id]);
  assert.is(row!.arg, HOSTILE);
});

/** Timed on the server, from the request's head to its answer: the client's own 1 MB JSON.stringify is not the admin's. */
L(
  `500,000 backslashes through an admin create are checked in under ${BOUND_MS} ms, and stored intact`,
  async ({ orm, api, small, handled }) => {
    const body = (name: string, arg: string) => ({
      name,
      func: 'work',
      scheduleType: 'D',
      nextRun: new Date(Date.now() + 60_000).toISOString(),
      args: [arg],
    });
    // Once untimed: the first 1 MB body also pays for compiling the code it runs through.
    await small.post('api/scheduled', body('warm-up', HOSTILE));
    // Every check runs (JSON, storable text, depth, the schedule's rules, its size) and the answer is a 400: nothing is written.
    for (const [arg, field] of [
      [HOSTILE, /at most 65536 bytes/],
      [`${BACKSLASHES}\u0000`, /NUL/],
    ] as const) {
      const r = await small.post('api/scheduled', body('hostile', arg));
      assert.is(r.status, 400, r.text.slice(0, 200));
      assert.match(r.json.error.fields.args, field);
      const spent = handled[handled.length - 1]!;
      assert.ok(spent.cpu < BOUND_MS, `the create took ${show(spent)}`);
    }
    const stored = await api.post('api/scheduled', body('hostile', HOSTILE));
    assert.is(stored.status, 201, stored.text.slice(0, 200));
    const [row] = await sql<{ arg: string }>(orm, "select args->>0 as arg from ormq_schedule where name = 'hostile'");
    assert.is(row!.arg, HOSTILE);
  },
);

L(`a task result of 500,000 backslashes is checked in under ${BOUND_MS} ms and saved`, async ({ orm }) => {
  const { value: ok, spent } = await timed(() => isStorableJson(JSON.stringify(HOSTILE)));
  assert.ok(ok);
  assert.ok(spent.cpu < BOUND_MS, `the result check took ${show(spent)}`);
  const { cluster } = await startCluster(orm, { tasks: { hostile: () => HOSTILE } });
  try {
    const id = await enqueue(orm.em.fork(), 'hostile');
    const row = await waitFor(
      async () => (await sql<{ success: boolean; result: string }>(orm, 'select success, result from ormq_task where id = ?', [id]))[0],
      'the result saved',
    );
    assert.is(row.success, true);
    assert.is(row.result, HOSTILE);
  } finally {
    await cluster.stop();
  }
});

L.run();
