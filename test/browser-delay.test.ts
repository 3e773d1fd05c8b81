/** The Queued tasks page with a delayed package, in headless Chromium at desktop and phone sizes. */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { enqueue } from '../src/index.js';
import { AUTH } from './helpers/admin.js';
import { withBareAdmin } from './helpers/browser.js';
import { sql, waitFor } from './helpers/db.js';

const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));

const D = suite('browser: a delayed queued task');

D('the list says "waits until", and the detail\'s edit sets when it may run', () =>
  withBareAdmin(async ({ orm, url, chromium: browser }) => {
    await enqueue(orm.em.fork(), 'email.send', ['a@b.c'], { name: 'later-package', delay: 7200 });
    await enqueue(orm.em.fork(), 'email.send', ['d@e.f'], { name: 'now-package' });
    const [{ id }] = await sql<{ id: string }>(orm, "select id from ormq_queued where payload->>'name' = 'later-package'");
    mkdirSync(SHOTS, { recursive: true });
    for (const [label, viewport] of [
      ['desktop', { width: 1280, height: 800 }],
      ['phone', { width: 390, height: 844 }],
    ] as const) {
      const context = await browser.newContext({ viewport, timezoneId: 'UTC', extraHTTPHeaders: AUTH });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${url}/#/queued`);
      const later = page.getByRole('row', { name: /later-package/ });
      await later.waitFor();
      assert.match(await later.innerText(), /waits until/);
      assert.not.match(await page.getByRole('row', { name: /now-package/ }).innerText(), /waits until/);
      await page.screenshot({ path: `${SHOTS}queued-delayed-${label}.png`, fullPage: true });
      await page.goto(`${url}/#/queued/${id}`);
      await page.getByLabel('Waits until').waitFor();
      if (label === 'desktop') {
        await page.getByLabel('Waits until').fill('2031-01-02T03:04:05');
        await page.getByRole('button', { name: 'Save' }).click();
        await waitFor(async () => {
          const [r] = await sql<{ run_at: string }>(orm, 'select run_at from ormq_queued where id = ?', [id]);
          return new Date(r!.run_at).toISOString() === '2031-01-02T03:04:05.000Z';
        }, 'run_at saved from the form');
        await page
          .getByText(/waits until/)
          .first()
          .waitFor();
      }
      await page.screenshot({ path: `${SHOTS}queued-delayed-detail-${label}.png`, fullPage: true });
      assert.equal(errors, []);
      await context.close();
    }
    const [row] = await sql<{ lock: unknown }>(orm, 'select lock from ormq_queued where id = ?', [id]);
    assert.is(row!.lock, null, 'the edit left the lock alone');
  }),
);

D.run();
