/**
 * The Clusters page as it is now: running counts from the processes (claimed and stuck apart), a
 * dead process's last sight, Forget and Release, config drift between processes of one key, a stop
 * checked against the claim as it is, pauses that expire and say who paused, and the Activity log.
 */
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { CancelledError, enqueue, pauseKey, pausedKeys, type TaskContext } from '../src/index.js';
import { newTaskId } from '../src/names.js';
import { sql, waitFor } from './helpers/db.js';
import { clustersOf, processRow, startInto, type Started } from './helpers/cluster.js';
import { adminSuite, type AdminCtx } from './helpers/suites.js';

interface Ctx extends AdminCtx {
  running: Started[];
}

/** Tasks in flight right now in this process, as the tasks themselves count them. */
let inFlight = 0;
let releaseHeld: () => void = () => {};
let heldGate = new Promise<void>((r) => (releaseHeld = r));
const TASKS = {
  ok: () => 'fine',
  async hold(this: TaskContext) {
    inFlight++;
    try {
      await new Promise<void>((resolve, reject) => {
        void heldGate.then(resolve);
        this.signal.addEventListener('abort', () => reject(this.signal.reason));
      });
      return 'released';
    } finally {
      inFlight--;
    }
  },
};

const S = adminSuite<Ctx>('clusters as they are', {
  mount: { actor: (req) => (req.headers['x-user'] as string | undefined) ?? null },
  clear: 'truncate ormq_task, ormq_schedule, ormq_queued, ormq_admin_log, ormq_cluster, ormq_paused_key restart identity',
  setup: (ctx) => void (ctx.running = []),
});
S.before.each(() => {
  heldGate = new Promise<void>((r) => (releaseHeld = r));
});
S.after.each(async (ctx) => {
  releaseHeld();
  await Promise.all(ctx.running.splice(0).map((s) => s.cluster.stop()));
});

const start = (ctx: Ctx, name: string, options: Record<string, unknown> = {}) =>
  startInto(ctx.running, ctx.orm, name, { tasks: TASKS, ...options });

/** A process that beat an hour after it started and then went silent `ageMs` ago, holding `held` packages of its key. */
async function deadProcess(orm: MikroORM, name: string, held: number, ageMs = 60_000): Promise<string> {
  const tasks = [{ package: 1, id: newTaskId(), name: 'was here', func: 'f', started: new Date().toISOString(), elapsed: 500 }];
  const id = await processRow(orm, name, { ageMs, startedMs: ageMs + 3_600_000, busy: 1, tasks });
  for (let i = 0; i < held; i++) {
    await sql(orm, `insert into ormq_queued (key, payload, lock, locked_by) values (?, ?::jsonb, now(), ?)`, [
      name,
      JSON.stringify({ id: newTaskId(), name: `stuck-${i}`, func: 'ok', args: [], kwargs: {}, enqueued: new Date().toISOString() }),
      id,
    ]);
  }
  return id;
}

S('running counts the tasks running now in the process; what it claimed and has not started is shown apart', async (ctx) => {
  // One worker and a claim batch of several: the process holds more packages than it runs.
  await start(ctx, 'busy', { workers: 1 });
  for (let i = 0; i < 6; i++) await enqueue(ctx.orm.em.fork(), 'hold', [], { cluster: 'busy' });
  const seen = await waitFor(async () => {
    const v = await clustersOf(ctx.api);
    const k = v.keys.find((x) => x.key === 'busy');
    return k && k.running === 1 && v.clusters[0].tasks.length === 1 && v;
  }, 'one task running');
  const key = seen.keys.find((x: any) => x.key === 'busy');
  const proc = seen.clusters[0];
  assert.is(inFlight, 1, 'the running count is the tasks in flight');
  assert.is(key.running, inFlight);
  const [locked] = await sql<{ n: number }>(ctx.orm, "select count(*)::int as n from ormq_queued where key = 'busy' and lock is not null");
  assert.is(key.claimed, locked!.n - 1, 'claimed: held but not started');
  assert.is(key.waiting + key.claimed + key.running, 6);
  assert.is(key.stuck, 0);
  assert.is(proc.held, locked!.n);
  assert.is(proc.claimed, locked!.n - 1);
  assert.equal(proc.config, { workers: 1, saveLimit: 250, retry: 90, timeout: 60, maxAttempts: 0 });
  assert.equal(proc.drift, []);
});

S(
  'a process that stopped answering: listed first, uptime stopped at its last beat, its packages stuck; Release frees them, Forget removes it',
  async (ctx) => {
    await start(ctx, 'alive');
    const dead = await deadProcess(ctx.orm, 'zz-dead', 3);
    const v = await clustersOf(ctx.api);
    assert.is(v.clusters[0].id, dead, 'problems first');
    const d = v.clusters[0];
    assert.is(d.state, 'not responding');
    assert.is(d.uptime, 3_600_000, 'uptime from start to last beat, not climbing');
    assert.is(d.held, 3);
    assert.is(d.tasks[0].elapsed, 500, 'what was running at its last beat, not still counting');
    const key = v.keys.find((k) => k.key === 'zz-dead');
    assert.is(key.stuck, 3);
    assert.is(key.running, 0, 'a dead process runs nothing');
    assert.is(key.claimed, 0);
    assert.is(v.keys[0].key, 'zz-dead', 'a key with stuck packages before the healthy ones');

    const live = v.clusters.find((c) => c.name === 'alive');
    const refused = await ctx.api.post('api/clusters/actions/forget', { cluster: live.id });
    assert.is(refused.status, 409, refused.text);
    assert.match(refused.json.error.message, /is responding/);
    assert.is((await ctx.api.post('api/clusters/actions/release', { cluster: live.id })).status, 409);
    const bad = await ctx.api.post('api/clusters/actions/forget', { cluster: 'x' });
    assert.is(bad.status, 400);
    assert.ok(bad.json.error.fields.cluster);
    assert.is((await ctx.api.post('api/clusters/actions/forget', { cluster: newTaskId() })).status, 404);

    const released = await ctx.api.post('api/clusters/actions/release', { cluster: dead }, { 'x-user': 'ops' });
    assert.is(released.status, 200, released.text);
    assert.is(released.json.released, 3);
    assert.equal(await sql(ctx.orm, "select 1 from ormq_queued where key = 'zz-dead' and lock is not null"), []);
    const forgot = await ctx.api.post('api/clusters/actions/forget', { cluster: dead }, { 'x-user': 'ops' });
    assert.is(forgot.status, 200, forgot.text);
    assert.equal(await sql(ctx.orm, 'select 1 from ormq_cluster where id = ?', [dead]), []);
    const log = await sql<{ actor: string; action: string; summary: string }>(
      ctx.orm,
      "select actor, action, summary from ormq_admin_log where page = 'clusters' order by id",
    );
    assert.equal(
      log.map((l) => [l.actor, l.action]),
      [
        ['ops', 'release'],
        ['ops', 'forget'],
      ],
    );
    assert.match(log[0]!.summary, /Released 3 packages held by cluster process "zz-dead" \(gone-host pid 4242\)/);
  },
);

S('processes of one key that disagree on saveLimit are flagged on the key and on each process; workers may differ', async (ctx) => {
  await start(ctx, 'd', { saveLimit: 250, workers: 2 });
  await start(ctx, 'd', { saveLimit: 5000, workers: 4 });
  await start(ctx, 'e', { saveLimit: 250 });
  const v = await waitFor(async () => {
    const x = await clustersOf(ctx.api);
    return x.clusters.length === 3 && x;
  }, 'three processes');
  const d = v.keys.find((k) => k.key === 'd');
  assert.equal(d.drift, { saveLimit: [250, 5000] });
  assert.is(v.keys.find((k) => k.key === 'e').drift, null);
  assert.is(v.keys[0].key, 'd', 'the drifting key first');
  for (const c of v.clusters) assert.equal(c.drift, c.name === 'd' ? ['saveLimit'] : [], c.name);
  assert.equal(
    v.clusters
      .filter((c) => c.name === 'd')
      .map((c) => c.config.saveLimit)
      .sort((a, b) => a - b),
    [250, 5000],
  );
});

S(
  'a stop checks the claim now: a finished package says so (200), one held elsewhere is a 409, a held one is stopped with the actor in its error and history',
  async (ctx) => {
    const { cluster } = await start(ctx, 's', { workers: 1, timeout: 5, retry: 6 });
    const finished = await ctx.api.post('api/clusters/actions/stop', { cluster: cluster.processId, package: 12345 });
    assert.is(finished.status, 200, finished.text);
    assert.equal(finished.json, {
      requested: false,
      finished: true,
      package: 12345,
      cluster: cluster.processId,
      message: 'Package 12345 finished before the stop arrived',
    });
    const elsewhere = await deadProcess(ctx.orm, 's', 1);
    const [other] = await sql<{ id: number }>(ctx.orm, 'select id from ormq_queued where locked_by = ?', [elsewhere]);
    const r409 = await ctx.api.post('api/clusters/actions/stop', { cluster: cluster.processId, package: Number(other!.id) });
    assert.is(r409.status, 409, r409.text);
    assert.match(r409.json.error.message, /no longer held by cluster "s"/);
    await sql(ctx.orm, 'delete from ormq_queued');

    const taskId = await enqueue(ctx.orm.em.fork(), 'hold', [], { cluster: 's' });
    // Asked as soon as the package is claimed, before any beat lists it: the claim decides.
    const [pkg] = await waitFor(async () => {
      const rows = await sql<{ id: number }>(ctx.orm, 'select id from ormq_queued where locked_by = ? and lock is not null', [
        cluster.processId,
      ]);
      return rows.length > 0 && inFlight === 1 && rows;
    }, 'claimed and started');
    const asked = await ctx.api.post(
      'api/clusters/actions/stop',
      { cluster: cluster.processId, package: Number(pkg!.id) },
      { 'x-user': 'alice' },
    );
    assert.is(asked.status, 202, asked.text);
    const [saved] = await waitFor(async () => {
      const rows = await sql<{ result: any }>(ctx.orm, 'select result from ormq_task where id = ?', [taskId]);
      return rows.length > 0 && rows;
    }, 'saved as failed');
    assert.is(saved!.result.error, 'CancelledError');
    assert.is(saved!.result.message, 'Task stopped from the admin by alice');
    assert.not.match(JSON.stringify(saved!.result), /heartbeat|node_modules|\.ts:\d/, 'no stack of ormq internals');
    const detail = await ctx.api.get(`api/failed/${taskId}`);
    assert.is(detail.status, 200, detail.text);
    assert.equal(
      detail.json.history.map((h: any) => [h.actor, h.action]),
      [['alice', 'stop']],
    );
    assert.is(new CancelledError().message, 'Task stopped from the admin');
  },
);

S('pauses: the admin records who and until when; a pause for a while ends by itself; a bad length is a 400 naming it', async (ctx) => {
  const r = await ctx.api.post('api/clusters/actions/pause', { key: 'p', for: 900 }, { 'x-user': 'bob' });
  assert.is(r.status, 200, r.text);
  const key = (await clustersOf(ctx.api)).keys.find((k) => k.key === 'p');
  assert.is(key.paused, true);
  assert.is(key.pausedBy, 'bob');
  const lasts = Date.parse(key.pausedUntil) - Date.parse(key.pausedAt);
  assert.ok(Math.abs(lasts - 900_000) < 1000, String(lasts));
  const [log] = await sql<{ summary: string }>(ctx.orm, "select summary from ormq_admin_log where action = 'pause'");
  assert.is(log!.summary, 'Paused queue key "p" for 15 min');
  for (const bad of [0, -5, 'soon', 1e12]) {
    const b = await ctx.api.post('api/clusters/actions/pause', { key: 'q', for: bad });
    assert.is(b.status, 400, `${bad}: ${b.text}`);
    assert.ok(b.json.error.fields.for, b.text);
  }
  await ctx.api.post('api/clusters/actions/pause', { key: 'forever' });
  const forever = (await clustersOf(ctx.api)).keys.find((k) => k.key === 'forever');
  assert.is(forever.pausedUntil, null);
  // A pause from before paused_by was stored: the admin log says who.
  await sql(ctx.orm, "insert into ormq_paused_key (key) values ('older')");
  await sql(
    ctx.orm,
    "insert into ormq_admin_log (actor, action, page, object_id, summary) values ('carol', 'pause', 'clusters', 'older', 'Paused queue key \"older\"')",
  );
  assert.is((await clustersOf(ctx.api)).keys.find((k) => k.key === 'older').pausedBy, 'carol');

  // A short pause in force, then past its end: the next beat of any process resumes the key and its cluster claims.
  await start(ctx, 'brief');
  assert.is(await pauseKey(ctx.orm.em.fork(), 'brief', { for: 1, by: 'script' }), true);
  const id = await enqueue(ctx.orm.em.fork(), 'ok', [], { cluster: 'brief' });
  assert.ok((await pausedKeys(ctx.orm.em.fork())).includes('brief'));
  await sql(ctx.orm, "update ormq_paused_key set until = now() - interval '1 ms' where key = 'brief'");
  assert.not.ok((await pausedKeys(ctx.orm.em.fork())).includes('brief'), 'past its end it is not paused');
  await waitFor(async () => (await sql(ctx.orm, 'select 1 from ormq_task where id = ?', [id])).length > 0, 'claimed once the pause ended');
  assert.equal(await sql(ctx.orm, "select key from ormq_paused_key where key = 'brief'"), []);
});

S(
  'Activity: every admin action newest first with its actor, filtered by actor, action and page; only pages the caller may view',
  async (ctx) => {
    await ctx.api.post('api/clusters/actions/pause', { key: 'a1' }, { 'x-user': 'carol' });
    await ctx.api.post('api/clusters/actions/resume', { key: 'a1' }, { 'x-user': 'dave' });
    await sql(
      ctx.orm,
      "insert into ormq_admin_log (actor, action, page, object_id, summary) values ('erin', 'delete', 'failed', 'x', 'Deleted x')",
    );
    const all = await ctx.api.get('api/activity');
    assert.is(all.status, 200, all.text);
    assert.equal(
      all.json.rows.map((r: any) => [r.actor, r.action, r.page]),
      [
        ['erin', 'delete', 'failed'],
        ['dave', 'resume', 'clusters'],
        ['carol', 'pause', 'clusters'],
      ],
    );
    assert.is(all.json.rows[2].objectId, 'a1');
    assert.ok(Date.parse(all.json.rows[0].at));
    assert.equal(
      (await ctx.api.get('api/activity?actor=carol')).json.rows.map((r: any) => r.action),
      ['pause'],
    );
    assert.equal(
      (await ctx.api.get('api/activity?action=resume')).json.rows.map((r: any) => r.actor),
      ['dave'],
    );
    assert.equal(
      (await ctx.api.get('api/activity?page=failed')).json.rows.map((r: any) => r.actor),
      ['erin'],
    );
    const bad = await ctx.api.get('api/activity?page=nope&action=fly');
    assert.is(bad.status, 400);
    assert.ok(bad.json.error.fields.page && bad.json.error.fields.action, bad.text);

    // Newest first, 50 at a time: `next` continues after the last one shown.
    await sql(
      ctx.orm,
      "insert into ormq_admin_log (actor, action, page, object_id, summary) select 'bulk', 'delete', 'queued', i::text, 'Deleted ' || i from generate_series(1, 60) i",
    );
    const first = await ctx.api.get('api/activity?actor=bulk');
    assert.is(first.json.rows.length, 50);
    assert.is(first.json.rows[0].objectId, '60');
    const rest = await ctx.api.get(`api/activity?actor=bulk&before=${first.json.next}`);
    assert.equal(
      rest.json.rows.map((r: any) => Number(r.objectId)),
      [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
    );
    assert.is(rest.json.next, null);
    assert.is((await ctx.api.get(`api/activity?actor=${'x'.repeat(151)}`)).status, 400);

    const asked: string[] = [];
    const narrow = await ctx.start({
      authorize: (_req, w) => (
        asked.push(`${w.page}:${w.action}`),
        w.page === 'activity' || (w.page === 'clusters' && w.action === 'view')
      ),
    });
    const seen = await narrow.api.get('api/activity');
    assert.is(seen.status, 200, seen.text);
    assert.equal(
      seen.json.rows.map((r: any) => r.page),
      ['clusters', 'clusters'],
      'no failed-page entry for a caller who cannot view Failed',
    );
    const denied = await ctx.start({ authorize: (_req, w) => w.page !== 'activity' });
    assert.is((await denied.api.get('api/activity')).status, 403);
  },
);

S.run();
