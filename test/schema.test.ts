import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureSchema } from '../src/index.js';
import { createTestDb, initOrm, sql } from './helpers/db.js';

const S = suite('ensureSchema');

S('creates every table and named index on an empty database, and is idempotent when run at once by several processes', async () => {
  const db = await createTestDb({ empty: true });
  const orms = await Promise.all([initOrm(db.url), initOrm(db.url), initOrm(db.url)]);
  try {
    const results = await Promise.all(orms.map((o) => ensureSchema(o)));
    assert.ok(results.every((r) => r.trigram === results[0]!.trigram));
    await ensureSchema(orms[0]!);
    const tables = await sql<{ tablename: string }>(orms[0]!, "select tablename from pg_tables where tablename like 'ormq_%' order by 1");
    assert.equal(tables.map((t) => t.tablename), ['ormq_admin_log', 'ormq_metric', 'ormq_queued', 'ormq_schedule', 'ormq_task']);
    const indexes = await sql<{ indexname: string }>(orms[0]!, "select indexname from pg_indexes where tablename like 'ormq_%'");
    const names = indexes.map((i) => i.indexname);
    for (const name of ['ormq_task_list_idx', 'ormq_task_group_idx', 'ormq_task_cluster_idx', 'ormq_queued_claim_idx', 'ormq_queued_task_idx', 'ormq_schedule_due_idx', 'ormq_schedule_name_key', 'ormq_metric_pkey']) {
      assert.ok(names.includes(name), `${name} exists`);
    }
  } finally {
    await Promise.all(orms.map((o) => o.close(true)));
    await db.drop();
  }
});

S('a host that registers queueEntities sees no schema drift: its schema.update() keeps every ormq column and index', async () => {
  const db = await createTestDb();
  const orm = await initOrm(db.url);
  try {
    // Not even an index would be dropped or a default changed by the host's schema.update().
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    assert.equal(diff.split('\n').filter((l) => /ormq_/.test(l)), [], diff);
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

S.run();
