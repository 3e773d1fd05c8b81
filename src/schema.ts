/**
 * `ensureSchema`: ormq's tables (src/schema-tables.ts) created when missing and upgraded in place,
 * and the version they are at.
 */
import type { MikroORM } from '@mikro-orm/core';
import { ERROR_GROUP } from './error-groups.js';
import { hostPool, inTransaction, type Lending } from './db/run.js';
import { schemaOf } from './table-names.js';
import { INDEXES, QUEUED_FILLFACTOR, sqlOf, TABLES, TRIGRAM_INDEXES } from './schema-tables.js';
import { ORDER_UPGRADE } from './schema-order.js';
import { FLOW_TABLES } from './schema-flows.js';
import { BUILD_COARSE, ROLLUP_KEY } from './metric-rows.js';

/**
 * Columns added to ormq_schedule and ormq_task after their first release. Each is added only when
 * missing, so a start-up against an up-to-date table takes no lock; a new anchor starts every
 * series at its current next run. A null anchor (a row written without one) counts from the next run, and the
 * scheduler stores it at the first run.
 */
const COLUMN_UPGRADES = `
do $$
begin
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_schedule'::regclass and attname = 'anchor' and not attisdropped) then
    alter table ormq_schedule add column anchor timestamptz null;
    update ormq_schedule set anchor = next_run;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_schedule'::regclass and attname = 'time_zone' and not attisdropped) then
    alter table ormq_schedule add column time_zone varchar(64) null;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_schedule'::regclass and attname = 'paused_repeats' and not attisdropped) then
    alter table ormq_schedule add column paused_repeats int null;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_schedule'::regclass and attname = 'max_attempts' and not attisdropped) then
    alter table ormq_schedule add column max_attempts int null;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_schedule'::regclass and attname = 'retry' and not attisdropped) then
    alter table ormq_schedule add column retry double precision null;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_task'::regclass and attname = 'attempts' and not attisdropped) then
    alter table ormq_task add column attempts jsonb not null default '[]';
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_task'::regclass and attname = 'error_group' and not attisdropped) then
    alter table ormq_task add column error_group varchar(16) null;
    update ormq_task set error_group = ${ERROR_GROUP} where not success;
  end if;
end $$;
`;

/**
 * ormq_queued.run_at (delayed tasks), added to a table from before it; no lock when it is there.
 * The fill factor, given to a table from before it unless its owner set one: only for pages
 * written from then on. `linked` likewise; a task index from before it held every package, so the
 * packages whose task has a row are marked linked and the index is rebuilt partial, once.
 * `failures` likewise: a package queued before it counts its failures from there.
 */
const QUEUED_UPGRADES = `
do $$
declare idx regclass; added boolean := false;
begin
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_queued'::regclass and attname = 'run_at' and not attisdropped) then
    alter table ormq_queued add column run_at timestamptz null;
  end if;
  if not exists (select 1 from pg_class where oid = 'ormq_queued'::regclass and reloptions::text like '%fillfactor=%') then
    alter table ormq_queued set (fillfactor = ${QUEUED_FILLFACTOR});
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_queued'::regclass and attname = 'linked' and not attisdropped) then
    alter table ormq_queued add column linked boolean not null default false;
    added := true;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_queued'::regclass and attname = 'failures' and not attisdropped) then
    alter table ormq_queued add column failures int not null default 0;
  end if;
  select i.indexrelid::regclass into idx from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relname = 'ormq_queued_task_idx' and i.indrelid = 'ormq_queued'::regclass and i.indpred is null;
  if idx is not null then
    update ormq_queued q set linked = true where exists (select 1 from ormq_task t where t.id = (q.payload->>'id')::char(32));
    execute format('drop index %s', idx);
  end if;
  if added then
    -- Without statistics on linked the planner takes it as true for a large share of rows, and
    -- scans the whole queue for the admin's lookups by task id until autovacuum analyzes it.
    analyze ormq_queued;
  end if;
end $$;
`;

/**
 * The version of ormq's tables, kept in the schema itself as ormq_queued's comment: `ensureSchema`
 * writes it, and so does the host's MikroORM migrator (the entity declares the same comment), so a
 * database says which ormq made its tables whichever way they were made. Raised with every change
 * to the tables; a cluster compares it with its own at start.
 */
export const SCHEMA_VERSION = 5;
export const SCHEMA_COMMENT = `ormq schema ${SCHEMA_VERSION}`;

/** The version a database's tables are at: 0 when none is recorded (tables from before versions, or none). */
export function versionOf(comment: unknown): number {
  const m = typeof comment === 'string' ? /^ormq schema (\d{1,9})\b/.exec(comment) : null;
  return m ? Number(m[1]) : 0;
}

/** Records the version, never lowering one a newer ormq wrote. */
const RECORD_VERSION = `
do $$
declare current text := obj_description('ormq_queued'::regclass, 'pg_class');
begin
  if coalesce(substring(current from '^ormq schema ([0-9]{1,9})')::int, 0) < ${SCHEMA_VERSION} then
    comment on table ormq_queued is '${SCHEMA_COMMENT}';
  end if;
end $$;
`;

/**
 * ormq_queued.keyed: the package's task id was given by the host (`enqueue(…, { id })`), and only
 * these enter the unique ormq_queued_keyed_idx, so enqueueing an id that is waiting or running adds
 * nothing. Like ormq_queued_task_idx it is partial because most packages take a new id: an index
 * over every package would be write work on every enqueue for the few that name theirs.
 */
const KEYED_UPGRADE = `
do $$
begin
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_queued'::regclass and attname = 'keyed' and not attisdropped) then
    alter table ormq_queued add column keyed boolean not null default false;
  end if;
end $$;
`;

/**
 * ormq_metric.shard (version 3): the rows a table from before it holds become shard 0 (folded) and
 * the primary key takes the shard. Then, whichever way the column came (this, or a migration from
 * the entities), the 6-hour and day rows are built from the hour rows while there are none.
 */
const METRIC_SHARDS = `
do $$
begin
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_metric'::regclass and attname = 'shard' and not attisdropped) then
    alter table ormq_metric add column shard smallint not null default 0;
    alter table ormq_metric drop constraint ormq_metric_pkey;
    alter table ormq_metric add constraint ormq_metric_pkey primary key (${ROLLUP_KEY});
  end if;
end $$;
${BUILD_COARSE};
`;

/** Arbitrary but fixed: every process that runs ensureSchema takes the same advisory lock. */
const SCHEMA_LOCK = 0x6f726d71; // "ormq"

export interface EnsureSchemaResult {
  /** false when the pg_trgm extension could not be created: searches then scan instead of using an index. */
  trigram: boolean;
}

/**
 * Creates ormq's tables and indexes if they are missing. Safe to call from every process at start-up:
 * concurrent callers queue on a transaction-scoped advisory lock, and every statement is idempotent.
 */
export async function ensureSchema(orm: MikroORM, options: { schema?: string } = {}): Promise<EnsureSchemaResult> {
  const schema = schemaOf(orm, options.schema);
  // On a connection of its own, closed afterwards rather than handed back to the host's pool: a
  // backend that has run these statements (their DO blocks) runs large statements slower for the
  // rest of its life, a 10,000-task enqueueMany in 170–190 ms where a fresh one takes 115–125 ms.
  const pool = (await hostPool(orm.em)) as Lending;
  return inTransaction(
    pool,
    schema,
    false,
    async (run) => {
      await run.query('select pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      // Only when missing: CREATE SCHEMA asks for CREATE on the database even when the schema exists.
      if (schema && !(await run.query('select 1 from pg_namespace where nspname = $1', [schema])).length) {
        await run.query(`create schema "${schema.replaceAll('"', '""')}"`);
      }
      await run.query(TABLES + FLOW_TABLES);
      await run.query(COLUMN_UPGRADES);
      await run.query(QUEUED_UPGRADES);
      await run.query(KEYED_UPGRADE);
      await run.query(METRIC_SHARDS);
      await run.query(ORDER_UPGRADE);
      await run.query(sqlOf(INDEXES));
      // pg_trgm is a trusted extension (PostgreSQL 13+), but a host may not allow creating it: the
      // trigram indexes' own blocks try, and fall back to placeholders.
      await run.query(sqlOf(TRIGRAM_INDEXES));
      await run.query(RECORD_VERSION);
      const row = await run.queryOne(
        `select exists (select 1 from pg_extension where extname = 'pg_trgm') and exists (
           select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
           where c.relname = 'ormq_task_search_trgm_idx' and i.indrelid = 'ormq_task'::regclass
             and pg_get_indexdef(i.indexrelid) not like '%WHERE false') as trigram`,
      );
      return { trigram: row?.trigram === true };
    },
    { discard: true },
  );
}
