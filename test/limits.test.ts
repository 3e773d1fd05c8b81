import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueueMany, limits, setLimit, ValidationError } from '../src/index.js';
import { initOrm, sql, waitFor } from './helpers/db.js';
import { startCluster, startClusters, waitForDrained } from './helpers/cluster.js';
import { Fleet } from './helpers/fleet.js';
import { CLEAR_QUEUE, dbSuite } from './helpers/suites.js';

const L = dbSuite('limits per func', { clear: `${CLEAR_QUEUE}; delete from ormq_limit; drop table if exists task_runs, claims` });

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

L('a bad limit is refused naming its field, and nothing is written', async ({ orm }) => {
  await refused(() => setLimit(em(orm), '', { concurrency: 1 }), { func: 'must be a non-empty string' });
  await refused(() => setLimit(em(orm), 'work', { concurrency: 0 }), { concurrency: 'must be a whole number from 1 to 2147483647' });
  await refused(() => setLimit(em(orm), 'work', { concurrency: 1.5 }), { concurrency: 'must be a whole number from 1 to 2147483647' });
  await refused(() => setLimit(em(orm), 'work', {}), { limit: 'must set concurrency or rate (null removes the limit)' });
  await refused(() => setLimit(em(orm), 'work', { rate: { count: 0, perSeconds: -1 } }), {
    'rate.count': 'must be a whole number from 1 to 10,000',
    'rate.perSeconds': 'must be a number of seconds greater than 0, at most 86,400',
  });
  await refused(() => setLimit(em(orm), 'work', { rate: 5 } as never), { rate: 'must be an object { count, perSeconds }' });
  await refused(() => setLimit(em(orm), 'work', { concurency: 2 } as never), { concurency: 'is not a limit field (concurrency, rate)' });
  await refused(() => setLimit(em(orm), 'work', 'fast' as never), { limit: 'must be an object with concurrency or rate, or null' });
  assert.equal(await limits(em(orm)), []);
});

L('setLimit stores a limit every process reads, limits lists it with its use, null removes it', async ({ orm }) => {
  const set = await setLimit(em(orm), 'send', { concurrency: 3, rate: { count: 10, perSeconds: 60 } });
  assert.equal(
    { ...set, updated: null },
    { func: 'send', concurrency: 3, rate: { count: 10, perSeconds: 60 }, running: 0, recentStarts: 0, updated: null },
  );
  await setLimit(em(orm), 'build', { rate: { count: 1, perSeconds: 0.5 } });
  assert.equal(
    (await limits(em(orm))).map((l) => [l.func, l.concurrency, l.rate]),
    [
      ['build', null, { count: 1, perSeconds: 0.5 }],
      ['send', 3, { count: 10, perSeconds: 60 }],
    ],
  );
  // Changed in place, and removed.
  await setLimit(em(orm), 'send', { concurrency: 1 });
  assert.equal(
    (await limits(em(orm))).map((l) => [l.func, l.concurrency, l.rate]),
    [
      ['build', null, { count: 1, perSeconds: 0.5 }],
      ['send', 1, null],
    ],
  );
  assert.is(await setLimit(em(orm), 'send', null), null);
  assert.equal(
    (await limits(em(orm))).map((l) => l.func),
    ['build'],
  );
});

L('a limited func waits while others run; its held packages are not locked, and limits shows its use', async ({ orm }) => {
  await setLimit(em(orm), 'slow', { concurrency: 1 });
  let running = 0;
  let most = 0;
  const order: string[] = [];
  const { cluster } = await startCluster(orm, {
    workers: 4,
    bulk: 4,
    tasks: {
      async slow(x: string) {
        running++;
        most = Math.max(most, running);
        order.push(x);
        await new Promise((r) => setTimeout(r, 150));
        running--;
      },
      fast: (x: string) => void order.push(x),
    },
  });
  try {
    await enqueueMany(em(orm), [
      { func: 'slow', args: ['s1'] },
      { func: 'slow', args: ['s2'] },
      { func: 'slow', args: ['s3'] },
      { func: 'fast', args: ['f1'] },
      { func: 'fast', args: ['f2'] },
    ]);
    await waitFor(() => order.includes('f2'), 'the unlimited tasks to run beside the limited one');
    assert.ok(order.filter((x) => x.startsWith('s')).length < 3, 'the fast tasks were not held behind the limited ones');
    const [use] = await limits(em(orm));
    assert.is(use!.running, 1);
    // Held back means waiting: never locked, so not stuck.
    const locked = await sql<{ n: number }>(
      orm,
      "select count(*)::int as n from ormq_queued where lock is not null and payload->>'func' = 'slow'",
    );
    assert.is(locked[0]!.n, 1);
    await waitForDrained(orm, 'all five');
  } finally {
    await cluster.stop();
  }
  assert.is(most, 1);
  assert.equal(
    order.filter((x) => x.startsWith('s')),
    ['s1', 's2', 's3'],
  );
  assert.is((await limits(em(orm)))[0]!.running, 0);
});

L('concurrency 2 over three cluster processes: no instant has more than two running', async ({ orm, db }) => {
  await sql(
    orm,
    'create table task_runs (id bigserial primary key, task_id char(32) not null, pid int not null, started timestamptz not null default clock_timestamp(), ended timestamptz null)',
  );
  await setLimit(em(orm), 'hold', { concurrency: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'ormq-limit-'));
  // One task at a time per process: three could run three at once, so the limit is what holds them to
  // two, and at least two processes take part however the claims fall.
  const fleet = new Fleet(db.url, { workers: 1, bulk: 1 });
  try {
    await fleet.start(3);
    await enqueueMany(em(orm), Array.from({ length: 16 }, () => ({ func: 'hold', args: [join(dir, 'never'), 120] })) as never);
    await waitForDrained(orm, 'all sixteen', 60_000);
    const runs = (
      await sql<{ pid: number; s: string; e: string }>(
        orm,
        'select pid, extract(epoch from started) * 1000 as s, extract(epoch from ended) * 1000 as e from task_runs',
      )
    ).map((r) => ({ pid: r.pid, started: Number(r.s), ended: Number(r.e) }));
    assert.is(runs.length, 16);
    const events = runs.flatMap((r) => [
      { at: r.started, d: 1 },
      { at: r.ended, d: -1 },
    ]);
    // An end before a start at the same instant: the slot was free by then.
    events.sort((a, b) => a.at - b.at || a.d - b.d);
    let now = 0;
    let most = 0;
    for (const e of events) most = Math.max(most, (now += e.d));
    assert.is(most, 2, 'at most two at once, and the limit was reached');
    assert.ok(new Set(runs.map((r) => r.pid)).size >= 2, 'more than one process ran them');
  } finally {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

L('rate 5 per second over three cluster processes: no one-second window has more than five starts', async ({ orm, db }) => {
  // Every claim of a package, as the database records it: the lock the claim sets.
  await sql(orm, 'create table claims (qid bigint not null, at timestamptz not null)');
  await sql(
    orm,
    `create function record_claim() returns trigger language plpgsql as $$ begin insert into claims values (new.id, new.lock); return null; end $$`,
  );
  await sql(
    orm,
    `create trigger record_claim after update of lock on ormq_queued for each row when (new.lock is not null and new.lock is distinct from old.lock) execute function record_claim()`,
  );
  await sql(
    orm,
    'create table task_runs (id bigserial primary key, task_id char(32) not null, pid int not null, started timestamptz not null default clock_timestamp(), ended timestamptz null)',
  );
  await setLimit(em(orm), 'hold', { rate: { count: 5, perSeconds: 1 } });
  const dir = mkdtempSync(join(tmpdir(), 'ormq-rate-'));
  const fleet = new Fleet(db.url, { workers: 4, bulk: 4 });
  try {
    await fleet.start(3);
    await enqueueMany(em(orm), Array.from({ length: 16 }, () => ({ func: 'hold', args: [join(dir, 'never'), 5] })) as never);
    await waitForDrained(orm, 'all sixteen', 60_000);
    // Microseconds, as the claim compares them.
    const starts = (await sql<{ at: string }>(orm, 'select (extract(epoch from at) * 1000000)::bigint as at from claims order by at')).map(
      (r) => Number(r.at) / 1000,
    );
    assert.is(starts.length, 16, 'each claimed once');
    for (let i = 0; i < starts.length; i++) {
      const inWindow = starts.filter((t) => t >= starts[i]! && t < starts[i]! + 1000).length;
      assert.ok(inWindow <= 5, `${inWindow} starts in the second from start ${i}`);
    }
    assert.ok(starts.at(-1)! - starts[0]! >= 3000, 'sixteen starts at five a second span more than three seconds');
  } finally {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
    await sql(orm, 'drop trigger if exists record_claim on ormq_queued; drop function if exists record_claim()');
  }
});

L('six clusters claiming as fast as they can never run more than two tasks of a func limited to two', async ({ orm, db }) => {
  // Short tasks and a short poll: claims of the func race each other all the time.
  await setLimit(em(orm), 'tick', { concurrency: 2 });
  const orms = await Promise.all(Array.from({ length: 6 }, () => initOrm(db.url)));
  let running = 0;
  let most = 0;
  let done = 0;
  const tick = async () => {
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 3));
    running--;
    done++;
  };
  const { stop } = await startClusters(orms, { workers: 4, bulk: 4, poll: 20, tasks: { tick } });
  try {
    await enqueueMany(em(orm), Array.from({ length: 200 }, () => ({ func: 'tick' })) as never);
    await waitFor(() => done === 200, 'all 200', 60_000);
  } finally {
    await stop();
    await Promise.all(orms.map((o) => o.close(true)));
  }
  assert.is(most, 2);
});

L.run();
