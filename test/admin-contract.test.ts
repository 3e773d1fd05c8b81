/**
 * One contract, every way of mounting the admin: Express 4 and 5, Koa 2 and 3 (prefix, koa-mount)
 * and node:http, each at the root, at a nested path, and behind a proxy that adds a public prefix
 * and strips it again. No adapter is given a base path beyond its own mount. A body parser the host
 * mounts in front of the admin leaves it working.
 */
import * as assert from 'uvu/assert';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import mount from 'koa-mount';
import type { MikroORM } from '@mikro-orm/postgresql';
import { enqueue, queueAdmin, schedule, type QueueAdminHandler } from '../src/index.js';
import { koa } from '../src/admin/adapters/koa.js';
import { sql } from './helpers/db.js';
import { AUTH, client, close, insertTask, listen, TEST_TOKEN } from './helpers/admin.js';
import { adminSuite, type AdminCtx, type Api } from './helpers/suites.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
/** An adapter's harness: an app with the admin at `mount` and a host route at /host-route. */
type Harness = (admin: () => QueueAdminHandler, mount: string, basePath: (m: string) => QueueAdminHandler) => Handler;

const hostRoute = (res: ServerResponse) => {
  res.setHeader('content-type', 'text/plain');
  res.end('host app');
};

const koaHostRoute = (ctx: { path: string; body: unknown }, next: () => Promise<unknown>) => {
  if (ctx.path !== '/host-route') return next();
  ctx.body = 'host app';
};

const harnesses: Record<string, Harness> = {
  'Express 4': (admin, mount) => {
    const app = express4();
    app.get('/host-route', (_req, res) => hostRoute(res));
    app.use(mount, admin());
    return app;
  },
  'Express 5': (admin, mount) => {
    const app = express5();
    app.get('/host-route', (_req, res) => hostRoute(res));
    app.use(mount, admin());
    return app;
  },
  'Koa 2 with prefix': (admin, mount) => {
    const app = new Koa2();
    app.use(koaHostRoute);
    app.use(koa(admin(), { prefix: mount }));
    return app.callback();
  },
  'Koa 3 with prefix': (admin, mount) => {
    const app = new Koa3();
    app.use(koaHostRoute);
    app.use(koa(admin(), { prefix: mount }));
    return app.callback();
  },
  'Koa 3 under koa-mount': (admin, mountPath) => {
    const app = new Koa3();
    app.use(koaHostRoute);
    app.use(mount(mountPath, koa(admin())));
    return app.callback();
  },
  'node:http with basePath': (_admin, mount, basePath) => {
    const admin = basePath(mount);
    return (req, res) => {
      if (req.url === '/host-route') return hostRoute(res);
      admin(req, res);
    };
  },
};

/** A reverse proxy serving the app under /public/x, stripping that prefix before forwarding. */
function proxy(target: string): Server {
  const PREFIX = '/public/x';
  return createServer((req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    if ((query < 0 ? url : url.slice(0, query)) === PREFIX) {
      res.writeHead(301, { location: `x/${query < 0 ? '' : url.slice(query)}` }).end();
      return;
    }
    if (!url.startsWith(`${PREFIX}/`)) {
      res.writeHead(404).end('not proxied');
      return;
    }
    const upstream = request(new URL(url.slice(PREFIX.length), target), { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
}

/** The real client build, served by admins the tests mount themselves. */
const contractSuite = (name: string) => adminSuite(name, { realClient: true, clear: null });

/** Relative URLs in the entry page's src/href attributes (data: URLs aside). */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((u) => !u.startsWith('data:'));
}

async function contract(orm: MikroORM, publicBase: string, mountUrl: string, hasBareForm: boolean) {
  // The entry page; "<mount>" without its slash redirects relatively, so it works under any prefix,
  // and keeps the query: the access link works with or without the slash.
  if (hasBareForm) {
    const bare = mountUrl.replace(/\/$/, '');
    const r = await fetch(`${bare}?token=${TEST_TOKEN}`, { redirect: 'manual' });
    assert.ok(r.status === 301 || r.status === 302, `redirect from ${bare}: ${r.status}`);
    const location = r.headers.get('location')!;
    assert.not.match(location, /^(\/|[a-z]+:)/i, 'Location is relative');
    assert.is(new URL(location, bare).href, `${mountUrl}?token=${TEST_TOKEN}`);
  }
  assert.is((await fetch(mountUrl)).status, 403, 'no token, no page');
  assert.is((await fetch(new URL('api/meta', mountUrl))).status, 403, 'no token, no API');
  // The access link: the token becomes a cookie scoped by the browser to the folder it opened.
  const link = await fetch(`${mountUrl}?token=${TEST_TOKEN}&x=1`, { redirect: 'manual' });
  assert.is(link.status, 200);
  const setCookie = link.headers.get('set-cookie') ?? '';
  assert.match(setCookie, new RegExp(`^ormq_admin=${TEST_TOKEN};`));
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  assert.not.match(setCookie, /Path=/i, 'no Path: the browser scopes it to the mount path it sees, proxy prefix included');
  assert.is(link.headers.get('referrer-policy'), 'no-referrer');
  assert.match(
    await link.text(),
    /<meta http-equiv="refresh" content="0;url=\.\/\?x=1">/,
    'reloaded without the token, other parameters kept',
  );
  const cookie = setCookie.split(';')[0]!;
  const fetch2 = (url: string | URL, init: RequestInit = {}) =>
    fetch(url, { ...init, headers: { cookie, ...(init.headers as Record<string, string>) } });
  const page = await fetch2(mountUrl);
  assert.is(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.is(page.headers.get('cache-control'), 'no-cache');
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  const html = await page.text();
  const urls = assetUrls(html);
  assert.ok(urls.length >= 2, `assets referenced: ${urls.join(', ')}`);
  for (const u of urls) assert.match(u, /^\.\/[A-Za-z0-9._-]+$/, `asset URL ${u} is relative to the page`);

  // An asset: immutable, ETag → 304, gzip when asked for.
  const script = urls.find((u) => u.endsWith('.js'))!;
  const assetUrl = new URL(script, mountUrl).href;
  const plain = await fetch2(assetUrl, { headers: { 'accept-encoding': 'identity' } });
  assert.is(plain.status, 200);
  assert.match(plain.headers.get('content-type') ?? '', /javascript/);
  assert.match(plain.headers.get('cache-control') ?? '', /immutable/);
  const body = await plain.text();
  const etag = plain.headers.get('etag')!;
  assert.ok(etag, 'ETag');
  const again = await fetch2(assetUrl, { headers: { 'if-none-match': etag } });
  assert.is(again.status, 304);
  assert.is(await again.text(), '');
  const gz = await fetch2(assetUrl, { headers: { 'accept-encoding': 'gzip' } });
  assert.is(gz.headers.get('content-encoding'), 'gzip');
  assert.is(await gz.text(), body, 'gzip decodes to the same file');

  // The API, relative to the page, as the client computes it: new URL('api/', document.baseURI).
  const apiBase = new URL('api/', mountUrl);
  const meta = await fetch2(new URL('meta', apiBase));
  assert.is(meta.status, 200);
  assert.is(meta.headers.get('cache-control'), 'no-store');
  assert.ok(Array.isArray((await meta.json()).pages.failed.columns));

  const id = await insertTask(orm, { name: `contract-${Math.random()}`, success: false, result: { error: 'Error', message: 'x' } });
  const list = await (await fetch2(new URL('failed?limit=500', apiBase))).json();
  assert.ok(
    list.rows.some((r: { id: string }) => r.id === id),
    'the seeded failure is listed',
  );

  const origin = new URL(publicBase).origin;
  const del = await fetch2(new URL('failed/actions/delete', apiBase), {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ ids: [id] }),
  });
  assert.is(del.status, 200, await del.clone().text());
  assert.equal(await del.json(), { done: 1, remaining: 0 });
  assert.is((await sql(orm, 'select 1 from ormq_task where id = ?', [id])).length, 0);
}

for (const [name, harness] of Object.entries(harnesses)) {
  const test = contractSuite(`contract: ${name}`);

  const build = (ctx: AdminCtx, mountPath: string) =>
    harness(
      () => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }),
      mountPath,
      (m) => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, basePath: m }),
    );

  test('at the root', async (ctx) => {
    const server = createServer(build(ctx, '/'));
    const base = await listen(server);
    try {
      await contract(ctx.orm, base, `${base}/`, false);
      const host = await fetch(`${base}/host-route`);
      assert.is(await host.text(), 'host app', 'the host app still answers its own routes');
    } finally {
      await close(server);
    }
  });

  test('at /ops/deep/queue-admin', async (ctx) => {
    const server = createServer(build(ctx, '/ops/deep/queue-admin'));
    const base = await listen(server);
    try {
      await contract(ctx.orm, base, `${base}/ops/deep/queue-admin/`, true);
      const host = await fetch(`${base}/host-route`);
      assert.is(await host.text(), 'host app');
      const outside = await fetch(`${base}/ops/deep/queue-administrator`);
      assert.is(outside.status, 404, 'a path that only starts like the mount is not the admin');
    } finally {
      await close(server);
    }
  });

  test('behind a proxy that adds and strips /public/x', async (ctx) => {
    const app = createServer(build(ctx, '/ops/deep/queue-admin'));
    const appBase = await listen(app);
    const front = proxy(appBase);
    const base = await listen(front);
    try {
      await contract(ctx.orm, base, `${base}/public/x/ops/deep/queue-admin/`, true);
    } finally {
      await close(front);
      await close(app);
    }
  });

  test('at the root behind the proxy', async (ctx) => {
    const app = createServer(build(ctx, '/'));
    const appBase = await listen(app);
    const front = proxy(appBase);
    const base = await listen(front);
    try {
      await contract(ctx.orm, base, `${base}/public/x/`, true);
    } finally {
      await close(front);
      await close(app);
    }
  });

  test.run();
}

const Http = contractSuite('contract: node:http outside basePath');
Http('calls next() when given one, else answers 404', async (ctx) => {
  const admin = queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, basePath: '/queue-admin' });
  let passed = 0;
  const server = createServer((req, res) =>
    admin(req, res, () => {
      passed++;
      hostRoute(res);
    }),
  );
  const base = await listen(server);
  const lone = createServer(admin);
  const loneBase = await listen(lone);
  try {
    assert.is(await (await fetch(`${base}/elsewhere`)).text(), 'host app');
    assert.is(passed, 1);
    const r = await fetch(`${loneBase}/elsewhere`);
    assert.is(r.status, 404);
    assert.is((await r.json()).error.status, 404);
    assert.is((await fetch(`${loneBase}/queue-admin/`, { headers: AUTH })).status, 200);
  } finally {
    await close(server);
    await close(lone);
  }
});
Http.run();

const Koa = contractSuite('contract: Koa adapter passes other paths on');
Koa('a path outside the prefix reaches the next middleware, and Koa answers as usual', async (ctx) => {
  const app = new Koa3();
  app.use(koa(queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }), { prefix: '/queue-admin' }));
  app.use((c) => {
    c.status = 418;
    c.body = 'teapot';
  });
  const server = createServer(app.callback());
  const base = await listen(server);
  try {
    const r = await fetch(`${base}/queue-adminx`);
    assert.is(r.status, 418);
    assert.is(await r.text(), 'teapot');
    const page = await fetch(`${base}/queue-admin/`, { headers: AUTH });
    assert.is(page.status, 200);
  } finally {
    await close(server);
  }
});
Koa.run();

// ---------------------------------------------------------------------------------------------
const Parsers = adminSuite('contract: body parsers mounted in front of the admin');

/** The failure this guards against is a request that never ends: give up well before the suite would. */
const guarded = (api: Api, path: string, body: unknown) =>
  Promise.race([
    api.post(path, body),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${path} never answered`)), 10_000).unref()),
  ]);

Parsers('behind express.json() the admin uses the parsed body; a body read and dropped is a 400 saying so', async (ctx) => {
  const app = express5();
  // A host middleware that drains the body without keeping it.
  app.use(
    '/drained',
    (req, _res, next) => {
      req.resume();
      req.on('end', () => next());
    },
    queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }),
  );
  app.use(express5.json());
  app.use('/qa', queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }));
  const url = await ctx.host(app.listen(0, '127.0.0.1') as unknown as Server);
  await enqueue(ctx.orm.em.fork(), 'work');
  const r = await guarded(client(`${url}/qa/`), 'api/queued/actions/delete', { all: true, filter: {} });
  assert.equal([r.json.done, r.json.remaining], [1, 0], r.text);
  const drained = await guarded(client(`${url}/drained/`), 'api/queued/actions/delete', { all: true, filter: {} });
  assert.is(drained.status, 400, drained.text);
  assert.match(drained.json.error.message, /already read by another middleware; mount the admin before body parsers/);
});

Parsers('under Koa, a body parser that sets ctx.request.body leaves the admin working', async (ctx) => {
  const app = new Koa3();
  app.use(async (c, next) => {
    const chunks: Buffer[] = [];
    for await (const chunk of c.req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    (c.request as unknown as { body?: unknown }).body = text ? JSON.parse(text) : undefined;
    await next();
  });
  app.use(koa(queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }), { prefix: '/qa' }));
  const url = await ctx.host(app.listen(0, '127.0.0.1'));
  await enqueue(ctx.orm.em.fork(), 'work');
  const s = await schedule(ctx.orm.em.fork(), { func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 60_000) });
  const api = client(`${url}/qa/`);
  const r = await guarded(api, 'api/queued/actions/delete', { all: true, filter: {} });
  assert.equal([r.json.done, r.json.remaining], [1, 0], r.text);
  const created = await guarded(api, 'api/scheduled', {
    func: 'work',
    scheduleType: 'H',
    nextRun: new Date(Date.now() + 60_000).toISOString(),
  });
  assert.is(created.status, 201, created.text);
  const paused = await guarded(api, 'api/scheduled/actions/pause', { ids: [s.id] });
  assert.equal(paused.json, { done: 1, remaining: 0 });
});

Parsers.run();
