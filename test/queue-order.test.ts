import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, enqueueMany, pauseKey, resumeKey, schedule, ValidationError } from '../src/index.js';
import { CLAIM } from '../src/cluster/sql.js';
import { sql, waitFor } from './helpers/db.js';
import { startCluster, waitForDrained } from './helpers/cluster.js';
import { Fleet } from './helpers/fleet.js';
import { CLEAR_QUEUE, dbSuite } from './helpers/suites.js';

const Q = dbSuite('claim order: priority and serial keys', {
  clear: `${CLEAR_QUEUE}; delete from ormq_schedule; drop table if exists task_runs`,
});

const em = (orm: MikroORM) => orm.em.fork();

async function refused(run: () => Promise<unknown>, errors: Record<string, string>): Promise<void> {
  try {
    await run();
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.equal((e as ValidationError).errors, errors);
    return;
  }
  assert.unreachable('expected a ValidationError');
}

Q('a bad priority or serial key is refused naming its field, and nothing is written', async ({ orm }) => {
  await refused(() => enqueue(em(orm), 'work', [], { priority: 1.5 }), { priority: 'must be an integer from -2147483648 to 2147483647' });
  await refused(() => enqueue(em(orm), 'work', [], { priority: 2 ** 31 }), {
    priority: 'must be an integer from -2147483648 to 2147483647',
  });
  await refused(() => enqueue(em(orm), 'work', [], { priority: '3' as unknown as number }), {
    priority: 'must be an integer from -2147483648 to 2147483647',
  });
  await refused(() => enqueue(em(orm), 'work', [], { serial: '' }), { serial: 'must be a non-empty string' });
  await refused(() => enqueue(em(orm), 'work', [], { serial: 'x'.repeat(101) }), { serial: 'must be at most 100 characters' });
  await refused(() => enqueue(em(orm), 'work', [], { serial: 7 as unknown as string }), { serial: 'must be a non-empty string' });
  await refused(() => enqueueMany(em(orm), [{ func: 'work' }, { func: 'work', priority: -0.5 }]), {
    'tasks[1].priority': 'must be an integer from -2147483648 to 2147483647',
  });
  await refused(() => schedule(em(orm), { func: 'work', scheduleType: 'D', priority: 'high' }), { priority: 'must be a whole number' });
  assert.equal(await sql(orm, 'select 1 from ormq_queued union all select 1 from ormq_schedule'), []);
});

Q('priorities order the claims: highest first, enqueue order within one; a schedule gives each run its priority', async ({ orm }) => {
  const order: string[] = [];
  const specs = [0, 5, -1, 5, 0, 10, -1, 0].map((priority, i) => ({ func: 'record', args: [`p${priority}#${i}`], priority }));
  await enqueueMany(em(orm), specs);
  await enqueue(em(orm), 'record', ['p5#late'], { priority: 5 });
  const s = await schedule(em(orm), {
    func: 'record',
    args: ['p7#schedule'],
    scheduleType: 'O',
    priority: 7,
    nextRun: new Date(Date.now() + 3_600_000),
  });
  assert.is(s.priority, 7);
  // The schedule's run is added by the cluster's scheduler while its key is paused, then all are claimed.
  await pauseKey(em(orm), 'default');
  await sql(orm, 'update ormq_schedule set next_run = now()');
  const { cluster } = await startCluster(orm, { workers: 1, bulk: 1, tasks: { record: (x: string) => void order.push(x) } });
  try {
    await waitFor(async () => (await sql(orm, 'select 1 from ormq_queued')).length === 10, 'the schedule to run');
    await resumeKey(em(orm), 'default');
    await waitFor(() => order.length === 10, 'all ten to run');
  } finally {
    await cluster.stop();
  }
  const expected = ['p10#5', 'p7#schedule', 'p5#1', 'p5#3', 'p5#late', 'p0#0', 'p0#4', 'p0#7', 'p-1#2', 'p-1#6'];
  assert.equal(order, expected);
});

Q('the claim is one scan of ormq_queued_claim_idx in claim order at 100,000 packages, without a sort', async ({ orm }) => {
  await sql(
    orm,
    `insert into ormq_queued (key, payload, priority, serial)
     select 'default', jsonb_build_object('id', md5(i::text), 'name', 'n', 'func', 'work', 'args', '[]'::jsonb, 'enqueued', now()),
       (i % 4) - 1, case when i % 10 = 0 then 's' || (i % 50) end
     from generate_series(1, 100000) i`,
  );
  await sql(orm, 'analyze ormq_queued');
  const client = new pg.Client({ connectionString: orm.config.get('clientUrl') });
  await client.connect();
  try {
    const { rows } = await client.query({ text: `explain (format json) ${CLAIM.text}`, values: ['default', 90, 500, 'a'.repeat(32)] });
    const plan = JSON.stringify(rows[0]['QUERY PLAN']);
    type Node = Record<string, unknown> & { Plans?: Node[] };
    const all = (n: Node): Node[] => [n, ...(n.Plans ?? []).flatMap(all)];
    const root = rows[0]['QUERY PLAN'][0].Plan as Node;
    // The candidates: one scan of the claim index under LockRows and Limit, in claim order, no sort.
    const cand = all(root).find((n) => n['Subplan Name'] === 'CTE cand')!;
    const candNodes = all(cand);
    const candScans = candNodes.filter((n) => n['Relation Name'] === 'ormq_queued');
    assert.equal(
      candScans.map((n) => `${n['Node Type']} ${n['Index Name']}`),
      ['Index Scan ormq_queued_claim_idx', 'Index Only Scan ormq_queued_serial_idx'],
      plan,
    );
    assert.not.ok(
      candNodes.some((n) => /Sort/.test(n['Node Type'] as string)),
      `no sort: ${plan}`,
    );
    // Nowhere is the queue read but through its indexes.
    assert.not.match(
      plan,
      /"Node Type":"(Seq Scan|Bitmap Heap Scan)","Parallel Aware":false,"Async Capable":false,"Relation Name":"ormq_queued"/,
    );
    // Below the cost at which PostgreSQL JIT-compiles a statement, which for a claim costs more than the claim.
    assert.ok((root['Total Cost'] as number) < 100_000, `total cost ${root['Total Cost']}`);
  } finally {
    await client.end();
  }
});

Q('a failed task of a serial key holds its place: the next one waits until its retry has succeeded', async ({ orm }) => {
  const order: string[] = [];
  let failures = 0;
  await enqueue(em(orm), 'step', ['first'], { serial: 'account-1', retry: 0.3, maxAttempts: 3 });
  await enqueue(em(orm), 'step', ['second'], { serial: 'account-1' });
  await enqueue(em(orm), 'step', ['other'], { serial: 'account-2' });
  const { cluster } = await startCluster(orm, {
    workers: 4,
    tasks: {
      step: (x: string) => {
        order.push(x);
        if (x === 'first' && failures++ === 0) throw new Error('once');
      },
    },
  });
  try {
    await waitForDrained(orm, 'all three to succeed');
  } finally {
    await cluster.stop();
  }
  const mine = order.filter((x) => x !== 'other');
  assert.equal(mine, ['first', 'first', 'second']);
  // The other serial key was not held back by the first one's retry.
  assert.ok(order.indexOf('other') < order.lastIndexOf('first'), order.join());
});

Q('three cluster processes never run two tasks of one serial key at once, and start them in enqueue order', async ({ orm, db }) => {
  await sql(
    orm,
    'create table task_runs (id bigserial primary key, task_id char(32) not null, pid int not null, started timestamptz not null default clock_timestamp(), ended timestamptz null)',
  );
  const dir = mkdtempSync(join(tmpdir(), 'ormq-serial-'));
  const never = join(dir, 'never');
  const fleet = new Fleet(db.url, { workers: 4, bulk: 4 });
  try {
    await fleet.start(3);
    // Interleaved keys, enqueued one at a time and in batches, each task running 60 ms.
    const ids = new Map<string, string[]>([
      ['a', []],
      ['b', []],
      ['c', []],
    ]);
    for (let round = 0; round < 4; round++) {
      const batch = ['a', 'b', 'c', 'a', 'b', 'c'].map((serial) => ({ func: 'hold' as const, args: [never, 60], serial }));
      const got = await enqueueMany(em(orm), batch as never);
      got.forEach((id, i) => ids.get(batch[i]!.serial)!.push(id));
      const one = await enqueue(em(orm), 'hold' as never, [never, 60] as never, { serial: 'a' });
      ids.get('a')!.push(one);
    }
    // Tasks without a serial key run beside them.
    await enqueueMany(em(orm), Array.from({ length: 12 }, () => ({ func: 'hold', args: [never, 60] })) as never);
    await waitForDrained(orm, 'every task', 60_000);
    const runs = await sql<{ task_id: string; pid: number; started: Date; ended: Date }>(
      orm,
      'select task_id, pid, started, ended from task_runs order by started, id',
    );
    const pids = new Set<number>();
    for (const [serial, list] of ids) {
      const mine = runs.filter((r) => list.includes(r.task_id));
      assert.equal(
        mine.map((r) => r.task_id),
        list,
        `serial ${serial} started in enqueue order, each once`,
      );
      for (let i = 1; i < mine.length; i++) {
        assert.ok(mine[i]!.started >= mine[i - 1]!.ended, `serial ${serial}: run ${i} started after run ${i - 1} ended`);
      }
      for (const r of mine) pids.add(r.pid);
    }
    assert.ok(pids.size >= 2, 'the serial tasks ran in more than one process');
  } finally {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

Q.run();
