/**
 * What failure groups and the error and args searches cost a cluster's save: the completion
 * statement (COMPLETE) for a batch of finished tasks, timed in two databases side by side, one with
 * ormq's schema as it is and one as it was before them (no error_group column, no
 * ormq_task_error_group_idx, ormq_task_error_trgm_idx or ormq_task_args_trgm_idx, the statement
 * without the group). Batches alternate between the two, each in a transaction rolled back, so
 * both see the same load; each table holds 100,000 tasks first, so the indexes are not empty.
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node --import tsx bench/save-cost.ts [rounds]
 *
 * AFTER_DROP=ormq_task_args_trgm_idx,… leaves those indexes out of the "after" database too, to
 * tell each one's share.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { completion, type Completion } from '../src/cluster/completion.js';
import { ERROR_GROUP } from '../src/error-groups.js';
import { ensureSchema, queueEntities } from '../src/index.js';
import { newTaskId } from '../src/names.js';

const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const rounds = Number(process.argv[2] ?? 60);
const BATCH = 500;

const urlOf = (db: string) => {
  const u = new URL(server);
  u.pathname = `/${db}`;
  return u.toString();
};

async function database(name: string, before: boolean): Promise<pg.Client> {
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}`);
  await admin.end();
  const orm = await MikroORM.init({ clientUrl: urlOf(name), entities: queueEntities });
  await ensureSchema(orm);
  await orm.close(true);
  const c = new pg.Client({ connectionString: urlOf(name) });
  await c.connect();
  if (before) {
    await c.query('drop index ormq_task_error_trgm_idx, ormq_task_args_trgm_idx');
    await c.query('alter table ormq_task drop column error_group');
  } else if (process.env.AFTER_DROP) {
    await c.query(
      `drop index ${process.env.AFTER_DROP.split(',')
        .map((i) => i.replace(/[^a-z_]/g, ''))
        .join(', ')}`,
    );
  }
  await c.query(`insert into ormq_task (id, name, func, args, kwargs, result, enqueued, started, stopped, success)
    select md5(i::text), 'seed-' || i, 'app.mail.send', jsonb_build_array(i, 'user' || (i % 9973) || '@example.com'), '{}', '{"ok": true}', now(), now(), now(), i % 10 <> 0
    from generate_series(1, 100000) i`);
  if (!before) await c.query(`update ormq_task set error_group = ${ERROR_GROUP} where not success`);
  await c.query('vacuum analyze ormq_task');
  return c;
}

const stack = `Error: SMTP 451: mailbox temporarily unavailable\n${'    at send (/srv/app/lib/mail.js:88:11)\n'.repeat(8)}`;

/** The process whose claim the batch ran under: COMPLETE saves only packages it still holds. */
const PROCESS = 'b'.repeat(32);
/** Every package's lock: 2026-01-01 in microseconds, as CLAIM returns it. */
const LOCK = 1_767_225_600_000_000;

function batch(success: boolean): Completion[] {
  const now = new Date().toISOString();
  return Array.from({ length: BATCH }, (_, i) => ({
    qid: i + 1,
    lock: LOCK,
    pkg: {
      id: newTaskId(),
      name: `task-${i}`,
      func: 'app.mail.send',
      args: [i, `user${i}@example.com`, { invoice: `INV-${i}` }],
      kwargs: {},
      group: null,
      hook: null,
      timeout: null,
      save: null,
      enqueued: now,
    },
    success,
    started: now,
    stopped: now,
    result: success
      ? { sent: true }
      : { error: 'Error', message: `SMTP 451: mailbox user${i}@example.com temporarily unavailable (try ${i})`, stack },
    cancelled: false,
  }));
}

const OPTIONS = { name: 'default', saveLimit: 0, ackFailures: false, maxAttempts: 0, metrics: true, retry: 90, retryBackoff: null };

async function timed(c: pg.Client, text: string, values: unknown[]): Promise<number> {
  await c.query('begin');
  // The batch's packages, held by PROCESS under LOCK, as its claim left them; not timed.
  await c.query(`insert into ormq_queued (id, key, payload, lock, locked_by)
    select i, 'default', '{}'::jsonb, to_timestamp(${LOCK / 1e6}), '${PROCESS}' from generate_series(1, ${BATCH}) i`);
  const t = performance.now();
  await c.query({ text, values });
  const ms = performance.now() - t;
  await c.query('rollback');
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const before = await database('ormq_bench_save_before', true);
const after = await database('ormq_bench_save_after', false);
const current = completion(batch(false), OPTIONS, PROCESS).statement.text;
const old = current
  .replace(', attempts, error_group)', ', attempts)')
  .replace(`, ${ERROR_GROUP}`, '')
  .replace(', error_group = excluded.error_group', '');
if (old === current || old.includes('error_group')) throw new Error('the statement without the group could not be made');

console.log(`COMPLETE of ${BATCH} tasks, ${rounds} rounds alternating, ms per batch`);
console.log('| batch | before: median | after: median | before: mean | after: mean | after / before (median) |');
console.log('|---|---|---|---|---|---|');
for (const success of [true, false]) {
  const b: number[] = [];
  const a: number[] = [];
  for (let i = 0; i < rounds + 5; i++) {
    const values = completion(batch(success), OPTIONS, PROCESS).values;
    const x = await timed(before, old, values);
    const y = await timed(after, current, values);
    if (i >= 5) (b.push(x), a.push(y)); // the first rounds warm the caches and plans
  }
  console.log(
    `| ${BATCH} ${success ? 'successes' : 'failures'} | ${median(b).toFixed(2)} | ${median(a).toFixed(2)} | ${mean(b).toFixed(2)} | ${mean(a).toFixed(2)} | ${(median(a) / median(b)).toFixed(2)} |`,
  );
}
await before.end();
await after.end();
