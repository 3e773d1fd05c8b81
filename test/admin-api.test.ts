/** The admin's JSON API on real PostgreSQL, through a real node:http server and fetch. */
import * as assert from 'uvu/assert';
import { inspect } from 'node:util';
import pg from 'pg';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, queueAdmin, schedule, type QueueAdminOptions } from '../src/index.js';
import { ValidationError } from '../src/validate.js';
import { sql, waitFor, type TestDb } from './helpers/db.js';
import { insertManyTasks, insertRollup, insertTask } from './helpers/admin.js';
import { adminSuite, type Api } from './helpers/suites.js';
import { narrowParts, readSamples, sampleStatement } from '../src/admin/search.js';
import { startCluster, waitForDrained } from './helpers/cluster.js';

const OPTIONS: QueueAdminOptions = {
  tasks: ['work', 'email', 'report'],
  saveLimit: 250,
  title: 'Jobs',
  actor: (req) => (req.headers['x-user'] as string | undefined) ?? null,
  columns: { failed: ['name', 'func', 'attemptCount', 'shortResult'] },
};

/** A suite with its own database and admin server; tables are emptied before each test. */
const apiSuite = (name: string, options: QueueAdminOptions = OPTIONS) =>
  adminSuite(name, {
    mount: options,
    clear: 'truncate ormq_task, ormq_schedule, ormq_queued, ormq_admin_log, ormq_metric restart identity',
  });

const as = (user: string) => ({ 'x-user': user });

/** Every row of a list, page by page, as the client walks it. */
async function walk(api: Api, path: string, limit: number): Promise<{ rows: any[]; pages: number }> {
  const rows: any[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const r = await api.get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.is(r.status, 200, r.text);
    rows.push(...r.json.rows);
    cursor = r.json.next;
    pages++;
  } while (cursor && pages < 1000);
  return { rows, pages };
}

/** Repeats an "all matching" action until nothing remains, as the client's bulk runner does. */
async function runAll(api: Api, path: string, filter: Record<string, string>, useCursor: boolean, headers?: Record<string, string>) {
  const calls: { done: number; remaining: number }[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const body: Record<string, unknown> = { all: true, filter };
    if (useCursor) body.cursor = cursor;
    const r = await api.post(path, body, headers);
    assert.is(r.status, 200, r.text);
    calls.push({ done: r.json.done, remaining: r.json.remaining });
    cursor = r.json.cursor ?? null;
    if (r.json.remaining === 0 || r.json.done === 0) break;
  }
  return calls;
}

// ---------------------------------------------------------------------------------------------
const Meta = apiSuite('admin api: meta, options and overview');

Meta('meta states the title, saveLimit, registered tasks, schedule types, columns and permissions', async ({ api }) => {
  const r = await api.get('api/meta');
  assert.is(r.status, 200);
  assert.is(r.json.title, 'Jobs');
  assert.is(r.json.readOnly, false);
  assert.is(r.json.saveLimit, 250);
  assert.equal(r.json.tasks, ['email', 'report', 'work']);
  assert.is(r.json.scheduleTypes.BW, 'Biweekly');
  assert.is(r.json.timeZone, 'UTC', 'the zone of schedules without their own');
  assert.equal(r.json.pages.failed.columns, ['name', 'func', 'attemptCount', 'shortResult']);
  assert.equal(r.json.pages.successful.columns, ['name', 'func', 'group', 'started', 'stopped', 'timeTaken']);
  assert.equal(r.json.pages.scheduled.can, { view: true, create: true, edit: true, delete: true, pause: true, resume: true, run: true });
  assert.equal(r.json.pages.queued.can, { view: true, edit: true, release: true, delete: true });
});

Meta('meta names each page action with its label and past tense, for every action it may be asked about', async ({ api }) => {
  const r = await api.get('api/meta');
  assert.equal(r.json.pages.failed.actions.resubmit, { label: 'Resubmit', past: 'Resubmitted' });
  assert.equal(r.json.pages.queued.actions.delete, { label: 'Delete', past: 'Deleted', danger: true });
  assert.equal(r.json.pages.scheduled.actions.run, { label: 'Run now', past: 'Started' });
  for (const [id, page] of Object.entries(
    r.json.pages as Record<string, { can: Record<string, boolean>; actions?: Record<string, { label: string; past: string }> }>,
  )) {
    for (const action of Object.keys(page.can).filter((a) => a !== 'view')) {
      const named = page.actions?.[action];
      assert.ok(named && named.label && named.past, `${id}: ${action} has a label and a past tense`);
    }
  }
});

Meta('bad options and a missing client stop start-up with a clear message', async ({ orm, clientDir }) => {
  assert.throws(
    () => queueAdmin(orm, { clientDir: clientDir.dir, columns: { failed: ['name', 'nope'] } }),
    /columns\.failed: unknown column "nope"/,
  );
  assert.throws(
    () => queueAdmin(orm, { clientDir: clientDir.dir, columns: { archive: ['name'] } as never }),
    /columns: unknown page "archive"/,
  );
  assert.throws(() => queueAdmin(orm, { clientDir: clientDir.dir, columns: { queued: [] } }), /columns\.queued must be a non-empty array/);
  assert.throws(() => queueAdmin(orm, { clientDir: clientDir.dir, saveLimit: 1.5 }), /saveLimit/);
  assert.throws(() => queueAdmin(orm, { clientDir: '/nonexistent/ormq-client' }), /ormq admin client is not built: run npm run build/);
});

Meta(
  'overview counts each page and buckets the last 24 hours of attempts by hour, oldest first, from the rollups',
  async ({ orm, api }) => {
    const hour = 3_600_000;
    const thisHour = Math.floor(Date.now() / hour) * hour;
    for (let i = 0; i < 3; i++) await insertTask(orm, { stopped: new Date(thisHour - 2 * hour + 60_000 + i).toISOString() });
    for (let i = 0; i < 2; i++) await insertTask(orm, { success: false, stopped: new Date(thisHour + 1000 + i).toISOString() });
    await insertTask(orm, { stopped: new Date(thisHour - 30 * hour).toISOString() });
    await insertRollup(orm, { at: new Date(thisHour - 2 * hour + 60_000).toISOString(), count: 3 });
    await insertRollup(orm, { at: new Date(thisHour - 2 * hour + 50 * 60_000).toISOString(), count: 4, func: 'email', key: 'east' });
    await insertRollup(orm, { at: new Date(thisHour + 1000).toISOString(), success: false, count: 2 });
    await insertRollup(orm, { at: new Date(thisHour - 30 * hour).toISOString(), count: 9 });
    await schedule(orm.em.fork(), { func: 'work', scheduleType: 'D', nextRun: new Date() });
    await enqueue(orm.em.fork(), 'work');
    const r = await api.get('api/overview');
    assert.is(r.status, 200);
    assert.equal(r.json.counts, {
      successful: { value: 4, estimated: false },
      failed: { value: 2, estimated: false },
      scheduled: { value: 1, estimated: false },
      queued: { value: 1, estimated: false },
    });
    const hourly = r.json.hourly as { hour: string; success: number; failure: number }[];
    assert.is(hourly.length, 24);
    assert.is(hourly[23]!.hour, new Date(thisHour).toISOString());
    assert.is(hourly[0]!.hour, new Date(thisHour - 23 * hour).toISOString());
    assert.equal(hourly[23], { hour: new Date(thisHour).toISOString(), success: 0, failure: 2 });
    assert.equal(hourly[21], { hour: new Date(thisHour - 2 * hour).toISOString(), success: 7, failure: 0 });
    assert.is(
      hourly.reduce((n, h) => n + h.success + h.failure, 0),
      9,
      'the 30-hour-old attempts are outside the window',
    );
  },
);

Meta(
  'overview counts every attempt exactly: 1,500 successes and 100 failures with saveLimit 250 show as 1,500 and 100',
  async ({ orm, api }) => {
    await orm.em.fork().transactional(async (tx) => {
      for (let i = 0; i < 1600; i++) await enqueue(tx, 'work', [i >= 1500]);
    });
    const { cluster } = await startCluster(orm, {
      saveLimit: 250,
      ackFailures: true,
      bulk: 100,
      tasks: {
        work: (fail: boolean) => {
          if (fail) throw new Error('no');
        },
      },
    });
    try {
      await waitForDrained(orm, 'the backlog drained', 60_000);
    } finally {
      await cluster.stop();
    }
    const r = await api.get('api/overview');
    const hourly = r.json.hourly as { success: number; failure: number }[];
    assert.equal(
      hourly.reduce((t, h) => [t[0]! + h.success, t[1]! + h.failure], [0, 0]),
      [1500, 100],
    );
    assert.is(r.json.counts.successful.value, 250);
    assert.ok(hourly.every((h) => !('estimated' in h)));
  },
);

Meta.run();

// ---------------------------------------------------------------------------------------------
const Lists = apiSuite('admin api: task lists, filters, search, paging');

Lists('successful and failed are separate lists with the contract row shape', async ({ orm, api }) => {
  const ok = await insertTask(orm, { name: 'ok-one', args: [1, 2], kwargs: { a: 1 }, result: 42, group: 'g', cluster: 'east' });
  const bad = await insertTask(orm, {
    name: 'bad-one',
    success: false,
    result: { error: 'TypeError', message: 'x is not a function'.repeat(10), stack: 'at foo' },
  });
  const s = await api.get('api/successful');
  assert.equal(
    s.json.rows.map((r: any) => r.id),
    [ok],
  );
  const row = s.json.rows[0];
  assert.equal(
    Object.keys(row).sort(),
    [
      'attemptCount',
      'cluster',
      'enqueued',
      'func',
      'group',
      'hook',
      'id',
      'name',
      'shortResult',
      'started',
      'stopped',
      'success',
      'timeTaken',
    ].sort(),
  );
  assert.is(row.timeTaken, 1500);
  assert.is(row.group, 'g');
  assert.is(row.shortResult, '42');
  assert.match(row.stopped, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const f = await api.get('api/failed');
  assert.equal(
    f.json.rows.map((r: any) => r.id),
    [bad],
  );
  assert.is(f.json.rows[0].shortResult.length, 100);
  assert.ok(f.json.rows[0].shortResult.startsWith('TypeError: x is not a function'));
  assert.equal(f.json.count, { value: 1, estimated: false });
});

Lists('group and cluster filters, and the filter choices of each list', async ({ orm, api }) => {
  await insertTask(orm, { group: 'mail', cluster: 'east' });
  await insertTask(orm, { group: 'mail', cluster: 'west' });
  await insertTask(orm, { group: 'report', cluster: 'east' });
  await insertTask(orm, { group: 'only-failed', cluster: 'north', success: false });
  const byGroup = await api.get('api/successful?group=mail');
  assert.is(byGroup.json.rows.length, 2);
  assert.is(byGroup.json.count.value, 2);
  const both = await api.get('api/successful?group=mail&cluster=east');
  assert.is(both.json.rows.length, 1);
  assert.equal(both.json.rows[0].cluster, 'east');
  const filters = await api.get('api/successful/filters');
  assert.equal(filters.json, { group: ['mail', 'report'], cluster: ['east', 'west'], func: ['work'] });
  const failedFilters = await api.get('api/failed/filters');
  assert.equal(failedFilters.json, { group: ['only-failed'], cluster: ['north'], func: ['work'] });
  const count = await api.get('api/successful/count?cluster=east');
  assert.equal(count.json, { count: 2, estimated: false });
});

Lists(
  'func and a span of stopped (from inclusive, to exclusive) narrow a list, its count and an "all matching" action',
  async ({ orm, api }) => {
    const t0 = Date.parse('2024-05-01T12:00:00Z');
    const at = (m: number) => new Date(t0 + m * 60_000).toISOString();
    await insertTask(orm, { func: 'email', stopped: at(-1) });
    await insertTask(orm, { func: 'email', stopped: at(0) });
    await insertTask(orm, { func: 'email', stopped: at(14) });
    await insertTask(orm, { func: 'email', stopped: at(15) });
    await insertTask(orm, { func: 'report', stopped: at(5) });
    await insertTask(orm, { func: 'email', stopped: at(5), success: false });
    const span = `from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(15))}`;
    const r = await api.get(`api/successful?func=email&${span}`);
    assert.is(r.status, 200, r.text);
    assert.equal(
      r.json.rows.map((x: any) => x.stopped),
      [at(14), at(0)],
    );
    assert.equal(r.json.count, { value: 2, estimated: false });
    assert.equal((await api.get(`api/successful/count?${span}`)).json, { count: 3, estimated: false });
    assert.is((await api.get(`api/failed?func=email&${span}`)).json.rows.length, 1);
    const done = await api.post('api/successful/actions/delete', { all: true, filter: { func: 'email', from: at(0), to: at(15) } });
    assert.equal([done.status, done.json.done], [200, 2]);
    assert.is((await api.get('api/successful')).json.rows.length, 3);
    for (const bad of ['yesterday', '2024-05-01', '2024-05-01T12:00:00', '2024-13-01T00:00:00Z']) {
      const e = await api.get(`api/successful?from=${encodeURIComponent(bad)}`);
      assert.is(e.status, 400, bad);
      assert.ok(e.json.error.fields.from, bad);
    }
    // Well-formed but not an instant PostgreSQL can read: no year 0, no 30 February, offsets within ±15:59.
    for (const bad of [
      '0000-01-01T00:00:00Z',
      '2024-02-30T00:00:00Z',
      '2023-02-29T00:00Z',
      '2024-04-31T12:00Z',
      '2024-05-01T12:00+23:00',
    ]) {
      for (const path of [`api/successful?to=${encodeURIComponent(bad)}`, `api/failed/count?to=${encodeURIComponent(bad)}`]) {
        const e = await api.get(path);
        assert.is(e.status, 400, `${path}: ${e.text}`);
        assert.ok(e.json.error.fields.to, path);
      }
    }
    for (const good of ['2024-02-29T00:00Z', '0001-01-01T00:00:00+14:00', '9999-12-31T23:59:59.999999-15:59']) {
      assert.is((await api.get(`api/successful?from=${encodeURIComponent(good)}`)).status, 200, good);
    }
    const long = await api.get(`api/failed?func=${'f'.repeat(257)}`);
    assert.equal([long.status, Object.keys(long.json.error.fields)], [400, ['func']]);
  },
);

Lists('search matches name, func and group; %, _, \\, quotes and ? are literal', async ({ orm, api }) => {
  const names = ['plain', '100%', '1000', 'a_b', 'axb', 'back\\slash', 'backXslash', "it's", 'say "hi"', 'why?', 'whyX'];
  for (const name of names) await insertTask(orm, { name });
  await insertTask(orm, { name: 'by-func', func: 'mailer.percent%send' });
  await insertTask(orm, { name: 'by-group', group: 'Nightly_Batch' });
  const search = async (q: string) =>
    ((await api.get(`api/successful?search=${encodeURIComponent(q)}`)).json.rows as { name: string }[]).map((r) => r.name).sort();
  assert.equal(await search('%'), ['100%', 'by-func']);
  assert.equal(await search('_'), ['a_b', 'by-group']);
  assert.equal(await search('\\'), ['back\\slash']);
  assert.equal(await search("'"), ["it's"]);
  assert.equal(await search('"hi"'), ['say "hi"']);
  assert.equal(await search('?'), ['why?']);
  assert.equal(await search('PLAIN'), ['plain'], 'case-insensitive');
  assert.equal(await search('nightly_'), ['by-group']);
  const count = await api.get(`api/successful/count?search=${encodeURIComponent('%')}`);
  assert.is(count.json.count, 2);
});

Lists('a term of several words matches it whole, as typed, in name, func or group', async ({ orm, api }) => {
  const names = [
    'amber-lotus-kiwi',
    'KIWI-AMBER-LOTUS',
    'lotus-amber',
    'amber-kiwi-lotus',
    'amber_lotus',
    'amber--lotus',
    'amberlotus',
    'ab-lotus.x',
  ];
  for (const name of names) await insertTask(orm, { name });
  await insertTask(orm, { name: 'by-func', func: 'app.amber-lotus.run' });
  await insertTask(orm, { name: 'by-group', group: 'x-Amber-Lotus' });
  const search = async (q: string) =>
    ((await api.get(`api/successful?search=${encodeURIComponent(q)}`)).json.rows as { name: string }[]).map((r) => r.name).sort();
  assert.equal(await search('amber-lotus'), ['KIWI-AMBER-LOTUS', 'amber-lotus-kiwi', 'by-func', 'by-group']);
  assert.equal(await search('amber_lotus'), ['amber_lotus']);
  assert.equal(await search('r-l'), ['KIWI-AMBER-LOTUS', 'amber-lotus-kiwi', 'by-func', 'by-group'], 'no word of 3 letters');
  assert.equal(await search('ab-lotus.'), ['ab-lotus.x'], 'a short word and a separator at the end');
  assert.equal(await search('s.run'), ['by-func']);
  const count = await api.get(`api/successful/count?search=${encodeURIComponent('AMBER-lotus')}`);
  assert.is(count.json.count, 4);
});

Lists(
  "a term of several words is looked up by the rarest trigram of each word in the planner's samples, and finds what the whole term finds",
  async ({ orm, start }) => {
    // Every name holds "tim", "mbe", "ber", "lot"; "amb", "otu" and "tus" are in a handful of rows.
    await sql(
      orm,
      `insert into ormq_task (id, name, func, "group", enqueued, started, stopped, success)
     select md5(i::text), 'timber-lottery-' || i, 'work', case when i % 2 = 0 then 'lots' end, t, t, t, true
       from generate_series(1, 3000) i, lateral (select now() - interval '1 hour' - i * interval '1 second' as t) s`,
    );
    for (const name of ['amber-lotus-1', 'x-AMBER-LOTUS', 'amber-x-lotus', 'lotus-amber', 'xamber-lotusx', 'amber-lotus', 'ΣΑΣ-LOTUS'])
      await insertTask(orm, { name });
    await insertTask(orm, { name: 'by-func', func: 'app.Amber-Lotus.run' });
    await insertTask(orm, { name: 'by-group', group: 'amber-lotus-jobs' });
    await sql(orm, 'analyze ormq_task');
    const columns = ['name', 'func', '"group"'];
    const [text, params] = sampleStatement('ormq_task', columns);
    const samples = readSamples(await orm.em.fork().execute(text, params as unknown[]), columns);
    const parts = narrowParts('amber-lotus', samples);
    assert.equal(parts.get('name'), ['amb', 'otu']);
    // "amber" ends no group or func: where it meets "-" is asked too, one more rare trigram ("er ")
    assert.equal(parts.get('"group"'), ['amb', 'er-', 'otu'], 'half the groups are "lots"');
    assert.equal(parts.get('func'), ['amb', 'er-', 'lot'], 'no func holds "lot": the first of equals');
    // a word whose every trigram is in most rows is left out, unless every word is
    assert.equal(narrowParts('timber-amber', samples).get('name'), ['amb']);
    assert.equal(narrowParts('timber-lottery-12', samples).get('name'), ['tim']);

    // an admin of its own: it reads the samples of this table at its first search
    const { api } = await start();
    const names = async (q: string) =>
      (await api.get(`api/successful?search=${encodeURIComponent(q)}`)).json as { rows: { name: string }[]; count: unknown };
    const found = await names('amber-lotus');
    assert.equal(found.rows.map((r) => r.name).sort(), [
      'amber-lotus',
      'amber-lotus-1',
      'by-func',
      'by-group',
      'x-AMBER-LOTUS',
      'xamber-lotusx',
    ]);
    assert.equal(found.count, { value: 6, estimated: false });
    // 1, 10-19 and 120-129, 1200-1299: every row holds both words, 111 the term
    const many = await names('timber-lottery-12');
    assert.equal(many.count, { value: 111, estimated: false });
    assert.equal(
      many.rows.slice(0, 3).map((r) => r.name),
      ['timber-lottery-12', 'timber-lottery-120', 'timber-lottery-121'],
    );
    assert.equal((await names('amber-timber')).rows, []);
    // as typed: ILIKE lowers the part as PostgreSQL lowers the column
    assert.equal(narrowParts('AMBER-Lotus', samples).get('name'), ['AMB', 'otu']);
    assert.equal((await names('AMBER-Lotus')).count, { value: 6, estimated: false });
    // a word of other letters stays whole: lowered on its own, "ΣΑΣ" ends in a final sigma, and a
    // trigram of it would be lowered apart from its neighbours
    assert.equal(narrowParts('ΣΑΣ-LOTUS', samples).get('name'), ['ΣΑΣ', 'OTU']);
    assert.equal(
      (await names('ΣΑΣ-LOTUS')).rows.map((r) => r.name),
      ['ΣΑΣ-LOTUS'],
    );
  },
);

Lists(
  'a term whose words are in every row is looked up by where a word of it ends, and finds what the whole term finds',
  async ({ orm, start }) => {
    // "user", "example" and "com" are in every row's args; "r42" in 11 of them, "r42" ending a word in 1
    await sql(
      orm,
      `insert into ormq_task (id, name, func, args, enqueued, started, stopped, success)
     select md5('a' || i), 'args-' || i, 'work', jsonb_build_array('user' || i || '@example.com'), t, t, t, true
       from generate_series(1, 3000) i, lateral (select now() - interval '1 hour' - i * interval '1 second' as t) s`,
    );
    await sql(orm, 'analyze ormq_task');
    const sample = (end: number) =>
      new Map([
        [
          'args',
          {
            shares: new Map([
              ...['use', 'ser', 'exa', 'xam', 'amp', 'mpl', 'ple', 'com', 'le '].map((t) => [t, 1] as [string, number]),
              ['er4', 0.04],
              ['r42', 0.004],
              ['42 ', end],
            ]),
          },
        ],
      ]);
    // the rarest trigram is the word's last: one pattern asks for it and the word's end
    assert.equal(narrowParts('user42@example.com', sample(0.01)).get('args'), ['r42@']);
    assert.equal(narrowParts('user4x2@example.com', sample(0.01)).get('args'), ['r4x', 'x2@']);
    // an end in many rows costs the index more than it rules out; a word at the term's end has none known
    assert.equal(narrowParts('user42@example.com', sample(0.3)).get('args'), ['r42']);
    assert.equal(narrowParts('example.user42', sample(0.01)).get('args'), ['r42']);

    const { api } = await start();
    const names = async (q: string) => {
      const body = (await api.get(`api/successful?args=${encodeURIComponent(q)}`)).json as {
        rows: { name: string }[];
        count: { value: number };
      };
      return { names: body.rows.map((r) => r.name).sort(), count: body.count.value };
    };
    assert.equal(await names('user42@example.com'), { names: ['args-42'], count: 1 });
    // the term may start inside a word of the row: only its ends within the term are asked
    assert.equal(await names('ser42@example'), { names: ['args-42'], count: 1 });
    assert.equal((await names('42@example.com')).count, 30, 'user42, user142 … user2942');
    assert.equal(await names('USER2942@Example.COM'), { names: ['args-2942'], count: 1 });
  },
);

Lists(
  'a common term is checked among the newest rows as ILIKE checks it: in name, func or group, any case, never across two columns',
  async ({ orm, api }) => {
    // 3,000 older matches of each term: the planner expects more than a rare term's lookup takes,
    // so the newest rows are read first and each is checked row by row.
    await sql(
      orm,
      `insert into ormq_task (id, name, func, enqueued, started, stopped, success)
     select md5(i::text), case when i % 2 = 0 then 'old-common-' || i else E'old-x\\nmon-' || i end, 'work', t, t, t, true
       from generate_series(1, 6000) i, lateral (select now() - interval '1 hour' - i * interval '1 second' as t) s`,
    );
    await sql(orm, 'analyze ormq_task');
    const at = (s: number) => new Date(Date.now() - s * 1000).toISOString();
    await insertTask(orm, { name: 'by-func', func: 'app.COMMON.run', stopped: at(1) });
    await insertTask(orm, { name: 'hay', func: 'app.other', group: 'misc', stopped: at(2) });
    await insertTask(orm, { name: 'by-group', group: 'Common-jobs', stopped: at(3) });
    await insertTask(orm, { name: 'cross-x', func: 'mon.job', stopped: at(4) });
    await insertTask(orm, { name: 'new-X\nMON', stopped: at(5) });
    const names = async (q: string) =>
      ((await api.get(`api/successful?search=${encodeURIComponent(q)}&limit=3`)).json.rows as { name: string }[]).map((r) => r.name);
    assert.equal(await names('common'), ['by-func', 'by-group', 'old-common-2']);
    // "x", a newline, "mon": found within one column, not where one column ends and the next begins.
    assert.equal(await names('x\nmon'), ['new-X\nMON', 'old-x\nmon-1', 'old-x\nmon-3']);
  },
);

Lists('keyset paging walks every row once, newest first, across equal timestamps', async ({ orm, api }) => {
  const same = new Date(Date.now() - 60_000).toISOString();
  await insertManyTasks(orm, 130, { sameStopped: same, prefix: 'same-' });
  await insertManyTasks(orm, 37, { prefix: 'spread-' });
  const { rows, pages } = await walk(api, 'api/successful', 50);
  assert.is(pages, 4);
  assert.is(rows.length, 167);
  assert.is(new Set(rows.map((r) => r.id)).size, 167, 'no row twice');
  for (let i = 1; i < rows.length; i++) {
    const a = rows[i - 1];
    const b = rows[i];
    assert.ok(a.stopped > b.stopped || (a.stopped === b.stopped && a.id > b.id), `order at ${i}`);
  }
  // Rows 1 µs apart share a millisecond in JSON but are still told apart by the cursor.
  await sql(orm, 'truncate ormq_task');
  await sql(
    orm,
    `insert into ormq_task (id, name, func, enqueued, started, stopped, success)
    select md5(i::text), 'micro-' || i, 'work', now(), now(), timestamptz '2026-01-01 00:00:00' + i * interval '1 microsecond', true
    from generate_series(1, 9) i`,
  );
  const micro = await walk(api, 'api/successful', 2);
  assert.equal(
    micro.rows.map((r) => r.name),
    [9, 8, 7, 6, 5, 4, 3, 2, 1].map((i) => `micro-${i}`),
  );
});

Lists('a search pages through matches among the newest rows and far older ones alike, newest first, each once', async ({ orm, api }) => {
  // 3,000 successes one second apart: every 10th is a "needle", and three "rare" ones are the oldest.
  await sql(
    orm,
    `insert into ormq_task (id, name, func, enqueued, started, stopped, success)
     select md5(i::text), case when i > 2997 then 'rare-' || i when i % 10 = 0 then 'needle-' || i else 'hay-' || i end, 'work', t, t, t, true
       from generate_series(1, 3000) i, lateral (select now() - i * interval '1 second' as t) s`,
  );
  const needles = await walk(api, 'api/successful?search=needle', 50);
  assert.is(needles.rows.length, 299);
  assert.is(new Set(needles.rows.map((r) => r.id)).size, 299);
  const stopped = needles.rows.map((r) => Date.parse(r.stopped));
  assert.ok(
    stopped.every((t, i) => i === 0 || t < stopped[i - 1]!),
    'newest first',
  );
  assert.equal(
    needles.rows.slice(0, 2).map((r) => r.name),
    ['needle-10', 'needle-20'],
  );
  const rare = await api.get('api/successful?search=rare');
  assert.equal(
    rare.json.rows.map((r: { name: string }) => r.name),
    ['rare-2998', 'rare-2999', 'rare-3000'],
  );
  assert.equal(rare.json.count, { value: 3, estimated: false });
});

Lists(
  'in a large table a rare search that collects every match counts them exactly, past the cap of a counted search',
  async ({ orm, api }) => {
    // 110,000 successes: 1,500 of them "amber-lotus", none among the newest 2,000.
    await sql(
      orm,
      `insert into ormq_task (id, name, func, enqueued, started, stopped, success)
     select md5(i::text), case when i > 2000 and i % 70 = 0 then 'amber-lotus-' || i else 'hay-' || i end, 'work', t, t, t, true
       from generate_series(1, 105000) i, lateral (select now() - i * interval '1 second' as t) s`,
    );
    await sql(orm, 'analyze ormq_task');
    const r = await api.get('api/successful?search=amber-lotus');
    assert.is(r.json.rows[0].name, 'amber-lotus-2030');
    assert.equal(r.json.count, { value: 1472, estimated: false });
    // Past the first page the count is of the whole search again, not of what follows the cursor.
    const next = await api.get(`api/successful?search=amber-lotus&cursor=${encodeURIComponent(r.json.next)}`);
    assert.is(next.json.rows[0].name, `amber-lotus-${2030 + 70 * r.json.rows.length}`);
    assert.is(next.json.count.value >= 1000, true);
  },
);

Lists(
  'a search matching more rows than it looks up at once, none among the newest, pages through all of them in order',
  async ({ orm, api }) => {
    // The newest 2,500 are "hay"; the 3,000 older ones are "needle": more than a rare term's lookup
    // stops at, and fewer than a page within the newest rows, so every way of finding them is taken.
    await sql(
      orm,
      `insert into ormq_task (id, name, func, enqueued, started, stopped, success)
     select md5(i::text), case when i > 2500 then 'needle-' || i else 'hay-' || i end, 'work', t, t, t, true
       from generate_series(5500, 1, -1) i, lateral (select now() - i * interval '1 second' as t) s`,
    ); // oldest first on disk, the order in which the trigram index hands matches over
    await sql(orm, 'analyze ormq_task');
    const needles = await walk(api, 'api/successful?search=needle', 500);
    assert.is(needles.rows.length, 3000);
    assert.equal(
      needles.rows.map((r) => r.name),
      Array.from({ length: 3000 }, (_, i) => `needle-${2501 + i}`),
    );
    const first = await api.get('api/successful?search=NEEDLE-25&limit=20');
    assert.equal(
      first.json.rows.map((r: { name: string }) => r.name),
      [
        'needle-2501',
        'needle-2502',
        'needle-2503',
        'needle-2504',
        'needle-2505',
        'needle-2506',
        'needle-2507',
        'needle-2508',
        'needle-2509',
        'needle-2510',
        'needle-2511',
        'needle-2512',
        'needle-2513',
        'needle-2514',
        'needle-2515',
        'needle-2516',
        'needle-2517',
        'needle-2518',
        'needle-2519',
        'needle-2520',
      ],
    );
  },
);

Lists('optional columns: args come with the rows only when the list asks for them, cut to 100 characters', async ({ orm, api }) => {
  await insertTask(orm, { name: 'short', args: ['invoice-3'] });
  await insertTask(orm, {
    name: 'long',
    args: ['x'.repeat(300)],
    success: false,
    attemptCount: 2,
    result: { error: 'Error', message: 'no' },
  });
  const plain = await api.get('api/successful');
  assert.is(plain.json.rows[0].args, undefined, 'not asked: not read');
  assert.is(plain.json.rows[0].attemptCount, 1, 'attempts come with every row');
  assert.equal(
    (await api.get('api/successful?columns=args')).json.rows.map((r: any) => r.args),
    ['["invoice-3"]'],
  );
  const failed = await api.get('api/failed?columns=args,attemptCount&search=long');
  assert.is(failed.status, 200, failed.text);
  assert.equal([failed.json.rows[0].args, failed.json.rows[0].attemptCount], [`["${'x'.repeat(98)}`, 2]);
  const bad = await api.get('api/failed?columns=args,result');
  assert.is(bad.status, 400);
  assert.match(bad.json.error.message, /unknown optional column "result"/);
  assert.ok(bad.json.error.fields.columns);
});

Lists('limit and cursor are checked', async ({ api }) => {
  for (const limit of ['0', '501', 'x', '-1']) {
    const r = await api.get(`api/successful?limit=${limit}`);
    assert.is(r.status, 400, limit);
    assert.ok(r.json.error.fields.limit);
  }
  const bad = await api.get('api/successful?cursor=not-a-cursor');
  assert.is(bad.status, 400);
  assert.ok(bad.json.error.fields.cursor);
  const forged = Buffer.from(JSON.stringify(['2026-01-01', "1' or 1=1"])).toString('base64url');
  assert.is((await api.get(`api/successful?cursor=${forged}`)).status, 400);
  const big = await api.get('api/successful?limit=500');
  assert.is(big.status, 200);
});

Lists(
  'forged cursors and out-of-range dates are a 400 naming the parameter, never a 500, and nothing is logged as an error',
  async (ctx) => {
    const logged: string[] = [];
    const { api } = await ctx.start({ ...OPTIONS, log: (level, message) => void (level === 'error' && logged.push(message)) });
    await insertTask(ctx.orm, { success: true });
    await insertTask(ctx.orm, { success: false });
    const cursor = (value: unknown[]) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const id = 'a'.repeat(32);
    const times = [
      '2024-13-45T00:00:00.000000Z',
      '0000-01-01T00:00:00.000000Z',
      '2024-02-30T00:00:00.000000Z',
      '2023-02-29T00:00:00.000000Z',
      '2024-04-31T00:00:00.000000Z',
      '2024-00-10T00:00:00.000000Z',
      '2024-05-01T24:00:00.000000Z',
      '2024-05-01T23:60:00.000000Z',
      '2024-05-01T23:59:61.000000Z',
    ];
    const forged: [string, string][] = [];
    for (const time of times) {
      forged.push(['api/successful', cursor([time, id])], ['api/failed', cursor([time, id])], ['api/scheduled', cursor([time, 1])]);
    }
    forged.push(
      ['api/queued', cursor(['1'])],
      ['api/queued', cursor([1.5])],
      ['api/queued', cursor([2 ** 63])],
      ['api/scheduled', cursor(['2024-05-01T00:00:00.000000Z', 'x'])],
    );
    for (const [path, c] of forged) {
      const r = await api.get(`${path}?cursor=${c}`);
      assert.is(r.status, 400, `${path} ${Buffer.from(c, 'base64url').toString()}: ${r.text}`);
      assert.ok(r.json.error.fields.cursor, r.text);
    }
    // The same forgery continuing an "all matching" action.
    const action = await api.post('api/failed/actions/delete', { all: true, filter: {}, cursor: cursor([times[0], id]) });
    assert.is(action.status, 400, action.text);
    assert.ok(action.json.error.fields.cursor);

    for (const name of ['hour', 'from', 'to']) {
      for (const value of [
        '-000001-01-01T00:00:00Z',
        '+275760-01-01T00:00:00Z',
        '0000-06-01T00:00:00Z',
        '2024-02-30T10:00:00Z',
        '2024-05-01T10:00:00+16:00',
        'soon',
      ]) {
        for (const page of ['successful', 'failed']) {
          const r = await api.get(`api/${page}?${name}=${encodeURIComponent(value)}`);
          assert.is(r.status, 400, `${page} ${name}=${value}: ${r.text}`);
          assert.ok(r.json.error.fields[name], r.text);
        }
      }
    }
    // The last hour JavaScript can write still reads: the database adds the hour.
    assert.is((await api.get(`api/successful?hour=${encodeURIComponent('9999-12-31T23:30:00Z')}`)).status, 200);
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
    assert.is((await api.get(`api/successful?hour=${encodeURIComponent(hour)}`)).json.rows.length, 1);

    // A schedule's next run on a day its month does not have is a field error, not March.
    const feb30 = await api.post('api/scheduled', { func: 'work', scheduleType: 'O', nextRun: '2030-02-30T10:00:00Z' });
    assert.is(feb30.status, 400, feb30.text);
    assert.ok(feb30.json.error.fields.nextRun);
    assert.equal(logged, []);
  },
);

Lists('a count over 10,000 matches is still exact when the table is small', async ({ orm, api }) => {
  await insertManyTasks(orm, 10_050, { success: false });
  const r = await api.get('api/failed?limit=1');
  assert.equal(r.json.count, { value: 10_050, estimated: false });
});

Lists.run();

// ---------------------------------------------------------------------------------------------
const Big = apiSuite('admin api: counts on a large table');

Big('beyond 100k rows an unfiltered count is the planner estimate, marked as such; narrow filters stay exact', async ({ orm, api }) => {
  await insertManyTasks(orm, 120_000, { group: 'bulk' });
  await insertManyTasks(orm, 7, { group: 'rare', cluster: 'c1' });
  await sql(orm, 'analyze ormq_task');
  const all = await api.get('api/successful?limit=5');
  assert.is(all.json.count.estimated, true);
  assert.ok(Math.abs(all.json.count.value - 120_007) < 12_000, `estimate ${all.json.count.value}`);
  assert.is(all.json.rows.length, 5);
  const rare = await api.get('api/successful?group=rare');
  assert.equal(rare.json.count, { value: 7, estimated: false });
  const none = await api.get('api/failed');
  assert.equal(none.json.count, { value: 0, estimated: false });
  const estimate = await api.get('api/successful/count');
  assert.is(estimate.json.estimated, true, 'the count endpoint estimates too, and says so');
  assert.ok(Math.abs(estimate.json.count - 120_007) < 12_000, `estimate ${estimate.json.count}`);
  assert.equal((await api.get('api/successful/count?group=rare')).json, { count: 7, estimated: false });
  const overview = await api.get('api/overview');
  assert.is(overview.json.counts.successful.estimated, true);
  const filters = await api.get('api/successful/filters');
  assert.equal(filters.json.group, ['bulk', 'rare']);
});

Big('on a large table the count endpoint and the remaining after a chunk are estimates, marked so; narrow ones stay exact', async (ctx) => {
  const { api } = await ctx.start();
  await insertManyTasks(ctx.orm, 120_000, { success: false, group: 'bulk' });
  await insertManyTasks(ctx.orm, 7, { success: false, group: 'rare' });
  await sql(ctx.orm, 'analyze ormq_task');
  const count = await api.get('api/failed/count');
  assert.is(count.json.estimated, true, count.text);
  assert.ok(Math.abs(count.json.count - 120_007) < 12_000, `estimate ${count.json.count}`);
  assert.equal((await api.get('api/failed/count?group=rare')).json, { count: 7, estimated: false });

  const chunk = await api.post('api/failed/actions/delete', { all: true, filter: { group: 'bulk' } });
  assert.is(chunk.json.done, 500);
  assert.is(chunk.json.estimated, true, chunk.text);
  assert.ok(Math.abs(chunk.json.remaining - 119_500) < 12_000, `remaining ${chunk.json.remaining}`);
  const rare = await api.post('api/failed/actions/delete', { all: true, filter: { group: 'rare' } });
  assert.equal(rare.json, { done: 7, remaining: 0, cursor: null }, 'exact, and no estimated flag');
});

Big.run();

// ---------------------------------------------------------------------------------------------
const Detail = apiSuite('admin api: details, large fields, history');

Detail('a task detail has every field; fields over 8 KB come as a preview and load in full alone', async ({ orm, api }) => {
  const big = Array.from({ length: 2000 }, (_, i) => `item-${i}`);
  const id = await insertTask(orm, {
    name: 'big',
    args: big,
    kwargs: { small: true },
    result: { rows: big },
    success: false,
    attemptCount: 3,
  });
  const r = await api.get(`api/failed/${id}`);
  assert.is(r.status, 200);
  assert.is(r.json.object.id, id);
  assert.is(r.json.object.attemptCount, 3);
  assert.equal(r.json.object.kwargs, { small: true });
  assert.not.ok('args' in r.json.object);
  assert.not.ok('result' in r.json.object);
  // Cut in the database: the size and preview are of the JSON text PostgreSQL writes.
  const [{ text: argsText }] = (await sql<{ text: string }>(orm, 'select args::text as text from ormq_task where id = ?', [id])) as [
    { text: string },
  ];
  assert.is(r.json.truncated.args.bytes, Buffer.byteLength(argsText));
  assert.is(r.json.truncated.args.preview, argsText.slice(0, 2000));
  assert.equal(JSON.parse(argsText), big);
  assert.ok(r.json.truncated.result.bytes > 8192);
  assert.equal(r.json.history, []);
  const full = await api.get(`api/failed/${id}/field/args`);
  assert.equal(full.json, big);
  const result = await api.get(`api/failed/${id}/field/result`);
  assert.equal(result.json, { rows: big });
  assert.is((await api.get(`api/failed/${id}/field/name`)).status, 404);
  assert.is((await api.get(`api/successful/${id}`)).status, 404, 'a failure is not on the successful page');
  assert.is((await api.get(`api/failed/${'0'.repeat(32)}`)).status, 404);
});

Detail('schedule and queued details, with history of admin actions and their actor', async ({ orm, api }) => {
  const s = await schedule(orm.em.fork(), {
    name: 'nightly',
    func: 'report',
    scheduleType: 'D',
    nextRun: new Date(Date.now() + 3_600_000),
    args: [1],
  });
  await api.post('api/scheduled/actions/pause', { ids: [s.id] }, as('alice'));
  await api.post('api/scheduled/actions/resume', { ids: [s.id] }, as('bob'));
  const d = await api.get(`api/scheduled/${s.id}`);
  assert.is(d.json.object.name, 'nightly');
  assert.equal(d.json.object.args, [1]);
  assert.is(d.json.object.version, 3);
  assert.equal(
    d.json.history.map((h: any) => [h.actor, h.action]),
    [
      ['bob', 'resume'],
      ['alice', 'pause'],
    ],
  );
  assert.match(d.json.history[1].summary, /Paused/);
  assert.equal((await api.get(`api/scheduled/${s.id}/field/args`)).json, [1]);

  await enqueue(orm.em.fork(), 'work', [Array.from({ length: 3000 }, () => 'x')], { name: 'heavy' });
  const q = await api.get('api/queued');
  const qid = q.json.rows[0].id;
  const qd = await api.get(`api/queued/${qid}`);
  assert.is(qd.json.object.name, 'heavy');
  assert.not.ok('payload' in qd.json.object);
  assert.ok(qd.json.truncated.payload.bytes > 8192);
  const payload = await api.get(`api/queued/${qid}/field/payload`);
  assert.is(payload.json.name, 'heavy');
  assert.is(payload.json.args[0].length, 3000);
  assert.is((await api.get('api/queued/999999')).status, 404);
  assert.is((await api.get('api/scheduled/abc')).status, 404);
});

Detail('a queued package says when it was enqueued, which process holds its lock and when the lock expires', async ({ orm, api }) => {
  const before = Date.now();
  await enqueue(orm.em.fork(), 'work', [], { name: 'claimed' });
  await enqueue(orm.em.fork(), 'work', [], { name: 'held-by-hand' });
  await enqueue(orm.em.fork(), 'work', [], { name: 'waiting' });
  // a process whose retry is 30 s claimed one 10 s ago; the other was locked by hand, as an edit delays it
  await sql(
    orm,
    `insert into ormq_cluster (id, name, host, pid, started, heartbeat, beat_ms, state, workers, busy, done, failed, version, tasks, config)
     values ('p-holder', 'mail', 'box-7', 77, now(), now(), 1000, 'running', 2, 1, 0, 0, '0.0.1', '[]'::jsonb, '{"retry": 30}'::jsonb)`,
  );
  try {
    await sql(
      orm,
      `update ormq_queued set lock = now() - interval '10 seconds', locked_by = 'p-holder' where payload->>'name' = 'claimed'`,
    );
    await sql(orm, `update ormq_queued set lock = now() + interval '1 hour' where payload->>'name' = 'held-by-hand'`);
    const { rows } = (await api.get('api/queued')).json;
    const by = Object.fromEntries(rows.map((r: any) => [r.name, r]));
    for (const r of rows)
      assert.ok(Date.parse(r.enqueued) >= before - 1000 && Date.parse(r.enqueued) <= Date.now(), `${r.name} enqueued ${r.enqueued}`);
    assert.is(by.claimed.lockedBy, 'mail (box-7 pid 77)');
    assert.is(Date.parse(by.claimed.lockExpires) - Date.parse(by.claimed.lock), 30_000, "its process's retry");
    assert.is(by['held-by-hand'].lockedBy, null);
    assert.is(Date.parse(by['held-by-hand'].lockExpires) - Date.parse(by['held-by-hand'].lock), 90_000, "the admin's retry");
    assert.equal([by.waiting.lock, by.waiting.lockExpires, by.waiting.lockedBy], [null, null, null]);
    // the detail says the same
    const d = (await api.get(`api/queued/${by.claimed.id}`)).json.object;
    assert.equal([d.lockedBy, d.lockExpires, d.enqueued], [by.claimed.lockedBy, by.claimed.lockExpires, by.claimed.enqueued]);
  } finally {
    await sql(orm, `delete from ormq_cluster where id = 'p-holder'`);
  }
});

Detail.run();

/** A task that failed while its package stays queued for a retry, as a cluster with default settings leaves it. */
async function failedWithRetryQueued(orm: MikroORM, name: string): Promise<string> {
  const id = await enqueue(orm.em.fork(), 'work', [name], { name });
  await insertTask(orm, { id, name, func: 'work', args: [name], success: false, result: { error: 'Error', message: 'boom' } });
  await sql(orm, `update ormq_queued set linked = true where payload->>'id' = ?`, [id]);
  return id;
}

const queuedTaskIds = async (orm: MikroORM) =>
  (await sql<{ id: string }>(orm, `select payload->>'id' as id from ormq_queued order by id`)).map((r) => r.id);

// ---------------------------------------------------------------------------------------------
const TaskActions = apiSuite('admin api: task actions');

TaskActions('delete a selection; each deletion is logged with the actor', async ({ orm, api }) => {
  const a = await insertTask(orm, { name: 'a' });
  const b = await insertTask(orm, { name: 'b' });
  const c = await insertTask(orm, { name: 'c' });
  const failure = await insertTask(orm, { name: 'f', success: false });
  const r = await api.post('api/successful/actions/delete', { ids: [a, b, failure] }, as('alice'));
  assert.equal(r.json, { done: 2, remaining: 0 }, 'a failure is not deleted from the successful page');
  const left = await sql<{ id: string }>(orm, 'select id from ormq_task order by name');
  assert.equal(
    left.map((x) => x.id),
    [c, failure],
  );
  const log = await sql<any>(orm, 'select actor, action, page, object_id from ormq_admin_log order by object_id');
  assert.equal(
    log,
    [a, b].sort().map((id) => ({ actor: 'alice', action: 'delete', page: 'successful', object_id: id })),
  );
});

TaskActions('delete all matching a filter runs in chunks of 500 and reports what remains', async ({ orm, api }) => {
  await insertManyTasks(orm, 1_234, { success: false, group: 'doomed' });
  await insertManyTasks(orm, 10, { success: false, group: 'kept' });
  await insertManyTasks(orm, 10, { success: true, group: 'doomed' });
  const count = await api.get('api/failed/count?group=doomed');
  assert.is(count.json.count, 1_234);
  const calls = await runAll(api, 'api/failed/actions/delete', { group: 'doomed' }, false, as('ops'));
  assert.equal(calls, [
    { done: 500, remaining: 734 },
    { done: 500, remaining: 234 },
    { done: 234, remaining: 0 },
  ]);
  const left = await sql<any>(orm, `select success, "group", count(*)::int as n from ormq_task group by 1, 2 order by 1, 2`);
  assert.equal(left, [
    { success: false, group: 'kept', n: 10 },
    { success: true, group: 'doomed', n: 10 },
  ]);
  const log = await sql<any>(
    orm,
    `select count(distinct object_id)::int as n, min(actor) as actor from ormq_admin_log where action = 'delete'`,
  );
  assert.equal(log, [{ n: 1_234, actor: 'ops' }]);
});

TaskActions('resubmitting a failure enqueues the same work and removes the failure row', async ({ orm, api }) => {
  const id = await insertTask(orm, {
    name: 'flaky',
    func: 'email',
    args: ['a@b.c'],
    kwargs: { urgent: true },
    hook: 'report',
    group: 'mail',
    cluster: 'east',
    success: false,
    result: { error: 'Error', message: 'smtp down' },
  });
  const r = await api.post('api/failed/actions/resubmit', { ids: [id] }, as('carol'));
  assert.equal(r.json, { done: 1, remaining: 0 });
  assert.is((await sql(orm, 'select 1 from ormq_task')).length, 0);
  const [pkg] = await sql<any>(orm, 'select key, payload, lock from ormq_queued');
  assert.is(pkg.key, 'east');
  assert.is(pkg.lock, null);
  assert.is(pkg.payload.func, 'email');
  assert.equal(pkg.payload.args, ['a@b.c']);
  assert.equal(pkg.payload.kwargs, { urgent: true });
  assert.is(pkg.payload.hook, 'report');
  assert.is(pkg.payload.group, 'mail');
  assert.is.not(pkg.payload.id, id, 'a new task');
  const [log] = await sql<any>(orm, `select actor, action, page, object_id, summary from ormq_admin_log where action = 'resubmit'`);
  assert.equal([log.actor, log.action, log.page, log.object_id], ['carol', 'resubmit', 'failed', id]);
  assert.ok(log.summary.includes(pkg.payload.id));
});

TaskActions('resubmit of failures is one transaction: enqueue and delete both happen or neither', async ({ orm, api }) => {
  const good = await insertTask(orm, { name: 'good', func: 'work', success: false });
  const doomed = await insertTask(orm, { name: 'doomed', func: 'explode', success: false });
  await sql(
    orm,
    `create function ormq_test_refuse() returns trigger language plpgsql as $$
    begin if new.payload->>'func' = 'explode' then raise exception 'refused by test trigger'; end if; return new; end $$`,
  );
  await sql(orm, 'create trigger ormq_test_refuse before insert on ormq_queued for each row execute function ormq_test_refuse()');
  const logged: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  try {
    const r = await api.post('api/failed/actions/resubmit', { ids: [good, doomed] });
    console.error = consoleError;
    assert.is(r.status, 500);
    assert.match(inspect(logged), /refused by test trigger/, 'the cause goes to the server log');
    assert.not.match(r.text, /refused by test trigger|\bat\s+\S+\s+\(/, 'no database message or stack in the answer');
    assert.is((await sql(orm, 'select 1 from ormq_task')).length, 2, 'no failure row was deleted');
    assert.is((await sql(orm, 'select 1 from ormq_queued')).length, 0, 'no package was left behind');
    assert.is((await sql(orm, 'select 1 from ormq_admin_log')).length, 0);
  } finally {
    console.error = consoleError;
    await sql(orm, 'drop trigger ormq_test_refuse on ormq_queued');
    await sql(orm, 'drop function ormq_test_refuse()');
  }
});

TaskActions('resubmit all failures matching a search, across chunks, each exactly once', async ({ orm, api }) => {
  await insertManyTasks(orm, 1_100, { success: false, func: 'import.rows', prefix: 'imp-' });
  await insertManyTasks(orm, 5, { success: false, func: 'other', prefix: 'oth-' });
  const calls = await runAll(api, 'api/failed/actions/resubmit', { search: 'import.' }, false);
  assert.equal(
    calls.map((c) => c.done),
    [500, 500, 100],
  );
  assert.is(calls[calls.length - 1]!.remaining, 0);
  const q = await sql<any>(
    orm,
    `select count(*)::int as n, count(distinct payload->>'id')::int as ids, min(payload->>'func') as func from ormq_queued`,
  );
  assert.equal(q, [{ n: 1_100, ids: 1_100, func: 'import.rows' }]);
  const log = await sql<any>(orm, `select count(distinct object_id)::int as n from ormq_admin_log where action = 'resubmit'`);
  assert.is(log[0].n, 1_100);
  assert.is((await sql(orm, 'select 1 from ormq_task')).length, 5);
});

TaskActions('resubmit all successes: with a cursor chunk by chunk, never twice; without a cursor refused', async ({ orm, api }) => {
  await insertManyTasks(orm, 1_050, { success: true, group: 'nightly' });
  const calls = await runAll(api, 'api/successful/actions/resubmit', { group: 'nightly' }, true);
  assert.equal(calls, [
    { done: 500, remaining: 550 },
    { done: 500, remaining: 50 },
    { done: 50, remaining: 0 },
  ]);
  let q = await sql<any>(orm, `select count(*)::int as n from ormq_queued`);
  assert.is(q[0].n, 1_050);
  const sources = await sql<any>(
    orm,
    `select count(distinct object_id)::int as n, count(*)::int as total from ormq_admin_log where action = 'resubmit'`,
  );
  assert.equal(sources, [{ n: 1_050, total: 1_050 }]);
  assert.is((await sql(orm, 'select 1 from ormq_task')).length, 1_050, 'successes stay');

  await sql(orm, 'truncate ormq_queued, ormq_admin_log');
  const once = await api.post('api/successful/actions/resubmit', { all: true, filter: { group: 'nightly' } });
  assert.is(once.status, 400, once.text);
  assert.ok(once.json.error.fields.cursor);
  q = await sql<any>(orm, `select count(*)::int as n from ormq_queued`);
  assert.is(q[0].n, 0);
});

TaskActions('bad action bodies are 400 naming what is wrong; unknown actions 404', async ({ api }) => {
  const cases: [unknown, string][] = [
    [{}, 'ids'],
    [{ ids: [] }, 'ids'],
    [{ ids: ['nope'] }, 'ids'],
    [{ ids: Array.from({ length: 501 }, () => 'a'.repeat(32)) }, 'ids'],
    [{ all: true, filter: 'x' }, 'filter'],
    [{ all: true, filter: { group: 5 } }, 'group'],
    [[1, 2], 'body'],
  ];
  for (const [body, field] of cases) {
    const r = await api.post('api/failed/actions/delete', body);
    assert.is(r.status, 400, JSON.stringify(body));
    assert.ok(r.json.error.fields[field], `${JSON.stringify(body)} → ${r.text}`);
  }
  assert.is((await api.post('api/failed/actions/explode', { ids: [] })).status, 404);
  assert.is((await api.post('api/successful/actions/pause', { ids: [] })).status, 404);
});

TaskActions('resubmitting failures removes their queued retry packages in the same transaction, so each runs once', async (ctx) => {
  const { api } = await ctx.start();
  const a = await failedWithRetryQueued(ctx.orm, 'a');
  const b = await failedWithRetryQueued(ctx.orm, 'b');
  const other = await enqueue(ctx.orm.em.fork(), 'work', ['unrelated']);
  const r = await api.post('api/failed/actions/resubmit', { ids: [a] });
  assert.equal(r.json, { done: 1, remaining: 0 }, r.text);
  const queued = await queuedTaskIds(ctx.orm);
  assert.is(queued.length, 3, 'b, the unrelated package and the new one for a');
  assert.not.ok(queued.includes(a), "a's retry package is gone");
  assert.ok(queued.includes(b) && queued.includes(other));
  // The resubmission is found by its task id, as a's lineage links to it.
  assert.equal(await sql(ctx.orm, `select linked from ormq_queued where not payload->>'id' in (?, ?)`, [b, other]), [{ linked: true }]);

  // "All matching" takes the same path.
  const all = await api.post('api/failed/actions/resubmit', { all: true, filter: {} });
  assert.is(all.json.done, 1, all.text);
  const after = await queuedTaskIds(ctx.orm);
  assert.not.ok(after.includes(b), "b's retry package is gone");
  assert.is(after.length, 3);
  assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 0);
});

TaskActions('deleting failures removes their queued retries too; deleting a success leaves a new run of its id queued', async (ctx) => {
  const { api } = await ctx.start();
  const a = await failedWithRetryQueued(ctx.orm, 'a');
  const b = await failedWithRetryQueued(ctx.orm, 'b');
  // a success whose id the host enqueued again: a new run, not a retry of the deleted record
  const c = await enqueue(ctx.orm.em.fork(), 'work', ['c']);
  await insertTask(ctx.orm, { id: c, name: 'c', success: true });
  const keep = await enqueue(ctx.orm.em.fork(), 'work', ['keep']);
  assert.equal((await api.post('api/failed/actions/delete', { ids: [a] })).json, { done: 1, remaining: 0 });
  assert.equal((await api.post('api/failed/actions/delete', { all: true, filter: { search: 'b' } })).json, {
    done: 1,
    remaining: 0,
    cursor: null,
  });
  assert.equal((await api.post('api/successful/actions/delete', { ids: [c] })).json, { done: 1, remaining: 0 });
  assert.equal((await queuedTaskIds(ctx.orm)).sort(), [c, keep].sort());
  assert.not.ok((await queuedTaskIds(ctx.orm)).includes(b));
  // The lookup by task id is an index probe, not a scan of the whole queue.
  assert.is((await sql(ctx.orm, `select 1 from pg_indexes where indexname = 'ormq_queued_task_idx'`)).length, 1);
});

TaskActions('a selection is one transaction of at most 500 ids; 501 is a 400 naming ids', async (ctx) => {
  const logged: [string, string, unknown][] = [];
  const { api } = await ctx.start({ log: (level, message, detail) => logged.push([level, message, detail]) });
  const ids: string[] = [];
  for (let i = 0; i < 501; i++) ids.push(i.toString(16).padStart(32, '0'));
  const over = await api.post('api/failed/actions/delete', { ids });
  assert.is(over.status, 400, over.text);
  assert.match(over.json.error.fields.ids, /at most 500/);

  // 500 failures, the last refused by the database: none of them is resubmitted.
  await insertManyTasks(ctx.orm, 499, { success: false, func: 'work' });
  await insertTask(ctx.orm, { success: false, func: 'explode' });
  const all = (await sql<{ id: string }>(ctx.orm, 'select id from ormq_task')).map((r) => r.id.trim());
  await sql(
    ctx.orm,
    `create function ormq_test_refuse() returns trigger language plpgsql as $$
    begin if new.payload->>'func' = 'explode' then raise exception 'refused by test trigger'; end if; return new; end $$`,
  );
  await sql(ctx.orm, 'create trigger ormq_test_refuse before insert on ormq_queued for each row execute function ormq_test_refuse()');
  try {
    const r = await api.post('api/failed/actions/resubmit', { ids: all });
    assert.is(r.status, 500);
    assert.not.match(r.text, /refused by test trigger/, 'the details stay on the server');
    assert.is(logged.length, 1, 'the log option receives the error behind the 500');
    assert.is(logged[0]![0], 'error');
    assert.match(String((logged[0]![2] as Error).message), /refused by test trigger/);
  } finally {
    await sql(ctx.orm, 'drop trigger ormq_test_refuse on ormq_queued');
    await sql(ctx.orm, 'drop function ormq_test_refuse()');
  }
  assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 500, 'no failure row deleted');
  assert.is((await sql(ctx.orm, 'select 1 from ormq_queued')).length, 0, 'no package written');
});

TaskActions(
  '"all matching" on rows that still match afterwards is chunked from a null cursor; without one it is a 400, never a one-shot',
  async (ctx) => {
    const { api } = await ctx.start();
    await insertManyTasks(ctx.orm, 1_050, { success: true, group: 'nightly' });
    const bare = await api.post('api/successful/actions/resubmit', { all: true, filter: { group: 'nightly' } });
    assert.is(bare.status, 400, bare.text);
    assert.ok(bare.json.error.fields.cursor);
    assert.is((await sql(ctx.orm, 'select 1 from ormq_queued')).length, 0);

    const first = await api.post('api/successful/actions/resubmit', { all: true, filter: { group: 'nightly' }, cursor: null });
    assert.is(first.json.done, 500);
    assert.is(first.json.remaining, 550);
    assert.type(first.json.cursor, 'string');
    const second = await api.post('api/successful/actions/resubmit', {
      all: true,
      filter: { group: 'nightly' },
      cursor: first.json.cursor,
    });
    assert.equal([second.json.done, second.json.remaining], [500, 50]);
    const third = await api.post('api/successful/actions/resubmit', {
      all: true,
      filter: { group: 'nightly' },
      cursor: second.json.cursor,
    });
    assert.equal(third.json, { done: 50, remaining: 0, cursor: null });
    assert.is((await sql(ctx.orm, 'select 1 from ormq_queued')).length, 1_050);

    // Delete converges: it needs no cursor.
    const del = await api.post('api/successful/actions/delete', { all: true, filter: { group: 'nightly' } });
    assert.equal([del.json.done, del.json.remaining], [500, 550]);
  },
);

TaskActions.run();

// ---------------------------------------------------------------------------------------------
const Schedules = apiSuite('admin api: schedules');

async function listen(db: TestDb, channel: string) {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const got: string[] = [];
  c.on('notification', (n) => got.push(n.payload ?? ''));
  await c.query(`listen ${channel}`);
  return { got, end: () => c.end() };
}

Schedules('the list is soonest first with filters by next run, type and cluster, and the last run', async ({ orm, api }) => {
  const em = orm.em.fork();
  const hour = 3_600_000;
  const past = await schedule(em, { name: 'overdue', func: 'work', scheduleType: 'H', nextRun: new Date(Date.now() - hour) });
  const soon = await schedule(em, {
    name: 'soon',
    func: 'work',
    scheduleType: 'I',
    minutes: 5,
    nextRun: new Date(Date.now() + 3 * 86_400_000),
    cluster: 'east',
  });
  const later = await schedule(em, { name: 'later', func: 'report', scheduleType: 'C', cron: '0 0 1 1 *', cluster: 'west' });
  const taskId = await insertTask(orm, { success: false });
  await sql(orm, 'update ormq_schedule set task = ? where id = ?', [taskId, past.id]);
  await sql(orm, 'update ormq_schedule set task = ? where id = ?', ['f'.repeat(32), soon.id]);

  const all = await api.get('api/scheduled');
  assert.equal(
    all.json.rows.map((r: any) => r.name),
    ['overdue', 'soon', 'later'],
  );
  const first = all.json.rows[0];
  const [{ stopped }] = await sql<any>(orm, 'select stopped from ormq_task where id = ?', [taskId]);
  assert.equal(first.lastRun, { id: taskId, success: false, stopped: new Date(stopped).toISOString() });
  assert.is(first.task, taskId);
  assert.is(all.json.rows[1].lastRun, null, 'a deleted task shows no last run');
  assert.equal(
    Object.keys(first).sort(),
    [
      'anchor',
      'args',
      'cluster',
      'cron',
      'func',
      'hook',
      'id',
      'intendedDateKwarg',
      'kwargs',
      'lastRun',
      'minutes',
      'name',
      'nextRun',
      'pausedRepeats',
      'repeats',
      'scheduleType',
      'task',
      'timeZone',
      'version',
    ].sort(),
  );

  const names = async (q: string) => ((await api.get(`api/scheduled?${q}`)).json.rows as any[]).map((r) => r.name);
  assert.equal(await names('nextRun=past'), ['overdue']);
  assert.equal(await names('nextRun=next7'), ['soon']);
  assert.equal(await names('nextRun=later'), ['later']);
  await api.post('api/scheduled/actions/pause', { ids: [soon.id] });
  assert.equal(await names('state=paused'), ['soon']);
  assert.equal(await names('state=active'), ['overdue', 'later']);
  assert.is((await api.get('api/scheduled?state=asleep')).json.error.fields.state, 'must be "paused" or "active"');
  assert.equal(await names('type=C'), ['later']);
  assert.equal(await names('cluster=east'), ['soon']);
  assert.equal(await names('search=repo'), ['later']);
  assert.equal(await names('search=SOON'), ['soon']);
  assert.is((await api.get('api/scheduled?type=ZZ')).status, 400);
  assert.is((await api.get('api/scheduled?nextRun=someday')).status, 400);
  const filters = await api.get('api/scheduled/filters');
  assert.equal(filters.json, { cluster: ['east', 'west'], type: ['C', 'H', 'I'] });
  assert.is(later.version, 1);
});

Schedules("the today filter is the admin time zone's calendar day", async ({ orm, api }) => {
  const em = orm.em.fork();
  const now = Date.now();
  const startOfDay = Math.floor(now / 86_400_000) * 86_400_000;
  await schedule(em, { name: 'this-morning', func: 'work', scheduleType: 'D', nextRun: new Date(startOfDay + 1) });
  await schedule(em, { name: 'tomorrow', func: 'work', scheduleType: 'D', nextRun: new Date(startOfDay + 86_400_000 + 1) });
  const r = await api.get('api/scheduled?nextRun=today');
  assert.equal(
    r.json.rows.map((x: any) => x.name),
    ['this-morning'],
  );
});

Schedules('paging by next run walks equal times once each', async ({ orm, api }) => {
  await sql(
    orm,
    `insert into ormq_schedule (name, func, schedule_type, next_run)
    select 's-' || i, 'work', 'D', timestamptz '2030-01-01' + (i % 3) * interval '1 hour' from generate_series(1, 23) i`,
  );
  const { rows, pages } = await walk(api, 'api/scheduled', 5);
  assert.is(pages, 5);
  assert.is(new Set(rows.map((r) => r.id)).size, 23);
});

Schedules('create validates each field, keeps names unique, logs and wakes the scheduler', async ({ orm, db, api }) => {
  const bad = await api.post('api/scheduled', { func: 'nope', scheduleType: 'C', cron: 'every day', args: '{"a":1}', kwargs: [1] });
  assert.is(bad.status, 400);
  assert.equal(Object.keys(bad.json.error.fields).sort(), ['args', 'cron', 'func', 'kwargs']);
  assert.match(bad.json.error.fields.func, /not a registered task/);
  const minutes = await api.post('api/scheduled', { func: 'work', scheduleType: 'I', minutes: 0, nextRun: new Date().toISOString() });
  assert.ok(minutes.json.error.fields.minutes);
  const badZone = await api.post('api/scheduled', { func: 'work', scheduleType: 'D', timeZone: 'Mars/Olympus' });
  assert.equal(Object.keys(badZone.json.error.fields), ['timeZone']);
  assert.match(badZone.json.error.fields.timeZone, /IANA time zone/);
  assert.is((await sql(orm, 'select 1 from ormq_schedule')).length, 0, 'nothing written');

  const listener = await listen(db, 'ormq_schedule');
  try {
    const nextRun = new Date(Date.now() + 60_000).toISOString();
    const ok = await api.post(
      'api/scheduled',
      { name: 'hourly <b>sync</b>', func: 'work', args: [1], kwargs: { a: 1 }, scheduleType: 'H', nextRun, cluster: 'east' },
      as('dana'),
    );
    assert.is(ok.status, 201, ok.text);
    assert.is(ok.json.object.name, 'hourly <b>sync</b>');
    assert.is(ok.json.object.nextRun, nextRun);
    assert.is(ok.json.object.version, 1);
    await waitFor(() => listener.got.includes('east'), 'the scheduler notification');
  } finally {
    await listener.end();
  }
  const dup = await api.post('api/scheduled', {
    name: 'hourly <b>sync</b>',
    func: 'work',
    scheduleType: 'H',
    nextRun: new Date().toISOString(),
  });
  assert.is(dup.status, 400);
  assert.match(dup.json.error.fields.name, /already used/);
  const log = await sql<any>(orm, 'select actor, action, page from ormq_admin_log');
  assert.equal(log, [{ actor: 'dana', action: 'create', page: 'scheduled' }]);
});

Schedules('edit bumps the version; a stale version is a 409 with the current schedule', async ({ orm, api }) => {
  const em = orm.em.fork();
  const s = await schedule(em, { name: 'a', func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 86_400_000) });
  await schedule(em, { name: 'b', func: 'work', scheduleType: 'D', nextRun: new Date() });
  const edit = await api.put(`api/scheduled/${s.id}`, { version: 1, func: 'email', repeats: 5 }, as('erin'));
  assert.is(edit.status, 200, edit.text);
  assert.is(edit.json.object.func, 'email');
  assert.is(edit.json.object.repeats, 5);
  assert.is(edit.json.object.version, 2);
  assert.is(edit.json.object.nextRun, s.nextRun.toISOString(), 'fields not given keep their values');
  const stale = await api.put(`api/scheduled/${s.id}`, { version: 1, func: 'report' });
  assert.is(stale.status, 409);
  assert.is(stale.json.error.status, 409);
  assert.is(stale.json.current.func, 'email');
  assert.is(stale.json.current.version, 2);
  const typeChange = await api.put(`api/scheduled/${s.id}`, { version: 2, scheduleType: 'C', cron: '*/10 * * * *' });
  assert.is(typeChange.status, 200);
  assert.is(new Date(typeChange.json.object.nextRun).getUTCMinutes() % 10, 0, 'a new cron recomputes the next run');
  const taken = await api.put(`api/scheduled/${s.id}`, { version: 3, name: 'b' });
  assert.is(taken.status, 400);
  assert.match(taken.json.error.fields.name, /already used/);
  const invalid = await api.put(`api/scheduled/${s.id}`, { version: 3, scheduleType: 'I', minutes: 'ten' });
  assert.ok(invalid.json.error.fields.minutes);
  const noVersion = await api.put(`api/scheduled/${s.id}`, { func: 'work' });
  assert.is(noVersion.status, 400);
  assert.ok(noVersion.json.error.fields.version);
  assert.is((await api.put('api/scheduled/9999', { version: 1 })).status, 404);
  const [row] = await sql<any>(orm, 'select func, version from ormq_schedule where id = ?', [s.id]);
  assert.equal(row, { func: 'email', version: 3 }, 'failed edits wrote nothing');
  const log = await sql<any>(orm, `select actor, summary from ormq_admin_log where action = 'edit' order by id`);
  assert.is(log[0].actor, 'erin');
  assert.match(log[0].summary, /func/);
});

Schedules('a new interval counts from the next run, not from where the old interval started', async ({ orm, api }) => {
  const s = await schedule(orm.em.fork(), { func: 'work', scheduleType: 'I', minutes: 60, nextRun: new Date('2030-01-01T10:00:00Z') });
  // It ran at 10:00 and 11:00: the anchor stays at 10:00, the next run is 12:00.
  await sql(orm, "update ormq_schedule set next_run = '2030-01-01T12:00:00Z' where id = ?", [s.id]);
  const edit = await api.put(`api/scheduled/${s.id}`, { version: 1, minutes: 7, nextRun: '2030-01-01T12:00:00Z' });
  assert.is(edit.status, 200, edit.text);
  assert.is(edit.json.object.anchor, '2030-01-01T12:00:00.000Z');
  const runs = await api.get(`api/scheduled/preview?id=${s.id}&scheduleType=I&minutes=7`);
  assert.equal(
    runs.json.runs,
    ['12:00', '12:07', '12:14', '12:21', '12:28'].map((t) => `2030-01-01T${t}:00.000Z`),
  );
});

Schedules('a schedule in year 1, which is year 0 on the wall clocks west of Greenwich, keeps its dates', async ({ api }) => {
  const created = await api.post('api/scheduled', {
    func: 'work',
    scheduleType: 'Monthly',
    timeZone: 'America/New_York',
    nextRun: '0001-01-01T00:00:00Z',
  });
  assert.is(created.status, 201, created.text);
  assert.equal([created.json.object.nextRun, created.json.object.anchor], ['0001-01-01T00:00:00.000Z', '0001-01-01T00:00:00.000Z']);
  const runs = await api.get(`api/scheduled/preview?id=${created.json.object.id}&scheduleType=M&timeZone=America/New_York`);
  assert.equal(
    runs.json.runs,
    ['01', '02', '03', '04', '05'].map((m) => `0001-${m}-01T00:00:00.000Z`),
  );
});

Schedules('pause, resume, run now and delete; each bumps the version and is logged', async ({ orm, db, api }) => {
  const em = orm.em.fork();
  const next = new Date(Date.now() + 86_400_000);
  const named = await schedule(em, {
    name: 'digest',
    func: 'email',
    args: ['x'],
    kwargs: { k: 1 },
    scheduleType: 'D',
    nextRun: next,
    cluster: 'east',
    intendedDateKwarg: 'when',
  });
  const anon = await schedule(em, { func: 'work', scheduleType: 'D', nextRun: next, repeats: 3 });

  const pause = await api.post('api/scheduled/actions/pause', { ids: [named.id, anon.id] });
  assert.equal(pause.json, { done: 2, remaining: 0 });
  assert.equal((await api.post('api/scheduled/actions/pause', { ids: [named.id] })).json, { done: 0, remaining: 0 }, 'already paused');
  let rows = await sql<any>(orm, 'select id, repeats, version from ormq_schedule order by id');
  assert.equal(rows, [
    { id: named.id, repeats: 0, version: 2 },
    { id: anon.id, repeats: 0, version: 2 },
  ]);
  const resume = await api.post('api/scheduled/actions/resume', { all: true, filter: {} });
  assert.equal(resume.json.done, 2);
  assert.is(resume.json.remaining, 0);
  rows = await sql<any>(orm, 'select repeats, paused_repeats, version from ormq_schedule order by id');
  assert.equal(
    rows,
    [
      { repeats: -1, paused_repeats: null, version: 3 },
      { repeats: 3, paused_repeats: null, version: 3 },
    ],
    'resume restores the count',
  );
  const resumed = await sql<any>(orm, `select summary from ormq_admin_log where action = 'resume' and object_id = ?`, [String(anon.id)]);
  assert.equal(
    resumed.map((r: any) => r.summary),
    ['Resumed (repeats restored to 3)'],
  );

  const listener = await listen(db, 'ormq_queued');
  try {
    const run = await api.post('api/scheduled/actions/run', { ids: [named.id, anon.id] }, as('fay'));
    assert.equal(run.json, { done: 2, remaining: 0 });
    await waitFor(() => listener.got.includes('east') && listener.got.includes('default'), 'queue notifications');
  } finally {
    await listener.end();
  }
  const pkgs = await sql<any>(orm, `select key, payload from ormq_queued order by (payload->>'schedule')::int`);
  assert.is(pkgs.length, 2);
  assert.is(pkgs[0].key, 'east');
  assert.is(pkgs[0].payload.group, 'digest');
  assert.is(pkgs[0].payload.schedule, named.id);
  assert.equal(pkgs[0].payload.args, ['x']);
  assert.is(pkgs[0].payload.kwargs.k, 1);
  assert.ok(!Number.isNaN(Date.parse(pkgs[0].payload.kwargs.when)), 'the intended date kwarg');
  assert.is(pkgs[1].payload.group, String(anon.id), 'an unnamed schedule groups by id');
  const after = await sql<any>(orm, 'select task, next_run, version from ormq_schedule order by id');
  assert.is(after[0].task, pkgs[0].payload.id);
  assert.is(new Date(after[0].next_run).toISOString(), next.toISOString(), 'run now leaves next_run');
  assert.is(after[0].version, 4);

  const del = await api.post('api/scheduled/actions/delete', { ids: [anon.id] });
  assert.equal(del.json, { done: 1, remaining: 0 });
  assert.is((await sql(orm, 'select 1 from ormq_schedule')).length, 1);
  const actions = await sql<any>(orm, 'select action, count(*)::int as n from ormq_admin_log group by 1 order by 1');
  assert.equal(actions, [
    { action: 'delete', n: 1 },
    { action: 'pause', n: 2 },
    { action: 'resume', n: 2 },
    { action: 'run', n: 2 },
  ]);
});

Schedules('the preview lists the next five runs, or says which field is wrong', async ({ api }) => {
  const cron = await api.get(`api/scheduled/preview?scheduleType=C&cron=${encodeURIComponent('30 4 * * *')}`);
  assert.is(cron.json.runs.length, 5);
  for (const run of cron.json.runs) assert.match(run, /T04:30:00\.000Z$/);
  const minutes = await api.get('api/scheduled/preview?scheduleType=I&minutes=15&nextRun=2030-01-01T00:00:00Z');
  assert.equal(
    minutes.json.runs,
    ['00:00', '00:15', '00:30', '00:45', '01:00'].map((t) => `2030-01-01T${t}:00.000Z`),
  );
  const bad = await api.get('api/scheduled/preview?scheduleType=C&cron=nonsense');
  assert.is(bad.status, 400);
  assert.ok(bad.json.error.fields.cron);
  // croner's class name stays out of the message; each says what a field may hold
  const cases: [string, string][] = [
    ['61 * * * *', 'minute must be 0–59'],
    ['0 25 * * *', 'hour must be 0–23'],
    ['0 0 32 * *', 'day of the month must be 1–31'],
    ['0 0 * 13 *', 'month must be 1–12 or JAN–DEC'],
    ['0 9 * * 8', 'weekday must be 0–7 or SUN–SAT (0 and 7 are Sunday)'],
    ['*/0 * * * *', 'a step (*/N) must be a whole number of 1 or more'],
    ['1-2-3 * * * *', '"1-2-3" is not a range (write from-to, e.g. 1-5)'],
    ['x * * * *', 'field 1 ("x") has characters a cron field cannot hold'],
  ];
  for (const [cron, message] of cases) {
    const r = await api.get(`api/scheduled/preview?scheduleType=C&cron=${encodeURIComponent(cron)}`);
    assert.is(r.json.error.fields.cron, `is not a valid cron expression: ${message}`, cron);
  }
  const noMinutes = await api.get('api/scheduled/preview?scheduleType=I');
  assert.ok(noMinutes.json.error.fields.minutes);
  // A rare cron whose later runs lie past the last year the cron library searches: the runs there are.
  const rare = await api.get(`api/scheduled/preview?scheduleType=C&cron=${encodeURIComponent('0 0 29 2 *')}&nextRun=2990-01-01T00:00:00Z`);
  assert.is(rare.status, 200, rare.text);
  assert.equal(rare.json.runs, ['2990-01-01T00:00:00.000Z', '2992-02-29T00:00:00.000Z', '2996-02-29T00:00:00.000Z']);
});

Schedules('the preview uses the schedule zone and shows what Save stores, first run included', async ({ orm, api }) => {
  // Daily at 02:30 in Amsterdam across the spring-forward night.
  const q = (extra: string) => api.get(`api/scheduled/preview?scheduleType=Daily&nextRun=2030-03-30T01:30:00Z${extra}`);
  const zoned = await q('&timeZone=Europe/Amsterdam');
  assert.equal(zoned.json.runs.slice(0, 3), ['2030-03-30T01:30:00.000Z', '2030-03-31T01:00:00.000Z', '2030-04-01T00:30:00.000Z']);
  const utc = await q('');
  assert.equal(utc.json.runs.slice(0, 3), ['2030-03-30T01:30:00.000Z', '2030-03-31T01:30:00.000Z', '2030-04-01T01:30:00.000Z']);
  assert.ok((await q('&timeZone=Nowhere/Land')).json.error.fields.timeZone);
  // No next run: now, as Save would store it.
  const t = Date.now();
  const now = await api.get('api/scheduled/preview?scheduleType=H');
  assert.ok(Math.abs(new Date(now.json.runs[0]).getTime() - t) < 60_000, now.json.runs[0]);
  // Editing: fields left out keep the stored schedule's, anchor included.
  const em = orm.em.fork();
  const s = await schedule(em, { func: 'work', scheduleType: 'M', nextRun: new Date('2030-01-31T09:00:00Z') });
  await sql(orm, "update ormq_schedule set next_run = '2030-02-28T09:00:00Z' where id = ?", [s.id]);
  const edit = await api.get(`api/scheduled/preview?id=${s.id}&scheduleType=M`);
  assert.equal(edit.json.runs.slice(0, 3), ['2030-02-28T09:00:00.000Z', '2030-03-31T09:00:00.000Z', '2030-04-30T09:00:00.000Z']);
  const saved = await api.put(`api/scheduled/${s.id}`, { version: 1, scheduleType: 'M', timeZone: null });
  assert.is(saved.json.object.nextRun, edit.json.runs[0]);
  assert.is(saved.json.object.anchor, '2030-01-31T09:00:00.000Z', 'an edit that keeps the timing keeps the anchor');
  assert.is((await api.get('api/scheduled/preview?id=99999&scheduleType=M')).status, 404);
  assert.is((await api.get('api/scheduled/preview?id=x&scheduleType=M')).status, 400);
});

Schedules('create takes a type name and a time zone, and runs now when no next run is given', async ({ api }) => {
  const t = Date.now();
  const r = await api.post('api/scheduled', { name: 'standup', func: 'work', scheduleType: 'Daily', timeZone: 'America/New_York' });
  assert.is(r.status, 201, r.text);
  assert.is(r.json.object.scheduleType, 'D');
  assert.is(r.json.object.timeZone, 'America/New_York');
  assert.ok(Math.abs(new Date(r.json.object.nextRun).getTime() - t) < 60_000);
  assert.is(r.json.object.anchor, r.json.object.nextRun);
  const detail = await api.get(`api/scheduled/${r.json.object.id}`);
  assert.is(detail.json.object.timeZone, 'America/New_York');
  const edited = await api.put(`api/scheduled/${r.json.object.id}`, { version: 1, timeZone: 'Australia/Sydney' });
  assert.is(edited.json.object.timeZone, 'Australia/Sydney');
  const history = (await api.get(`api/scheduled/${r.json.object.id}`)).json.history;
  assert.match(history[0].summary, /timeZone/);
});

Schedules('pause keeps the count in the history and resume restores it; a form edit to 0 pauses the same way', async ({ orm, api }) => {
  const em = orm.em.fork();
  const s = await schedule(em, { func: 'work', scheduleType: 'I', minutes: 5, repeats: 24, nextRun: new Date(Date.now() - 3_600_000) });
  await api.post('api/scheduled/actions/pause', { ids: [s.id] });
  let detail = await api.get(`api/scheduled/${s.id}`);
  assert.is(detail.json.object.repeats, 0);
  assert.is(detail.json.object.pausedRepeats, 24);
  await api.post('api/scheduled/actions/resume', { ids: [s.id] });
  detail = await api.get(`api/scheduled/${s.id}`);
  assert.is(detail.json.object.repeats, 24);
  assert.is(detail.json.object.pausedRepeats, null);
  assert.ok(new Date(detail.json.object.nextRun).getTime() > Date.now() - 1000, 'moved to the first future slot');
  const minutesFromAnchor = (new Date(detail.json.object.nextRun).getTime() - s.anchor.getTime()) / 60_000;
  assert.is(minutesFromAnchor % 5, 0, 'on the same five-minute grid');
  const summaries = detail.json.history.map((h: any) => h.summary);
  assert.ok(
    summaries.some((x: string) => x === 'Paused (repeats was 24)'),
    summaries.join(' | '),
  );
  assert.ok(
    summaries.some((x: string) => /^Resumed \(repeats restored to 24; next run moved from /.test(x)),
    summaries.join(' | '),
  );
  // Repeats set to 0 in the form is a pause too: the count comes back on resume.
  await api.put(`api/scheduled/${s.id}`, { version: detail.json.object.version, repeats: 0 });
  await api.post('api/scheduled/actions/resume', { ids: [s.id] });
  assert.is((await api.get(`api/scheduled/${s.id}`)).json.object.repeats, 24);
});

Schedules('a cron that never matches is a 400 on cron, with or without a next run, on create, edit and preview', async (ctx) => {
  const { api } = await ctx.start();
  const bodies = [
    { func: 'work', scheduleType: 'C', cron: '0 0 31 2 *' },
    { func: 'work', scheduleType: 'C', cron: '0 0 30 2 *', nextRun: new Date(Date.now() + 60_000).toISOString() },
  ];
  for (const body of bodies) {
    const r = await api.post('api/scheduled', body);
    assert.is(r.status, 400, r.text);
    assert.match(r.json.error.fields.cron, /never matches/);
  }
  const s = await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  const edit = await api.put(`api/scheduled/${s.id}`, { version: s.version, scheduleType: 'C', cron: '0 0 31 2 *' });
  assert.is(edit.status, 400, edit.text);
  assert.ok(edit.json.error.fields.cron);
  for (const q of [
    'scheduleType=C&cron=0+0+31+2+*',
    `scheduleType=C&cron=0+0+31+2+*&nextRun=${encodeURIComponent(new Date().toISOString())}`,
  ]) {
    const p = await api.get(`api/scheduled/preview?${q}`);
    assert.is(p.status, 400, `${q}: ${p.text}`);
    assert.ok(p.json.error.fields.cron);
  }
  // A next run beyond the years the cron library computes names nextRun.
  const far = await api.get(`api/scheduled/preview?scheduleType=C&cron=0+0+*+*+*&nextRun=${encodeURIComponent('3500-01-01T00:00:00Z')}`);
  assert.is(far.status, 400, far.text);
  assert.ok(far.json.error.fields.nextRun);
  try {
    await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'C', cron: '0 0 31 2 *' });
    assert.unreachable('schedule() accepted a cron with no run');
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.ok((e as ValidationError).errors.cron);
  }
  assert.is((await sql(ctx.orm, 'select 1 from ormq_schedule')).length, 1);
});

Schedules('dates outside years 1 to 9999 are a 400 naming the field on create, edit, preview and queued lock', async (ctx) => {
  const { api } = await ctx.start();
  const s = await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  const id = await enqueue(ctx.orm.em.fork(), 'work');
  const [q] = await sql<{ id: string }>(ctx.orm, `select id from ormq_queued where payload->>'id' = ?`, [id]);
  for (const date of ['-010000-01-01T00:00:00Z', '+010000-01-01T00:00:00Z', '0000-06-01T00:00:00Z', '9999-12-31T23:00:00-05:00']) {
    const created = await api.post('api/scheduled', { func: 'work', scheduleType: 'D', nextRun: date });
    assert.is(created.status, 400, `${date}: ${created.text}`);
    assert.ok(created.json.error.fields.nextRun);
    const edited = await api.put(`api/scheduled/${s.id}`, { version: s.version, nextRun: date });
    assert.is(edited.status, 400, `${date}: ${edited.text}`);
    assert.ok(edited.json.error.fields.nextRun);
    const preview = await api.get(`api/scheduled/preview?scheduleType=D&nextRun=${encodeURIComponent(date)}`);
    assert.is(preview.status, 400, `${date}: ${preview.text}`);
    assert.ok(preview.json.error.fields.nextRun);
    const lock = await api.patch(`api/queued/${q!.id}`, { lock: date });
    assert.is(lock.status, 400, `${date}: ${lock.text}`);
    assert.ok(lock.json.error.fields.lock);
  }
  // The edges of the range are fine.
  const edge = await api.post('api/scheduled', { func: 'work', scheduleType: 'O', nextRun: '9999-12-31T23:59:59Z' });
  assert.is(edge.status, 201, edge.text);
  assert.is((await api.patch(`api/queued/${q!.id}`, { lock: '0001-01-01T00:00:00Z' })).status, 200);
});

Schedules('resume moves a past next run to the first future slot; a future one stays', async (ctx) => {
  const { api } = await ctx.start();
  const em = ctx.orm.em.fork();
  const weekAgo = new Date(Date.now() - 7 * 86_400_000 + 30_000);
  const later = new Date(Date.now() + 3 * 3_600_000);
  const stale = await schedule(em, { name: 'every-minute', func: 'work', scheduleType: 'I', minutes: 1, nextRun: weekAgo, repeats: 0 });
  const cron = await schedule(em, { name: 'cron', func: 'work', scheduleType: 'C', cron: '15 * * * *', nextRun: weekAgo, repeats: 0 });
  const future = await schedule(em, { name: 'future', func: 'work', scheduleType: 'D', nextRun: later, repeats: 0 });
  const before = Date.now();
  const r = await api.post('api/scheduled/actions/resume', { ids: [stale.id, cron.id, future.id] });
  assert.equal(r.json, { done: 3, remaining: 0 }, r.text);
  const rows = await sql<{ name: string; repeats: number; next_run: string }>(
    ctx.orm,
    'select name, repeats, next_run from ormq_schedule order by id',
  );
  const next = Object.fromEntries(rows.map((row) => [row.name, new Date(row.next_run)]));
  assert.ok(rows.every((row) => row.repeats === -1));
  const minute = next['every-minute']!.getTime();
  assert.ok(minute > before && minute <= Date.now() + 60_000, `every-minute next run ${next['every-minute']!.toISOString()}`);
  assert.is((minute - weekAgo.getTime()) % 60_000, 0, 'still on its one-minute grid');
  assert.ok(next.cron!.getTime() > before && next.cron!.getUTCMinutes() === 15 && next.cron!.getTime() <= before + 3_600_000);
  assert.is(next.future!.getTime(), later.getTime());
  const [log] = await sql<{ summary: string }>(ctx.orm, `select summary from ormq_admin_log where object_id = ?`, [String(stale.id)]);
  assert.match(log!.summary, /next run/);
});

Schedules.run();

// ---------------------------------------------------------------------------------------------
const Queued = apiSuite('admin api: queued packages');

Queued('list by newest, key filter and search on name and func', async ({ orm, api }) => {
  const em = orm.em.fork();
  await enqueue(em, 'work', [], { name: 'first', cluster: 'east', group: 'g1' });
  await enqueue(em, 'email.send', [], { name: 'second', cluster: 'west' });
  await enqueue(em, 'work', [], { name: '50%_off', cluster: 'east' });
  const all = await api.get('api/queued');
  assert.equal(
    all.json.rows.map((r: any) => r.name),
    ['50%_off', 'second', 'first'],
  );
  assert.equal(Object.keys(all.json.rows[0]).sort(), [
    'enqueued',
    'func',
    'group',
    'id',
    'key',
    'lock',
    'lockExpires',
    'lockedBy',
    'name',
    'priority',
    'runAt',
    'serial',
    'stuck',
    'taskId',
  ]);
  assert.is(all.json.rows[2].group, 'g1');
  assert.match(all.json.rows[0].taskId, /^[0-9a-f]{32}$/);
  assert.equal(
    (await api.get('api/queued?key=east')).json.rows.map((r: any) => r.name),
    ['50%_off', 'first'],
  );
  assert.equal(
    (await api.get('api/queued?search=email')).json.rows.map((r: any) => r.name),
    ['second'],
  );
  assert.equal(
    (await api.get('api/queued?search=%25_')).json.rows.map((r: any) => r.name),
    ['50%_off'],
  );
  assert.equal((await api.get('api/queued/filters')).json, { key: ['east', 'west'], priority: ['0'] });
  const { rows } = await walk(api, 'api/queued', 2);
  assert.is(rows.length, 3);
});

Queued("edit key and lock, release, and delete; the new key's clusters are woken", async ({ orm, db, api }) => {
  const em = orm.em.fork();
  await enqueue(em, 'work', [], { name: 'p1', cluster: 'east' });
  await enqueue(em, 'work', [], { name: 'p2', cluster: 'east' });
  const [p1, p2] = (await sql<any>(orm, 'select id from ormq_queued order by id')).map((r) => Number(r.id));
  const listener = await listen(db, 'ormq_queued');
  try {
    const lock = '2030-05-06T07:08:09.000Z';
    const r = await api.patch(`api/queued/${p1}`, { key: 'west', lock }, as('gus'));
    assert.is(r.status, 200, r.text);
    assert.equal([r.json.object.key, r.json.object.lock, r.json.object.name], ['west', lock, 'p1']);
    await waitFor(() => listener.got.includes('west'), 'a notification for the new key');
  } finally {
    await listener.end();
  }
  const release = await api.patch(`api/queued/${p1}`, { lock: null });
  assert.is(release.json.object.lock, null);
  for (const [body, field] of [
    [{ key: '' }, 'key'],
    [{ key: 'k'.repeat(101) }, 'key'],
    [{ lock: 'soon' }, 'lock'],
    [{ payload: {} }, 'payload'],
    [{}, 'key'],
  ] as [unknown, string][]) {
    const bad = await api.patch(`api/queued/${p2}`, body);
    assert.is(bad.status, 400, JSON.stringify(body));
    assert.ok(bad.json.error.fields[field], JSON.stringify(body));
  }
  assert.is((await api.patch('api/queued/999999', { key: 'x' })).status, 404);

  await sql(orm, 'update ormq_queued set lock = now()');
  const rel = await runAll(api, 'api/queued/actions/release', { key: 'east' }, false);
  assert.equal(rel, [{ done: 1, remaining: 0 }]);
  const locks = await sql<any>(orm, 'select id, lock is null as free from ormq_queued order by id');
  assert.equal(locks, [
    { id: String(p1), free: false },
    { id: String(p2), free: true },
  ]);
  const del = await api.post('api/queued/actions/delete', { ids: [p1] });
  assert.equal(del.json, { done: 1, remaining: 0 });
  const log = await sql<any>(orm, `select actor, action from ormq_admin_log where object_id = ? order by id`, [String(p1)]);
  assert.equal(log, [
    { actor: 'gus', action: 'edit' },
    { actor: null, action: 'release' },
    { actor: null, action: 'delete' },
  ]);
});

Queued("the delay edit sets runAt, the field enqueue's delay sets; the list shows it; null runs at once", async ({ orm, api }) => {
  await sql(orm, 'delete from ormq_queued');
  await enqueue(orm.em.fork(), 'work', [], { name: 'later', delay: 3600 });
  const [row] = await sql<any>(orm, "select id, run_at > now() + interval '59 minutes' as later from ormq_queued");
  assert.ok(row.later, 'enqueue delay sets run_at');
  const id = Number(row.id);
  const listed = (await api.get('api/queued')).json.rows[0];
  assert.is(listed.lock, null);
  assert.ok(new Date(listed.runAt).getTime() > Date.now() + 3_500_000);
  const runAt = '2031-01-02T03:04:05.000Z';
  const r = await api.patch(`api/queued/${id}`, { runAt }, as('gus'));
  assert.is(r.status, 200, r.text);
  assert.is(r.json.object.runAt, runAt);
  assert.is(r.json.object.lock, null, 'the lock is left alone');
  assert.is(new Date((await sql<any>(orm, 'select run_at from ormq_queued where id = ?', [id]))[0].run_at).toISOString(), runAt);
  const bad = await api.patch(`api/queued/${id}`, { runAt: 'tomorrow' });
  assert.is(bad.status, 400);
  assert.ok(bad.json.error.fields.runAt);
  const now = await api.patch(`api/queued/${id}`, { runAt: null });
  assert.is(now.json.object.runAt, null);
  const log = await sql<any>(orm, `select summary from ormq_admin_log where object_id = ? order by id`, [String(id)]);
  assert.match(log[0].summary, /waits until 2031-01-02T03:04:05.000Z/);
});

Queued.run();
