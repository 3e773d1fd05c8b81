import * as assert from 'uvu/assert';
import { enqueue, schedule, ValidationError } from '../src/index.js';
import { sql } from './helpers/db.js';
import { dbSuite } from './helpers/suites.js';
import { humanName } from '../src/names.js';

const Enqueue = dbSuite('enqueue', { clear: 'delete from ormq_queued' });

Enqueue('stores a package with a 32-hex id and a four-word name under the cluster key', async ({ orm }) => {
  const id = await enqueue(orm.em.fork(), 'email.send', ['a@b.c', 2], { kwargs: { urgent: true }, group: 'mail', cluster: 'east' });
  assert.match(id, /^[0-9a-f]{32}$/);
  const [row] = await sql<{ key: string; payload: Record<string, unknown>; lock: unknown }>(
    orm,
    'select key, payload, lock from ormq_queued',
  );
  assert.is(row!.key, 'east');
  assert.is(row!.lock, null);
  assert.equal(row!.payload.args, ['a@b.c', 2]);
  assert.equal(row!.payload.kwargs, { urgent: true });
  assert.is(row!.payload.group, 'mail');
  assert.is(row!.payload.id, id);
  assert.match(row!.payload.name as string, /^[a-z]+-[a-z]+-[a-z]+-[a-z]+$/);
});

Enqueue('the stored package leaves out the options at their defaults', async ({ orm }) => {
  const id = await enqueue(orm.em.fork(), 'f', [1]);
  const [row] = await sql<{ payload: Record<string, unknown> }>(orm, 'select payload from ormq_queued');
  assert.equal(Object.keys(row!.payload).sort(), ['args', 'enqueued', 'func', 'id', 'name']);
  assert.is(row!.payload.name, humanName(id));
  await enqueue(orm.em.fork(), 'f', [], { kwargs: { a: 1 }, group: 'g', hook: 'h', timeout: 5, save: false });
  const [full] = await sql<{ payload: Record<string, unknown> }>(orm, 'select payload from ormq_queued order by id desc limit 1');
  assert.equal(
    [full!.payload.kwargs, full!.payload.group, full!.payload.hook, full!.payload.timeout, full!.payload.save],
    [{ a: 1 }, 'g', 'h', 5, false],
  );
});

Enqueue('a name given as null is the four-word name of the id, as when none is given', async ({ orm }) => {
  const id = await enqueue(orm.em.fork(), 'work', [], { name: null as unknown as string });
  const [row] = await sql<{ payload: { name: string } }>(orm, 'select payload from ormq_queued');
  assert.is(row!.payload.name, humanName(id));
});

Enqueue('commits with the host transaction', async ({ orm }) => {
  let id = '';
  await orm.em.fork().transactional(async (em) => {
    id = await enqueue(em, 'work', [1]);
  });
  const rows = await sql(orm, "select 1 from ormq_queued where payload->>'id' = ?", [id]);
  assert.is(rows.length, 1);
});

Enqueue('rolls back with the host transaction', async ({ orm }) => {
  let id = '';
  await orm.em
    .fork()
    .transactional(async (em) => {
      id = await enqueue(em, 'work', [1]);
      throw new Error('host work failed');
    })
    .catch(() => {});
  assert.match(id, /^[0-9a-f]{32}$/);
  const rows = await sql(orm, 'select 1 from ormq_queued');
  assert.is(rows.length, 0);
});

Enqueue('refuses bad input, naming each field, and writes nothing', async ({ orm }) => {
  try {
    await enqueue(orm.em.fork(), '', 'nope' as never, { kwargs: [] as never, timeout: -1 });
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, ValidationError);
    const errors = (e as ValidationError).errors;
    assert.ok(errors.func && errors.args && errors.kwargs && errors.timeout, JSON.stringify(errors));
  }
  try {
    await enqueue(orm.em.fork(), 'f', [10n]);
    assert.unreachable('should throw');
  } catch (e) {
    assert.match((e as ValidationError).errors.args!, /JSON/);
  }
  try {
    await enqueue(orm.em.fork(), 'f', ['a\u0000b']);
    assert.unreachable('should throw');
  } catch (e) {
    assert.match((e as ValidationError).errors.args!, /NUL character/);
  }
  assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0);
});

Enqueue.run();

const Schedule = dbSuite('schedule()');

Schedule('saves a valid schedule and returns it', async ({ orm }) => {
  const s = await schedule(orm.em.fork(), {
    name: 'hourly report',
    func: 'report',
    args: [1],
    scheduleType: 'H',
    repeats: 24,
    nextRun: '2030-01-01T10:00:00Z',
  });
  assert.ok(s.id > 0);
  assert.is(s.name, 'hourly report');
  assert.is(s.repeats, 24);
  assert.is(s.nextRun.toISOString(), '2030-01-01T10:00:00.000Z');
  assert.is(s.version, 1);
});

Schedule('names each wrong field', async ({ orm }) => {
  try {
    await schedule(orm.em.fork(), { func: 'nope', args: '{"a":1}', kwargs: '[1]', scheduleType: 'I', minutes: 0 } as never, {
      tasks: ['report'],
    });
    assert.unreachable();
  } catch (e) {
    const errors = (e as ValidationError).errors;
    assert.match(errors.func!, /not a registered task/);
    assert.match(errors.args!, /array/);
    assert.match(errors.kwargs!, /object/);
    assert.match(errors.minutes!, /between 1/);
    assert.is(errors.nextRun, undefined, 'an omitted next run is now');
  }
  try {
    await schedule(orm.em.fork(), { func: 'report', scheduleType: 'C', cron: '61 * * * *' });
    assert.unreachable();
  } catch (e) {
    assert.match((e as ValidationError).errors.cron!, /not a valid cron/);
  }
});

Schedule('a schedule without next run runs now, anchored there, in its own zone', async ({ orm }) => {
  const before = Date.now();
  const s = await schedule(orm.em.fork(), { func: 'report', scheduleType: 'Daily', timeZone: 'Australia/Sydney' });
  assert.ok(s.nextRun.getTime() >= before && s.nextRun.getTime() <= Date.now());
  assert.is(s.anchor.getTime(), s.nextRun.getTime());
  assert.is(s.scheduleType, 'D');
  assert.is(s.timeZone, 'Australia/Sydney');
});

Schedule('a cron schedule without next run gets the next match', async ({ orm }) => {
  const s = await schedule(orm.em.fork(), { func: 'report', scheduleType: 'C', cron: '0 3 * * *' });
  assert.ok(s.nextRun > new Date());
  assert.is(s.nextRun.getUTCHours(), 3);
  assert.is(s.nextRun.getUTCMinutes(), 0);
});

Schedule('names are unique', async ({ orm }) => {
  await schedule(orm.em.fork(), { name: 'once', func: 'report', nextRun: new Date() });
  try {
    await schedule(orm.em.fork(), { name: 'once', func: 'report', nextRun: new Date() });
    assert.unreachable();
  } catch (e) {
    assert.match((e as ValidationError).errors.name!, /already used/);
  }
});

/** The ValidationError `fn` must throw, checked by `ok`. */
async function rejects(fn: () => Promise<unknown>, ok: (e: ValidationError) => boolean): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.ok(ok(e as ValidationError), JSON.stringify((e as ValidationError).errors));
    return;
  }
  assert.unreachable('it did not throw');
}

Schedule(
  "declared at every start-up: ifExists 'keep' leaves the schedule, 'update' rewrites it and keeps its series and pause",
  async ({ orm }) => {
    const em = () => orm.em.fork();
    const daily = { name: 'nightly', func: 'report', args: [1], scheduleType: 'D' as const, nextRun: '2030-01-01T03:00:00Z' };
    const first = await schedule(em(), daily, { ifExists: 'update' });
    assert.is(first.version, 1);
    // A later boot declares it again without nextRun: the series is not moved to "now".
    const { nextRun: _, ...boot } = daily;
    const same = await schedule(em(), boot, { ifExists: 'update' });
    assert.equal(
      [same.id, same.version, same.nextRun.toISOString()],
      [first.id, 1, '2030-01-01T03:00:00.000Z'],
      'nothing changed, nothing written',
    );
    const kept = await schedule(em(), { ...boot, args: [2] }, { ifExists: 'keep' });
    assert.equal([kept.id, kept.args, kept.version], [first.id, [1], 1]);
    // Paused in the admin meanwhile: a deploy with new args keeps the pause and the next run.
    await sql(orm, 'update ormq_schedule set paused_repeats = repeats, repeats = 0 where id = ?', [first.id]);
    const updated = await schedule(em(), { ...boot, args: [2], kwargs: { full: true } }, { ifExists: 'update' });
    assert.equal([updated.id, updated.args, updated.kwargs, updated.repeats, updated.version], [first.id, [2], { full: true }, 0, 2]);
    assert.is(updated.nextRun.toISOString(), '2030-01-01T03:00:00.000Z');
    // New timing moves the next run; so does an explicit nextRun.
    const hourly = await schedule(em(), { ...boot, args: [2], kwargs: { full: true }, scheduleType: 'H' }, { ifExists: 'update' });
    assert.is(hourly.version, 3);
    assert.ok(hourly.nextRun.getTime() < new Date('2030-01-01T00:00:00Z').getTime(), 'an hourly series starts now, not in 2030');
    const moved = await schedule(
      em(),
      { ...boot, args: [2], kwargs: { full: true }, scheduleType: 'H', nextRun: '2031-05-05T05:00:00Z' },
      { ifExists: 'update' },
    );
    assert.equal([moved.version, moved.nextRun.toISOString()], [4, '2031-05-05T05:00:00.000Z']);
    assert.equal(await sql(orm, "select count(*)::int as n from ormq_schedule where name = 'nightly'"), [{ n: 1 }]);
    // Without a name there is nothing to find it by; the default still refuses a taken name.
    await rejects(
      () => schedule(em(), { func: 'report', scheduleType: 'D' }, { ifExists: 'keep' }),
      (e: ValidationError) => /required with ifExists/.test(e.errors.name!),
    );
    await rejects(
      () => schedule(em(), boot),
      (e: ValidationError) => /already used/.test(e.errors.name!),
    );
    await rejects(
      () => schedule(em(), boot, { ifExists: 'merge' as never }),
      (e: ValidationError) => /ifExists/.test(Object.keys(e.errors).join()),
    );
  },
);

Schedule("ifExists 'update' checks the declaration like any schedule: a bad func writes nothing", async ({ orm }) => {
  await schedule(orm.em.fork(), { name: 'n', func: 'report', scheduleType: 'D' }, { ifExists: 'update' });
  await rejects(
    () => schedule(orm.em.fork(), { name: 'n', func: 'nope', scheduleType: 'D' }, { ifExists: 'update', tasks: ['report'] }),
    (e: ValidationError) => Boolean(e.errors.func),
  );
  assert.equal(await sql(orm, "select func from ormq_schedule where name = 'n'"), [{ func: 'report' }]);
});

Schedule.run();

const Rows = dbSuite('rows');

Rows('a task whose result is a JSON string reads back as that string', async ({ orm }) => {
  const { toTask } = await import('../src/rows.js');
  await sql(
    orm,
    `insert into ormq_task (id, name, func, args, kwargs, result, enqueued, started, stopped, success)
    values ('0123456789abcdef0123456789abcdef', 'n', 'f', '["x"]', '{}', '"hi"', now(), now(), now(), true)`,
  );
  const [row] = await sql(orm, 'select * from ormq_task');
  const task = toTask(row!);
  assert.is(task.result, 'hi');
  assert.equal(task.args, ['x']);
  assert.instance(task.stopped, Date);
});

Rows.run();
