/**
 * The bad day in headless Chromium at 1280×800, at 390×844 and in dark mode: the overview says what
 * needs attention above the fold, Failed tasks group by cause and open a group's list, search finds
 * error words and args, and a search that misses says where the task is.
 */
import * as assert from 'uvu/assert';
import { stageBadDay } from './helpers/bad-day.js';
import { axe, closeBrowser, fitsWidth, hostSuite, noProblems, openPage, shot, startHost, visit } from './helpers/browser.js';
import { sql } from './helpers/db.js';
import { CLEAR_ADMIN } from './helpers/suites.js';

const T = hostSuite('browser: the bad day, triaged', () => startHost());
T.before.each(async ({ host }) => {
  await sql(
    host!.orm,
    `${CLEAR_ADMIN}; truncate ormq_metric, ormq_paused_key; delete from ormq_cluster where name <> 'default' or host = 'box-1'`,
  );
});

const VIEWS = [
  { name: 'desktop', phone: false, dark: false },
  { name: 'phone', phone: true, dark: false },
  { name: 'dark', phone: false, dark: true },
];

T('the overview lists what needs attention first, each linked, all in view without scrolling', async ({ host }) => {
  await stageBadDay(host!.orm);
  for (const view of VIEWS) {
    const w = await openPage(view);
    const p = w.page;
    await visit(w, host!.admin, '#/', 'Overview');
    const list = p.getByRole('list', { name: 'Needs attention' });
    await list.waitFor();
    const items = list.locator('li');
    assert.equal(
      await items.locator('a.what').allInnerTexts(),
      [
        '1 process not responding',
        '3 packages stuck',
        '1 func failing',
        '1 queue key waiting too long',
        '1 paused key with work waiting',
        '1 failure still retrying',
      ],
      view.name,
    );
    assert.match(await items.nth(2).innerText(), /email\.send: 8 of 20 attempts failed in the last hour \(40 %\)/);
    assert.match(await items.nth(4).innerText(), /reports: 4 waiting, paused .* by ops@example\.com/);
    // every item, its action included, is inside the first screen
    const viewport = p.viewportSize()!;
    for (const box of await items.evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON()))) {
      assert.ok(box.bottom <= viewport.height && box.right <= viewport.width, `${view.name}: item at ${JSON.stringify(box)} is in view`);
    }
    const { scroll } = await fitsWidth(p);
    assert.ok(scroll <= viewport.width, `${view.name}: ${scroll}px wide`);
    assert.equal(await axe(p), [], `axe on the overview (${view.name})`);
    await shot(p, `triage-overview-${view.name}`);
    // a link opens the filtered list it counted
    await items.nth(1).locator('a.what').click();
    await p.getByRole('heading', { level: 1, name: 'Queued tasks' }).waitFor();
    await p.locator('.loading').first().waitFor({ state: 'detached' });
    assert.match(p.url(), /#\/queued\?stuck=yes$/);
    assert.is(await p.locator('tbody tr').count(), 3);
    noProblems(w, `the overview (${view.name})`);
    await w.context.close();
  }
});

T(
  'Failed tasks by cause: each group counted exactly, and a group opens its failures, and deleting them leaves the other group',
  async ({ host }) => {
    const day = await stageBadDay(host!.orm);
    for (const view of VIEWS) {
      const w = await openPage(view);
      const p = w.page;
      await visit(w, host!.admin, '#/failed', 'Failed tasks');
      await p.getByRole('link', { name: 'Group by cause' }).click();
      await p.getByRole('heading', { level: 1, name: 'Failed tasks: by cause' }).waitFor();
      const rows = p.locator('table.groups tbody tr');
      await rows.first().waitFor();
      const cells = await rows.evaluateAll((trs) =>
        trs.map((tr) => [
          (tr.querySelector('td') as HTMLElement).innerText.replace(/\s+/g, ' '),
          tr.querySelector('a')!.textContent,
          /email\.send/.test((tr as HTMLElement).innerText),
        ]),
      );
      assert.equal(
        cells,
        [
          ['5 1 retrying', 'Error: SMTP 451: mailbox user0@example.com temporarily unavailable', true],
          ['3', "TypeError: Cannot read properties of undefined (reading 'total') in invoice 1", true],
        ],
        view.name,
      );
      const { scroll } = await fitsWidth(p);
      assert.ok(scroll <= p.viewportSize()!.width, `${view.name}: ${scroll}px wide`);
      assert.equal(await axe(p), [], `axe on the groups (${view.name})`);
      await shot(p, `triage-groups-${view.name}`);
      await rows.nth(1).getByRole('link').click();
      await p.getByRole('heading', { level: 1, name: 'Failed tasks' }).waitFor();
      await p.locator('.count', { hasText: /^3 rows match$/ }).waitFor();
      assert.equal(await p.locator('tbody tr').count(), 3, 'the group opens its 3 failures');
      assert.is(await p.locator('.chip', { hasText: 'Cause' }).count(), 1, 'the group shows as a filter that can be removed');
      noProblems(w, `the groups (${view.name})`);
      await w.context.close();
    }
    // deleting what a group's list shows leaves the other group
    const w = await openPage();
    const p = w.page;
    await visit(w, host!.admin, '#/failed?view=groups', /by cause/);
    await p.locator('table.groups tbody tr').nth(1).getByRole('link').click();
    await p.locator('tbody tr').first().waitFor();
    await p
      .getByRole('checkbox', { name: /select all/i })
      .first()
      .check();
    await p.getByRole('button', { name: 'Delete' }).first().click();
    await p
      .getByRole('dialog')
      .getByRole('button', { name: /Delete/ })
      .click();
    await p.getByText(/Deleted 3 failed tasks/).waitFor();
    const left = await sql<{ id: string }>(host!.orm, 'select id from ormq_task where not success order by id');
    assert.equal(
      left.map((r) => r.id),
      [...day.smtp].sort(),
    );
    noProblems(w, 'deleting a group');
    await w.context.close();
  },
);

T('search finds an error word and an args value; a search that misses says where the task is', async ({ host }) => {
  const day = await stageBadDay(host!.orm);
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/failed?search=TypeError', 'Failed tasks');
  await p.locator('.count', { hasText: /^3 rows match$/ }).waitFor();
  assert.equal(await p.locator('tbody tr').count(), 3, 'TypeError: the 3 invoice failures');
  await visit(w, host!.admin, '#/failed?search=SMTP', 'Failed tasks');
  await p.locator('.count', { hasText: /^5 rows match$/ }).waitFor();
  assert.equal(await p.locator('tbody tr').count(), 5);
  // the args box in the filter bar
  await visit(w, host!.admin, '#/failed', 'Failed tasks');
  await p.getByLabel('Args contain').fill('invoice-3');
  await p.getByLabel('Args contain').press('Enter');
  await p.waitForURL(/args=invoice-3/);
  // the rows of the filter before stay shown until the new ones come
  await p.locator('.count', { hasText: /^1 row match$/ }).waitFor();
  assert.equal(
    await p
      .locator('tbody tr')
      .allInnerTexts()
      .then((rows) => rows.map((r) => r.includes('invoice-3'))),
    [true],
  );
  // a successful task's name searched on Failed tasks
  await visit(w, host!.admin, '#/failed?search=sum-2', 'Failed tasks');
  const hint = p.locator('.elsewhere');
  await hint.waitFor();
  assert.is(await hint.innerText(), 'Not in Failed tasks: it is in Successful tasks.');
  await hint.getByRole('link', { name: 'Successful tasks' }).click();
  await p.getByRole('heading', { level: 1, name: 'sum-2' }).waitFor();
  // a failure's id searched on Successful tasks
  await visit(w, host!.admin, `#/successful?search=${day.invoice[0]}`, 'Successful tasks');
  await p.locator('.elsewhere').waitFor();
  assert.is(await p.locator('.elsewhere').innerText(), 'Not in Successful tasks: it is in Failed tasks.');
  noProblems(w, 'search');
  await w.context.close();
});

T.after(closeBrowser);
T.run();
