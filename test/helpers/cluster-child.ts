/**
 * A cluster in its own process, for tests that kill one. Reads DATABASE_URL and CLUSTER_OPTIONS
 * (JSON) from the environment; its `announce` task prints "started <id>" and then waits.
 * Its `chaos` task records each execution in `chaos_runs` (the test creates that table), so a test
 * can count how often a task really ran, then sleeps and succeeds or throws as it was told.
 * Its `stall` task, in the process whose pid it is given, blocks the event loop (a synchronous
 * stretch, as a CPU-bound task or a long GC pause does) until a file exists (`stallLater` once
 * another file exists); its `hold` task
 * records its run in `task_runs` (the test creates that table) and ends once a file exists.
 * What the cluster logs at warn and error goes to stdout as `log <level>: <message>`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, queueEntities, type TaskContext } from '../../src/index.js';

const orm = await MikroORM.init({ clientUrl: process.env.DATABASE_URL, entities: queueEntities, pool: { min: 0, max: 4 } });
const cluster = new Cluster(orm, {
  poll: 50,
  log: (level, message) => {
    if (level === 'warn' || level === 'error') process.stdout.write(`log ${level}: ${message}\n`);
  },
  ...JSON.parse(process.env.CLUSTER_OPTIONS ?? '{}'),
  tasks: {
    stall(pid: number, file: string) {
      const pause = new Int32Array(new SharedArrayBuffer(4));
      while (process.pid === pid && !existsSync(file)) Atomics.wait(pause, 0, 0, 10);
      return process.pid;
    },
    /** As `stall`, once file `go` exists (waited for without blocking) and after creating `blocked`. */
    async stallLater(pid: number, go: string, blocked: string, file: string) {
      while (!existsSync(go)) await new Promise((r) => setTimeout(r, 20));
      writeFileSync(blocked, '');
      const pause = new Int32Array(new SharedArrayBuffer(4));
      while (process.pid === pid && !existsSync(file)) Atomics.wait(pause, 0, 0, 10);
      return process.pid;
    },
    async hold(this: TaskContext, file: string, capMs: number) {
      const [row] = await orm.em.fork().execute('insert into task_runs (task_id, pid) values (?, ?) returning id', [this.id, process.pid]);
      const until = Date.now() + capMs;
      while (!existsSync(file) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await orm.em.fork().execute('update task_runs set ended = clock_timestamp() where id = ?', [row!.id]);
      return process.pid;
    },
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
