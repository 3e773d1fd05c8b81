/** ormq's tables and indexes as DDL: what `ensureSchema` creates and the entities declare. */
import { ARGS_TEXT, ERROR_TEXT } from './error-groups.js';
import { ROLLUP_KEY } from './metric-rows.js';
import { qualify } from './table-names.js';

/**
 * The DDL behind `queueEntities`. Index names are fixed so that migrations and EXPLAIN output can
 * refer to them. Each list of the admin is a keyset scan of one of these, newest first:
 * - ormq_task_list_idx         Successful / Failed tasks, unfiltered: (success, stopped desc, id desc)
 * - ormq_task_group_idx        the group filter, and saveLimitPer 'group' pruning
 * - ormq_task_cluster_idx      the cluster filter, and saveLimitPer 'key' pruning
 * - ormq_task_func_idx / _name_idx   saveLimitPer 'func' / 'name' pruning
 * - ormq_task_search_trgm_idx  substring search over name, func and group (pg_trgm, when available)
 * - ormq_task_error_trgm_idx   the Failed list's search in the error's type and message (pg_trgm; failures only)
 * - ormq_task_args_trgm_idx    the task lists' filter by text inside args (pg_trgm; the args' first 500 characters)
 * - ormq_task_error_group_idx  failures by cause (src/error-groups.ts): the groups of a span, and one group's list
 * - ormq_queued_claim_idx      the claim: packages of one key, highest priority first, then oldest
 * - ormq_queued_serial_idx     packages of one serial key in order: the claim takes only the first
 * - ormq_queued_task_idx       a linked package by its task id: a failure's retry, or a resubmission (see `linked`)
 * - ormq_queued_run_at_idx     delayed packages of one key by due time: when an idle cluster wakes
 * - ormq_queued_keyed_idx      unique: one package waiting or running per task id the host chose (see `keyed`)
 * - ormq_schedule_due_idx      the scheduler's due scan and the schedule list (by next run)
 * - ormq_cluster_name_idx      the live clusters of a key (health, the Clusters page)
 * - ormq_paused_key_until_idx  pauses with an end: each heartbeat ends those whose time is up
 * - ormq_metric_pkey           the metrics' time ranges of one span (minutes, hours, 6 hours, days), the upserts and the upkeep
 * - ormq_metric_shard_idx      the rows not folded yet (src/metric-rows.ts): the fold's scan, and the Metrics page's 7 and 30 days
 * - ormq_wait_task_idx         saveLimit pruning skips a success a producer is waiting on (see ormq_wait)
 */
const index = (name: string, on: string, unique = false) => ({
  name,
  expression: `create ${unique ? 'unique ' : ''}index if not exists ${name} on ${on}`,
});

/** Indexes by table; the entities declare the same ones so a host's schema diff keeps them. */
export const INDEXES = {
  ormq_task: [
    index('ormq_task_list_idx', 'ormq_task (success, stopped desc, id desc)'),
    index('ormq_task_group_idx', 'ormq_task ("group", success, stopped desc, id desc)'),
    index('ormq_task_cluster_idx', 'ormq_task (cluster, success, stopped desc, id desc)'),
    index('ormq_task_func_idx', 'ormq_task (func, success, stopped desc, id desc)'),
    index('ormq_task_name_idx', 'ormq_task (name, success, stopped desc, id desc)'),
    index('ormq_task_error_group_idx', 'ormq_task (error_group, stopped desc, id desc) where not success'),
  ],
  ormq_schedule: [index('ormq_schedule_due_idx', 'ormq_schedule (next_run, id)')],
  ormq_queued: [
    index('ormq_queued_claim_idx', 'ormq_queued (key, priority desc, id)'),
    index('ormq_queued_serial_idx', 'ormq_queued (serial, id) where serial is not null'),
    index('ormq_queued_task_idx', "ormq_queued ((payload->>'id')) where linked"),
    index('ormq_queued_run_at_idx', 'ormq_queued (key, run_at) where run_at is not null'),
    index('ormq_queued_keyed_idx', "ormq_queued ((payload->>'id')) where keyed", true),
  ],
  ormq_admin_log: [index('ormq_admin_log_object_idx', 'ormq_admin_log (page, object_id, id desc)')],
  ormq_cluster: [index('ormq_cluster_name_idx', 'ormq_cluster (name, heartbeat)')],
  ormq_paused_key: [index('ormq_paused_key_until_idx', 'ormq_paused_key (until) where until is not null')],
  ormq_wait: [index('ormq_wait_task_idx', 'ormq_wait (task, until)')],
  ormq_metric: [index('ormq_metric_shard_idx', 'ormq_metric (span_minutes, bucket) where shard <> 0')],
};

/**
 * Substring search; needs the pg_trgm extension. Each is one DO block, so MikroORM's own schema
 * tools can run it as the entities' index on any database: it creates the extension when the
 * database allows it and then the trigram index; where it cannot, it holds the name with an empty
 * placeholder (`where false`) that costs nothing, so the host's schema diff is empty either way.
 * A later run, once the extension exists, replaces the placeholder with the real index.
 * The block is one line: @mikro-orm/migrations cuts a generated migration into statements at every
 * `;` that ends a line, dollar quotes or not.
 */
const trigramIndex = (name: string, table: string, columns: string, where = '') => ({
  name,
  expression: `do $ormq$ declare idx regclass; begin
  begin
    create extension if not exists pg_trgm;
  exception when others then null;
  end;
  if exists (select 1 from pg_extension where extname = 'pg_trgm') then
    select i.indexrelid::regclass into idx from pg_index i join pg_class c on c.oid = i.indexrelid
      where c.relname = '${name}' and i.indrelid = '${table}'::regclass;
    if pg_get_indexdef(idx) like '%WHERE false' then execute format('drop index %s', idx); end if;
    create index if not exists ${name} on ${table} using gin (${columns})${where && ` where ${where}`};
  else
    create index if not exists ${name} on ${table} (id) where false;
  end if;
end $ormq$`.replace(/\s*\n\s*/g, ' '),
});

export const TRIGRAM_INDEXES = {
  ormq_task: [
    trigramIndex('ormq_task_search_trgm_idx', 'ormq_task', 'name gin_trgm_ops, func gin_trgm_ops, "group" gin_trgm_ops'),
    // failures only: a success pays nothing for it
    trigramIndex('ormq_task_error_trgm_idx', 'ormq_task', `${ERROR_TEXT} gin_trgm_ops`, 'not success'),
    trigramIndex('ormq_task_args_trgm_idx', 'ormq_task', `(${ARGS_TEXT}) gin_trgm_ops`),
  ],
  ormq_schedule: [trigramIndex('ormq_schedule_search_trgm_idx', 'ormq_schedule', 'name gin_trgm_ops, func gin_trgm_ops')],
};

/**
 * The indexes as the entities declare them: MikroORM's schema tools call each with the table,
 * schema included, and get the same DDL with ormq's table names qualified by it.
 */
export const forEntity = (list: { name: string; expression: string }[]) =>
  list.map(({ name, expression }) => ({
    name,
    expression: (_columns: unknown, table: { schema?: string }) => qualify(expression, table.schema ?? null),
  }));

/** The indexes of `groups` as one script. */
export const sqlOf = (groups: Record<string, { expression: string }[]>) =>
  Object.values(groups)
    .flat()
    .map((i) => `${i.expression};`)
    .join('\n');

/**
 * Half of each ormq_queued page is left free so that a claim's update (lock, locked_by: no indexed
 * column) stays on its page as a HOT update, with no new entries in the table's three indexes.
 * Claiming 500 of 5,000 fresh packages (EXPLAIN ANALYZE with WAL): fill factor 100 wrote 3,046 WAL
 * records (377 KB) and hit 6,310 buffers; 70: 2,267 (266 KB); 50: 1,269 (118 KB) and 2,961 buffers.
 * The cost is a table twice the size while packages wait, read only through its indexes.
 */
export const QUEUED_FILLFACTOR = 50;

/*
 * ormq_queued.linked: the package belongs to a task the admin shows elsewhere, so it is looked up by
 * task id: a failure left queued for its retry (the cluster's completion marks it) or a resubmission
 * (inserted marked). Only these enter ormq_queued_task_idx. Most packages never fail, and an index
 * over all of them was a quarter of an enqueue's work: inserting 10,000 packages (EXPLAIN ANALYZE
 * with WAL) wrote 40,466 WAL records (5.69 MB) and hit 84,721 buffers with it, 30,368 (4.35 MB) and
 * 61,399 with the partial index.
 */

export const TABLES = `
create table if not exists ormq_task (
  id char(32) primary key,
  name varchar(100) not null,
  func varchar(256) not null,
  hook varchar(256) null,
  args jsonb not null default '[]',
  kwargs jsonb not null default '{}',
  result jsonb null,
  "group" varchar(100) null,
  cluster varchar(100) null,
  enqueued timestamptz not null,
  started timestamptz not null,
  stopped timestamptz not null,
  success boolean not null,
  attempt_count int not null default 1,
  attempts jsonb not null default '[]',
  error_group varchar(16) null
);

create table if not exists ormq_schedule (
  id serial primary key,
  name varchar(100) null,
  func varchar(256) not null,
  hook varchar(256) null,
  args jsonb not null default '[]',
  kwargs jsonb not null default '{}',
  schedule_type varchar(2) not null,
  minutes smallint null,
  repeats int not null default -1,
  next_run timestamptz not null,
  cron varchar(100) null,
  task char(32) null,
  cluster varchar(100) null,
  intended_date_kwarg varchar(100) null,
  anchor timestamptz null,
  time_zone varchar(64) null,
  paused_repeats int null,
  version int not null default 1,
  max_attempts int null,
  retry double precision null,
  constraint ormq_schedule_name_key unique (name)
);

create table if not exists ormq_queued (
  id bigserial primary key,
  key varchar(100) not null,
  payload jsonb not null,
  lock timestamptz null,
  run_at timestamptz null,
  linked boolean not null default false,
  failures int not null default 0,
  keyed boolean not null default false
) with (fillfactor = ${QUEUED_FILLFACTOR});

create table if not exists ormq_admin_log (
  id bigserial primary key,
  at timestamptz not null default now(),
  actor varchar(150) null,
  action varchar(50) not null,
  page varchar(20) not null,
  object_id varchar(64) null,
  summary text not null
);

create table if not exists ormq_cluster (
  id char(32) primary key,
  name varchar(100) not null,
  host varchar(255) not null,
  pid int not null,
  started timestamptz not null,
  heartbeat timestamptz not null,
  beat_ms int not null,
  state varchar(10) not null,
  workers int not null,
  busy int not null,
  done bigint not null default 0,
  failed bigint not null default 0,
  version varchar(50) not null,
  tasks jsonb not null default '[]'
);

create table if not exists ormq_paused_key (
  key varchar(100) primary key,
  at timestamptz not null default now()
);

alter table ormq_queued add column if not exists locked_by char(32) null;
alter table ormq_cluster add column if not exists config jsonb null;
alter table ormq_paused_key add column if not exists until timestamptz null;
alter table ormq_paused_key add column if not exists paused_by varchar(150) null;
create table if not exists ormq_metric (
  span_minutes smallint not null,
  bucket timestamptz not null,
  key varchar(100) not null,
  func varchar(256) not null,
  success boolean not null,
  count bigint not null,
  runtime_sum double precision not null,
  runtime_max double precision not null,
  wait_sum double precision not null,
  wait_max double precision not null,
  runtime_hist jsonb not null,
  wait_hist jsonb not null,
  shard smallint not null default 0,
  constraint ormq_metric_pkey primary key (${ROLLUP_KEY})
);

create table if not exists ormq_wait (
  id bigserial primary key,
  task char(32) not null,
  until timestamptz not null
);
`;
