/**
 * The admin as operators use it, in headless Chromium at 1280×800, at 390×844 and in dark mode:
 * failure lineage, retrying versus final failures, context kept across navigation, selection kept
 * while Live is on, long values, phones, finding things, and axe with no issue of any level.
 */
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { schedule } from '../src/index.js';
import { insertManyTasks, insertRollup, insertTask } from './helpers/admin.js';
import { closeBrowser, fitsWidth, hostSuite, noProblems, openPage, shot, startHost, visit, axe } from './helpers/browser.js';
import { sql, waitFor } from './helpers/db.js';
import { CLEAR_ADMIN } from './helpers/suites.js';

const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
const LONG_GROUP = `nightly-reconciliation-${'eu-central-'.repeat(7)}`.slice(0, 96);

/** A failure retried twice whose package is still queued, and a final one. */
async function seedFailures(orm: MikroORM) {
  const retrying = await insertTask(orm, {
    name: 'sync-invoices',
    func: 'work.recover',
    group: 'billing',
    success: false,
    attemptCount: 2,
    stopped: hoursAgo(0.2),
    result: { error: 'Error', message: 'ledger locked', stack: 'Error: ledger locked\n    at sync (billing.ts:10:3)' },
  });
  await sql(orm, `update ormq_task set attempts = ?::jsonb where id = ?`, [
    JSON.stringify([
      { at: hoursAgo(0.5), cluster: 'default', error: 'Error: ledger busy', max: 3 },
      { at: hoursAgo(0.2), cluster: 'eu-west', error: 'Error: ledger locked', max: 3 },
    ]),
    retrying,
  ]);
  await sql(orm, `insert into ormq_queued (key, payload, lock, linked) values ('parked', ?::jsonb, now(), true)`, [
    JSON.stringify({ id: retrying, name: 'sync-invoices', func: 'work.recover', args: [], kwargs: {} }),
  ]);
  const final = await insertTask(orm, {
    name: 'broken-import',
    func: 'work.recover',
    group: 'imports',
    success: false,
    stopped: hoursAgo(1),
    result: { error: 'TypeError', message: 'bad row', stack: 'TypeError: bad row\n    at importRow (imports.ts:42:17)' },
  });
  return { retrying, final };
}

const Ops = hostSuite('browser: the admin as operators use it', () =>
  // a policy decided when the action is made: the button shows, the POST is refused (a real 403)
  startHost({
    retry: 120,
    authorize: (req, what) =>
      !(what.action === 'delete' && req.method === 'POST' && req.headers['x-policy'] === 'no-deletes') &&
      !(what.action === 'edit' && req.method === 'PUT' && req.headers['x-policy'] === 'no-edits') &&
      !(what.action === 'view' && req.method === 'PUT' && req.headers['x-policy'] === 'no-views'),
  }),
);
Ops.before.each(async ({ host }) => {
  await sql(host!.orm, CLEAR_ADMIN);
});

Ops(
  'a retrying failure says which attempt comes next and when, links its package, lists its attempts, and the State filter separates it',
  async ({ host }) => {
    const { retrying } = await seedFailures(host!.orm);
    const w = await openPage();
    const p = w.page;
    await visit(w, host!.admin, `#/failed/${retrying}`, 'sync-invoices');
    const line = p.locator('.retry-line');
    assert.match(await line.innerText(), /^Retrying: attempt 3 of 3, next at .+ in 2 min · its queued package$/);
    const attempts = p.getByRole('region', { name: 'Failed attempts, table' });
    assert.equal(
      await attempts
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent).filter((_, i) => i !== 1))),
      [
        ['2', 'eu-west', 'Error: ledger locked'],
        ['1', 'default', 'Error: ledger busy'],
      ],
    );
    // the stack is shown once: in the error box, not again among the fields
    assert.is(await p.getByText('at sync (billing.ts:10:3)').count(), 1);
    assert.is(await p.title(), 'sync-invoices · Failed tasks · Test queue');
    await shot(p, 'operator-retrying-detail');
    await line.getByRole('link', { name: 'its queued package' }).click();
    await p.getByRole('heading', { level: 1, name: /sync-invoices/ }).waitFor();
    assert.match(p.url(), /#\/queued\/\d+$/);
    // and back from the package to the failure it retries
    const back = (await p.locator('main .lineage').innerText()).replace(/\s+/g, ' ').trim();
    assert.is(back, 'Retries the failed task sync-invoices after 2 failed attempts.');
    await p.locator('main .lineage').getByRole('link', { name: 'sync-invoices' }).click();
    await p.waitForURL(new RegExp(`#/failed/${retrying}$`));

    await visit(w, host!.admin, '#/failed', 'Failed tasks');
    await p
      .getByRole('link', { name: /sync-invoices/ })
      .getByText('retrying')
      .waitFor();
    await p.getByLabel('State').selectOption('final');
    await p.waitForURL(/state=final/);
    await p.getByRole('link', { name: 'sync-invoices' }).waitFor({ state: 'detached' });
    await p.getByRole('link', { name: 'broken-import' }).waitFor();
    // a filter change is a history entry: Back undoes it
    await p.goBack();
    await p.getByRole('link', { name: /sync-invoices/ }).waitFor();
    assert.is(await p.getByLabel('State').inputValue(), '');
    noProblems(w, 'retrying failures');
    await w.context.close();
  },
);

Ops('resubmit links to the new task, the new task links back, and a bookmark of the old failure leads to it', async ({ host }) => {
  const { final } = await seedFailures(host!.orm);
  // on a queue no cluster serves, so the resubmission waits there until the test moves it
  await sql(host!.orm, `update ormq_task set cluster = 'parked' where id = ?`, [final]);
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, `#/failed/${final}`, 'broken-import');
  await p.getByRole('button', { name: 'Resubmit' }).click();
  await p.getByText('Resubmitted broken-import.').waitFor();
  await p.getByRole('status').getByRole('link', { name: 'Open the new task' }).click();
  await p.getByRole('heading', { level: 1, name: /broken-import/ }).waitFor();
  assert.match(p.url(), /#\/queued\/\d+$/);
  await visit(w, host!.admin, `#/failed/${final}`, 'Resubmitted');
  const moved = p.locator('.moved');
  const said = (await moved.innerText()).replace(/\s+/g, ' ');
  assert.ok(said.includes('This task was resubmitted; its work continues as broken-import'), said);
  assert.is(await moved.locator('.tag').innerText(), 'queued');
  await sql(host!.orm, `update ormq_queued set key = 'default'`);
  const [next] = await waitFor(async () => {
    const r = await sql<{ id: string }>(host!.orm, `select id from ormq_task where success and name = 'broken-import'`);
    return r.length ? r : null;
  }, 'the resubmission to succeed');
  const newId = String(next!.id).trim();
  await visit(w, host!.admin, `#/successful/${newId}`, 'broken-import');
  const from = p.locator('.lineage');
  assert.match(await from.innerText(), /Resubmitted from task [0-9a-f]{32} \(no longer kept\)/);

  // the old failure's bookmark
  await visit(w, host!.admin, `#/failed/${final}`, 'Resubmitted');
  await p.getByRole('link', { name: 'broken-import' }).click();
  await p.waitForURL(new RegExp(`#/successful/${newId}$`));
  await shot(p, 'operator-resubmitted-successor');
  noProblems(w, 'resubmit lineage');
  await w.context.close();
});

Ops('"← list" returns to the same filters and page; a task is found by its id; "/" works on every page', async ({ host }) => {
  const orm = host!.orm;
  await insertManyTasks(orm, 60, { success: false, group: 'mail', prefix: 'mail-' });
  const { final } = await seedFailures(orm);
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/failed?group=mail', 'Failed tasks');
  await p.getByRole('button', { name: 'Next' }).click();
  await p.waitForURL(/cursor=/);
  const listUrl = p.url();
  await p.locator('tbody a').first().click();
  await p.locator('.back a').click();
  await p.waitForURL(listUrl);
  assert.is(await p.getByLabel('Group').inputValue(), 'mail');

  await visit(w, host!.admin, '#/failed', 'Failed tasks');
  await p.getByLabel('Search', { exact: true }).fill(final);
  await p.getByLabel('Search', { exact: true }).press('Enter');
  await waitFor(
    async () => (await p.locator('tbody tr').count()) === 1 && (await p.getByRole('link', { name: 'broken-import' }).count()) === 1,
    'the id to find its task',
  );

  // "/" on the overview and on a detail opens Go to, its box focused
  await visit(w, host!.admin, '#/', 'Overview');
  await p.locator('body').press('/');
  await p.getByRole('dialog', { name: 'Go to' }).waitFor();
  await waitFor(() => p.evaluate(() => document.activeElement?.id === 'goto-q'), 'the Go to box to take focus');
  await p.keyboard.press('Escape');
  await visit(w, host!.admin, `#/failed/${final}`, 'broken-import');
  await p.locator('body').press('/');
  await waitFor(() => p.evaluate(() => document.activeElement?.id === 'goto-q'), 'the Go to box to take focus');
  noProblems(w, 'context');
  await w.context.close();
});

Ops(
  'with Live on, a selection is kept by id and pauses updates; the count confirmed is the count done; shift-click selects a range',
  async ({ host }) => {
    const orm = host!.orm;
    await insertManyTasks(orm, 10, { prefix: 'done-' });
    const w = await openPage();
    const p = w.page;
    await visit(w, host!.admin, '#/successful', 'Successful tasks');
    await p.getByLabel('Live').check();
    const boxes = p.locator('tbody input[type=checkbox]');
    await boxes.nth(1).click();
    await boxes.nth(3).click({ modifiers: ['Shift'] });
    assert.equal(await boxes.evaluateAll((b) => b.map((x) => (x as HTMLInputElement).checked)), [
      false,
      true,
      true,
      true,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    await p.getByText('updates paused').waitFor();
    const chosen = await p.locator('tr.selected td.col-name').allInnerTexts();
    // newer rows arrive; a paused list does not move the selected rows off the page
    await insertManyTasks(orm, 30, { prefix: 'new-' });
    await p.waitForTimeout(6_000); // longer than one Live interval (5 s): no refresh may happen
    assert.is(await p.getByRole('link', { name: /^new-/ }).count(), 0, 'no refresh while rows are selected');
    await p.getByRole('button', { name: 'Delete' }).click();
    await p.getByRole('dialog').getByText('Delete 3 successful tasks?').waitFor();
    await p.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await p.getByText('Deleted 3 successful tasks.').waitFor();
    const left = await sql<{ name: string }>(orm, 'select name from ormq_task where name in (?)', [chosen]);
    assert.equal(left, [], 'exactly the selected rows were deleted');
    // with nothing selected Live refreshes again
    await p.getByRole('link', { name: /^new-/ }).first().waitFor({ timeout: 15_000 });
    noProblems(w, 'live selection');
    await w.context.close();
  },
);

Ops('long values never widen the page, at 1280 and at 390 px', async ({ host }) => {
  const orm = host!.orm;
  const long = await insertTask(orm, {
    name: `x${'very-long-name-'.repeat(6)}`.slice(0, 100),
    func: 'work.recover',
    group: LONG_GROUP,
    success: false,
    result: { error: 'Error', message: 'm'.repeat(300) },
  });
  await insertManyTasks(orm, 5, { success: false, group: LONG_GROUP });
  for (const phone of [false, true]) {
    const w = await openPage({ phone });
    const p = w.page;
    for (const hash of ['#/failed', `#/failed/${long}`]) {
      await visit(w, host!.admin, hash);
      await p.locator('main table, main dl').first().waitFor();
      const { scroll, viewport } = await fitsWidth(p);
      assert.ok(scroll <= viewport, `${hash} at ${viewport}px is ${scroll}px wide`);
      if (hash === '#/failed') {
        const box = await p.getByLabel('Group').boundingBox();
        assert.ok(box!.width <= 14 * 14 + 1, `the Group filter is ${box!.width}px wide`);
        // the key column, the short result, is on screen without scrolling the table
        const key = await p.locator('td.col-shortResult').last().boundingBox();
        assert.ok(key!.x + 40 <= viewport, `the short result starts at ${key!.x}px`);
      }
      await shot(p, `operator-long-${phone ? 'phone' : 'desktop'}-${hash === '#/failed' ? 'list' : 'detail'}`);
    }
    noProblems(w, 'long values');
    await w.context.close();
  }
});

Ops('on a phone the header is compact, the key column and the confirmation are reachable', async ({ host }) => {
  const orm = host!.orm;
  await insertManyTasks(orm, 5, { success: false, prefix: 'phone-' });
  const w = await openPage({ phone: true });
  const p = w.page;
  await visit(w, host!.admin, '#/failed', 'Failed tasks');
  const header = await p.locator('header.top').boundingBox();
  assert.ok(header!.height <= 80, `the header is ${header!.height}px tall`);
  // the short result column can be scrolled to inside the table, not by widening the page
  const wrap = p.getByRole('region', { name: 'Failed tasks, table' });
  await wrap.evaluate((el) => el.scrollTo({ left: el.scrollWidth }));
  assert.ok(await p.locator('td.col-shortResult').first().isVisible());
  await p.locator('tbody input[type=checkbox]').first().check();
  await p.getByRole('button', { name: 'Delete' }).click();
  const cancel = p.getByRole('dialog').getByRole('button', { name: 'Cancel' });
  const box = await cancel.boundingBox();
  assert.ok(box!.x >= 0 && box!.x + box!.width <= 390 && box!.y + box!.height <= 844, `Cancel at ${JSON.stringify(box)}`);
  await shot(p, 'operator-phone-dialog');
  await cancel.click();
  noProblems(w, 'phone');
  await w.context.close();
});

Ops('a skip link leads past the header; every page has its own title', async ({ host }) => {
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/queued', 'Queued tasks');
  await p.keyboard.press('Tab');
  const skip = p.getByRole('link', { name: 'Skip to content' });
  assert.ok(await skip.evaluate((el) => el === document.activeElement));
  await p.keyboard.press('Enter');
  assert.is(await p.evaluate(() => document.activeElement?.textContent), 'Queued tasks');
  assert.match(p.url(), /#\/queued$/);
  const titles: Record<string, string> = {};
  for (const hash of ['#/', '#/successful', '#/failed', '#/scheduled', '#/queued', '#/scheduled/new']) {
    await visit(w, host!.admin, hash);
    titles[hash] = await p.title();
  }
  assert.equal(titles, {
    '#/': 'Overview · Test queue',
    '#/successful': 'Successful tasks · Test queue',
    '#/failed': 'Failed tasks · Test queue',
    '#/scheduled': 'Scheduled tasks · Test queue',
    '#/queued': 'Queued tasks · Test queue',
    '#/scheduled/new': 'New schedule · Test queue',
  });
  noProblems(w, 'skip link and titles');
  await w.context.close();
});

Ops('axe finds no issue of any level on any page, light and dark, at 1280 and at 390 px', async ({ host }) => {
  const orm = host!.orm;
  const { retrying } = await seedFailures(orm);
  const ok = await insertTask(orm, {
    name: 'nightly-report',
    func: 'report.build',
    group: 'reports',
    stopped: hoursAgo(2),
    result: { rows: 3 },
  });
  const s = await schedule(orm.em.fork(), {
    name: 'hourly-report',
    func: 'report.build',
    scheduleType: 'H',
    repeats: -1,
    nextRun: new Date(Date.now() + 3_600_000),
  });
  await sql(orm, 'update ormq_schedule set task = ? where id = ?', [ok, s.id]);
  const [q] = await sql<{ id: number }>(orm, 'select id from ormq_queued');
  const pages: [string, string][] = [
    ['overview', '#/'],
    ['successful', '#/successful'],
    ['failed', '#/failed'],
    ['scheduled', '#/scheduled'],
    ['queued', '#/queued'],
    ['successful-detail', `#/successful/${ok}`],
    ['failed-detail', `#/failed/${retrying}`],
    ['scheduled-detail', `#/scheduled/${s.id}`],
    ['scheduled-form', '#/scheduled/new'],
    ['scheduled-edit', `#/scheduled/${s.id}/edit`],
    ['queued-detail', `#/queued/${q!.id}`],
  ];
  for (const phone of [false, true]) {
    for (const dark of [false, true]) {
      const w = await openPage({ phone, dark });
      for (const [name, hash] of pages) {
        await visit(w, host!.admin, hash);
        if (name === 'overview') await w.page.locator('.chart .bar').first().waitFor();
        assert.equal(await axe(w.page), [], `axe on ${name} (${phone ? 'phone' : 'desktop'}, ${dark ? 'dark' : 'light'})`);
        const { scroll, viewport } = await fitsWidth(w.page);
        assert.ok(scroll <= viewport, `${name} at ${viewport}px is ${scroll}px wide`);
        await shot(w.page, `operator-${name}-${phone ? 'phone' : 'desktop'}${dark ? '-dark' : ''}`);
      }
      noProblems(w, `every page (${phone ? 'phone' : 'desktop'}, ${dark ? 'dark' : 'light'})`);
      await w.context.close();
    }
  }
});

Ops('disabled buttons stay readable in dark mode (contrast of at least 4.5:1)', async ({ host }) => {
  await insertManyTasks(host!.orm, 3, { prefix: 'dim-' });
  const w = await openPage({ dark: true });
  await visit(w, host!.admin, '#/successful', 'Successful tasks');
  const styles = await w.page
    .locator('button:disabled')
    .evaluateAll((buttons) =>
      buttons.map((b) => [b.textContent, getComputedStyle(b).opacity, getComputedStyle(b).color, getComputedStyle(b).backgroundColor]),
    );
  const lum = (css: string) => {
    const [r, g, b] = css
      .match(/\d+(\.\d+)?/g)!
      .map(Number)
      .map((v) => v / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  };
  const ratios = styles.map(([text, opacity, color, bg]) => {
    const [hi, lo] = [lum(color!), lum(bg!)].sort((x, y) => y - x);
    return { text, opacity, ratio: Math.round(((hi! + 0.05) / (lo! + 0.05)) * 10) / 10 };
  });
  assert.ok(ratios.length >= 3, 'Resubmit, Delete and Newer are disabled with nothing selected');
  for (const r of ratios) assert.ok(r.opacity === '1' && r.ratio >= 4.5, JSON.stringify(r));
  noProblems(w, 'dark disabled buttons');
  await w.context.close();
});

Ops("the chart keeps its text size, shows counts on hover and on focus, and a bar opens that hour's list", async ({ host }) => {
  const orm = host!.orm;
  const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000);
  const at = (min: number) => new Date(hour.getTime() + min * 60_000).toISOString();
  // the chart counts attempts from the rollups the cluster keeps beside the rows it saves
  for (const m of [5, 10, 15]) {
    await insertTask(orm, { name: `ok-${m}`, stopped: at(m) });
    await insertRollup(orm, { at: at(m) });
  }
  for (const m of [20, 25]) {
    await insertTask(orm, { name: `bad-${m}`, success: false, stopped: at(m), result: { error: 'Error', message: 'x' } });
    await insertRollup(orm, { at: at(m), success: false });
  }
  const earlier = new Date(hour.getTime() - 30 * 60_000).toISOString();
  await insertTask(orm, { name: 'bad-other-hour', success: false, stopped: earlier, result: { error: 'Error', message: 'y' } });
  await insertRollup(orm, { at: earlier, success: false });
  const sizes: number[] = [];
  for (const phone of [false, true]) {
    const w = await openPage({ phone });
    const p = w.page;
    await visit(w, host!.admin, '#/', 'Overview');
    const failures = p.locator(`.chart a.failure[href*="${encodeURIComponent(hour.toISOString())}"]`);
    await failures.waitFor();
    sizes.push(
      ...(await p.locator('.chart .y span, .chart .x').evaluateAll((els) => els.map((e) => parseFloat(getComputedStyle(e).fontSize)))),
    );
    const tip = failures.locator('xpath=ancestor::li[1]').locator('.tip');
    assert.is(await tip.isVisible(), false);
    await failures.hover();
    assert.match(await tip.innerText(), /: 3 successes, 2 failures$/);
    await p.mouse.move(0, 0);
    await failures.focus();
    assert.ok(await tip.isVisible(), 'the counts show on keyboard focus');
    await shot(p, `operator-chart-focus-${phone ? 'phone' : 'desktop'}`);
    if (!phone) {
      await failures.press('Enter');
      await p.waitForURL(/#\/failed\?hour=/);
      await waitFor(async () => (await p.locator('tbody tr').count()) === 2, "the hour's two failures");
      assert.equal((await p.locator('tbody td.col-name').allInnerTexts()).sort(), ['bad-20', 'bad-25']);
      assert.is(await p.getByLabel('Ended in hour').inputValue(), hour.toISOString());
    }
    noProblems(w, 'chart');
    await w.context.close();
  }
  assert.equal([...new Set(sizes)], [10.5], 'axis text is the same size (10.5 px) at 1280 and at 390 px');
});

Ops(
  'the Scheduled list shows the timing, a paused state and filter, links the name, and the last run as time and outcome',
  async ({ host }) => {
    const orm = host!.orm;
    const em = orm.em.fork();
    const every = await schedule(em, {
      name: 'every-15',
      func: 'report.build',
      scheduleType: 'I',
      minutes: 15,
      nextRun: new Date(Date.now() + 600_000),
    });
    await schedule(em, { name: 'weekdays', func: 'email.send', scheduleType: 'C', cron: '0 9 * * 1-5' });
    const paused = await schedule(em, {
      name: 'on-hold',
      func: 'email.send',
      scheduleType: 'D',
      repeats: 0,
      nextRun: new Date(Date.now() + 3_600_000),
    });
    const last = await insertTask(orm, {
      name: 'every-15-run',
      success: false,
      stopped: hoursAgo(3),
      result: { error: 'Error', message: 'z' },
    });
    await sql(orm, 'update ormq_schedule set task = ? where id = ?', [last, every.id]);
    const w = await openPage();
    const p = w.page;
    await visit(w, host!.admin, '#/scheduled', 'Scheduled tasks');
    const row = (name: string) => p.locator('tbody tr', { has: p.getByRole('link', { name, exact: true }) });
    assert.is(await row('every-15').locator('td.col-scheduleType').innerText(), 'Every 15 min');
    assert.is(await row('weekdays').locator('td.col-scheduleType').innerText(), 'Cron 0 9 * * 1-5');
    assert.is(await row('on-hold').locator('td.col-nextRun').innerText(), 'paused');
    const lastRun = row('every-15').locator('td.col-lastRun');
    assert.is(await lastRun.getByRole('img', { name: 'Failed' }).count(), 1);
    assert.is(await lastRun.getByRole('link').innerText(), '3 h ago');
    assert.is(await lastRun.getByRole('link').getAttribute('href'), `#/failed/${last}`);
    await p.getByLabel('State').selectOption('paused');
    await waitFor(async () => (await p.locator('tbody tr').count()) === 1, 'the paused schedule alone');
    await row('on-hold').getByRole('link', { name: 'on-hold', exact: true }).click();
    await p.getByRole('heading', { level: 1, name: 'on-hold' }).waitFor();
    assert.match(p.url(), new RegExp(`#/scheduled/${paused.id}$`));
    await waitFor(async () => (await p.title()) === 'on-hold · Scheduled tasks · Test queue', "the detail's title");
    // a cron error says what is wrong in plain words, without the library's class name
    await visit(w, host!.admin, '#/scheduled/new', 'Add schedule');
    await p.getByLabel('Schedule type', { exact: true }).selectOption({ label: 'Cron' });
    await p.getByLabel('Cron', { exact: true }).fill('61 * * * *');
    await p.getByText('minute must be 0–59').waitFor();
    assert.is(await p.getByText('CronPattern').count(), 0);
    await shot(p, 'operator-scheduled-list-filtered');
    noProblems(w, 'scheduled list', [400]);
    await w.context.close();
  },
);

Ops('an action refused by the server says so next to its buttons, in view', async ({ host }) => {
  await insertManyTasks(host!.orm, 80, { prefix: 'keep-' });
  const w = await openPage({ phone: true });
  await w.context.setExtraHTTPHeaders({ 'x-policy': 'no-deletes' });
  const p = w.page;
  await visit(w, host!.admin, '#/successful', 'Successful tasks');
  await p.locator('tbody input[type=checkbox]').first().check();
  await p.getByRole('button', { name: 'Delete' }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  const error = p.locator('.bulk').getByRole('alert');
  await error.getByText(/^Forbidden: delete on successful/).waitFor();
  assert.ok(await error.isVisible());
  const box = await error.boundingBox();
  assert.ok(box!.y >= 0 && box!.y + box!.height <= 844, 'the error is in view');
  assert.is((await sql(host!.orm, 'select 1 from ormq_task')).length, 80, 'nothing was deleted');
  assert.equal(
    await p.locator('tbody input:checked').evaluateAll((b) => b.map((x) => x.getAttribute('aria-label'))),
    ['Select keep-1'],
    'the selection stays as it was',
  );
  await shot(p, 'operator-action-error-phone');
  // a form's message is beside its Save button, in view
  const [pkg] = await sql<{ id: number }>(
    host!.orm,
    `insert into ormq_queued (key, payload) values ('default-x', '{"id":"${'c'.repeat(32)}","name":"parcel"}'::jsonb) returning id`,
  );
  await visit(w, host!.admin, `#/queued/${pkg!.id}`, /parcel/);
  await p.getByRole('button', { name: 'Save' }).click();
  const said = p.locator('.queued-form .buttons').getByRole('alert');
  await said.getByText('Nothing changed.').waitFor();
  const at = await said.boundingBox();
  // scrolled to the nearest edge: its bottom may land a fraction of a pixel past the fold
  assert.ok(at!.y >= 0 && at!.y + at!.height <= 845, 'the message is in view');
  noProblems(w, 'refused action', [403]);
  await w.context.close();
});

/**
 * The element's box comes to lie within the viewport's height (scrolling is in whole pixels, boxes
 * are not). The scroll follows the render that shows the message, so it is awaited, briefly.
 */
async function inView(p: import('playwright-core').Page, el: import('playwright-core').Locator, height: number): Promise<void> {
  let box: Awaited<ReturnType<typeof el.boundingBox>> = null;
  const deadline = Date.now() + 2000;
  do {
    box = await el.boundingBox();
    if (box && box.y >= -1 && box.y + box.height <= height + 1) return;
    await p.waitForTimeout(50);
  } while (Date.now() < deadline);
  assert.ok(false, `in view: ${JSON.stringify(box)}`);
}

for (const view of [
  { name: 'desktop', phone: false, dark: false, height: 800 },
  { name: 'phone', phone: true, dark: false, height: 844 },
  { name: 'dark', phone: false, dark: true, height: 800 },
]) {
  Ops(
    `${view.name}: the schedule form's errors are beside what caused them and in view; a stale save keeps the edits and applies them onto the other change`,
    async ({ host }) => {
      const orm = host!.orm;
      const [s] = await sql<{ id: number }>(
        orm,
        `insert into ormq_schedule (name, func, schedule_type, minutes, repeats, next_run, anchor, cluster)
      values ('ledger-sync', 'report.build', 'I', 30, -1, now() + interval '1 hour', now(), null) returning id`,
      );
      const w = await openPage({ phone: view.phone, dark: view.dark });
      const p = w.page;
      await w.context.setExtraHTTPHeaders({ 'x-policy': 'no-edits' });
      await visit(w, host!.admin, `#/scheduled/${s!.id}/edit`, 'Edit ledger-sync');
      // the preview arrives after the form; it is above Save and would push a message down
      await p.getByText('First five runs:').waitFor();

      // a refused save: the error is beside Save and scrolled to, not above the form
      await p.getByLabel('Repeats', { exact: true }).fill('5');
      await p.getByRole('button', { name: 'Save' }).click();
      const refused = p.locator('.schedule-form > .buttons').getByRole('alert');
      await refused.getByText(/^Forbidden: edit on scheduled/).waitFor();
      await inView(p, refused, view.height);
      assert.is(await p.locator('main .error').count(), 1, 'said once, beside Save');
      assert.is(
        (await sql<{ repeats: number }>(orm, 'select repeats from ormq_schedule where id = ?', [s!.id]))[0]!.repeats,
        -1,
        'nothing saved',
      );
      await shot(p, `operator-schedule-403-${view.name}`);

      // a field error: the first invalid field is scrolled to and focused
      await w.context.setExtraHTTPHeaders({});
      await p.getByLabel('Args', { exact: true }).fill('{not json');
      await p.getByLabel('Repeats', { exact: true }).fill('1.5');
      await p.getByRole('button', { name: 'Save' }).click();
      await p.getByText('Args must be an array, like [1, "a"] in JSON').waitFor();
      // focus moves in an effect after the render that shows the errors
      await p.waitForFunction(() => document.activeElement?.id === 'f-args', undefined, { timeout: 3_000 }).catch(() => undefined);
      assert.is(await p.evaluate(() => document.activeElement?.id), 'f-args', 'the first invalid field has focus');
      await inView(p, p.getByLabel('Args', { exact: true }), view.height);
      await p.getByLabel('Args', { exact: true }).fill('["eu"]');
      await p.getByLabel('Repeats', { exact: true }).fill('5');

      // someone else changes the interval and the cluster; this user changed repeats and the interval
      await p.getByLabel('Minutes', { exact: true }).fill('15');
      await sql(orm, `update ormq_schedule set minutes = 60, cluster = 'night', version = version + 1 where id = ?`, [s!.id]);
      await p.getByRole('button', { name: 'Save' }).click();
      const box = p.locator('.conflict');
      await box.getByRole('heading', { name: 'Someone else changed this schedule after you opened it' }).waitFor();
      await inView(p, box.getByRole('button', { name: 'Apply my changes to the current version' }), view.height);
      const items = (list: string) =>
        box
          .locator(list)
          .locator('li')
          .evaluateAll((li) => li.map((x) => x.textContent!.replace(/\s+/g, ' ').trim()));
      assert.equal(await items('.their-change'), ['Minutes: 30 → 60', 'Cluster: (empty) → night']);
      assert.equal(await items('.conflicting'), ['Minutes: yours 15 replaces theirs 60']);
      // the form still holds what the user typed
      assert.is(await p.getByLabel('Repeats', { exact: true }).inputValue(), '5');
      assert.is(await p.getByLabel('Minutes', { exact: true }).inputValue(), '15');
      assert.is(await p.getByLabel('Args', { exact: true }).inputValue(), '["eu"]');
      assert.equal(await axe(p), [], `axe on the conflict (${view.name})`);
      assert.ok((await fitsWidth(p)).scroll <= (await fitsWidth(p)).viewport, 'the page fits its width');
      await shot(p, `operator-schedule-409-${view.name}`);

      await box.getByRole('button', { name: 'Apply my changes to the current version' }).click();
      await p.getByRole('heading', { level: 1, name: 'ledger-sync', exact: true }).waitFor();
      const [row] = await sql(orm, 'select minutes, repeats, cluster, args from ormq_schedule where id = ?', [s!.id]);
      assert.equal({ ...row }, { minutes: 15, repeats: 5, cluster: 'night', args: ['eu'] }, 'the edits on top of the other change');

      // Discard loads the current version into the form
      await visit(w, host!.admin, `#/scheduled/${s!.id}/edit`, 'Edit ledger-sync');
      await p.getByLabel('Repeats', { exact: true }).fill('9');
      await sql(orm, `update ormq_schedule set repeats = 7, version = version + 1 where id = ?`, [s!.id]);
      await p.getByRole('button', { name: 'Save' }).click();
      await box.locator('.conflicting').waitFor();
      assert.equal(await items('.conflicting'), ['Repeats: yours 9 replaces theirs 7']);
      await box.getByRole('button', { name: 'Discard my changes' }).click();
      await box.waitFor({ state: 'detached' });
      assert.is(await p.getByLabel('Repeats', { exact: true }).inputValue(), '7');
      assert.is(await p.getByLabel('Cluster', { exact: true }).inputValue(), 'night');
      assert.equal(await axe(p), [], `axe on the form (${view.name})`);

      // one who may not view schedules learns only that there was another change, beside Save, edits kept
      await w.context.setExtraHTTPHeaders({ 'x-policy': 'no-views' });
      await p.getByLabel('Repeats', { exact: true }).fill('3');
      await sql(orm, `update ormq_schedule set version = version + 1 where id = ?`, [s!.id]);
      await p.getByRole('button', { name: 'Save' }).click();
      const stale = p.locator('.schedule-form > .buttons').getByRole('alert');
      await stale.getByText(/changed by someone else since you opened it\. Your changes are kept/).waitFor();
      await inView(p, stale, view.height);
      assert.is(await box.count(), 0, 'no diff for one who may not view it');
      assert.is(await p.getByLabel('Repeats', { exact: true }).inputValue(), '3');
      noProblems(w, 'schedule form errors', [400, 403, 409]);
      await w.context.close();
    },
  );
}

Ops.after(closeBrowser);
Ops.run();
