/**
 * The admin in a real browser: Debian's Chromium driven by playwright-core, against real host apps
 * (Express 5 at a nested path, Koa 3 under a prefix) on real PostgreSQL, with a running cluster.
 * Screenshots of every page go to test/screenshots/ (git-ignored) for a person to look at.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, enqueue, schedule } from '../src/index.js';
import { insertManyTasks, insertRollup, insertTask, TEST_TOKEN } from './helpers/admin.js';
import { sql, waitFor } from './helpers/db.js';
import { hostSuite, openPage as openWatched, startHost, visit, type Host, type Watched } from './helpers/browser.js';

const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const AXE = readFileSync(fileURLToPath(new URL('../node_modules/axe-core/axe.min.js', import.meta.url)), 'utf8');

let browserPromise: Promise<Browser> | undefined;
const browser = () =>
  (browserPromise ??= chromium.launch({
    executablePath: '/usr/bin/chromium',
    // rebind.test resolves to 127.0.0.1: a page on another site's name reaching a local admin (DNS rebinding).
    args: [
      '--host-resolver-rules=MAP rebind.test 127.0.0.1',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  }));

/** A page at 1280×860 that also records CSP violations and every value a progress bar shows. */
async function openPage(options: { dark?: boolean; timezoneId?: string } = {}): Promise<Watched> {
  const watched = await openWatched({ ...options, viewport: { width: 1280, height: 860 }, launch: browser });
  const page = watched.page;
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
  return watched;
}

async function violations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
}

async function axe(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    (
      window as unknown as {
        axe: {
          run(
            ctx: Document,
            o: object,
          ): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }>;
        };
      }
    ).axe.run(document, {
      resultTypes: ['violations'],
    }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.impact} ${v.id}: ${v.help} at ${v.nodes
          .map((n) => n.target.join(' '))
          .slice(0, 3)
          .join(', ')}`,
    );
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

async function seedPages(orm: MikroORM): Promise<{ failedId: string; successId: string; scheduleId: number; queuedId: number }> {
  const hourAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
  const successId = await insertTask(orm, {
    name: 'nightly-report',
    func: 'report.build',
    group: 'reports',
    cluster: 'default',
    args: [2024, 'eu'],
    kwargs: { format: 'pdf' },
    result: { rows: 1200 },
    stopped: hourAgo(2),
  });
  for (let h = 0; h < 24; h += 3)
    await insertTask(orm, { name: `hourly-${h}`, func: 'email.send', group: 'mail', stopped: hourAgo(h + 0.5) });
  // what the cluster would have counted for them, and for successes saveLimit did not keep
  for (let h = 0; h < 24; h += 3) await insertRollup(orm, { at: hourAgo(h + 0.5), func: 'email.send', count: 1 + h * 2 });
  await insertRollup(orm, { at: hourAgo(1), func: 'work.recover', success: false, count: 2 });
  const big = Array.from({ length: 400 }, (_, i) => ({ line: i, text: 'x'.repeat(20) }));
  const failedId = await insertTask(orm, {
    name: 'broken-import',
    func: 'work.recover',
    group: 'imports',
    success: false,
    args: big,
    result: {
      error: 'TypeError',
      message: "Cannot read properties of undefined (reading 'id')",
      stack:
        "TypeError: Cannot read properties of undefined (reading 'id')\n    at importRow (imports.ts:42:17)\n    at run (worker.ts:88:5)",
    },
    stopped: hourAgo(1),
    attemptCount: 3,
  });
  await insertTask(orm, {
    name: '<img src=x onerror=alert(1)>',
    func: 'work.recover',
    success: false,
    result: { error: 'Error', message: '<script>alert(1)</script>' },
    stopped: hourAgo(5),
  });
  const s = await schedule(orm.em.fork(), {
    name: 'hourly-report',
    func: 'report.build',
    scheduleType: 'H',
    repeats: -1,
    nextRun: new Date(Date.now() + 3_600_000),
  });
  await sql(orm, 'update ormq_schedule set task = ? where id = ?', [successId, s.id]);
  const rows = await sql<{ id: string }>(
    orm,
    `insert into ormq_queued (key, payload, lock) values ('elsewhere', ?::jsonb, now() - interval '3 minutes') returning id`,
    [
      JSON.stringify({
        id: 'f'.repeat(32),
        name: 'stuck-package',
        func: 'email.send',
        args: ['a@example.com'],
        kwargs: {},
        group: 'mail',
        hook: null,
        timeout: null,
        save: null,
        enqueued: new Date().toISOString(),
      }),
    ],
  );
  return { failedId, successId, scheduleId: s.id, queuedId: Number(rows[0]!.id) };
}

/** `expected`: statuses the test provoked on purpose, which Chromium logs as failed loads. */
const noProblems = async (w: Watched, where: string, expected: number[] = []) => {
  const v = await violations(w.page);
  const provoked = (p: string) =>
    expected.some((status) => p.includes(`Failed to load resource: the server responded with a status of ${status} `));
  assert.equal(
    [...w.problems.filter((p) => !provoked(p)), ...v.map((x) => `csp: ${x}`)],
    [],
    `no console error or CSP violation on ${where}`,
  );
};

// ---------------------------------------------------------------------------------------------

for (const kind of ['express', 'koa'] as const) {
  const Pages = hostSuite<{ host?: Host; ids?: Awaited<ReturnType<typeof seedPages>> }>(
    `browser (${kind}): every page loads, clean and accessible`,
    () => startHost({ saveLimit: 500 }, kind),
    { setup: async (ctx) => void (ctx.ids = await seedPages(ctx.host.orm)) },
  );

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
        ['clusters', '#/clusters', 'Clusters'],
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
    await w.page.getByText('Resubmitted broken-import.').waitFor();
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

const Busy = hostSuite<{ host?: Host; slow?: Cluster }>('browser (express): the Clusters page', () => startHost(), {
  async setup(ctx) {
    ctx.slow = new Cluster(ctx.host.orm, {
      name: 'imports',
      workers: 2,
      heartbeat: 0.2,
      poll: 100,
      tasks: {
        'imports.run': function (this: { signal: AbortSignal }) {
          return new Promise((_, reject) => this.signal.addEventListener('abort', () => reject(this.signal.reason)));
        } as never,
      },
      log: () => {},
    });
    await ctx.slow.start();
  },
  teardown: (ctx) => ctx.slow?.stop(),
});

Busy(
  'a running task is listed with its cluster and linked to its package; a key is paused and resumed; the task is stopped',
  async ({ host }) => {
    const orm = host!.orm;
    await enqueue(orm.em.fork(), 'imports.run', [], { cluster: 'imports', name: 'import-customers' });
    const [q] = await sql<{ id: string }>(orm, "select id from ormq_queued where key = 'imports'");
    // a key nobody serves, to be flagged
    await enqueue(orm.em.fork(), 'email.send', [], { cluster: 'nobody-serves-this', name: 'orphaned-mail' });
    for (const [width, height, dark] of [
      [1280, 860, false],
      [390, 844, false],
      [1280, 860, true],
    ] as const) {
      const w = await openPage({ dark });
      await w.page.setViewportSize({ width, height });
      await visit(w, host!.admin, '#/clusters', 'Clusters');
      const link = w.page.getByRole('link', { name: 'import-customers' });
      await link.waitFor();
      assert.is(await link.getAttribute('href'), `#/queued/${q!.id}`);
      await w.page.getByRole('heading', { level: 3, name: 'imports' }).waitFor();
      await w.page.getByText('no live cluster', { exact: true }).waitFor();
      await shot(w.page, `express-clusters-${width}${dark ? '-dark' : ''}`);
      const overflow = await w.page.evaluate(() => {
        const wide = [...document.querySelectorAll('main *')].find(
          (e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !e.closest('.table-wrap'),
        );
        return wide ? `${wide.tagName}.${wide.className}: ${wide.textContent?.slice(0, 60)}` : null;
      });
      assert.is(overflow, null, `nothing but a table scrolls sideways at ${width} px`);
      if (!dark && width === 1280) assert.equal(await axe(w.page), [], 'axe on the Clusters page');
      await noProblems(w, `clusters at ${width}`);
      await w.context.close();
    }

    const w = await openPage();
    const p = w.page;
    await visit(w, host!.admin, '#/clusters', 'Clusters');
    const pauseMenu = p.locator('details.pause-menu', { hasText: 'imports' }).locator('summary');
    await pauseMenu.click();
    await p.getByRole('group', { name: 'Pause imports' }).getByRole('button', { name: 'until resumed' }).click();
    await p.getByText('Paused imports').waitFor();
    await p.getByRole('button', { name: 'Resume imports' }).waitFor();
    assert.equal(await sql(orm, 'select key from ormq_paused_key'), [{ key: 'imports' }]);
    await shot(p, 'express-clusters-paused');
    await p.getByRole('button', { name: 'Resume imports' }).click();
    await pauseMenu.waitFor();
    assert.equal(await sql(orm, 'select key from ormq_paused_key'), []);

    await p.getByRole('button', { name: 'Stop import-customers' }).click();
    await p.getByRole('dialog').getByRole('button', { name: 'Stop task' }).click();
    await p.getByText('Asked imports to stop import-customers.').waitFor();
    const [failed] = await waitFor(async () => {
      const rows = await sql<{ result: { error: string } }>(
        orm,
        "select result from ormq_task where name = 'import-customers' and not success",
      );
      return rows.length && rows;
    }, 'the stopped task saved as failed');
    assert.is(failed!.result.error, 'CancelledError');

    // a package held by a process that stopped beating is marked stuck, and the filter finds it
    await sql(
      orm,
      `insert into ormq_cluster (id, name, host, pid, started, heartbeat, beat_ms, state, workers, busy, version)
     values (?, 'imports', 'gone-host', 1, now() - interval '1 hour', now() - interval '1 minute', 1000, 'running', 2, 1, '0.1.0')`,
      ['d'.repeat(32)],
    );
    await enqueue(orm.em.fork(), 'imports.run', [], { cluster: 'elsewhere', name: 'held-by-the-dead' });
    await sql(orm, "update ormq_queued set lock = now(), locked_by = ? where key = 'elsewhere'", ['d'.repeat(32)]);
    await visit(w, host!.admin, '#/queued?stuck=yes', 'Queued tasks');
    await p.getByRole('cell', { name: 'held-by-the-dead', exact: true }).waitFor();
    await p.getByText('stuck', { exact: true }).waitFor();
    assert.is(await p.locator('tbody tr').count(), 1);
    await shot(p, 'express-queued-stuck');
    await visit(w, host!.admin, '#/clusters', 'Clusters');
    await p.getByText('not responding', { exact: true }).waitFor();
    await shot(p, 'express-clusters-not-responding');
    await noProblems(w, 'clusters actions');
    await w.context.close();
  },
);

Busy.run();

// ---------------------------------------------------------------------------------------------

const Metrics = hostSuite('browser (express): the Metrics page', () => startHost({ saveLimit: 250 }));

Metrics('loads on demand, shows per func figures and a chart, and a bar or a count opens the tasks behind it', async ({ host }) => {
  const orm = host!.orm;
  const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
  await sql(orm, 'delete from ormq_metric');
  for (let m = 2; m < 60; m += 4)
    await insertRollup(orm, { at: minutesAgo(m), func: 'email.send', count: 40 + m, runtime: 35 + m, wait: 4 });
  await insertRollup(orm, { at: minutesAgo(5), func: 'report.build', count: 6, runtime: 2400, wait: 900 });
  await insertRollup(orm, { at: minutesAgo(20), func: 'work.recover', count: 3, success: false, runtime: 12 });
  // the saved failure behind that bar, one in an earlier bar, and one of another func
  const stopped = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 20 * 60_000 + 1500).toISOString();
  await insertTask(orm, {
    name: 'broken-sync',
    func: 'work.recover',
    success: false,
    result: { error: 'Error', message: 'boom' },
    stopped,
  });
  await insertTask(orm, {
    name: 'older-failure',
    func: 'work.recover',
    success: false,
    result: { error: 'Error', message: 'old' },
    stopped: minutesAgo(40),
  });
  await insertTask(orm, {
    name: 'other-func-failure',
    func: 'email.send',
    success: false,
    result: { error: 'Error', message: 'x' },
    stopped,
  });

  for (const [dark, width, height] of [
    [false, 1280, 860],
    [true, 1280, 860],
    [false, 390, 844],
  ] as const) {
    const w = await openPage({ dark });
    await w.page.setViewportSize({ width, height });
    const scripts: string[] = [];
    w.page.on('request', (r) => r.resourceType() === 'script' && scripts.push(r.url()));
    await visit(w, host!.admin, '#/', 'Overview');
    const before = scripts.length;
    await w.page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Metrics' }).click();
    await w.page.getByRole('heading', { level: 1, name: 'Metrics' }).waitFor();
    await w.page.getByRole('link', { name: '1 hour' }).click();
    await w.page.waitForURL(/range=1h/);
    await w.page.getByRole('rowheader', { name: 'report.build' }).waitFor();
    assert.ok(scripts.length > before, 'the code of the page was fetched when it was first shown');
    // on a phone each figure is labelled, as its column header is out of sight
    await w.page.getByRole('row', { name: /^email\.send (Runs: )?1,050 / }).waitFor();
    await waitFor(async () => (await w.page.locator('.chart .bar').count()) === 60, 'a bar per minute of the last hour');
    if (!dark && width === 1280) assert.equal(await axe(w.page), [], 'axe on metrics');
    if (width === 390) {
      // On a phone the func column is narrow: a name wraps after one of its dots, never inside a word.
      const inWord = await w.page.evaluate(() =>
        [...document.querySelectorAll('.metrics tbody th')].flatMap((th) => {
          const chars: { c: string; top: number }[] = [];
          const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            for (let i = 0; i < n.textContent!.length; i++) {
              const r = document.createRange();
              r.setStart(n, i);
              r.setEnd(n, i + 1);
              chars.push({ c: n.textContent![i]!, top: r.getBoundingClientRect().top });
            }
          }
          return chars.flatMap((x, i) =>
            i && x.top > chars[i - 1]!.top + 1 && chars[i - 1]!.c !== '.' ? [`${th.textContent} wraps before "${x.c}"`] : [],
          );
        }),
      );
      assert.equal(inWord, []);
    }
    await shot(w.page, `express-metrics-${width}${dark ? '-dark' : ''}`);
    await noProblems(w, 'the metrics page');
    await w.context.close();
  }

  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/metrics?range=1h', 'Metrics');
  // the failure count of a func opens Failed tasks for that func over the range
  await p
    .getByRole('row', { name: /^work\.recover/ })
    .getByRole('link', { name: '3' })
    .click();
  await p.getByRole('heading', { level: 1, name: 'Failed tasks' }).waitFor();
  assert.match(p.url(), /func=work\.recover/);
  await p.getByRole('link', { name: 'broken-sync' }).waitFor();
  await p.getByRole('link', { name: 'older-failure' }).waitFor();
  assert.is(await p.getByRole('link', { name: 'other-func-failure' }).count(), 0);
  await p.getByText('Stopped from').waitFor();
  await shot(p, 'express-metrics-drilldown-failed');
  // a bar's failures open Failed tasks for that bar's minute only
  await p.goBack();
  await p.getByRole('heading', { level: 1, name: 'Metrics' }).waitFor();
  await p.locator('.chart a[aria-label$="3 failures"]').click();
  await p.getByRole('heading', { level: 1, name: 'Failed tasks' }).waitFor();
  await p.getByRole('link', { name: 'broken-sync' }).waitFor();
  await p.getByRole('link', { name: 'other-func-failure' }).waitFor();
  assert.is(await p.getByRole('link', { name: 'older-failure' }).count(), 0, 'a failure of another minute is not listed');
  // removing the span shows every failure again
  await p.getByRole('link', { name: 'Remove stopped from' }).click();
  await p.getByRole('link', { name: 'Remove stopped before' }).click();
  await p.getByRole('link', { name: 'older-failure' }).waitFor();
  // a func filter narrows the chart and the table
  await visit(w, host!.admin, '#/metrics?range=1h', 'Metrics');
  await p.getByLabel('Func', { exact: true }).selectOption('report.build');
  await p.waitForURL(/func=report\.build/);
  await waitFor(async () => (await p.locator('tbody tr').count()) === 1, 'one func in the table');
  await visit(w, host!.admin, '#/metrics?range=7d', 'Metrics');
  await waitFor(async () => (await p.locator('.chart .bar').count()) === 28, 'a bar per 6 hours of the last 7 days');
  await shot(p, 'express-metrics-7d');
  await noProblems(w, 'the metrics drill-down');
  await w.context.close();
});

Metrics.run();

// ---------------------------------------------------------------------------------------------

const Actions = hostSuite('browser (express): actions', () =>
  startHost({}, 'express', { path: '/ops/queue-admin-readonly', options: { readOnly: true } }),
);

Actions('failed tasks are resubmitted from the list, leave Failed and succeed on the cluster', async ({ host }) => {
  const orm = host!.orm;
  const a = await insertTask(orm, {
    name: 'retry-me-a',
    func: 'work.recover',
    group: 'retry-a',
    success: false,
    result: { error: 'Error', message: 'boom' },
  });
  await insertTask(orm, {
    name: 'retry-me-b',
    func: 'work.recover',
    group: 'retry-b',
    success: false,
    result: { error: 'Error', message: 'boom' },
  });
  const w = await openPage();
  await visit(w, host!.admin, '#/failed?search=retry-me', 'Failed tasks');
  await w.page.getByRole('checkbox', { name: 'Select retry-me-a' }).check();
  await w.page.getByRole('button', { name: 'Resubmit' }).click();
  const dialog = w.page.getByRole('dialog');
  await dialog.getByText('Resubmit 1 failed task?').waitFor();
  await dialog.getByRole('button', { name: 'Resubmit' }).click();
  // one row: the notice names it
  await w.page.getByText('Resubmitted retry-me-a.').waitFor();
  await w.page.getByRole('link', { name: 'retry-me-a' }).waitFor({ state: 'detached' });
  await w.page.getByRole('link', { name: 'retry-me-b' }).waitFor();
  assert.equal(await sql(orm, 'select id from ormq_task where id = ?', [a]), [], 'the failure row is gone');
  await waitFor(
    async () => (await sql(orm, `select 1 from ormq_task where success and "group" = 'retry-a'`)).length === 1,
    'the cluster to run it',
  );
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

  // a cron timing previews its next five runs; Minutes and Cron only show for their types
  assert.is(await p.getByLabel('Cron', { exact: true }).count(), 0);
  await p.getByLabel('Schedule type', { exact: true }).selectOption({ label: 'Cron' });
  await p.getByLabel('Cron', { exact: true }).fill('0 9 * * 1-5');
  await p.getByText('First five runs:').waitFor();
  await p.locator('.preview li').nth(4).waitFor();
  assert.is(await p.getByLabel('Next run', { exact: true }).inputValue(), '', 'a new cron runs at its first match');
  await p.getByLabel('Schedule type', { exact: true }).selectOption({ label: 'Hourly' });
  assert.is(await p.getByLabel('Cron', { exact: true }).count(), 0);

  await p.getByLabel('Func', { exact: true }).selectOption('report.build');
  await p.getByLabel('Repeats', { exact: true }).fill('24');
  const next = new Date(Date.now() + 2 * 3_600_000);
  const local = (d: Date) =>
    `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}T${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  await p.getByLabel('Next run', { exact: true }).fill(local(next));
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByRole('heading', { level: 1, name: 'hourly-export' }).waitFor();
  const [row] = await sql<{ id: number; schedule_type: string; repeats: number; args: unknown }>(
    orm,
    `select id, schedule_type, repeats, args from ormq_schedule where name = 'hourly-export'`,
  );
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

  // a stale save shows the conflict and offers to discard the edits for the current version
  await p.getByRole('link', { name: 'Edit' }).click();
  await p.getByLabel('Repeats', { exact: true }).fill('6');
  await sql(orm, `update ormq_schedule set cluster = 'night', version = version + 1 where id = ?`, [row!.id]);
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByText('Someone else changed this schedule after you opened it').waitFor();
  await p.getByRole('button', { name: 'Discard my changes' }).click();
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
  assert.is(
    (await sql<{ repeats: number }>(orm, 'select repeats from ormq_schedule where id = ?', [row!.id]))[0]!.repeats,
    12,
    'resume restores the count',
  );
  await p.getByText(/Resumed \(repeats restored to 12/).waitFor();
  await p.getByRole('button', { name: 'Run now' }).click();
  const ran = await waitFor(
    async () => (await sql<{ task: string | null }>(orm, 'select task from ormq_schedule where id = ?', [row!.id]))[0]!.task,
    'run now to store its task',
  );
  await waitFor(
    async () => (await sql(orm, 'select 1 from ormq_task where id = ? and success', [ran])).length === 1,
    'the cluster to run it',
  );
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
  await p.getByText('Deleted hourly-export.').waitFor();
  assert.equal(await sql(orm, 'select id from ormq_schedule where id = ?', [row!.id]), []);
  await noProblems(w, 'the schedule lifecycle', [400, 409]);
  await w.context.close();
});

Actions('a Daily schedule given only name, func and type runs now, in the browser zone, with the preview it saves', async ({ host }) => {
  const orm = host!.orm;
  const w = await openPage({ timezoneId: 'Europe/Amsterdam' });
  const p = w.page;
  await visit(w, host!.admin, '#/scheduled/new', 'Add schedule');
  assert.is(await p.getByLabel('Time zone', { exact: true }).inputValue(), 'Europe/Amsterdam');
  assert.ok(await p.getByLabel('Next run', { exact: true }).inputValue(), 'next run is pre-filled with now');
  await p.getByLabel('Name', { exact: true }).fill('daily-digest');
  await p.getByLabel('Func', { exact: true }).selectOption('report.build');
  await p.getByLabel('Schedule type', { exact: true }).selectOption({ label: 'Daily' });
  await p.getByText('First five runs:').waitFor();
  await p.locator('.preview li').nth(4).waitFor();
  await p.locator('.preview').getByText('(Europe/Amsterdam)').waitFor();
  await shot(p, 'schedule-form-daily');
  await p.setViewportSize({ width: 390, height: 844 });
  await shot(p, 'schedule-form-daily-phone');
  await p.setViewportSize({ width: 1280, height: 800 });
  const before = Date.now();
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByRole('heading', { level: 1, name: 'daily-digest' }).waitFor();
  const after = Date.now();
  const [row] = await sql<{ anchor: Date; next_run: Date; time_zone: string; schedule_type: string }>(
    orm,
    `select anchor, next_run, time_zone, schedule_type from ormq_schedule where name = 'daily-digest'`,
  );
  assert.is(row!.schedule_type, 'D');
  assert.is(row!.time_zone, 'Europe/Amsterdam');
  // Saved to run now: the anchor is the next run it was saved with (the host's cluster may have run it since).
  const anchor = new Date(row!.anchor).getTime();
  assert.ok(anchor >= before - 1000 && anchor <= after + 1000, `anchor ${new Date(anchor).toISOString()} is the moment of saving`);
  assert.ok([anchor, anchor + 86_400_000].includes(new Date(row!.next_run).getTime()));
  await p.locator('.field-timeZone').getByText('Europe/Amsterdam').waitFor();
  await shot(p, 'schedule-detail-zone');
  await visit(w, host!.admin, '#/scheduled?search=daily-digest', 'Scheduled tasks');
  await p.locator('.zone', { hasText: 'Europe/Amsterdam' }).first().waitFor();
  await shot(p, 'scheduled-list-zone');
  await noProblems(w, 'a schedule created with defaults');
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
  // over 1,000 rows the count is typed first
  await p.getByRole('dialog').getByLabel('Type 5,000 to confirm').fill('5000');
  await shot(p, 'express-failed-confirm');
  await p.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await p.getByText('Deleted 5,000 failed tasks.').waitFor({ timeout: 60_000 });
  const seen = await p.evaluate(() => (window as unknown as { __progress: [number, number][] }).__progress);
  assert.ok(
    seen.some(([v, max]) => v > 0 && v < max),
    `the bar showed partial progress (saw ${JSON.stringify(seen.slice(0, 12))})`,
  );
  assert.is(Number((await sql(orm, `select count(*) as n from ormq_task where name like 'bulkdel-%'`))[0]!.n), 0);
  assert.is(
    Number((await sql(orm, `select count(*) as n from ormq_task where name like 'keepme-%'`))[0]!.n),
    20,
    'rows outside the search are kept',
  );
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
    [
      JSON.stringify({
        id: 'a'.repeat(32),
        name: 'locked-package',
        func: 'email.send',
        args: [],
        kwargs: {},
        group: null,
        hook: null,
        timeout: null,
        save: null,
        enqueued: new Date().toISOString(),
      }),
    ],
  );
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/queued', 'Queued tasks');
  await p.getByText('2 min ago').waitFor();
  await p.getByRole('checkbox', { name: `Select locked-package (${q!.id})` }).check();
  await p.getByRole('button', { name: 'Release' }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Release' }).click();
  await p.getByText(`Released locked-package (${q!.id}).`).waitFor();
  await p.getByRole('cell', { name: 'waiting' }).waitFor();
  assert.is((await sql(orm, 'select lock from ormq_queued where id = ?', [q!.id]))[0]!.lock, null);
  await noProblems(w, 'release');
  await w.context.close();
});

Actions('readOnly hides every action, checkbox and form', async ({ host }) => {
  const orm = host!.orm;
  const failedId = await insertTask(orm, {
    name: 'readonly-failure',
    func: 'work.recover',
    success: false,
    result: { error: 'Error', message: 'x' },
  });
  const s = await schedule(orm.em.fork(), {
    name: 'readonly-schedule',
    func: 'report.build',
    scheduleType: 'D',
    nextRun: new Date(Date.now() + 86_400_000),
  });
  const w = await openPage();
  const p = w.page;
  const buttons = ['Resubmit', 'Delete', 'Pause', 'Resume', 'Run now', 'Release', 'Save'];
  for (const hash of ['#/failed', `#/failed/${failedId}`, '#/scheduled', `#/scheduled/${s.id}`, '#/queued', '#/successful', '#/clusters']) {
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

Actions.run();

// ---------------------------------------------------------------------------------------------
const Locked = hostSuite(
  'browser (express): locked by default, and only what the caller may view',
  // /ops/queue-admin has no authorize (the access token); /viewer lets everyone view Successful tasks only.
  () =>
    startHost({}, 'express', {
      path: '/viewer',
      options: { authorize: (_req, { page, action }) => page === 'successful' && action === 'view' },
    }),
  {
    async setup(ctx) {
      for (let h = 0; h < 6; h++) {
        const stopped = new Date(Date.now() - h * 3_600_000).toISOString();
        await insertTask(ctx.host.orm, { name: `ok-${h}`, stopped });
        await insertTask(ctx.host.orm, { name: `bad-${h}`, success: false, stopped });
        // the overview's chart counts attempts from the metrics rollups
        await insertRollup(ctx.host.orm, { at: stopped, success: true });
        await insertRollup(ctx.host.orm, { at: stopped, success: false });
      }
    },
  },
);

Locked(
  'a rebinding page on another name gets the short 403 page saying how to open the admin; the admin signed in on 127.0.0.1 loads',
  async ({ host }) => {
    const w = await openPage();
    // Only what a browser keeps: the cookie of the access link, not the tests' header.
    await w.context.setExtraHTTPHeaders({});
    await w.page.goto(`${host!.admin}?token=${TEST_TOKEN}`);
    await w.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    const rebound = host!.admin.replace('127.0.0.1', 'rebind.test');
    const r = await w.page.goto(rebound);
    assert.is(r?.status(), 403);
    await w.page.getByRole('heading', { name: 'This queue admin needs its access link' }).waitFor();
    await w.page.getByText('authorize', { exact: true }).first().waitFor();
    const api = await w.page.evaluate(async () => (await fetch('api/failed')).status);
    assert.is(api, 403, 'its API refuses the rebinding page too: the cookie belongs to 127.0.0.1');
    await shot(w.page, 'express-locked-403');
    await w.page.goto(host!.admin);
    await w.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    // Chromium ignores Cross-Origin-Opener-Policy over plain HTTP on a name other than localhost, and says so.
    w.problems.splice(0, w.problems.length, ...w.problems.filter((p) => !/Cross-Origin-Opener-Policy header has been ignored/.test(p)));
    await noProblems(w, 'the 403 page', [403]);
    await w.context.close();
  },
);

Locked('the overview shows only the series the caller may view', async ({ host }) => {
  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 390, height: 844 },
  ]) {
    const w = await openPage();
    await w.page.setViewportSize(viewport);
    await visit(w, host!.extraAdmin!, '#/', 'Overview');
    await w.page.locator('.chart .parts .success').first().waitFor();
    assert.is(await w.page.locator('.chart .parts .failure').count(), 0, 'no failure bars');
    const caption = await w.page.locator('figcaption').innerText();
    assert.match(caption, /Successes \(6\)/);
    assert.not.match(caption, /Failures/);
    assert.not.match((await w.page.locator('.chart .bars').getAttribute('aria-label')) ?? '', /failure/);
    assert.is(await w.page.locator('.card-failed').count(), 0);
    await shot(w.page, `express-overview-successes-only-${viewport.width}`);
    await noProblems(w, 'the overview');
    await w.context.close();
  }
});

Locked.after(async () => {
  if (browserPromise) await (await browserPromise).close();
});

Locked.run();
