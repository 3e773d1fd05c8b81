/**
 * The admin in a real browser: Debian's Chromium driven by playwright-core, against real host apps
 * (Express 5 at a nested path, Koa 3 under a prefix) on real PostgreSQL, with a running cluster.
 * Screenshots of every page go to test/screenshots/ (git-ignored) for a person to look at.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import Koa from 'koa';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, queueAdmin, schedule, type QueueAdminOptions } from '../src/index.js';
import { koa } from '../src/admin/adapters/koa.js';
import { close, insertManyTasks, insertTask, listen } from './helpers/admin.js';
import { freshOrm, sql, waitFor } from './helpers/db.js';

const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const AXE = readFileSync(fileURLToPath(new URL('../node_modules/axe-core/axe.min.js', import.meta.url)), 'utf8');
const TASKS = ['report.build', 'work.recover', 'email.send'];

let browserPromise: Promise<Browser> | undefined;
const browser = () =>
  (browserPromise ??= chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  }));

interface Host {
  orm: MikroORM;
  /** The admin's entry page, with its trailing slash. */
  admin: string;
  cluster: Cluster;
  stop(): Promise<void>;
}

/** A host app on an ephemeral port with the admin mounted, a database of its own and a running cluster. */
async function startHost(kind: 'express' | 'koa', options: QueueAdminOptions = {}, extra?: { path: string; options: QueueAdminOptions }): Promise<Host & { extraAdmin?: string }> {
  const db = await freshOrm();
  const orm = db.orm;
  const opts = { tasks: TASKS, title: 'Test queue', ...options };
  let server: Server;
  let path: string;
  if (kind === 'express') {
    path = '/ops/queue-admin';
    const app = express();
    app.get('/', (_req, res) => void res.send('host app'));
    app.use(path, queueAdmin(orm, opts));
    if (extra) app.use(extra.path, queueAdmin(orm, { tasks: TASKS, ...extra.options }));
    server = createServer(app);
  } else {
    path = '/queue-admin';
    const app = new Koa();
    app.use(koa(queueAdmin(orm, opts), { prefix: path }));
    app.use((ctx) => {
      ctx.body = 'host app';
    });
    server = createServer(app.callback());
  }
  const origin = await listen(server);
  const cluster = new Cluster(orm, {
    name: 'default',
    workers: 2,
    timeout: 5,
    retry: 10,
    poll: 200,
    saveLimit: 0,
    tasks: {
      'report.build': async () => ({ rows: 3 }),
      'work.recover': async () => 'recovered',
      'email.send': async () => 'sent',
    },
    log: () => {},
  });
  await cluster.start();
  return {
    orm,
    admin: `${origin}${path}/`,
    extraAdmin: extra ? `${origin}${extra.path}/` : undefined,
    cluster,
    async stop() {
      await cluster.stop();
      await close(server);
      await db.close();
    },
  };
}

interface Watched {
  page: Page;
  context: BrowserContext;
  /** Console errors, uncaught exceptions and CSP violations seen so far. */
  problems: string[];
}

async function openPage(options: { dark?: boolean } = {}): Promise<Watched> {
  const context = await (await browser()).newContext({ viewport: { width: 1280, height: 860 }, colorScheme: options.dark ? 'dark' : 'light' });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.addInitScript(() => {
    const w = window as unknown as { __violations: string[]; __progress: [number, number][] };
    w.__violations = [];
    w.__progress = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    // every value a progress bar shows, however quickly the action finishes
    new MutationObserver(() => {
      const p = document.querySelector('progress');
      if (p) w.__progress.push([p.value, p.max]);
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['value', 'max'] });
  });
  return { page, context, problems };
}

async function violations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
}

/** Loads a hash route and waits for its heading. */
async function visit(w: Watched, admin: string, hash: string, heading?: string | RegExp): Promise<void> {
  await w.page.goto(`${admin}${hash}`);
  await w.page.locator('main h1').first().waitFor();
  if (heading) await w.page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await w.page.locator('.loading').first().waitFor({ state: 'detached' });
}

async function axe(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe.run(document, {
      resultTypes: ['violations'],
    }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

async function seedPages(orm: MikroORM): Promise<{ failedId: string; successId: string; scheduleId: number; queuedId: number }> {
  const hourAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
  const successId = await insertTask(orm, { name: 'nightly-report', func: 'report.build', group: 'reports', cluster: 'default', args: [2024, 'eu'], kwargs: { format: 'pdf' }, result: { rows: 1200 }, stopped: hourAgo(2) });
  for (let h = 0; h < 24; h += 3) await insertTask(orm, { name: `hourly-${h}`, func: 'email.send', group: 'mail', stopped: hourAgo(h + 0.5) });
  const big = Array.from({ length: 400 }, (_, i) => ({ line: i, text: 'x'.repeat(20) }));
  const failedId = await insertTask(orm, {
    name: 'broken-import',
    func: 'work.recover',
    group: 'imports',
    success: false,
    args: big,
    result: { error: 'TypeError', message: "Cannot read properties of undefined (reading 'id')", stack: "TypeError: Cannot read properties of undefined (reading 'id')\n    at importRow (imports.ts:42:17)\n    at run (worker.ts:88:5)" },
    stopped: hourAgo(1),
    attemptCount: 3,
  });
  await insertTask(orm, { name: '<img src=x onerror=alert(1)>', func: 'work.recover', success: false, result: { error: 'Error', message: '<script>alert(1)</script>' }, stopped: hourAgo(5) });
  const s = await schedule(orm.em.fork(), { name: 'hourly-report', func: 'report.build', scheduleType: 'H', repeats: -1, nextRun: new Date(Date.now() + 3_600_000) });
  await sql(orm, 'update ormq_schedule set task = ? where id = ?', [successId, s.id]);
  const rows = await sql<{ id: string }>(
    orm,
    `insert into ormq_queued (key, payload, lock) values ('elsewhere', ?::jsonb, now() - interval '3 minutes') returning id`,
    [JSON.stringify({ id: 'f'.repeat(32), name: 'stuck-package', func: 'email.send', args: ['a@example.com'], kwargs: {}, group: 'mail', hook: null, timeout: null, save: null, enqueued: new Date().toISOString() })],
  );
  return { failedId, successId, scheduleId: s.id, queuedId: Number(rows[0]!.id) };
}

/** `expected`: statuses the test provoked on purpose, which Chromium logs as failed loads. */
const noProblems = async (w: Watched, where: string, expected: number[] = []) => {
  const v = await violations(w.page);
  const provoked = (p: string) => expected.some((status) => p.includes(`Failed to load resource: the server responded with a status of ${status} `));
  assert.equal([...w.problems.filter((p) => !provoked(p)), ...v.map((x) => `csp: ${x}`)], [], `no console error or CSP violation on ${where}`);
};

// ---------------------------------------------------------------------------------------------

for (const kind of ['express', 'koa'] as const) {
  const Pages = suite<{ host?: Host; ids?: Awaited<ReturnType<typeof seedPages>> }>(`browser (${kind}): every page loads, clean and accessible`, {});
  Pages.before(async (ctx) => {
    ctx.host = await startHost(kind, { saveLimit: 500 });
    ctx.ids = await seedPages(ctx.host.orm);
  });
  Pages.after(async (ctx) => {
    await ctx.host?.stop();
  });

  Pages('the mount path without its slash redirects to the entry page, which loads its hashed assets', async ({ host }) => {
    const w = await openPage();
    await w.page.goto(host!.admin.slice(0, -1));
    assert.is(w.page.url(), host!.admin);
    await w.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await noProblems(w, 'the entry page');
    await w.context.close();
  });

  Pages('each page and detail renders, with no console error, no CSP violation and no serious axe violation', async ({ host, ids }) => {
    for (const dark of [false, true]) {
      const w = await openPage({ dark });
      const pages: [string, string, string | RegExp][] = [
        ['overview', '#/', 'Overview'],
        ['successful', '#/successful', 'Successful tasks'],
        ['failed', '#/failed', 'Failed tasks'],
        ['scheduled', '#/scheduled', 'Scheduled tasks'],
        ['queued', '#/queued', 'Queued tasks'],
        ['successful-detail', `#/successful/${ids!.successId}`, 'nightly-report'],
        ['failed-detail', `#/failed/${ids!.failedId}`, 'broken-import'],
        ['scheduled-detail', `#/scheduled/${ids!.scheduleId}`, 'hourly-report'],
        ['scheduled-form', '#/scheduled/new', 'Add schedule'],
        ['scheduled-edit', `#/scheduled/${ids!.scheduleId}/edit`, /^Edit /],
        ['queued-detail', `#/queued/${ids!.queuedId}`, /stuck-package/],
      ];
      for (const [name, hash, heading] of pages) {
        await visit(w, host!.admin, hash, heading);
        if (name === 'overview') await w.page.locator('.chart a.success').first().waitFor();
        if (name === 'successful') await w.page.getByText('Only the newest 500 successes are kept').waitFor();
        if (!dark) {
          const found = await axe(w.page);
          assert.equal(found, [], `axe on ${name}`);
        }
        if (kind === 'express' || !dark) await shot(w.page, `${kind}-${name}${dark ? '-dark' : ''}`);
      }
      await noProblems(w, `every page (${dark ? 'dark' : 'light'})`);
      await w.context.close();
    }
  });

  Pages('the navigation names the four pages, "/" focuses Search, and database text is shown as text', async ({ host }) => {
    const w = await openPage();
    await visit(w, host!.admin, '#/failed', 'Failed tasks');
    for (const name of ['Successful tasks', 'Failed tasks', 'Scheduled tasks', 'Queued tasks']) {
      await w.page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true }).waitFor();
    }
    await w.page.getByRole('link', { name: '<img src=x onerror=alert(1)>' }).waitFor();
    assert.is(await w.page.locator('main img, main script').count(), 0, 'markup from the database is not interpreted');
    await w.page.locator('body').press('/');
    assert.is(await w.page.evaluate(() => document.activeElement?.id), 'search');
    await w.page.getByLabel('Search', { exact: true }).fill('broken');
    await w.page.waitForURL(/search=broken/);
    await waitFor(async () => (await w.page.locator('tbody tr').count()) === 1, 'the search to narrow the list to one row');
    await w.page.getByRole('link', { name: 'broken-import' }).waitFor();
    // the view is in the URL: a reload shows the same search
    await w.page.reload();
    await w.page.getByRole('link', { name: 'broken-import' }).waitFor();
    assert.is(await w.page.getByLabel('Search', { exact: true }).inputValue(), 'broken');
    await noProblems(w, 'the failed list');
    await w.context.close();
  });

  Pages('a failed task is resubmitted from its detail and the running cluster turns it into a success', async ({ host, ids }) => {
    const w = await openPage();
    await visit(w, host!.admin, `#/failed/${ids!.failedId}`, 'broken-import');
    await w.page.getByRole('heading', { name: 'Error' }).waitFor();
    await w.page.getByRole('region', { name: 'Stack trace' }).getByText('at importRow (imports.ts:42:17)').waitFor();
    // args over 8 KB arrive as a preview; "Load all" fetches the whole value
    const args = w.page.getByRole('region', { name: 'Args as JSON', exact: true });
    assert.not.match(await args.innerText(), /"line": 399/);
    await w.page.getByRole('button', { name: /^Load all/ }).click();
    await args.getByText('"line": 399').waitFor();
    await w.page.getByRole('button', { name: 'Resubmit' }).click();
    await w.page.waitForURL(/#\/failed$/);
    await w.page.getByText('Resubmitted 1 failed task.').waitFor();
    assert.is(await w.page.getByRole('link', { name: 'broken-import' }).count(), 0, 'it left Failed tasks');
    const done = await waitFor(
      async () => (await sql(host!.orm, `select id from ormq_task where success and "group" = 'imports' and func = 'work.recover'`))[0],
      'the resubmitted task to succeed',
    );
    await visit(w, host!.admin, '#/successful?group=imports', 'Successful tasks');
    await w.page.locator(`main a[href="#/successful/${String(done.id).trim()}"]`).waitFor();
    await noProblems(w, 'resubmit from the detail');
    await w.context.close();
  });

  Pages.run();
}

// ---------------------------------------------------------------------------------------------

const Actions = suite<{ host?: Host & { extraAdmin?: string } }>('browser (express): actions', {});
Actions.before(async (ctx) => {
  ctx.host = await startHost('express', {}, { path: '/ops/queue-admin-readonly', options: { readOnly: true } });
});
Actions.after(async (ctx) => {
  await ctx.host?.stop();
});

Actions('failed tasks are resubmitted from the list, leave Failed and succeed on the cluster', async ({ host }) => {
  const orm = host!.orm;
  const a = await insertTask(orm, { name: 'retry-me-a', func: 'work.recover', group: 'retry-a', success: false, result: { error: 'Error', message: 'boom' } });
  await insertTask(orm, { name: 'retry-me-b', func: 'work.recover', group: 'retry-b', success: false, result: { error: 'Error', message: 'boom' } });
  const w = await openPage();
  await visit(w, host!.admin, '#/failed?search=retry-me', 'Failed tasks');
  await w.page.getByRole('checkbox', { name: 'Select retry-me-a' }).check();
  await w.page.getByRole('button', { name: 'Resubmit' }).click();
  const dialog = w.page.getByRole('dialog');
  await dialog.getByText('Resubmit 1 failed task?').waitFor();
  await dialog.getByRole('button', { name: 'Resubmit' }).click();
  await w.page.getByText('Resubmitted 1 failed task.').waitFor();
  await w.page.getByRole('link', { name: 'retry-me-a' }).waitFor({ state: 'detached' });
  await w.page.getByRole('link', { name: 'retry-me-b' }).waitFor();
  assert.equal(await sql(orm, 'select id from ormq_task where id = ?', [a]), [], 'the failure row is gone');
  await waitFor(async () => (await sql(orm, `select 1 from ormq_task where success and "group" = 'retry-a'`)).length === 1, 'the cluster to run it');
  await noProblems(w, 'resubmit from the list');
  await w.context.close();
});

Actions('a schedule is created (Hourly, repeats 24), edited, paused, resumed, run now and deleted', async ({ host }) => {
  const orm = host!.orm;
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/scheduled', 'Scheduled tasks');
  await p.getByRole('link', { name: 'Add schedule' }).click();
  await p.getByRole('heading', { level: 1, name: 'Add schedule' }).waitFor();

  // errors are shown at their fields
  await p.getByLabel('Name', { exact: true }).fill('hourly-export');
  await p.getByLabel('Args', { exact: true }).fill('{"not": "an array"}');
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByText('Args must be an array').waitFor();
  assert.is(await p.getByLabel('Args', { exact: true }).getAttribute('aria-invalid'), 'true');
  await p.getByLabel('Args', { exact: true }).fill('[1, "two"]');
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByText('Func is required').waitFor();
  await p.getByText('Next run is required').waitFor();

  // a cron timing previews its next five runs; Minutes and Cron only show for their types
  assert.is(await p.getByLabel('Cron', { exact: true }).count(), 0);
  await p.getByLabel('Schedule type', { exact: true }).selectOption({ label: 'Cron' });
  await p.getByLabel('Cron', { exact: true }).fill('0 9 * * 1-5');
  await p.getByText('Next five runs:').waitFor();
  assert.is(await p.locator('.preview li').count(), 5);
  await p.getByLabel('Schedule type', { exact: true }).selectOption({ label: 'Hourly' });
  assert.is(await p.getByLabel('Cron', { exact: true }).count(), 0);

  await p.getByLabel('Func', { exact: true }).selectOption('report.build');
  await p.getByLabel('Repeats', { exact: true }).fill('24');
  const next = new Date(Date.now() + 2 * 3_600_000);
  const local = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}T${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  await p.getByLabel('Next run', { exact: true }).fill(local(next));
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByRole('heading', { level: 1, name: 'hourly-export' }).waitFor();
  const [row] = await sql<{ id: number; schedule_type: string; repeats: number; args: unknown }>(orm, `select id, schedule_type, repeats, args from ormq_schedule where name = 'hourly-export'`);
  assert.ok(row, 'created');
  assert.is(row!.schedule_type, 'H');
  assert.is(row!.repeats, 24);
  assert.equal(row!.args, [1, 'two']);
  await p.getByText('in 2 h').first().waitFor();

  // edit
  await p.getByRole('link', { name: 'Edit' }).click();
  await p.getByRole('heading', { level: 1, name: 'Edit hourly-export' }).waitFor();
  assert.is(await p.getByLabel('Repeats', { exact: true }).inputValue(), '24');
  await p.getByLabel('Repeats', { exact: true }).fill('12');
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByRole('heading', { level: 1, name: 'hourly-export' }).waitFor();
  await p.getByText('12 (12 more runs)').waitFor();
  assert.is((await sql<{ repeats: number }>(orm, 'select repeats from ormq_schedule where id = ?', [row!.id]))[0]!.repeats, 12);

  // a stale save shows the conflict and offers to reload
  await p.getByRole('link', { name: 'Edit' }).click();
  await p.getByLabel('Repeats', { exact: true }).fill('6');
  await sql(orm, `update ormq_schedule set cluster = 'night', version = version + 1 where id = ?`, [row!.id]);
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByText('This schedule was changed by someone else').waitFor();
  await p.getByRole('button', { name: 'Reload' }).click();
  assert.is(await p.getByLabel('Cluster', { exact: true }).inputValue(), 'night');
  await p.getByLabel('Cluster', { exact: true }).fill('');
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByRole('heading', { level: 1, name: 'hourly-export' }).waitFor();

  // pause, resume, run now
  await p.getByRole('button', { name: 'Pause' }).click();
  await p.getByRole('button', { name: 'Resume' }).waitFor();
  assert.is((await sql<{ repeats: number }>(orm, 'select repeats from ormq_schedule where id = ?', [row!.id]))[0]!.repeats, 0);
  await p.getByRole('button', { name: 'Resume' }).click();
  await p.getByRole('button', { name: 'Pause' }).waitFor();
  assert.is((await sql<{ repeats: number }>(orm, 'select repeats from ormq_schedule where id = ?', [row!.id]))[0]!.repeats, -1);
  await p.getByRole('button', { name: 'Run now' }).click();
  const ran = await waitFor(async () => (await sql<{ task: string | null }>(orm, 'select task from ormq_schedule where id = ?', [row!.id]))[0]!.task, 'run now to store its task');
  await waitFor(async () => (await sql(orm, 'select 1 from ormq_task where id = ? and success', [ran])).length === 1, 'the cluster to run it');
  // the last run links to that task's detail, with its outcome as an icon that has a text alternative
  await p.reload();
  const link = p.locator(`a[href="#/successful/${String(ran).trim()}"]`);
  await link.waitFor();
  await p.getByRole('img', { name: 'Succeeded' }).first().waitFor();
  await link.click();
  await p.getByRole('heading', { level: 1 }).waitFor();
  assert.match(p.url(), /#\/successful\/[0-9a-f]{32}$/);

  // delete, from the list with a confirmation
  await visit(w, host!.admin, '#/scheduled?search=hourly-export', 'Scheduled tasks');
  await p.getByRole('checkbox', { name: 'Select hourly-export' }).check();
  await p.getByRole('button', { name: 'Delete' }).click();
  await p.getByRole('dialog').getByText('Delete 1 schedule?').waitFor();
  await p.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await p.getByText('Deleted 1 schedule.').waitFor();
  assert.equal(await sql(orm, 'select id from ormq_schedule where id = ?', [row!.id]), []);
  await noProblems(w, 'the schedule lifecycle', [400, 409]);
  await w.context.close();
});

Actions('deleting all rows matching a search over 5,000 rows shows progress and completes', async ({ host }) => {
  const orm = host!.orm;
  await insertManyTasks(orm, 5000, { success: false, prefix: 'bulkdel-', func: 'work.recover' });
  await insertManyTasks(orm, 20, { success: false, prefix: 'keepme-', func: 'work.recover' });
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/failed?search=bulkdel', 'Failed tasks');
  await p.getByText('5,000 rows match').waitFor();

  // keyset paging: Next follows the cursor, Newer goes back; both live in the URL
  const firstRow = () => p.locator('tbody tr').first().locator('a').innerText();
  const top = await firstRow();
  await p.getByRole('button', { name: 'Next' }).click();
  await p.waitForURL(/cursor=/);
  await waitFor(async () => (await firstRow()) !== top, 'the next page');
  await p.reload();
  await waitFor(async () => (await firstRow()) !== top, 'the next page after a reload');
  await p.getByRole('button', { name: 'Newer' }).click();
  await waitFor(async () => (await firstRow()) === top, 'the first page again');
  assert.not.match(p.url(), /cursor=[^&]/);

  await p.getByRole('checkbox', { name: 'Select all rows on this page' }).check();
  await p.getByRole('button', { name: 'Select all 5,000 matching' }).click();
  await p.getByText('All 5,000 matching rows selected').waitFor();
  await p.getByRole('button', { name: 'Delete' }).click();
  await p.getByRole('dialog').getByText('Delete 5,000 failed tasks?').waitFor();
  await shot(p, 'express-failed-confirm');
  await p.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await p.getByText('Deleted 5,000 failed tasks.').waitFor({ timeout: 60_000 });
  const seen = await p.evaluate(() => (window as unknown as { __progress: [number, number][] }).__progress);
  assert.ok(seen.some(([v, max]) => v > 0 && v < max), `the bar showed partial progress (saw ${JSON.stringify(seen.slice(0, 12))})`);
  assert.is(Number((await sql(orm, `select count(*) as n from ormq_task where name like 'bulkdel-%'`))[0]!.n), 0);
  assert.is(Number((await sql(orm, `select count(*) as n from ormq_task where name like 'keepme-%'`))[0]!.n), 20, 'rows outside the search are kept');
  await p.getByText('No failed tasks match.').waitFor();
  await shot(p, 'express-failed-empty');
  await noProblems(w, 'the bulk delete');
  await w.context.close();
});

Actions('with Live on, a list shows new rows without a reload', async ({ host }) => {
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/failed', 'Failed tasks');
  await p.getByRole('checkbox', { name: 'Live', exact: true }).check();
  await insertTask(host!.orm, { name: 'appeared-live', func: 'work.recover', success: false, result: { error: 'Error', message: 'late' } });
  await p.getByRole('link', { name: 'appeared-live' }).waitFor({ timeout: 15_000 });
  // the setting survives a reload
  await p.reload();
  assert.ok(await p.getByRole('checkbox', { name: 'Live', exact: true }).isChecked());
  await p.getByRole('checkbox', { name: 'Live', exact: true }).uncheck();
  await noProblems(w, 'live refresh');
  await w.context.close();
});

Actions('a queued package is released from the list', async ({ host }) => {
  const orm = host!.orm;
  const [q] = await sql<{ id: string }>(
    orm,
    `insert into ormq_queued (key, payload, lock) values ('other-cluster', ?::jsonb, now() - interval '2 minutes') returning id`,
    [JSON.stringify({ id: 'a'.repeat(32), name: 'locked-package', func: 'email.send', args: [], kwargs: {}, group: null, hook: null, timeout: null, save: null, enqueued: new Date().toISOString() })],
  );
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/queued', 'Queued tasks');
  await p.getByText('2 min ago').waitFor();
  await p.getByRole('checkbox', { name: `Select locked-package (${q!.id})` }).check();
  await p.getByRole('button', { name: 'Release' }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Release' }).click();
  await p.getByText('Released 1 queued task.').waitFor();
  await p.getByRole('cell', { name: 'waiting' }).waitFor();
  assert.is((await sql(orm, 'select lock from ormq_queued where id = ?', [q!.id]))[0]!.lock, null);
  await noProblems(w, 'release');
  await w.context.close();
});

Actions('readOnly hides every action, checkbox and form', async ({ host }) => {
  const orm = host!.orm;
  const failedId = await insertTask(orm, { name: 'readonly-failure', func: 'work.recover', success: false, result: { error: 'Error', message: 'x' } });
  const s = await schedule(orm.em.fork(), { name: 'readonly-schedule', func: 'report.build', scheduleType: 'D', nextRun: new Date(Date.now() + 86_400_000) });
  const w = await openPage();
  const p = w.page;
  const buttons = ['Resubmit', 'Delete', 'Pause', 'Resume', 'Run now', 'Release', 'Save'];
  for (const hash of ['#/failed', `#/failed/${failedId}`, '#/scheduled', `#/scheduled/${s.id}`, '#/queued', '#/successful']) {
    await visit(w, host!.extraAdmin!, hash);
    await p.locator('main table, main dl, main .empty').first().waitFor();
    for (const name of buttons) assert.is(await p.getByRole('button', { name, exact: true }).count(), 0, `no ${name} on ${hash}`);
    assert.is(await p.locator('main').getByRole('checkbox').count(), 0, `no row checkboxes on ${hash}`);
    assert.is(await p.getByRole('link', { name: /^(Add schedule|Edit)$/ }).count(), 0, `no form links on ${hash}`);
  }
  await p.getByText('read-only').waitFor();
  await shot(p, 'express-readonly-scheduled-detail');
  await noProblems(w, 'the read-only admin');
  await w.context.close();
});

Actions.after(async () => {
  if (browserPromise) await (await browserPromise).close();
});

Actions.run();
