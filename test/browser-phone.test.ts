/**
 * Every page at 390×844 in headless Chromium, with the bad day staged so that each page has its
 * actions to show: nothing scrolls sideways, and every action button lies inside the screen's width
 * (reached by scrolling down at most), light and dark.
 */
import * as assert from 'uvu/assert';
import { schedule } from '../src/index.js';
import { stageBadDay } from './helpers/bad-day.js';
import { axe, closeBrowser, hostSuite, noProblems, openPage, shot, startHost, visit } from './helpers/browser.js';
import { sql } from './helpers/db.js';
import { CLEAR_ADMIN } from './helpers/suites.js';

const P = hostSuite("browser: every page's actions on a phone", () => startHost());

P("at 390 px no page scrolls sideways and each action button is within the screen's width", async ({ host }) => {
  const orm = host!.orm;
  await sql(orm, `${CLEAR_ADMIN}; truncate ormq_metric, ormq_paused_key`);
  const day = await stageBadDay(orm);
  const s = await schedule(orm.em.fork(), {
    name: 'nightly-reconciliation-of-every-ledger',
    func: 'report.build',
    scheduleType: 'D',
    nextRun: new Date(Date.now() + 3_600_000),
  });
  const [q] = await sql<{ id: string }>(orm, `select id from ormq_queued order by id limit 1`);
  const [ok] = await sql<{ id: string }>(orm, `select id from ormq_task where success limit 1`);
  const routes = [
    '#/',
    '#/successful',
    '#/failed',
    '#/failed?view=groups',
    '#/scheduled',
    '#/queued',
    '#/clusters',
    '#/metrics',
    '#/activity',
    `#/failed/${day.invoice[0]}`,
    `#/successful/${ok!.id}`,
    `#/scheduled/${s.id}`,
    `#/queued/${q!.id}`,
    '#/scheduled/new',
    `#/scheduled/${s.id}/edit`,
  ];
  for (const dark of [false, true]) {
    const w = await openPage({ phone: true, dark });
    const p = w.page;
    for (const route of routes) {
      await visit(w, host!.admin, route);
      // the page's data, not only its frame
      await p.waitForLoadState('networkidle');
      const where = `${route}${dark ? ' (dark)' : ''}`;
      const { scroll, width, off } = await p.evaluate(() => {
        // a menu's buttons count as they show when it is opened
        document.querySelectorAll('details').forEach((d) => (d.open = true));
        const width = window.innerWidth;
        const off = [...document.querySelectorAll('button, a.button, input[type=checkbox].live, .live')]
          .filter((b) => (b as HTMLElement).offsetParent !== null && b.getBoundingClientRect().width > 0)
          .map((b) => ({ text: (b.textContent ?? '').trim() || b.getAttribute('aria-label') || b.tagName, box: b.getBoundingClientRect() }))
          .filter(({ box }) => box.left < 0 || box.right > width)
          .map(({ text, box }) => `${text} at ${Math.round(box.left)}–${Math.round(box.right)}`);
        return { scroll: document.documentElement.scrollWidth, width, off };
      });
      assert.ok(scroll <= width, `${where}: ${scroll}px wide in ${width}px`);
      assert.equal(off, [], `${where}: buttons outside the screen's width`);
      if (!dark) assert.equal(await axe(p), [], `axe on ${where}`);
      await shot(p, `phone-${route.replace(/[#/?=]+/g, '-').replace(/^-|-$/g, '') || 'overview'}${dark ? '-dark' : ''}`);
    }
    noProblems(w, `every page on a phone${dark ? ' (dark)' : ''}`);
    await w.context.close();
  }
});

P.after(closeBrowser);
P.run();
