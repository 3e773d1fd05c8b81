/**
 * The admin on a host whose MikroORM has `replicas`: its lists are read on a real streaming
 * replica (made with pg_basebackup), its actions write to the primary, and the overview says how
 * far behind the replica is.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { ensureSchema, queueAdmin, queueEntities } from '../src/index.js';
import { client, close, insertTask, serve, testClient } from './helpers/admin.js';
import { initOrm, waitFor } from './helpers/db.js';
import { startReplicaPair } from './helpers/replica.js';

const R = suite<{ clientDir: ReturnType<typeof testClient> }>('admin: reads from a read replica');
R.before((ctx) => void (ctx.clientDir = testClient()));
R.after((ctx) => ctx.clientDir.cleanup());

R(
  'with replicas configured, the lists are read on the replica (a paused replay hides a new failure there, and the overview shows the lag) and actions write to the primary',
  async ({ clientDir }) => {
    const pair = await startReplicaPair();
    const primary = new pg.Client({ connectionString: pair.primaryUrl });
    const replica = new pg.Client({ connectionString: pair.replicaUrl });
    let orm: MikroORM | undefined;
    let setup: MikroORM | undefined;
    let served: Awaited<ReturnType<typeof serve>> | undefined;
    try {
      await Promise.all([primary.connect(), replica.connect()]);
      setup = await initOrm(pair.primaryUrl);
      await ensureSchema(setup);
      const [a, b] = [
        await insertTask(setup, { success: false, func: 'first' }),
        await insertTask(setup, { success: false, func: 'second' }),
      ];
      const failuresOn = async (c: pg.Client) =>
        (await c.query('select id from ormq_task where not success order by id')).rows.map((r) => r.id as string);
      await waitFor(async () => (await failuresOn(replica).catch(() => [])).length === 2, 'the replica caught up');

      orm = await MikroORM.init({
        clientUrl: pair.primaryUrl,
        entities: queueEntities,
        replicas: [{ host: '127.0.0.1', port: pair.replicaPort }],
        pool: { min: 0, max: 4 },
      });
      served = await serve(queueAdmin(orm, { clientDir: clientDir.dir }));
      const api = client(`${served.url}/`);
      const listed = async () => ((await api.get('api/failed')).json.rows as { id: string }[]).map((r) => r.id).sort();
      assert.equal(await listed(), [a, b].sort());
      const caughtUp = (await api.get('api/overview')).json.replica;
      assert.ok(caughtUp && caughtUp.lagSeconds !== null && caughtUp.lagSeconds < 5, JSON.stringify(caughtUp));

      // The replica stops replaying; a failure saved on the primary now reaches it but is not applied.
      await replica.query('select pg_wal_replay_pause()');
      await waitFor(
        async () => (await replica.query('select pg_get_wal_replay_pause_state() as s')).rows[0].s === 'paused',
        'replay paused',
      );
      const c = await insertTask(setup, { success: false, func: 'third' });
      const {
        rows: [{ lsn }],
      } = await primary.query('select pg_current_wal_lsn()::text as lsn');
      await waitFor(
        async () => (await replica.query('select pg_last_wal_receive_lsn() >= $1::pg_lsn as got', [lsn])).rows[0].got,
        'the WAL received',
      );
      assert.equal((await failuresOn(primary)).length, 3);
      assert.equal(await listed(), [a, b].sort(), 'the list is the replica’s: the new failure is not replayed there yet');
      const behind = (await api.get('api/overview')).json.replica;
      assert.ok(behind.lagSeconds > 0, JSON.stringify(behind));

      // An action goes to the primary: on the replica it would fail as a read-only transaction.
      const deleted = await api.post('api/failed/actions/delete', { ids: [a] });
      assert.is(deleted.status, 200, deleted.text);
      assert.equal(await failuresOn(primary), [b, c].sort());

      await replica.query('select pg_wal_replay_resume()');
      await waitFor(async () => (await listed()).join() === [b, c].sort().join(), 'the replica replays the new failure and the delete');
      assert.is((await api.get('api/overview')).json.replica.lagSeconds, 0);
    } finally {
      if (served) await close(served.server);
      await orm?.close(true);
      await setup?.close(true);
      await Promise.all([primary.end().catch(() => {}), replica.end().catch(() => {})]);
      pair.stop();
    }
  },
);

R('without replicas the overview says the admin reads the primary', async ({ clientDir }) => {
  // The primary of every other suite: no replicas in its ORM.
  const { freshOrm } = await import('./helpers/db.js');
  const { orm, close: drop } = await freshOrm();
  const served = await serve(queueAdmin(orm, { clientDir: clientDir.dir }));
  try {
    const r = await client(`${served.url}/`).get('api/overview');
    assert.is(r.status, 200, r.text);
    assert.is(r.json.replica, null);
  } finally {
    await close(served.server);
    await drop();
  }
});

R.run();
