/**
 * The task lists as an operator scans and acts on them, in headless Chromium at 1280×800, at 390×844
 * and in dark mode: enough rows on one screen, a disabled danger button that looks disabled, bulk
 * dialogs that say what they act on, notices that name the task, and axe with no issue of any level.
 */
import * as assert from 'uvu/assert';
import { insertManyTasks, insertRollup, insertTask } from './helpers/admin.js';
import { axe, closeBrowser, fitsWidth, hostSuite, noProblems, openPage, shot, startHost, visit } from './helpers/browser.js';
import { sql } from './helpers/db.js';
import { schedule } from '../src/index.js';
import { CLEAR_ADMIN } from './helpers/suites.js';

const L = hostSuite('browser: dense and safe lists', () => startHost());
L.before.each(async ({ host }) => {
  await sql(host!.orm, CLEAR_ADMIN);
});

const failures = async (host: { orm: Parameters<typeof insertTask>[0] }, n: number, prefix = 'sync-invoices') => {
  for (let i = 0; i < n; i++) {
    await insertTask(host.orm, {
      name: n === 1 ? prefix : `${prefix}-${i}`,
      func: 'work.recover',
      group: 'billing',
      success: false,
      stopped: new Date(Date.now() - i * 60_000).toISOString(),
      result: { error: 'Error', message: `ledger ${i} locked`, stack: `Error: ledger ${i} locked\n    at sync (billing.ts:10:3)` },
    });
  }
};

L('at 1280×800 at least 16 rows of a task list are on the first screen, light and dark', async ({ host }) => {
  await failures(host!, 30);
  for (const dark of [false, true]) {
    const w = await openPage({ dark });
    const p = w.page;
    await visit(w, host!.admin, '#/failed', 'Failed tasks');
    await p.locator('tbody tr').first().waitFor();
    const visible = await p
      .locator('tbody tr')
      .evaluateAll((trs) => trs.filter((tr) => tr.getBoundingClientRect().bottom <= window.innerHeight).length);
    assert.ok(visible >= 16, `${dark ? 'dark' : 'light'}: ${visible} rows in view`);
    assert.equal(await axe(p), [], `axe on Failed tasks (${dark ? 'dark' : 'light'})`);
    await shot(p, `lists-failed-${dark ? 'dark' : 'desktop'}`);
    noProblems(w, 'Failed tasks');
    await w.context.close();
  }
});

L('a disabled danger button looks disabled: neither its text nor its border keeps the danger colour, light and dark', async ({ host }) => {
  await failures(host!, 2);
  for (const dark of [false, true]) {
    const w = await openPage({ dark });
    const p = w.page;
    await visit(w, host!.admin, '#/failed', 'Failed tasks');
    const del = p.getByRole('group', { name: 'Actions' }).getByRole('button', { name: 'Delete' });
    assert.ok(await del.isDisabled(), 'nothing selected: Delete is disabled');
    const look = () => del.evaluate((b) => ({ color: getComputedStyle(b).color, border: getComputedStyle(b).borderTopColor }));
    const off = await look();
    await p.locator('tbody input[type=checkbox]').first().check();
    const on = await look();
    assert.ok(!(await del.isDisabled()), 'a row selected: Delete is enabled');
    assert.not.equal(off.color, on.color, `${dark ? 'dark' : 'light'}: the text colour changes`);
    assert.not.equal(off.border, on.border, `${dark ? 'dark' : 'light'}: the border colour changes`);
    noProblems(w, 'Failed tasks');
    await w.context.close();
  }
});

L('"all matching" restates the search and filters, and above 1,000 rows its button waits for the count to be typed', async ({ host }) => {
  const orm = host!.orm;
  await insertManyTasks(orm, 1200, { success: false, func: 'bulk.fail', prefix: 'bulk-' });
  await insertManyTasks(orm, 30, { success: false, func: 'other.fail', prefix: 'bulk-' });
  for (const view of [{ name: 'phone', phone: true }, { name: 'dark', dark: true }, { name: 'desktop' }]) {
    const w = await openPage(view);
    const p = w.page;
    await visit(w, host!.admin, '#/failed?search=bulk&func=bulk.fail', 'Failed tasks');
    await p.getByRole('checkbox', { name: 'Select all rows on this page' }).check();
    await p.getByRole('button', { name: 'Select all 1,200 matching' }).click();
    await p.getByRole('group', { name: 'Actions' }).getByRole('button', { name: 'Delete' }).click();
    const dialog = p.getByRole('dialog', { name: 'Delete 1,200 failed tasks?' });
    await dialog.waitFor();
    assert.equal(
      await dialog.getByRole('list', { name: 'Matching' }).locator('li').allInnerTexts(),
      ['Search: bulk', 'Func: bulk.fail'],
      view.name,
    );
    const go = dialog.getByRole('button', { name: 'Delete' });
    assert.ok(await go.isDisabled(), `${view.name}: waits for the count`);
    const typed = dialog.getByLabel('Type 1,200 to confirm');
    await typed.fill('1,199');
    assert.ok(await go.isDisabled(), `${view.name}: a wrong count keeps it disabled`);
    await typed.fill('1,200');
    assert.ok(!(await go.isDisabled()), `${view.name}: the count enables it`);
    assert.equal(await axe(p), [], `axe on the bulk dialog (${view.name})`);
    await shot(p, `lists-bulk-dialog-${view.name}`);
    if (view.name !== 'desktop') {
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' });
      assert.equal(
        await sql(orm, `select count(*)::int as n from ormq_task where func = 'bulk.fail'`),
        [{ n: 1200 }],
        'Cancel deletes nothing',
      );
    } else {
      await go.click();
      await p.getByText('Deleted 1,200 failed tasks.').waitFor({ timeout: 30_000 });
      assert.equal(
        await sql(orm, `select func, count(*)::int as n from ormq_task group by func`),
        [{ func: 'other.fail', n: 30 }],
        'only the matching rows went',
      );
    }
    noProblems(w, `the bulk dialog (${view.name})`);
    await w.context.close();
  }
});

L('an action on one row names it in the notice', async ({ host }) => {
  await failures(host!, 1, 'sync-invoices');
  await failures(host!, 2, 'import-ledger');
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/failed', 'Failed tasks');
  await p.getByRole('checkbox', { name: 'Select sync-invoices' }).check();
  await p.getByRole('group', { name: 'Actions' }).getByRole('button', { name: 'Delete' }).click();
  const dialog = p.getByRole('dialog', { name: 'Delete 1 failed task?' });
  assert.is(await dialog.getByRole('textbox').count(), 0, 'a picked row needs no typed count');
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await p.getByRole('status').getByText('Deleted sync-invoices.').waitFor();
  // more than one: counted
  await p.getByRole('checkbox', { name: 'Select all rows on this page' }).check();
  await p.getByRole('group', { name: 'Actions' }).getByRole('button', { name: 'Delete' }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await p.getByRole('status').getByText('Deleted 2 failed tasks.').waitFor();
  noProblems(w, 'Failed tasks');
  await w.context.close();
});

L("Queued tasks show each package's age, the process holding its lock and when the lock expires", async ({ host }) => {
  const orm = host!.orm;
  await sql(
    orm,
    `insert into ormq_cluster (id, name, host, pid, started, heartbeat, beat_ms, state, workers, busy, done, failed, version, tasks, config)
     values ('p-holder', 'mail', 'box-7', 77, now(), now(), 3600000, 'running', 2, 1, 0, 0, '0.0.1', '[]'::jsonb, '{"retry": 600}'::jsonb)`,
  );
  try {
    await sql(
      orm,
      `insert into ormq_queued (key, payload, lock, locked_by) values ('mail', jsonb_build_object('id', md5('x'), 'name', 'send-digest', 'func', 'email.send',
         'args', '[]'::jsonb, 'kwargs', '{}'::jsonb, 'enqueued', to_char((now() - interval '12 minutes') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
         now() - interval '2 minutes', 'p-holder')`,
    );
    for (const view of [{ name: 'desktop' }, { name: 'dark', dark: true }, { name: 'phone', phone: true }]) {
      const w = await openPage(view);
      const p = w.page;
      await visit(w, host!.admin, '#/queued', 'Queued tasks');
      const row = p.getByRole('row', { name: /send-digest/ });
      await row.waitFor();
      const cell = async (col: string) => (await row.locator(`td.col-${col}`).innerText()).replace(/\s+/g, ' ');
      assert.match(await cell('lock'), /2 min ago · expires in 8 min/, view.name);
      if (view.name !== 'phone') {
        assert.match(await cell('enqueued'), /12 min ago/, view.name);
        assert.is(await cell('lockedBy'), 'mail (box-7 pid 77)', view.name);
      }
      assert.equal(await axe(p), [], `axe on Queued tasks (${view.name})`);
      await shot(p, `lists-queued-${view.name}`);
      noProblems(w, `Queued tasks (${view.name})`);
      await w.context.close();
    }
  } finally {
    await sql(orm, `delete from ormq_cluster where id = 'p-holder'`);
  }
});

L('the Metrics per-func table sorts by a header click, and a second click turns the order round', async ({ host }) => {
  const orm = host!.orm;
  await sql(orm, 'truncate ormq_metric');
  const at = new Date(Date.now() - 10 * 60_000).toISOString();
  await insertRollup(orm, { at, func: 'b.mid', count: 20, runtime: 50 });
  await insertRollup(orm, { at, func: 'a.many', count: 90, runtime: 5 });
  await insertRollup(orm, { at, func: 'c.few', count: 3, runtime: 4000 });
  await insertRollup(orm, { at, func: 'c.few', count: 3, success: false, runtime: 4000 });
  for (const view of [{ name: 'desktop' }, { name: 'dark', dark: true }, { name: 'phone', phone: true }]) {
    const w = await openPage(view);
    const p = w.page;
    await visit(w, host!.admin, '#/metrics?range=1h', 'Metrics');
    const order = () => p.locator('.metrics tbody th').evaluateAll((ths) => ths.map((th) => th.textContent));
    await p.locator('.metrics tbody th').first().waitFor();
    const header = (name: string) => p.getByRole('columnheader', { name: new RegExp(`^${name}`) });
    if (view.name === 'phone') {
      // a block per func, its headers off screen: a select sorts it
      await p.getByLabel('Sort by').selectOption({ label: 'Runtime p50' });
      assert.equal(await order(), ['c.few', 'b.mid', 'a.many'], 'phone: slowest first');
      assert.equal(
        await p
          .locator('.metrics tbody tr')
          .first()
          .locator('td')
          .evaluateAll((tds) => tds.map((td) => td.dataset.label))
          .then((l) => l.slice(0, 2)),
        ['Runs', 'Failures'],
      );
      await p.getByLabel('Sort by').selectOption({ label: 'Func' });
      assert.equal(await order(), ['a.many', 'b.mid', 'c.few'], 'phone: names A to Z');
      assert.equal(await axe(p), [], 'axe on Metrics (phone)');
      await shot(p, 'lists-metrics-sorted-phone');
      noProblems(w, 'Metrics (phone)');
      await w.context.close();
      continue;
    }
    await header('Runtime p50').getByRole('button').click();
    assert.equal(await order(), ['c.few', 'b.mid', 'a.many'], `${view.name}: slowest first`);
    assert.is(await header('Runtime p50').getAttribute('aria-sort'), 'descending');
    await header('Runtime p50').getByRole('button').click();
    assert.equal(await order(), ['a.many', 'b.mid', 'c.few'], `${view.name}: fastest first`);
    assert.is(await header('Runtime p50').getAttribute('aria-sort'), 'ascending');
    await header('Failures').getByRole('button').click();
    assert.equal((await order())[0], 'c.few', `${view.name}: most failures first`);
    await header('Func').getByRole('button').click();
    assert.equal(await order(), ['a.many', 'b.mid', 'c.few'], `${view.name}: names A to Z`);
    assert.equal(await axe(p), [], `axe on Metrics (${view.name})`);
    await shot(p, `lists-metrics-sorted-${view.name}`);
    noProblems(w, `Metrics (${view.name})`);
    await w.context.close();
  }
});

L(
  'Go to, from "/" or the header: an id or a name opens the one page holding it, lists the places of a name in several, and says when nothing has it',
  async ({ host }) => {
    const orm = host!.orm;
    const failed = await insertTask(orm, {
      name: 'sync-invoices',
      func: 'work.recover',
      success: false,
      result: { error: 'Error', message: 'x' },
    });
    await insertTask(orm, { name: 'twin', func: 'work.recover' });
    await insertTask(orm, { name: 'twin', func: 'work.recover', success: false, result: { error: 'Error', message: 'x' } });
    const s = await schedule(orm.em.fork(), {
      name: 'nightly-export',
      func: 'report.build',
      scheduleType: 'D',
      nextRun: new Date(Date.now() + 3_600_000),
    });
    try {
      for (const view of [{ name: 'desktop' }, { name: 'phone', phone: true }, { name: 'dark', dark: true }]) {
        const w = await openPage(view);
        const p = w.page;
        const box = p.getByRole('dialog', { name: 'Go to' });
        const go = async (q: string) => {
          await box.getByLabel('Task id or name, package id or schedule').fill(q);
          await box.getByLabel('Task id or name, package id or schedule').press('Enter');
        };
        // "/" where no box has focus (a phone has no such key: the header's button)
        await visit(w, host!.admin, '#/', 'Overview');
        if (view.phone) await p.getByRole('button', { name: 'Go to…' }).click();
        else await p.locator('body').press('/');
        await box.waitFor();
        assert.is(await p.evaluate(() => document.activeElement?.id), 'goto-q', `${view.name}: the box has focus`);
        await go(failed);
        await p.getByRole('heading', { level: 1, name: 'sync-invoices' }).waitFor();
        assert.match(p.url(), new RegExp(`#/failed/${failed}$`));
        await box.waitFor({ state: 'detached' });
        // from a detail, by a schedule's name
        await p.getByRole('button', { name: 'Go to…' }).click();
        await go('nightly-export');
        await p.waitForURL(new RegExp(`#/scheduled/${s.id}$`));
        // a name in two places: both listed, each a link
        await p.getByRole('button', { name: 'Go to…' }).click();
        await go('twin');
        const places = box.getByRole('status').getByRole('listitem');
        await places.first().waitFor();
        assert.equal(await places.allInnerTexts(), ['Successful tasks: twin', 'Failed tasks: twin'], view.name);
        assert.equal(await axe(p), [], `axe with Go to open (${view.name})`);
        await shot(p, `lists-goto-${view.name}`);
        await places.nth(1).getByRole('link').click();
        await p.getByRole('heading', { level: 1, name: 'twin' }).waitFor();
        assert.match(p.url(), /#\/failed\/[0-9a-f]{32}$/);
        // nothing has it
        await p.getByRole('button', { name: 'Go to…' }).click();
        await go('no-such-thing');
        await box.getByText('No task, package or schedule has the id or name “no-such-thing”.').waitFor();
        await p.keyboard.press('Escape');
        await box.waitFor({ state: 'detached' });
        // on a list "/" keeps to the list's own search
        await visit(w, host!.admin, '#/failed', 'Failed tasks');
        if (!view.phone) {
          await p.locator('body').press('/');
          assert.is(await p.evaluate(() => document.activeElement?.id), 'search');
          assert.is(await box.count(), 0);
        }
        noProblems(w, `Go to (${view.name})`);
        await w.context.close();
      }
    } finally {
      await sql(orm, 'delete from ormq_schedule');
    }
  },
);

L(
  "optional columns: Args turned on from the Columns menu shows each row's args and stays on after a reload, at 1280 and 390 px and dark",
  async ({ host }) => {
    await insertTask(host!.orm, { name: 'invoice-mail', func: 'email.send', args: ['invoice-3', 'ops@example.com'] });
    await insertTask(host!.orm, {
      name: 'sync-once',
      func: 'work.recover',
      success: false,
      args: [{ order: 'PO-77' }],
      attemptCount: 3,
      result: { error: 'Error', message: 'ledger locked' },
    });
    for (const view of [{ name: 'desktop' }, { name: 'phone', phone: true }, { name: 'dark', dark: true }]) {
      const w = await openPage(view);
      const p = w.page;
      await visit(w, host!.admin, '#/successful', 'Successful tasks');
      const header = p.getByRole('columnheader', { name: 'Args' });
      assert.is(await header.count(), 0, `${view.name}: off by default`);
      const button = p.getByRole('button', { name: 'Columns' });
      const box = (await button.boundingBox())!;
      assert.ok(box.x >= 0 && box.x + box.width <= (view.phone ? 390 : 1280), `${view.name}: the menu's button is on screen`);
      await button.click();
      await p.getByRole('group', { name: 'Optional columns' }).getByRole('checkbox', { name: 'Args' }).check();
      await header.waitFor();
      const row = p.getByRole('row', { name: /invoice-mail/ });
      await row.getByText('["invoice-3", "ops@example.com"]').waitFor();
      assert.equal(await fitsWidth(p).then((f) => f.scroll <= f.viewport), true, `${view.name}: no sideways scrolling`);
      assert.equal(await axe(p), [], `axe with the column menu open (${view.name})`);
      await shot(p, `lists-columns-${view.name}`);
      await p.reload();
      await header.waitFor();
      await row.getByText('["invoice-3", "ops@example.com"]').waitFor();
      assert.is(await p.getByRole('group', { name: 'Optional columns' }).count(), 0, `${view.name}: the menu is closed, the choice kept`);
      // the choice is the page's: Failed tasks has its own
      await visit(w, host!.admin, '#/failed', 'Failed tasks');
      assert.is(await header.count(), 0, `${view.name}: Failed tasks keeps its own columns`);
      await p.getByRole('button', { name: 'Columns' }).click();
      await p.getByRole('group', { name: 'Optional columns' }).getByRole('checkbox', { name: 'Attempts' }).check();
      await p.getByRole('columnheader', { name: 'Attempts' }).waitFor();
      assert.equal(
        await p
          .getByRole('row', { name: /sync-once/ })
          .locator('td.col-attemptCount')
          .innerText(),
        '3',
      );
      noProblems(w, 'the task lists');
      await w.context.close();
    }
  },
);

L.after(closeBrowser);
L.run();
