import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster, ensureSchema } from '../src/index.js';
import { SCHEMA_VERSION } from '../src/schema.js';
import { metrics } from '../src/admin/pages/metrics.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { queueEntities } from '../src/index.js';
import { createTestDb, initOrm, serverUrl, sql, waitFor } from './helpers/db.js';

const S = suite('ensureSchema');

S('creates every table and named index on an empty database, and is idempotent when run at once by several processes', async () => {
  const db = await createTestDb({ empty: true });
  const orms = await Promise.all([initOrm(db.url), initOrm(db.url), initOrm(db.url)]);
  try {
    const results = await Promise.all(orms.map((o) => ensureSchema(o)));
    assert.ok(results.every((r) => r.trigram === results[0]!.trigram));
    await ensureSchema(orms[0]!);
    const tables = await sql<{ tablename: string }>(orms[0]!, "select tablename from pg_tables where tablename like 'ormq_%' order by 1");
    assert.equal(
      tables.map((t) => t.tablename),
      [
        'ormq_admin_log',
        'ormq_cluster',
        'ormq_iter',
        'ormq_iter_result',
        'ormq_limit',
        'ormq_metric',
        'ormq_paused_key',
        'ormq_queued',
        'ormq_schedule',
        'ormq_task',
        'ormq_wait',
      ],
    );
    const indexes = await sql<{ indexname: string }>(orms[0]!, "select indexname from pg_indexes where tablename like 'ormq_%'");
    const names = indexes.map((i) => i.indexname);
    for (const name of [
      'ormq_task_list_idx',
      'ormq_task_group_idx',
      'ormq_task_cluster_idx',
      'ormq_queued_claim_idx',
      'ormq_queued_task_idx',
      'ormq_schedule_due_idx',
      'ormq_schedule_name_key',
      'ormq_metric_pkey',
    ]) {
      assert.ok(names.includes(name), `${name} exists`);
    }
  } finally {
    await Promise.all(orms.map((o) => o.close(true)));
    await db.drop();
  }
});

S('ensureSchema closes the connection it ran on: the host pool never lends out a backend that ran its DDL', async () => {
  const db = await createTestDb({ empty: true });
  const orm = await initOrm(db.url);
  try {
    const pool = (await orm.em.getConnection().getNativeClient()) as unknown as pg.Pool;
    const held = await pool.connect();
    const before = (await held.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    held.release();
    let removed = 0;
    const count = () => void removed++;
    pool.on('remove', count);
    try {
      await ensureSchema(orm);
      assert.is(pool.totalCount, 0, 'the connection that ran the DDL left the pool');
      await waitFor(() => removed === 1, 'the pool to have closed it');
    } finally {
      pool.off('remove', count);
    }
    // The only idle connection was the one ensureSchema took: its backend is gone, and the pool's next one is new.
    const live = await sql<{ n: number }>(orm, 'select count(*)::int as n from pg_stat_activity where pid = ?', [before]);
    assert.is(live[0]!.n, 0);
    const after = await sql<{ pid: number }>(orm, 'select pg_backend_pid() as pid');
    assert.is.not(after[0]!.pid, before);
  } finally {
    await orm.close();
    await db.drop();
  }
});

S('a host that registers queueEntities sees no schema drift: its schema.update() keeps every ormq column and index', async () => {
  const db = await createTestDb();
  const orm = await initOrm(db.url);
  try {
    // Not even an index would be dropped or a default changed by the host's schema.update().
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    assert.equal(
      diff.split('\n').filter((l) => /ormq_/.test(l)),
      [],
      diff,
    );
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

S('a queue from before linked packages: a package whose task has a row becomes linked, and the task index keeps only those', async () => {
  const db = await createTestDb();
  const orm = await initOrm(db.url);
  try {
    // The earlier layout: no linked column, and a task index over every package.
    await sql(orm, 'drop index ormq_queued_task_idx');
    await sql(orm, 'alter table ormq_queued drop column linked');
    await sql(orm, `create index ormq_queued_task_idx on ormq_queued ((payload->>'id'))`);
    const failed = 'f'.repeat(32);
    const fresh = 'e'.repeat(32);
    await sql(
      orm,
      `insert into ormq_task (id, name, func, enqueued, started, stopped, success) values (?, 'f', 'work', now(), now(), now(), false)`,
      [failed],
    );
    await sql(orm, `insert into ormq_queued (key, payload, lock) values ('default', ?::jsonb, now()), ('default', ?::jsonb, null)`, [
      JSON.stringify({ id: failed, name: 'f', func: 'work' }),
      JSON.stringify({ id: fresh, name: 'e', func: 'work' }),
    ]);
    await ensureSchema(orm);
    await ensureSchema(orm);
    assert.equal(await sql(orm, `select payload->>'id' as id, linked from ormq_queued order by ormq_queued.id`), [
      { id: failed, linked: true },
      { id: fresh, linked: false },
    ]);
    const [index] = await sql<{ indexdef: string }>(orm, `select indexdef from pg_indexes where indexname = 'ormq_queued_task_idx'`);
    assert.match(index!.indexdef, /WHERE linked$/);
    // Analyzed at once: without statistics on linked, a lookup by task id was planned as a scan of the queue.
    assert.is((await sql(orm, `select 1 from pg_stats where tablename = 'ormq_queued' and attname = 'linked'`)).length, 1);
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    assert.equal(
      diff.split('\n').filter((l) => /ormq_/.test(l)),
      [],
      diff,
    );
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

S('a queue from before failure counts gets ormq_queued.failures, its packages counting from 0', async () => {
  const db = await createTestDb();
  const orm = await initOrm(db.url);
  try {
    await sql(orm, 'alter table ormq_queued drop column failures');
    await sql(orm, `insert into ormq_queued (key, payload) values ('default', ?::jsonb)`, [
      JSON.stringify({ id: 'c'.repeat(32), name: 'c', func: 'work' }),
    ]);
    await ensureSchema(orm);
    await ensureSchema(orm);
    assert.equal(await sql(orm, 'select failures from ormq_queued'), [{ failures: 0 }]);
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    assert.equal(
      diff.split('\n').filter((l) => /ormq_/.test(l)),
      [],
      diff,
    );
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

S(
  'tables from before dedup and per-task retries get ormq_queued.keyed (unique per id where set) and ormq_schedule.max_attempts and retry',
  async () => {
    const db = await createTestDb();
    const orm = await initOrm(db.url);
    try {
      await sql(orm, 'drop index ormq_queued_keyed_idx');
      await sql(orm, 'alter table ormq_queued drop column keyed');
      await sql(orm, 'alter table ormq_schedule drop column max_attempts, drop column retry');
      const id = 'c'.repeat(32);
      // two packages of one id, as an earlier version let a host enqueue: the upgrade keeps both
      await sql(orm, `insert into ormq_queued (key, payload) values ('default', ?::jsonb), ('default', ?::jsonb)`, [
        JSON.stringify({ id, name: 'c', func: 'work' }),
        JSON.stringify({ id, name: 'c', func: 'work' }),
      ]);
      await sql(orm, `insert into ormq_schedule (func, schedule_type, next_run) values ('f', 'D', now())`);
      await ensureSchema(orm);
      await ensureSchema(orm);
      assert.equal(await sql(orm, 'select keyed from ormq_queued'), [{ keyed: false }, { keyed: false }]);
      assert.equal(await sql(orm, 'select max_attempts, retry from ormq_schedule'), [{ max_attempts: null, retry: null }]);
      const [index] = await sql<{ indexdef: string }>(orm, `select indexdef from pg_indexes where indexname = 'ormq_queued_keyed_idx'`);
      assert.match(index!.indexdef, /^CREATE UNIQUE INDEX .* WHERE keyed$/);
      const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
      assert.equal(
        diff.split('\n').filter((l) => /ormq_/.test(l)),
        [],
        diff,
      );
    } finally {
      await orm.close(true);
      await db.drop();
    }
  },
);

S('an ormq_schedule table from before anchors and zones gets the new columns, each series anchored at its next run', async () => {
  const db = await createTestDb({ empty: true });
  const orm = await initOrm(db.url);
  try {
    await sql(
      orm,
      `create table ormq_schedule (
      id serial primary key, name varchar(100) null, func varchar(256) not null, hook varchar(256) null,
      args jsonb not null default '[]', kwargs jsonb not null default '{}', schedule_type varchar(2) not null,
      minutes smallint null, repeats int not null default -1, next_run timestamptz not null, cron varchar(100) null,
      task char(32) null, cluster varchar(100) null, intended_date_kwarg varchar(100) null, version int not null default 1,
      constraint ormq_schedule_name_key unique (name))`,
    );
    await sql(orm, `insert into ormq_schedule (func, schedule_type, repeats, next_run) values ('f', 'M', 0, '2026-01-31T09:00:00Z')`);
    await ensureSchema(orm);
    await ensureSchema(orm);
    const [r] = await sql<any>(orm, 'select anchor, time_zone, paused_repeats, next_run from ormq_schedule');
    assert.is(new Date(r.anchor).toISOString(), '2026-01-31T09:00:00.000Z');
    assert.is(r.time_zone, null);
    assert.is(r.paused_repeats, null);
    const columns = await sql<{ column_name: string; data_type: string }>(
      orm,
      `select column_name, data_type from information_schema.columns where table_name = 'ormq_schedule' and column_name in ('anchor', 'time_zone', 'paused_repeats') order by 1`,
    );
    assert.equal(columns, [
      { column_name: 'anchor', data_type: 'timestamp with time zone' },
      { column_name: 'paused_repeats', data_type: 'integer' },
      { column_name: 'time_zone', data_type: 'character varying' },
    ]);
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    assert.equal(
      diff.split('\n').filter((l) => /ormq_schedule/.test(l)),
      [],
      diff,
    );
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

/** The ormq lines of the host's schema diff: what its schema.update() or next migration would change. */
async function ormqDiff(orm: MikroORM): Promise<string[]> {
  return (await orm.schema.getUpdateSchemaSQL({ wrap: false })).split('\n').filter((l) => /ormq_/.test(l));
}

/**
 * A fresh, empty database owned by nobody special, and a login that may create tables in it but not
 * extensions (no CREATE on the database): how a host without pg_trgm looks.
 */
async function freshDatabaseWithoutExtensions(): Promise<{ url: string; drop(): Promise<void> }> {
  const db = await createTestDb({ empty: true });
  const role = `ormq_noext_${process.pid}`;
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    await admin.query(
      `do $$ begin if not exists (select 1 from pg_roles where rolname = '${role}') then create role ${role} login password 'noext'; end if; end $$`,
    );
    await admin.query(`revoke create on database ${db.name} from public, ${role}`);
    await admin.query(`grant create, usage on schema public to ${role}`);
  } finally {
    await admin.end();
  }
  const url = new URL(db.url);
  url.username = role;
  url.password = 'noext';
  return { url: url.toString(), drop: () => db.drop() };
}

for (const [label, make] of [
  [
    'with pg_trgm',
    async () => {
      const db = await createTestDb({ empty: true });
      return { url: db.url, drop: () => db.drop() };
    },
  ],
  ['without pg_trgm', freshDatabaseWithoutExtensions],
] as const) {
  S(
    `MikroORM's schema.create() builds ormq's tables on a fresh database ${label}; the diff is empty before and after ensureSchema`,
    async () => {
      const db = await make();
      const orm = await MikroORM.init({ clientUrl: db.url, entities: queueEntities, pool: { min: 0, max: 2 } });
      try {
        await orm.schema.create();
        const tables = await sql<{ n: string }>(orm, "select count(*) as n from pg_tables where tablename like 'ormq_%'");
        assert.is(Number(tables[0]!.n), queueEntities.length);
        assert.equal(await ormqDiff(orm), []);
        const { trigram } = await ensureSchema(orm);
        assert.is(trigram, label === 'with pg_trgm');
        assert.equal(await ormqDiff(orm), []);
        // The search works either way; with pg_trgm it has its index.
        const [def] = await sql<{ d: string }>(orm, "select pg_get_indexdef(to_regclass('ormq_task_search_trgm_idx')) as d");
        assert.match(def!.d, trigram ? /gin_trgm_ops/ : /WHERE false/);
      } finally {
        await orm.close(true);
        await db.drop();
      }
    },
  );
}

S('a placeholder left where pg_trgm was missing becomes the trigram index once the extension can be created', async () => {
  const noext = await freshDatabaseWithoutExtensions();
  const limited = await MikroORM.init({ clientUrl: noext.url, entities: queueEntities, pool: { min: 0, max: 2 } });
  const superUrl = new URL(noext.url);
  superUrl.username = new URL(serverUrl()).username;
  superUrl.password = new URL(serverUrl()).password;
  const full = await MikroORM.init({ clientUrl: superUrl.toString(), entities: queueEntities, pool: { min: 0, max: 2 } });
  try {
    assert.is((await ensureSchema(limited)).trigram, false);
    assert.is((await ensureSchema(full)).trigram, true);
    const [def] = await sql<{ d: string }>(full, "select pg_get_indexdef(to_regclass('ormq_schedule_search_trgm_idx')) as d");
    assert.match(def!.d, /gin_trgm_ops/);
    assert.equal(await ormqDiff(full), []);
  } finally {
    await limited.close(true);
    await full.close(true);
    await noext.drop();
  }
});

/** Every column, default and index of ormq's tables, and the version comment, as the catalog has them. */
async function catalog(orm: MikroORM): Promise<string[]> {
  const columns = await sql<{ d: string }>(
    orm,
    `select table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') as d
       from information_schema.columns where table_schema = 'public' and table_name like 'ormq_%' order by 1`,
  );
  const indexes = await sql<{ d: string }>(
    orm,
    `select indexdef as d from pg_indexes where schemaname = 'public' and tablename like 'ormq_%' order by indexname`,
  );
  const options = await sql<{ d: string }>(
    orm,
    `select relname || ' ' || coalesce(array_to_string(reloptions, ','), '') || ' ' || coalesce(obj_description(oid, 'pg_class'), '') as d
    from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' and relname like 'ormq_%' order by relname`,
  );
  return [...columns, ...indexes, ...options].map((r) => r.d);
}

S(
  'an upgrade from the tables before schema versions (0.1.0 development) gives exactly the tables of a fresh ensureSchema, with the version recorded',
  async () => {
    const old = await createTestDb({ empty: true });
    const fresh = await createTestDb({ empty: true });
    const client = new pg.Client({ connectionString: old.url });
    await client.connect();
    const [o, f] = await Promise.all([initOrm(old.url), initOrm(fresh.url)]);
    try {
      await client.query(readFileSync(fileURLToPath(new URL('./schemas/before-versions.sql', import.meta.url)), 'utf8'));
      await sql(
        o,
        `insert into ormq_queued (key, payload) values ('default', '{"id":"${'a'.repeat(32)}","name":"kept","func":"work","args":[]}')`,
      );
      assert.equal(await sql(o, "select obj_description('ormq_queued'::regclass, 'pg_class') as c"), [{ c: null }], 'no version before');
      await ensureSchema(o);
      await ensureSchema(f);
      assert.equal(await catalog(o), await catalog(f));
      assert.equal(await sql(o, "select obj_description('ormq_queued'::regclass, 'pg_class') as c"), [
        { c: `ormq schema ${SCHEMA_VERSION}` },
      ]);
      assert.equal(
        await sql(o, "select payload->>'name' as n, failures from ormq_queued"),
        [{ n: 'kept', failures: 0 }],
        'the queued package survives',
      );
      const diff = await o.schema.getUpdateSchemaSQL({ wrap: false });
      assert.equal(
        diff.split('\n').filter((l) => /ormq_/.test(l)),
        [],
        diff,
      );
    } finally {
      await client.end();
      await Promise.all([o.close(true), f.close(true)]);
      await Promise.all([old.drop(), fresh.drop()]);
    }
  },
);

S(
  'tables of schema 4 (before priorities, serial keys and limits) upgrade to exactly the tables of a fresh ensureSchema, their packages at priority 0',
  async () => {
    const old = await createTestDb();
    const fresh = await createTestDb();
    const [o, f] = await Promise.all([initOrm(old.url), initOrm(fresh.url)]);
    try {
      // Schema 4's layout: the claim index on (key, id), none of the new columns, no ormq_limit.
      await sql(o, 'drop index ormq_queued_claim_idx, ormq_queued_serial_idx');
      await sql(o, 'alter table ormq_queued drop column priority, drop column serial');
      await sql(o, 'alter table ormq_schedule drop column priority');
      await sql(o, 'drop table ormq_limit');
      await sql(o, 'create index ormq_queued_claim_idx on ormq_queued (key, id)');
      await sql(o, "comment on table ormq_queued is 'ormq schema 4'");
      await sql(
        o,
        `insert into ormq_queued (key, payload) values ('default', '{"id":"${'b'.repeat(32)}","name":"kept","func":"work","args":[]}')`,
      );
      await ensureSchema(o);
      await ensureSchema(o);
      assert.equal(await catalog(o), await catalog(f));
      assert.equal(await sql(o, "select payload->>'name' as n, priority, serial from ormq_queued"), [
        { n: 'kept', priority: 0, serial: null },
      ]);
      const [index] = await sql<{ indexdef: string }>(o, "select indexdef from pg_indexes where indexname = 'ormq_queued_claim_idx'");
      assert.match(index!.indexdef, /\(key, priority DESC, id\)$/);
      assert.equal(await sql(o, "select obj_description('ormq_queued'::regclass, 'pg_class') as c"), [
        { c: `ormq schema ${SCHEMA_VERSION}` },
      ]);
      const diff = await o.schema.getUpdateSchemaSQL({ wrap: false });
      assert.equal(
        diff.split('\n').filter((l) => /ormq_/.test(l)),
        [],
        diff,
      );
    } finally {
      await Promise.all([o.close(true), f.close(true)]);
      await Promise.all([old.drop(), fresh.drop()]);
    }
  },
);

S('the schema version: ensureSchema never lowers a newer one, and a cluster says when the tables are older or newer than it', async () => {
  const db = await createTestDb();
  const orm = await initOrm(db.url);
  const logs: string[] = [];
  const start = async () => {
    const cluster = new Cluster(orm, { scheduler: false, log: (level, message) => void (level === 'warn' && logs.push(message)) });
    await cluster.start();
    await cluster.stop();
  };
  try {
    await start();
    assert.equal(logs, [], 'tables at this version: nothing to say');
    await sql(orm, `comment on table ormq_queued is 'ormq schema ${SCHEMA_VERSION + 5}'`);
    await ensureSchema(orm);
    assert.equal(await sql(orm, "select obj_description('ormq_queued'::regclass, 'pg_class') as c"), [
      { c: `ormq schema ${SCHEMA_VERSION + 5}` },
    ]);
    await start();
    assert.match(logs.pop()!, new RegExp(`schema version ${SCHEMA_VERSION + 5}, newer than this ormq's ${SCHEMA_VERSION}: upgrade ormq`));
    await sql(orm, 'comment on table ormq_queued is null');
    await start();
    assert.match(logs.pop()!, new RegExp(`schema version none, this ormq expects ${SCHEMA_VERSION}: run ensureSchema`));
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

S(
  'metrics rollups from before shards: their rows become folded ones, and the 7- and 30-day ranges read the same attempts from day rows built once',
  async () => {
    const db = await createTestDb();
    const orm = await initOrm(db.url);
    try {
      // The earlier layout: no shard, a key without it.
      await sql(orm, 'drop index ormq_metric_shard_idx');
      await sql(orm, 'alter table ormq_metric drop constraint ormq_metric_pkey');
      await sql(orm, 'alter table ormq_metric drop column shard');
      await sql(orm, 'alter table ormq_metric add constraint ormq_metric_pkey primary key (span_minutes, bucket, key, func, success)');
      // Hour rows of the last 20 days, two funcs, both outcomes.
      await sql(
        orm,
        `insert into ormq_metric (span_minutes, bucket, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist)
      select 60, date_trunc('hour', now()) - make_interval(hours => h), 'default', f, s, h + 1, (h + 1) * 10, 10, h + 1, 1,
             jsonb_build_object('20', h + 1), jsonb_build_object('3', h + 1)
        from generate_series(0, 20 * 24) h, unnest(array['a', 'b']) f, unnest(array[true, false]) s`,
      );
      const expected = await sql<{ n: string }>(orm, 'select sum(count) as n from ormq_metric');
      const week = await sql<{ n: string }>(orm, `select sum(count) as n from ormq_metric where func = 'a' and bucket >= ?::timestamptz`, [
        new Date(Math.floor(Date.now() / 21_600_000) * 21_600_000 + 21_600_000 - 7 * 86_400_000).toISOString(),
      ]);
      await ensureSchema(orm);
      await ensureSchema(orm); // once only
      const spans = await sql<{ span_minutes: number; n: string; shards: string }>(
        orm,
        'select span_minutes, sum(count) as n, count(distinct shard) as shards from ormq_metric group by 1 order by 1',
      );
      assert.equal(
        spans.map((r) => [r.span_minutes, r.n, r.shards]),
        [
          [60, expected[0]!.n, '1'],
          [360, expected[0]!.n, '1'],
          [1440, expected[0]!.n, '1'],
        ],
      );
      const month = await metrics(orm.em.fork() as never, { range: '30d', func: null, key: null });
      assert.is(
        month.funcs.reduce((n, f) => n + f.runs, 0),
        Number(expected[0]!.n),
      );
      assert.equal(month.funcs.map((f) => [f.func, f.runtime.max, f.wait.max]).sort(), [
        ['a', 10, 1],
        ['b', 10, 1],
      ]);
      const seven = await metrics(orm.em.fork() as never, { range: '7d', func: 'a', key: null });
      assert.is(seven.funcs[0]!.runs, Number(week[0]!.n));
      const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
      assert.equal(
        diff.split('\n').filter((l) => /ormq_/.test(l)),
        [],
        diff,
      );
    } finally {
      await orm.close(true);
      await db.drop();
    }
  },
);

S.run();
