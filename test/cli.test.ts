/**
 * The `ormq` command as a real child process in a host's folder: the worker loads the host's
 * MikroORM config and task module, logs a line per event, and stops on SIGTERM without losing a
 * package or leaving a lock; `info` and `monitor` print the queue.
 */
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enqueueMany, schedule } from '../src/index.js';
import { insertRollup } from './helpers/admin.js';
import { sql, waitFor } from './helpers/db.js';
import { dbSuite } from './helpers/suites.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

interface Run {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

/** `ormq …args` in `cwd`, as a host runs it. */
function ormq(cwd: string, args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { cwd, env: { ...process.env, NODE_V8_COVERAGE: '', ...env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

/** A host folder: its MikroORM config (found through package.json) and its task module. */
function host(url: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ormq-cli-'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'host', private: true, type: 'module', 'mikro-orm': { configPaths: ['./db/orm.config.mjs'] } }),
  );
  const db = join(dir, 'db');
  mkdirSync(db);
  writeFileSync(join(db, 'orm.config.mjs'), `export default () => ({ clientUrl: ${JSON.stringify(url)}, pool: { min: 0, max: 4 } });\n`);
  writeFileSync(
    join(dir, 'tasks.mjs'),
    `export const tasks = {
  'work.sleep': (ms) => new Promise((r) => setTimeout(() => r(ms), ms)),
  'work.fail': (what) => { throw new TypeError('cannot import the file'); },
  'work.slow': (ms) => new Promise((r) => setTimeout(r, ms)),
};
export const cluster = { poll: 100, heartbeat: 0.5 };
`,
  );
  return dir;
}

const Cli = dbSuite('cli: the ormq command', {
  clear: 'delete from ormq_task; delete from ormq_queued; delete from ormq_schedule; delete from ormq_cluster; delete from ormq_metric',
});

Cli('worker: SIGTERM mid-drain lets running tasks finish, releases the rest, loses nothing and exits 0', async ({ orm, db }) => {
  const dir = host(db.url);
  try {
    const ids = await enqueueMany(
      orm.em.fork(),
      Array.from({ length: 40 }, () => ({ func: 'work.sleep' as const, args: [300] })),
    );
    const w = ormq(dir, ['worker', '--tasks', 'tasks.mjs', '--workers', '4', '--stop-timeout', '5000']);
    await waitFor(
      async () => (await sql<{ n: number }>(orm, 'select count(*)::int as n from ormq_task'))[0]!.n >= 8,
      'eight tasks saved',
      30_000,
    );
    w.child.kill('SIGTERM');
    assert.is(await w.exit, 0, w.err());
    const locked = await sql(orm, 'select id from ormq_queued where lock is not null');
    assert.equal(locked, [], 'no package left locked');
    const saved = await sql<{ id: string }>(orm, 'select id from ormq_task');
    const queued = await sql<{ id: string }>(orm, "select payload->>'id' as id from ormq_queued");
    assert.equal([...saved, ...queued].map((r) => r.id).sort(), [...ids].sort(), 'every task saved or still queued, once');
    assert.ok(queued.length > 0, 'the stop came mid-drain');
    const lines = w.out().trim().split('\n');
    assert.match(lines[0]!, /info  cluster default started: 4 workers, 0 schedules, ormq \S+, process [0-9a-f]{32}$/);
    assert.match(w.out(), /SIGTERM: stopping; running tasks get 5000 ms, a second signal releases them at once/);
    assert.match(lines.at(-1)!, new RegExp(`info  cluster default stopped: ${saved.length} succeeded, 0 failed, \\d+ released$`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Cli(
  "worker --key: claims that queue key's tasks under that cluster name; --name, its former spelling, does the same",
  async ({ orm, db }) => {
    const dir = host(db.url);
    try {
      for (const flag of ['--key', '--name']) {
        const [id] = await enqueueMany(orm.em.fork(), [{ func: 'work.sleep' as const, args: [1], key: 'mail' }]);
        const w = ormq(dir, ['worker', '--tasks', 'tasks.mjs', flag, 'mail']);
        await waitFor(
          async () => (await sql(orm, 'select 1 from ormq_task where id = ?', [id])).length === 1,
          `the mail task run (${flag})`,
          30_000,
        );
        w.child.kill('SIGTERM');
        assert.is(await w.exit, 0, w.err());
        assert.match(w.out(), /info  cluster mail started/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

Cli('worker: a second signal releases running tasks at once; every lock is gone when it exits', async ({ orm, db }) => {
  const dir = host(db.url);
  try {
    await enqueueMany(
      orm.em.fork(),
      Array.from({ length: 3 }, () => ({ func: 'work.slow' as const, args: [60_000] })),
    );
    const w = ormq(dir, [
      'worker',
      '--tasks',
      'tasks.mjs',
      '--workers',
      '2',
      '--timeout',
      '120',
      '--retry',
      '200',
      '--stop-timeout',
      '60000',
    ]);
    await waitFor(
      async () =>
        (await sql<{ n: number }>(orm, "select coalesce(sum(busy), 0)::int as n from ormq_cluster where state = 'running'"))[0]!.n === 2,
      'two tasks running',
      30_000,
    );
    w.child.kill('SIGTERM');
    await waitFor(async () => /SIGTERM: stopping/.test(w.out()), 'the graceful stop begun');
    w.child.kill('SIGINT');
    assert.is(await w.exit, 0, w.err());
    assert.match(w.err(), /SIGINT again: releasing running tasks now/);
    assert.equal(await sql(orm, 'select id from ormq_queued where lock is not null'), []);
    assert.is((await sql(orm, 'select id from ormq_queued')).length, 3, 'nothing acked that did not finish');
    // The two that ran were cut short, not failed: their packages go back to the queue with the third.
    assert.match(w.out(), /stopped: 0 succeeded, 0 failed, 3 released/, w.out());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Cli('worker --log json: one JSON object per line, a failure naming func, id, name and message, never its args', async ({ orm, db }) => {
  const dir = host(db.url);
  try {
    const [id] = await enqueueMany(orm.em.fork(), [{ func: 'work.fail' as const, args: ['secret-arg-value'], name: 'nightly-import' }]);
    const w = ormq(dir, ['worker', '--tasks', 'tasks.mjs', '--log', 'json', '--max-attempts', '1']);
    await waitFor(async () => w.out().includes('"task failed'), 'the failure line', 30_000);
    w.child.kill('SIGTERM');
    assert.is(await w.exit, 0, w.err());
    const events = w
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const failed = events.find((e) => String(e.message).startsWith('task failed'))!;
    assert.equal(
      [failed.level, failed.func, failed.id, failed.name, failed.error, failed.errorMessage, failed.message],
      [
        'info',
        'work.fail',
        id,
        'nightly-import',
        'TypeError',
        'cannot import the file',
        `task failed: work.fail ${id} (nightly-import): TypeError: cannot import the file`,
      ],
    );
    assert.not.ok(w.out().includes('secret-arg-value'), 'args are not logged');
    assert.ok(events.every((e) => typeof e.at === 'string' && !Number.isNaN(Date.parse(String(e.at)))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Cli('worker: a missing task module, a bad flag or an unreachable database is one clear line and exit 2', async ({ db }) => {
  const dir = host(db.url);
  try {
    const none = ormq(dir, ['worker']);
    assert.is(await none.exit, 2);
    assert.match(none.err(), /^ormq: worker needs --tasks <module>/);
    const bad = ormq(dir, ['worker', '--tasks', 'tasks.mjs', '--workers', 'many']);
    assert.is(await bad.exit, 2);
    assert.match(bad.err(), /--workers must be a number, got "many"/);
    const both = ormq(dir, ['worker', '--tasks', 'tasks.mjs', '--key', 'mail', '--name', 'reports']);
    assert.is(await both.exit, 2);
    assert.match(both.err(), /--key and --name \(its former name\) differ \("mail" and "reports"\): give --key alone/);
    const flag = ormq(dir, ['worker', '--nope']);
    assert.is(await flag.exit, 2);
    assert.match(flag.err(), /Unknown option '--nope'/);
    writeFileSync(join(dir, 'db', 'orm.config.mjs'), "export default { clientUrl: 'postgres://postgres@127.0.0.1:1/none' };\n");
    const down = ormq(dir, ['info']);
    assert.is(await down.exit, 2);
    assert.match(down.err(), /could not open the database with .*orm\.config\.mjs/);
    assert.not.match(down.err(), /\n\s+at /, 'no stack');
    const elsewhere = ormq(tmpdir(), ['info']);
    assert.is(await elsewhere.exit, 2);
    assert.match(elsewhere.err(), /no MikroORM config found: pass --config <file>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Cli('info: clusters, what waits per key, the last hour and the schedules due; --json carries the same', async ({ orm, db }) => {
  const dir = host(db.url);
  try {
    await enqueueMany(orm.em.fork(), [
      { func: 'work.sleep' as const, args: [1], key: 'mail' },
      { func: 'work.sleep' as const, args: [1], key: 'mail' },
    ]);
    await schedule(orm.em.fork(), { name: 'due', func: 'work.sleep', scheduleType: 'D', nextRun: new Date(Date.now() - 60_000) });
    await insertRollup(orm, { at: new Date().toISOString(), func: 'work.sleep', success: true, count: 9 });
    await insertRollup(orm, { at: new Date().toISOString(), func: 'work.sleep', success: false, count: 1 });
    const text = ormq(dir, ['info']);
    assert.is(await text.exit, 0, text.err());
    assert.match(text.out(), /^Clusters: 0 running/);
    assert.match(text.out(), /\n {2}mail +2 +0 +\d+ s\s*\n/);
    assert.match(text.out(), /Last hour: 9 succeeded, 1 failed \(10\.0 % failed\)/);
    assert.match(text.out(), /Schedules: 1, 1 due now, 0 paused; next: due at /);
    const json = ormq(dir, ['info', '--json']);
    assert.is(await json.exit, 0, json.err());
    const info = JSON.parse(json.out());
    assert.equal(
      info.keys.map((k: { key: string; waiting: number }) => [k.key, k.waiting]),
      [['mail', 2]],
    );
    assert.equal(info.lastHour, { successes: 9, failures: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Cli('monitor: prints the queue again each interval until SIGINT, then exits 0', async ({ db }) => {
  const dir = host(db.url);
  try {
    const m = ormq(dir, ['monitor', '--interval', '0.2']);
    await waitFor(async () => (m.out().match(/^Clusters:/gm) ?? []).length >= 3, 'three refreshes', 20_000);
    m.child.kill('SIGINT');
    assert.is(await m.exit, 0, m.err());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Cli.run();
