/**
 * Live refresh against a busy admin, in headless Chromium with its clock under the test's control:
 * after a 503 the next reload waits twice as long (at least the Retry-After), up to a minute, and
 * an answer brings it back to every five seconds.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AUTH } from './helpers/admin.js';
import { withBareAdmin } from './helpers/browser.js';
import { waitFor } from './helpers/db.js';

const L = suite('browser: live refresh backs off a busy admin');

/** The page's fake time at each list request it made, and how many of them have been answered. */
declare global {
  interface Window {
    listAsked: number[];
    listAnswered: number;
  }
}

L('503s space the reloads out 10, 20, Retry-After 50, then at most 60 s; an answer brings back 5 s', () =>
  withBareAdmin(async ({ url, chromium: browser }) => {
    const context = await browser.newContext({ extraHTTPHeaders: AUTH });
    const page = await context.newPage();
    await page.clock.install();
    await page.addInitScript(() => {
      localStorage.setItem('ormq-admin-live:successful', '1');
      window.listAsked = [];
      window.listAnswered = 0;
      const fetch = window.fetch.bind(window);
      window.fetch = (input, init) => {
        if (!new URL(String(input)).pathname.endsWith('/api/successful')) return fetch(input, init);
        window.listAsked.push(Date.now());
        return fetch(input, init).finally(() => void window.listAnswered++);
      };
    });
    // The first five list requests are turned away, the third asking for 50 s.
    let refused = 0;
    await page.route(
      (url) => url.pathname.endsWith('/api/successful'),
      (route) => {
        if (refused >= 5) return route.continue();
        refused++;
        return route.fulfill({
          status: 503,
          headers: { 'content-type': 'application/json', 'retry-after': refused === 3 ? '50' : '2' },
          body: JSON.stringify({
            error: { status: 503, message: 'The admin is busy with other requests (maxConcurrentReads); try again in a moment' },
          }),
        });
      },
    );
    await page.goto(`${url}/#/successful`);
    await page.getByText(/The admin is busy/).waitFor();
    // Step the page's clock a quarter second at a time, letting each request be answered before the next step.
    const state = () => page.evaluate(() => ({ asked: window.listAsked.length, answered: window.listAnswered }));
    // Bounded: a page that never reloads fails here rather than hanging the suite.
    for (let step = 0; (await state()).asked < 7; step++) {
      assert.ok(step < 2_000, `the list was asked ${(await state()).asked} times in ${step / 4} s of the page's time`);
      await page.clock.runFor(250);
      await waitFor(async () => {
        const s = await state();
        return s.asked === s.answered;
      }, 'the list request answered');
    }
    const asked = await page.evaluate(() => window.listAsked);
    const gaps = asked.slice(1).map((t, i) => t - asked[i]!);
    const expected = [10_000, 20_000, 50_000, 60_000, 60_000, 5_000];
    gaps.forEach((gap, i) =>
      assert.ok(Math.abs(gap - expected[i]!) <= 1_000, `gap ${i + 1}: ${gap} ms, expected about ${expected[i]} (all: ${gaps.join(', ')})`),
    );
    await context.close();
  }),
);

L.run();
