// A small host app as a user writes it, compiled with tsc --strict by test/typecheck.test.ts.
import express, { type Request } from 'express';
import { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, enqueue, enqueueMany, queueAdmin, queueEntities, schedule, type Tasks, type TasksOf } from 'ormq';

const tasks = {
  'email.send': async (to: string, subject: string) => ({ to, subject, sent: true }),
  'report.build': (year: number) => `report ${year}`,
} satisfies Tasks;

declare module 'ormq' {
  interface TaskRegistry extends TasksOf<typeof tasks> {}
}

export async function main(): Promise<void> {
  const orm = await MikroORM.init({ clientUrl: 'postgres://postgres@127.0.0.1:5432/app', entities: [...queueEntities] });
  const cluster = new Cluster(orm, { tasks });
  await cluster.start();
  const em = orm.em.fork();
  await enqueue(em, 'email.send', ['ada@example.com', 'Welcome']);
  await enqueue(em, 'report.build', [2026], { delay: 60 });
  await enqueueMany(em, [
    { func: 'email.send', args: ['a@b.c', 'Hi'] },
    { func: 'report.build', args: [2027], group: 'reports' },
  ]);
  // @ts-expect-error a misspelled func does not compile
  await enqueue(em, 'email.sned', ['ada@example.com', 'Welcome']);
  // @ts-expect-error wrong args do not compile
  await enqueue(em, 'report.build', ['2026']);
  // @ts-expect-error a missing argument does not compile
  await enqueue(em, 'email.send', ['ada@example.com']);
  // @ts-expect-error enqueueMany checks each task the same way
  await enqueueMany(em, [{ func: 'report.build', args: ['x'] }]);
  // Schedules declared at start-up, checked against the registry too.
  await schedule(
    em,
    { name: 'nightly', func: 'report.build', args: [2026], scheduleType: 'D', hook: 'email.send' },
    { ifExists: 'update' },
  );
  // @ts-expect-error a schedule's func is a registered name
  await schedule(em, { name: 'nightly', func: 'report.bild', scheduleType: 'D' });
  // @ts-expect-error a schedule's args are the function's parameters
  await schedule(em, { name: 'nightly', func: 'report.build', args: ['2026'], scheduleType: 'D' });
  // @ts-expect-error so is its hook
  await schedule(em, { name: 'nightly', func: 'report.build', hook: 'email.sent', scheduleType: 'D' });

  // README "The admin" (docs/admin.md "Behind your auth"): the request type says what the host's middleware added.
  type LoggedIn = Request & { user: { email: string; isAdmin: boolean } };
  const app = express();
  app.use(
    '/queue-admin',
    queueAdmin<LoggedIn>(orm, {
      authorize: (req, { action }) => action === 'view' || req.user.isAdmin,
      actor: (req) => req.user.email,
    }),
  );
  // @ts-expect-error without the request type, req.user is unknown
  queueAdmin(orm, { actor: (req) => req.user.email });
}
