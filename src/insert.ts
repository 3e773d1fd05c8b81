/**
 * The one write path into the queue: built packages inserted in one statement, and the clusters of
 * their keys woken at commit.
 */
import type { EntityManager } from '@mikro-orm/core';
import { QUEUE_CHANNEL } from './db/channels.js';
import { db, isDb, type Db } from './db/run.js';
import type { BuiltPackage } from './package.js';

/**
 * Every package in one statement, in order (ids ascending), and one NOTIFY per distinct key.
 * Notifications are delivered at commit, so clusters never wake for packages that were rolled back.
 * A delay in seconds is added to the database's clock, like the claim's own comparison.
 *
 * $1 is the channel and $2 the distinct keys. The batch arrives as parallel arrays zipped by ROWS
 * FROM: $3 the packages as one JSON array, $4 their keys, $5 and $6 their run_at and delay, each
 * empty when no package has one (a shorter array reads as nulls), and so $7 and $8, the priorities and serial keys. WITH ORDINALITY comes out in
 * order, so the plain statement needs no sort. Only the admin's resubmit and run now copy args from
 * a stored task or schedule ($9, $10), and a resubmission is inserted linked (src/schema-tables.ts); they get their own statement, so the plain one carries no join
 * and its cost estimate stays far below the point where PostgreSQL would JIT-compile it (which for
 * 10,000 tasks costs more than the insert).
 *
 * A batch with a host-given id ($9, or $11 after the copies' arrays: which packages have one) is
 * inserted keyed, and a package whose id is keyed in the queue already, or earlier in the batch,
 * is left out (ON CONFLICT over the partial ormq_queued_keyed_idx). Only such a batch pays for the
 * conflict check; `inserted` counts what was added.
 */
const insertStatement = (copies: boolean, keyed: boolean) => `with ins as (
    insert into ormq_queued (key, payload, run_at, priority, serial${copies ? ', linked' : ''}${keyed ? ', keyed' : ''})
    select x.key, ${
      copies
        ? `case when x.copy_task is not null then x.payload || jsonb_build_object('args', t.args, 'kwargs', t.kwargs)
           when x.copy_schedule is not null then x.payload || jsonb_build_object('args', s.args, 'kwargs', s.kwargs || coalesce(x.payload->'kwargs', '{}'))
           else x.payload end`
        : 'x.payload'
    },
      coalesce(x.run_at, now() + make_interval(secs => x.delay)), coalesce(x.priority, 0), x.serial${copies ? ', x.copy_task is not null' : ''}${keyed ? ', coalesce(x.keyed, false)' : ''}
    from rows from (jsonb_array_elements($3::jsonb), unnest($4::text[]), unnest($5::timestamptz[]), unnest($6::float8[]), unnest($7::int[]), unnest($8::text[])${
      copies ? ', unnest($9::char(32)[]), unnest($10::int[])' : ''
    }${keyed ? `, unnest($${copies ? 11 : 9}::boolean[])` : ''}) with ordinality as x(payload, key, run_at, delay, priority, serial${copies ? ', copy_task, copy_schedule' : ''}${keyed ? ', keyed' : ''}, n)${
      copies ? `\n    left join ormq_task t on t.id = x.copy_task left join ormq_schedule s on s.id = x.copy_schedule` : ''
    }
    order by x.n${keyed ? `\n    on conflict ((payload->>'id')) where keyed do nothing` : ''} returning 1
  )
  select (select count(*) from ins) as inserted, (select count(pg_notify($1, k)) from unnest($2::text[]) k) as woke`;
const BOUND = { bind: true };
const INSERT_STATEMENTS = [
  insertStatement(false, false),
  insertStatement(true, false),
  insertStatement(false, true),
  insertStatement(true, true),
];

/**
 * Wakes the clusters of `keys` once each, at commit: for packages made claimable by an update
 * (released, moved earlier) rather than inserted.
 */
export async function wakeKeys(em: EntityManager, keys: Iterable<unknown>): Promise<void> {
  const run = db(em);
  for (const key of new Set([...keys].map(String))) {
    await run.query('select pg_notify(?, ?)', [QUEUE_CHANNEL, key]);
  }
}

/** The packages as one JSON array, written in one pass. */
export function serialize(packages: readonly BuiltPackage[]): string {
  return JSON.stringify(packages.map((p) => p.payload));
}

/** One entry per package when any package has one, else none (read as all null). */
function column<T>(packages: readonly BuiltPackage[], value: (p: BuiltPackage) => T | null): (T | null)[] {
  const values = packages.map(value);
  return values.some((v) => v !== null) ? values : [];
}

/**
 * Inserts built packages (and wakes the clusters listening for their keys) through `em`. `text` is
 * the packages' payloads as a JSON array, when the caller has written and checked it already.
 */
export async function insertPackages(
  em: EntityManager | Db,
  packages: readonly BuiltPackage[],
  text = serialize(packages),
): Promise<number> {
  if (!packages.length) return 0;
  const keys = packages.map((p) => p.key);
  const parameters: unknown[] = [
    QUEUE_CHANNEL,
    [...new Set(keys)],
    text,
    keys,
    column(packages, (p) => (p.runAt instanceof Date ? p.runAt.toISOString() : null)),
    column(packages, (p) => (typeof p.runAt === 'number' ? p.runAt : null)),
    column(packages, (p) => p.priority ?? null),
    column(packages, (p) => p.serial ?? null),
  ];
  const copies = packages.some((p) => p.copyArgs);
  if (copies) {
    parameters.push(
      column(packages, (p) => (p.copyArgs && 'task' in p.copyArgs ? p.copyArgs.task : null)),
      column(packages, (p) => (p.copyArgs && 'schedule' in p.copyArgs ? p.copyArgs.schedule : null)),
    );
  }
  const keyed = packages.some((p) => p.keyed);
  if (keyed) parameters.push(packages.map((p) => p.keyed === true));
  // Bound, not escaped into the text as em.execute would: for a 10,000-task batch that costs more than the insert itself.
  // `em` a source already: a cluster's transaction, inserting the next step of a chain.
  const rows = await (isDb(em) ? em : db(em)).query(INSERT_STATEMENTS[(copies ? 1 : 0) + (keyed ? 2 : 0)]!, parameters, BOUND);
  return Number(rows[0]!.inserted);
}
