/**
 * An operator's bad day, written as the clusters would have left it: a killed process still holding
 * packages, a live one, a paused key with work waiting, a key whose work waits with no cluster,
 * a func failing over and over (in the rollups and in Failed tasks), and one failure still retrying.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { newTaskId } from '../../src/names.js';
import { sql } from './db.js';
import { insertRollup, insertTask } from './admin.js';
import { processRow } from './cluster.js';

export interface BadDay {
  dead: string;
  live: string;
  /** The task id of the failure whose package waits for its retry. */
  retryingTask: string;
  /** Failed tasks of email.send by cause. */
  smtp: string[];
  invoice: string[];
}

const failure = (error: string, message: string) => ({ error, message, stack: `${error}: ${message}\n    at send (mail.js:1:1)` });

async function pkg(
  orm: MikroORM,
  key: string,
  name: string,
  func: string,
  o: { waitedMs?: number; lockedBy?: string; taskId?: string; linked?: boolean } = {},
) {
  await sql(
    orm,
    `insert into ormq_queued (key, payload, lock, locked_by, linked)
     values (?, jsonb_build_object('id', ?::text, 'name', ?::text, 'func', ?::text, 'args', '[]'::jsonb, 'kwargs', '{}'::jsonb,
             'enqueued', to_char((now() - ? * interval '1 ms') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
             case when ?::boolean then now() - interval '5 minutes' end, ?, ?)`,
    [key, o.taskId ?? newTaskId(), name, func, o.waitedMs ?? 1000, !!o.lockedBy, o.lockedBy ?? null, o.linked ?? false],
  );
}

export async function stageBadDay(orm: MikroORM): Promise<BadDay> {
  const box = { host: 'box-1', workers: 4, done: 0, failed: 0 };
  const dead = await processRow(orm, 'mail', { ...box, ageMs: 5 * 60_000 });
  // a live one beats hourly, so it stays live while a test runs
  const live = await processRow(orm, 'default', { ...box, beatMs: 3_600_000 });
  for (let i = 1; i <= 3; i++) await pkg(orm, 'mail', `stuck-${i}`, 'email.send', { lockedBy: dead });
  // paused from the admin by "ops@example.com" an hour ago, with work waiting
  await sql(orm, `insert into ormq_paused_key (key, at) values ('reports', now() - interval '1 hour')`);
  await sql(
    orm,
    `insert into ormq_admin_log (at, actor, action, page, object_id, summary) values (now() - interval '1 hour', 'ops@example.com', 'pause', 'clusters', 'reports', 'Paused queue key "reports"')`,
  );
  for (let i = 1; i <= 4; i++) await pkg(orm, 'reports', `report-${i}`, 'report.build', { waitedMs: 30 * 60_000 });
  // waiting ten minutes on a key no cluster serves
  for (let i = 1; i <= 2; i++) await pkg(orm, 'images', `resize-${i}`, 'image.resize', { waitedMs: 10 * 60_000 });

  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms).toISOString();
  // the last hour: email.send failed 8 of 20 attempts, math.add 2 of 102
  await insertRollup(orm, { at: ago(10 * 60_000), func: 'email.send', key: 'mail', success: false, count: 8 });
  await insertRollup(orm, { at: ago(10 * 60_000), func: 'email.send', key: 'mail', success: true, count: 12 });
  await insertRollup(orm, { at: ago(5 * 60_000), func: 'math.add', success: false, count: 2 });
  await insertRollup(orm, { at: ago(5 * 60_000), func: 'math.add', success: true, count: 100 });
  const smtp: string[] = [];
  for (let i = 0; i < 5; i++) {
    smtp.push(
      await insertTask(orm, {
        name: `mail-${i}`,
        func: 'email.send',
        success: false,
        stopped: ago((i + 1) * 60_000),
        args: [`user${i}@example.com`],
        result: failure('Error', `SMTP 451: mailbox user${i}@example.com temporarily unavailable`),
      }),
    );
  }
  const invoice: string[] = [];
  for (let i = 1; i <= 3; i++) {
    invoice.push(
      await insertTask(orm, {
        name: `invoice-${i}`,
        func: 'email.send',
        success: false,
        stopped: ago((i + 10) * 60_000),
        args: [{ invoice: `invoice-${i}` }],
        result: failure('TypeError', `Cannot read properties of undefined (reading 'total') in invoice ${i}`),
      }),
    );
  }
  for (let i = 1; i <= 3; i++) await insertTask(orm, { name: `sum-${i}`, func: 'math.add', args: [i, 3] });
  // the newest SMTP failure waits for its retry
  const retryingTask = smtp[0]!;
  await pkg(orm, 'mail', 'mail-0', 'email.send', { taskId: retryingTask, linked: true, lockedBy: live });
  return { dead, live, retryingTask, smtp, invoice };
}
