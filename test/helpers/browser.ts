/**
 * Headless Chromium (Debian's, through playwright-core) against a real host app with the admin and a
 * running cluster: the pieces a browser test needs, with axe-core counting every issue at any level.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import Koa from 'koa';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { suite, type Test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Cluster, queueAdmin, type QueueAdminOptions } from '../../src/index.js';
import { koa } from '../../src/admin/adapters/koa.js';
import { AUTH, close, listen, serve, testClient } from './admin.js';
import { freshOrm } from './db.js';

const SHOTS = fileURLToPath(new URL('../screenshots/', import.meta.url));
const AXE = readFileSync(fileURLToPath(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url)), 'utf8');
const TASKS = ['report.build', 'work.recover', 'email.send'];
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

let browserPromise: Promise<Browser> | undefined;
export const browser = () =>
  (browserPromise ??= chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  }));

export interface Host {
  orm: MikroORM;
  /** The admin's entry page, with its trailing slash. */
  admin: string;
  /** With `extra`: the second admin's entry page. */
  extraAdmin?: string;
  cluster: Cluster;
  stop(): Promise<void>;
}

/**
 * A host app on an ephemeral port with the admin mounted (Express 5 at /ops/queue-admin, or Koa 3
 * under /queue-admin), a database of its own and a running cluster. `extra` mounts a second admin
 * on the Express app.
 */
export async function startHost(
  options: QueueAdminOptions = {},
  kind: 'express' | 'koa' = 'express',
  extra?: { path: string; options: QueueAdminOptions },
): Promise<Host> {
  const db = await freshOrm();
  const orm = db.orm;
  const opts = { tasks: TASKS, title: 'Test queue', ...options };
  let server: Server;
  let path: string;
  if (kind === 'express') {
    path = '/ops/queue-admin';
    const app = express();
    app.get('/', (_req, res) => void res.send('host app'));
    app.use(path, queueAdmin(orm, opts));
    if (extra) app.use(extra.path, queueAdmin(orm, { tasks: TASKS, ...extra.options }));
    server = createServer(app);
  } else {
    path = '/queue-admin';
    const app = new Koa();
    app.use(koa(queueAdmin(orm, opts), { prefix: path }));
    app.use((ctx) => {
      ctx.body = 'host app';
    });
    server = createServer(app.callback());
  }
  const origin = await listen(server);
  const cluster = new Cluster(orm, {
    name: 'default',
    workers: 2,
    timeout: 5,
    retry: 10,
    poll: 200,
    saveLimit: 0,
    log: () => {},
    tasks: { 'report.build': async () => ({ rows: 3 }), 'work.recover': async () => 'recovered', 'email.send': async () => 'sent' },
  });
  await cluster.start();
  return {
    orm,
    admin: `${origin}${path}/`,
    extraAdmin: extra ? `${origin}${extra.path}/` : undefined,
    cluster,
    async stop() {
      await cluster.stop();
      await close(server);
      await db.close();
    },
  };
}

/**
 * A suite with a host app of its own: `start` makes it before the first test, `setup` then adds to
 * it; after the last test `teardown` runs, then the host stops.
 */
export function hostSuite<Ctx extends { host?: Host }>(
  name: string,
  start: () => Promise<Host>,
  hooks: { setup?(ctx: Ctx & { host: Host }): Promise<void> | void; teardown?(ctx: Ctx): Promise<void> | void } = {},
): Test<Ctx> {
  const s = suite<Ctx>(name, {} as Ctx);
  s.before(async (ctx) => {
    ctx.host = await start();
    await hooks.setup?.(ctx as Ctx & { host: Host });
  });
  s.after(async (ctx) => {
    await hooks.teardown?.(ctx);
    await ctx.host?.stop();
  });
  return s;
}

export interface Watched {
  page: Page;
  context: BrowserContext;
  problems: string[];
}

/**
 * A page in a fresh context that records console errors and uncaught exceptions. `viewport` and
 * `launch` (another Chromium, started with other flags) override the defaults.
 */
export async function openPage(
  options: {
    dark?: boolean;
    phone?: boolean;
    viewport?: { width: number; height: number };
    timezoneId?: string;
    launch?: () => Promise<Browser>;
  } = {},
): Promise<Watched> {
  const context = await (
    await (options.launch ?? browser)()
  ).newContext({
    viewport: options.viewport ?? (options.phone ? PHONE : DESKTOP),
    colorScheme: options.dark ? 'dark' : 'light',
    timezoneId: options.timezoneId,
  });
  context.setDefaultTimeout(10_000);
  // The admins the tests mount ask for the test token; the cookie a link sets is tested on its own.
  await context.setExtraHTTPHeaders(AUTH);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return { page, context, problems };
}

/** Loads a hash route and waits for its heading and data. */
export async function visit(w: Watched, admin: string, hash: string, heading?: string | RegExp): Promise<void> {
  await w.page.goto(`${admin}${hash}`);
  await w.page.locator('main h1').first().waitFor();
  if (heading) await w.page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await w.page.locator('.loading').first().waitFor({ state: 'detached' });
}

/** Every axe-core issue, whatever its impact. */
export async function axe(page: Page): Promise<string[]> {
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
  return result.violations.map(
    (v) =>
      `${v.impact} ${v.id}: ${v.help} at ${v.nodes
        .map((n) => n.target.join(' '))
        .slice(0, 3)
        .join(', ')}`,
  );
}

export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

/** `expected`: statuses the test provoked on purpose, which Chromium logs as failed loads. */
export function noProblems(w: Watched, where: string, expected: number[] = []): void {
  const provoked = (p: string) => expected.some((status) => p.includes(`status of ${status} `));
  assert.equal(
    w.problems.filter((p) => !provoked(p)),
    [],
    `no console error on ${where}`,
  );
}

/** The page is no wider than the viewport: nothing makes it scroll sideways. */
export async function fitsWidth(page: Page): Promise<{ scroll: number; viewport: number }> {
  return page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, viewport: window.innerWidth }));
}

export async function closeBrowser(): Promise<void> {
  if (browserPromise) await (await browserPromise).close();
  browserPromise = undefined;
}

export interface BareAdmin {
  orm: MikroORM;
  /** The admin's entry page. */
  url: string;
  /** A Chromium of the test's own, closed after it. */
  chromium: Browser;
}

/**
 * The admin alone on node:http over a database of its own, with the built client and a Chromium of
 * its own, for tests that need no host app or cluster; everything is closed after `run`.
 */
export async function withBareAdmin(run: (a: BareAdmin) => Promise<void>, options: QueueAdminOptions = {}): Promise<void> {
  const { orm, close: drop } = await freshOrm();
  const clientDir = testClient({ real: true });
  assert.ok(clientDir.real, 'the built client (npm run build:client)');
  let server: Server | undefined;
  const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const served = await serve(queueAdmin(orm, { clientDir: clientDir.dir, ...options }) as never);
    server = served.server;
    await run({ orm, url: served.url, chromium: b });
  } finally {
    await b.close();
    if (server) await close(server);
    clientDir.cleanup();
    await drop();
  }
}
