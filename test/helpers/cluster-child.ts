/**
 * A cluster in its own process, for tests that kill one. Reads DATABASE_URL and CLUSTER_OPTIONS
 * (JSON) from the environment; its `announce` task prints "started <id>" and then waits.
 * Its `chaos` task records each execution in `chaos_runs` (the test creates that table), so a test
 * can count how often a task really ran, then sleeps and succeeds or throws as it was told.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, queueEntities, type TaskContext } from '../../src/index.js';

const orm = await MikroORM.init({ clientUrl: process.env.DATABASE_URL, entities: queueEntities, pool: { min: 0, max: 4 } });
const cluster = new Cluster(orm, {
  poll: 50,
  ...JSON.parse(process.env.CLUSTER_OPTIONS ?? '{}'),
  tasks: {
    async announce(this: { id: string }, ms = 60_000) {
      process.stdout.write(`started ${this.id}\n`);
      await new Promise((r) => setTimeout(r, ms));
      return 'finished';
    },
    echo: (x: unknown) => x,
    async chaos(this: TaskContext, ms = 0, fail = false) {
      await orm.em.fork().execute('insert into chaos_runs (task_id, pid) values (?, ?)', [this.id, process.pid]);
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      if (fail) throw new Error('built to fail');
      return ms;
    },
  },
});
await cluster.start();
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await cluster.stop();
  await orm.close();
  process.exit(0);
});
