/**
 * The tables and columns of chains and iterations (schema version 4), run by `ensureSchema` after
 * the base tables. Each change is made only when missing, so a start-up against up-to-date tables
 * takes no lock.
 *
 * - ormq_task.chain: a chain step's place, `{ id, step, steps, ids, stopped? }` (src/chains.ts):
 *   the task detail's "step 2 of 5" and its links. The steps still to run travel in the queued
 *   package itself, so a chain has no row of its own to write apart from its first package.
 * - ormq_iter: an iteration waiting for its runs (src/iterations.ts): `remaining` counts the runs
 *   without a final outcome, and `task` holds what its one saved task is made of. Deleted when that
 *   task is saved.
 * - ormq_iter_result: one row per run with a final outcome, until the iteration's task is saved.
 *   Separate rows, not one growing array: each run's save writes its own result once.
 */
export const FLOW_TABLES = `
create table if not exists ormq_iter (
  id char(32) primary key,
  total int not null,
  remaining int not null,
  task jsonb not null,
  created timestamptz not null default now()
);

create table if not exists ormq_iter_result (
  iter char(32) not null,
  n int not null,
  success boolean not null,
  result jsonb null,
  started timestamptz not null,
  stopped timestamptz not null,
  constraint ormq_iter_result_pkey primary key (iter, n)
);

do $$
begin
  if not exists (select 1 from pg_attribute where attrelid = 'ormq_task'::regclass and attname = 'chain' and not attisdropped) then
    alter table ormq_task add column chain jsonb null;
  end if;
end $$;
`;
