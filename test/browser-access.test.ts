/**
 * The locked default in a real browser: the access link signs the browser in with a cookie the
 * page cannot read, scoped to the mount path, and a link to the admin on another site still opens it.
 */
import * as assert from 'uvu/assert';
import { TEST_TOKEN } from './helpers/admin.js';
import { browser, closeBrowser, DESKTOP, hostSuite, PHONE, shot, startHost } from './helpers/browser.js';

const Access = hostSuite('browser: the access link', () => startHost({}, 'express', { path: '/other-admin', options: {} }));

/** A context without the tests' Authorization header: only what the browser itself keeps. */
async function bareContext(viewport = DESKTOP) {
  const context = await (await browser()).newContext({ viewport });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  return { context, page, problems };
}

Access('without the cookie the page says where the link is; the link signs in and leaves the URL without the token', async ({ host }) => {
  const { context, page, problems } = await bareContext(PHONE);
  try {
    const refused = await page.goto(host!.admin);
    assert.is(refused?.status(), 403);
    assert.match(await page.locator('h1').innerText(), /needs its access link/);
    await shot(page, 'access-403-phone');

    await page.goto(`${host!.admin}?token=${TEST_TOKEN}`);
    await page.waitForURL(host!.admin);
    await page.locator('main h1').first().waitFor();
    assert.is(page.url(), host!.admin, 'the token is gone from the address bar and history entry');
    const cookies = await context.cookies();
    const mine = cookies.find((c) => c.name === 'ormq_admin');
    assert.ok(mine, JSON.stringify(cookies));
    assert.is(mine!.httpOnly, true);
    assert.is(mine!.sameSite, 'Strict');
    assert.is(mine!.path, '/ops/queue-admin', 'scoped to the mount path the browser opened');
    assert.not.match(await page.evaluate(() => document.cookie), /ormq_admin/, 'page scripts cannot read it');
    assert.is(await page.evaluate(async () => (await fetch('api/failed')).status), 200, "the page's own API calls carry it");

    // Another admin on the same host, under another path, does not receive it.
    const other = await page.goto(host!.extraAdmin!);
    assert.is(other?.status(), 403);
    assert.equal(problems, []);
  } finally {
    await context.close();
  }
});

Access('a link to the admin on another site opens it: the 403 page reloads once so the Strict cookie is sent', async ({ host }) => {
  const { context, page, problems } = await bareContext();
  try {
    await page.goto(`${host!.admin}?token=${TEST_TOKEN}`);
    await page.locator('main h1').first().waitFor();
    // localhost and 127.0.0.1 are different sites: the host app's page under the other name links here.
    const elsewhere = new URL('/', host!.admin.replace('127.0.0.1', 'localhost')).href;
    await page.goto(elsewhere);
    await page.evaluate((href) => {
      const a = document.createElement('a');
      a.href = href;
      a.id = 'to-admin';
      a.textContent = 'queue admin';
      document.body.append(a);
    }, `${host!.admin}?x=1#/failed`);
    await page.click('#to-admin');
    await page.locator('main h1').first().waitFor();
    assert.is(page.url(), `${host!.admin}?x=1`, 'the query kept; the fragment is lost on the way');
    assert.equal(problems, []);
  } finally {
    await context.close();
  }
});

Access.after(() => closeBrowser());
Access.run();
