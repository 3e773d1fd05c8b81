/**
 * ormq's tables through the host's own MikroORM migrator: a migration generated from
 * `queueEntities` on a fresh database runs, and afterwards `ensureSchema` has nothing to add and the
 * schema diff is empty.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MikroORM } from '@mikro-orm/postgresql';
import { ensureSchema, queueEntities } from '../src/index.js';
import { SCHEMA_VERSION } from '../src/schema.js';
import { createTestDb, sql } from './helpers/db.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Every column and index of ormq's tables, as the catalog has them. */
async function catalog(orm: MikroORM): Promise<string[]> {
  const columns = await sql<{ d: string }>(
    orm,
    `select table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') as d
       from information_schema.columns where table_name like 'ormq_%' order by 1`,
  );
  const indexes = await sql<{ d: string }>(orm, `select indexdef as d from pg_indexes where tablename like 'ormq_%' order by indexname`);
  return [...columns, ...indexes].map((r) => r.d);
}

const M = suite("migrations: ormq's schema through the host's MikroORM migrator");
// @mikro-orm/migrations reads folders with fs.globSync, which Node has from 22: on older Node it cannot load.
const onThisNode = Number(process.versions.node.split('.')[0]) >= 22 ? M : M.skip;

onThisNode(
  'migrator.create() and up() on a fresh database build the schema; ensureSchema then adds nothing and the diff is empty',
  async () => {
    const { Migrator } = await import('@mikro-orm/migrations');
    const db = await createTestDb({ empty: true });
    const dir = mkdtempSync(join(root, 'test', '.migrations-'));
    const orm = await MikroORM.init({
      clientUrl: db.url,
      entities: [...queueEntities],
      extensions: [Migrator],
      migrations: { path: dir, emit: 'ts', snapshot: false, silent: true },
      pool: { min: 0, max: 2 },
    });
    try {
      const created = await orm.migrator.create();
      assert.ok(created.diff.up.length > 10, `${created.diff.up.length} statements`);
      const [file] = readdirSync(dir).filter((f) => f.endsWith('.ts'));
      assert.ok(file, 'a migration file was written');
      assert.match(readFileSync(join(dir, file!), 'utf8'), /create index if not exists ormq_task_search_trgm_idx/);
      await orm.migrator.up();
      const migrated = await catalog(orm);
      assert.ok(
        migrated.some((d) => /ormq_task_search_trgm_idx ON public\.ormq_task USING gin/.test(d)),
        'the trigram index is real',
      );
      assert.equal(
        await sql(orm, "select obj_description('ormq_queued'::regclass, 'pg_class') as c"),
        [{ c: `ormq schema ${SCHEMA_VERSION}` }],
        'the migration records the version',
      );
      await ensureSchema(orm);
      assert.equal(await catalog(orm), migrated, 'ensureSchema found nothing to add or change');
      assert.is((await orm.schema.getUpdateSchemaSQL({ wrap: false })).trim(), '', 'the diff is empty');
      // A second migration has nothing to do.
      const again = await orm.migrator.create();
      assert.equal(again.diff.up, []);
    } finally {
      await orm.close(true);
      rmSync(dir, { recursive: true, force: true });
      await db.drop();
    }
  },
);

M.run();
