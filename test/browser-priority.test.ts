/** The Queued tasks page's priority and serial keys, in headless Chromium: shown, filtered and edited. */
import { enqueue, enqueueMany } from '../src/index.js';
import * as assert from 'uvu/assert';
import { axe, hostSuite, noProblems, openPage, startHost, visit } from './helpers/browser.js';
import { sql, waitFor } from './helpers/db.js';
import { CLEAR_ADMIN } from './helpers/suites.js';

const B = hostSuite('browser: priority on Queued tasks', () => startHost());
B.before.each(async ({ host }) => {
  await sql(host!.orm, CLEAR_ADMIN);
});

B('the list shows each priority and filters by it; the detail edits it and names what a serial package waits behind', async ({ host }) => {
  const em = host!.orm.em.fork();
  // On a key no cluster serves: the host's own cluster would run them before the page is read.
  const cluster = 'night-shift';
  await enqueueMany(em, [
    { func: 'report.build', name: 'urgent-report', priority: 5, cluster },
    { func: 'report.build', name: 'plain-report', cluster },
    { func: 'email.send', name: 'first-mail', serial: 'acct-9', cluster },
  ]);
  await enqueue(em, 'email.send', [], { name: 'second-mail', serial: 'acct-9', priority: -1, cluster });
  const w = await openPage();
  const p = w.page;
  await visit(w, host!.admin, '#/queued', 'Queued tasks');
  await p.getByRole('columnheader', { name: 'Priority' }).waitFor();
  const urgent = p.getByRole('row', { name: /urgent-report/ });
  await urgent.waitFor();
  assert.match(await urgent.innerText(), /\b5\b/);
  assert.match(await p.getByRole('row', { name: /second-mail/ }).innerText(), /-1/);

  await p.getByLabel('Priority').selectOption('5');
  await waitFor(async () => (await p.locator('tbody tr').count()) === 1, 'the list filtered to priority 5');
  assert.match(await p.locator('tbody tr').first().innerText(), /urgent-report/);
  assert.equal(await axe(p), [], 'axe on the filtered list');

  const [{ id }] = (await sql<{ id: string }>(host!.orm, "select id from ormq_queued where payload->>'name' = 'second-mail'")) as [
    { id: string },
  ];
  await visit(w, host!.admin, `#/queued/${id}`);
  await p.getByText(/Serial key acct-9: waits behind first-mail/).waitFor();
  await p.getByLabel('Priority').fill('high');
  await p.getByRole('button', { name: 'Save' }).click();
  await p.getByText(/Priority must be an integer/).waitFor();
  await p.getByLabel('Priority').fill('7');
  await p.getByRole('button', { name: 'Save' }).click();
  await waitFor(
    async () => (await sql<{ priority: number }>(host!.orm, 'select priority from ormq_queued where id = ?', [id]))[0]!.priority === 7,
    'the priority saved',
  );
  assert.equal(await axe(p), [], 'axe on the detail with its edit form');
  noProblems(w, 'Queued tasks', [400]);
  await w.context.close();
});

B.run();
