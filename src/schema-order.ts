/**
 * The tables and columns behind the claim's order and its holds (schema 5): ormq_queued.priority
 * and .serial, ormq_schedule.priority, and ormq_limit. `ensureSchema` runs ORDER_UPGRADE after
 * the earlier tables exist, so a database made by an earlier ormq gets them in place.
 *
 * - priority: higher is claimed first, enqueue order (id) within one priority. The claim index
 *   leads with it after the key, (key, priority desc, id), so the claim stays one index scan in
 *   claim order; a queue whose priorities are all 0 reads it as it read (key, id).
 * - serial: packages sharing it run one at a time in id order. Only such packages enter
 *   ormq_queued_serial_idx (partial: most packages have none, and pay nothing for it).
 * - ormq_limit: one row per func with a limit. `holders` lists the claims that hold a concurrency
 *   slot as [package id, claim lock], `starts` the epoch seconds of the claims inside the rate's
 *   window; the claim reads and rewrites both under the row's lock (src/cluster/sql.ts).
 */

const LIMIT_TABLE = `
create table if not exists ormq_limit (
  func varchar(256) primary key,
  concurrency int null,
  rate_count int null,
  rate_seconds double precision null,
  holders jsonb not null default '[]',
  starts jsonb not null default '[]',
  updated timestamptz not null default now()
);`;

/**
 * Adds the columns to tables from before them (no lock when they are there), and replaces a claim
 * index from before priorities, (key, id), once.
 */
export const ORDER_UPGRADE = `
do $$
declare idx regclass;
begin
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_queued'::regclass and attname = 'priority' and not attisdropped) then
    alter table ormq_queued add column priority int not null default 0;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_queued'::regclass and attname = 'serial' and not attisdropped) then
    alter table ormq_queued add column serial varchar(100) null;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_schedule'::regclass and attname = 'priority' and not attisdropped) then
    alter table ormq_schedule add column priority int not null default 0;
  end if;
  select i.indexrelid::regclass into idx from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relname = 'ormq_queued_claim_idx' and i.indrelid = 'ormq_queued'::regclass
      and pg_get_indexdef(i.indexrelid) not like '%priority%';
  if idx is not null then execute format('drop index %s', idx); end if;
end $$;
${LIMIT_TABLE}
`;
