/**
 * A bad day on the Clusters page, in headless Chromium at 1280×800, 390×844 and dark: two cluster
 * processes of one key that disagree on saveLimit, one killed with its tasks' packages locked; the
 * page's running counts against the tasks really running, Release and Forget, a pause for a while,
 * a stop that names who asked in the task's error and history, the Activity page, a paused
 * schedule without a countdown, and freshness (Live, "updated", Retry). axe stays clean.
 */
import * as assert from 'uvu/assert';
import { enqueue, schedule } from '../src/index.js';
import { AUTH } from './helpers/admin.js';
import { axe, closeBrowser, fitsWidth, hostSuite, noProblems, openPage, shot, startHost, visit, type Host } from './helpers/browser.js';
import { sql, waitFor } from './helpers/db.js';
import { spawnCluster, type ChildCluster } from './helpers/fleet.js';

interface Ctx {
  host?: Host;
  children: ChildCluster[];
}

const KEY = 'bad-day';
/** Each child: two workers, a fast heartbeat, and long task timeouts so nothing ends on its own. */
// bulk 1: a claim takes one package, so neither process holds one it has no free worker for.
const child = (saveLimit: number) => ({ name: KEY, workers: 2, bulk: 1, heartbeat: 0.2, saveLimit, timeout: 300, retry: 600 });
const started = (c: ChildCluster) => c.lines.filter((l) => l.startsWith('started ')).map((l) => l.slice(8));

const B = hostSuite<Ctx>('browser: the Clusters page on a bad day', () => startHost({ actor: () => 'ops-alice' }), {
  setup(ctx) {
    ctx.children = [];
  },
  async teardown(ctx) {
    for (const c of ctx.children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.all(ctx.children.map((c) => c.exited));
  },
});

async function api(host: Host, path: string): Promise<any> {
  const r = await fetch(new URL(`api/${path}`, host.admin), { headers: AUTH });
  assert.is(r.status, 200, path);
  return r.json();
}

B(
  'running counts equal the tasks really running; a killed process is "not responding" with its stuck packages, Release and Forget; drift flagged; reachable at 390 px',
  async (ctx) => {
    const host = ctx.host!;
    const url = String(host.orm.config.get('clientUrl'));
    const [a, b] = [spawnCluster(url, child(250)), spawnCluster(url, child(5000))];
    ctx.children.push(a, b);
    await waitFor(() => a.lines.includes('ready') && b.lines.includes('ready'), 'both processes ready', 60_000);
    for (let i = 0; i < 3; i++) await enqueue(host.orm.em.fork(), 'announce', [600_000], { cluster: KEY });
    await waitFor(() => started(a).length + started(b).length === 3, 'three tasks started', 30_000);
    const live = await waitFor(async () => {
      const v = await api(host, 'clusters');
      return v.keys.find((k: any) => k.key === KEY)?.running === 3 && v;
    }, 'the heartbeats list all three');
    assert.equal(live.keys.find((k: any) => k.key === KEY).drift, { saveLimit: [250, 5000] });

    const w = await openPage();
    const p = w.page;
    await visit(w, host.admin, '#/clusters', 'Clusters');
    const row = p.locator('tr', { has: p.locator('th', { hasText: KEY }) });
    assert.is(await row.locator('td[data-label="Running"]').innerText(), '3', 'the key runs what its processes run');
    const running = await p
      .locator('article.process')
      .evaluateAll((cards) =>
        cards.map((c) => [
          c.querySelector('h3')!.textContent,
          [...c.querySelectorAll('dt')].find((d) => d.textContent === 'Running')?.nextElementSibling?.textContent,
        ]),
      );
    assert.equal(
      running
        .filter(([name]) => name === KEY)
        .map(([, r]) => r)
        .sort(),
      [`${started(a).length} / 2`, `${started(b).length} / 2`].sort(),
    );
    assert.match(await p.locator('.problems').innerText(), /disagree on saveLimit \(250 vs 5000\)/);
    assert.ok(await p.getByRole('checkbox', { name: 'Live', exact: true }).isChecked(), 'Live is on by default on Clusters');
    assert.match(await p.locator('.updated').innerText(), /^updated \d+ s ago$/);
    assert.equal(await axe(p), []);
    await shot(p, 'clusters-drift');

    // Kill the process running more of them: its tasks were running, its packages are stuck.
    const [dead, other] = started(a).length >= started(b).length ? [a, b] : [b, a];
    const lost = started(dead).length;
    dead.child.kill('SIGKILL');
    await dead.exited;
    const gone = await waitFor(
      async () => (await api(host, 'clusters')).clusters.find((c: any) => c.state === 'not responding'),
      'the killed process stops answering',
    );
    await visit(w, host.admin, '#/clusters', 'Clusters');
    await p.getByRole('heading', { level: 2, name: 'Not responding' }).waitFor();
    assert.is(await row.locator('td[data-label="Running"]').innerText(), String(started(other).length), 'only what still runs');
    assert.is(await row.locator('td[data-label="Stuck"]').innerText(), String(lost));
    const card = p.locator('article.process.dead');
    assert.match(await card.innerText(), /Last seen/);
    assert.match(await card.locator('caption').innerText(), /Were running at its last heartbeat/);
    assert.match(await p.locator('.problems').innerText(), /1 process has stopped answering/);
    // problems first: the dead process above the keys
    const order = await p.locator('main h2').allInnerTexts();
    assert.equal(order.slice(0, 2), ['Not responding', 'Queue keys']);
    assert.equal(await axe(p), []);
    await shot(p, 'clusters-dead-process');

    const ph = await openPage({ phone: true });
    await visit(ph, host.admin, '#/clusters', 'Clusters');
    const fit = await fitsWidth(ph.page);
    assert.ok(fit.scroll <= fit.viewport, `no sideways scrolling at 390 px: ${fit.scroll} > ${fit.viewport}`);
    for (const button of [
      ph.page.locator('summary', { hasText: 'Pause' }).first(),
      ph.page.getByRole('button', { name: /^Stop / }).first(),
      ph.page.getByRole('button', { name: /^Forget / }),
    ]) {
      const box = (await button.boundingBox())!;
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${await button.innerText()} on screen: ${JSON.stringify(box)}`);
    }
    await shot(ph.page, 'clusters-phone');
    assert.equal(await axe(ph.page), []);
    noProblems(ph, 'the Clusters page at 390 px');
    await ph.context.close();

    await card.getByRole('button', { name: /^Release \d+ packages?/ }).click();
    await p.getByRole('dialog').getByRole('button', { name: 'Release' }).click();
    await p
      .locator('.notice')
      .getByText(/Released the packages of/)
      .waitFor();
    assert.equal(
      await sql(host.orm, 'select 1 from ormq_queued where locked_by = ? and lock is not null', [gone.id]),
      [],
      'its packages released',
    );
    await card.getByRole('button', { name: /^Forget/ }).click();
    await p.getByRole('dialog').getByRole('button', { name: 'Forget' }).click();
    await p
      .locator('.notice')
      .getByText(/^Forgot /)
      .waitFor();
    await card.waitFor({ state: 'detached' });
    noProblems(w, 'the Clusters page');
    await w.context.close();
  },
);

B(
  "a pause for 15 min shows since when and by whom; a stop is in the task's error and history and on the Activity page with its actor; a paused schedule has no countdown",
  async (ctx) => {
    const host = ctx.host!;
    const url = String(host.orm.config.get('clientUrl'));
    for (const old of ctx.children.splice(0)) {
      old.child.kill('SIGKILL');
      await old.exited;
    }
    await sql(host.orm, 'truncate ormq_queued, ormq_cluster, ormq_admin_log, ormq_paused_key');
    const c = spawnCluster(url, child(250));
    ctx.children.push(c);
    await waitFor(() => c.lines.includes('ready'), 'ready', 60_000);
    const taskId = await enqueue(host.orm.em.fork(), 'announce', [600_000], { cluster: KEY });
    await waitFor(() => started(c).includes(taskId), 'the task started', 30_000);
    await waitFor(async () => (await api(host, 'clusters')).clusters.some((x: any) => x.tasks.length === 1), 'the heartbeat lists it');

    const w = await openPage({ dark: true });
    const p = w.page;
    await visit(w, host.admin, '#/clusters', 'Clusters');
    await p.getByRole('button', { name: /^Stop / }).click();
    await p.getByRole('dialog').getByRole('button', { name: 'Stop task' }).click();
    await p
      .locator('.notice')
      .getByText(/Asked bad-day to stop/)
      .waitFor();
    const row = p.locator('tr', { has: p.locator('th', { hasText: KEY }) });
    await row.locator('summary', { hasText: 'Pause' }).click();
    await row.getByRole('button', { name: 'for 15 min' }).click();
    await row.locator('.tag.warn', { hasText: 'paused' }).waitFor();
    assert.match(await row.locator('.pause-info').innerText(), /^since .+ by ops-alice, ends in 15 min$/);
    assert.equal(await axe(p), []);
    await shot(p, 'clusters-paused-dark');

    const [saved] = await waitFor(async () => {
      const rows = await sql<{ result: any }>(host.orm, 'select result from ormq_task where id = ?', [taskId]);
      return rows.length > 0 && rows;
    }, 'the stopped task saved');
    assert.is(saved!.result.message, 'Task stopped from the admin by ops-alice');
    await visit(w, host.admin, `#/failed/${taskId}`);
    await p.getByText('Task stopped from the admin by ops-alice').first().waitFor();
    assert.match(await p.locator('main').innerText(), /ops-alice[\s\S]*Asked cluster "bad-day"/);

    await visit(w, host.admin, '#/activity', 'Activity');
    const entries = await p
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].slice(1, 4).map((td) => td.textContent)));
    assert.equal(entries, [
      ['ops-alice', 'pause', 'Clusters'],
      ['ops-alice', 'stop', 'Clusters'],
    ]);
    await p.getByLabel('Action').selectOption('stop');
    await p.waitForURL(/action=stop/);
    await p.locator('tbody tr').nth(1).waitFor({ state: 'detached' });
    assert.match(await p.locator('tbody tr').innerText(), /Asked cluster "bad-day" \(.* pid \d+\) to stop ".+" \(package \d+\)/);
    await p.locator('tbody tr').getByRole('link', { name: taskId }).waitFor();
    assert.equal(await axe(p), []);
    await shot(p, 'activity-dark');

    const s = await schedule(host.orm.em.fork(), {
      name: 'nightly',
      func: 'report.build',
      scheduleType: 'I',
      minutes: 10,
      repeats: -1,
      nextRun: new Date(Date.now() + 540_000),
    });
    await visit(w, host.admin, `#/scheduled/${s.id}`, 'nightly');
    assert.match(await p.locator('.field', { hasText: 'Next run' }).innerText(), /in 9 min/);
    await p.getByRole('button', { name: 'Pause', exact: true }).click();
    await p.locator('.field', { hasText: 'Next run' }).locator('.tag.warn').waitFor();
    const next = await p.locator('.field', { hasText: 'Next run' }).innerText();
    assert.match(next, /paused/);
    assert.not.match(next, /\bin \d+ min\b/, 'no countdown to a run that will not happen');
    noProblems(w, 'pauses, stops and activity');
    await w.context.close();
  },
);

B('freshness: Live is remembered per page, a new filter dims the old rows with a busy sign, and an error offers Retry', async (ctx) => {
  const host = ctx.host!;
  const w = await openPage();
  const p = w.page;
  await visit(w, host.admin, '#/failed', 'Failed tasks');
  const liveBox = p.getByRole('checkbox', { name: 'Live', exact: true });
  assert.is(await liveBox.isChecked(), false, 'off by default on a list');
  await visit(w, host.admin, '#/', 'Overview');
  assert.is(await liveBox.isChecked(), true, 'on by default on the overview');
  await liveBox.uncheck();
  await p.reload();
  await p.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  assert.is(await liveBox.isChecked(), false, 'the choice is remembered');

  // a slow answer for the next filter: the old rows stay, dimmed, with a busy sign
  await visit(w, host.admin, '#/failed', 'Failed tasks');
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  await p.route(/api\/failed\?.*search=zzz/, async (route) => {
    await held;
    await route.continue();
  });
  await p.getByLabel('Search', { exact: true }).fill('zzz');
  await p.getByLabel('Search', { exact: true }).press('Enter');
  await p.locator('section.list.stale[aria-busy="true"] .busy').waitFor();
  release();
  await p.locator('section.list.stale').waitFor({ state: 'detached' });

  // a failing answer: Retry loads again
  let fail = true;
  await p.route(/api\/metrics/, (route) =>
    fail ? route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":{"message":"boom"}}' }) : route.continue(),
  );
  await p.goto(`${host.admin}#/metrics`);
  const retry = p.getByRole('button', { name: 'Retry' });
  await retry.waitFor();
  fail = false;
  await retry.click();
  await retry.waitFor({ state: 'detached' });
  noProblems(w, 'freshness', [500]);
  await w.context.close();
});

B.after(closeBrowser);
B.run();
