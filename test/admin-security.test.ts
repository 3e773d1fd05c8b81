/** The admin under hostile input: cross-site requests, bad bodies, traversal, and permissions. */
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import express from 'express';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enqueue, schedule } from '../src/index.js';
import type { MikroORM } from '@mikro-orm/postgresql';
import { BODY_LIMIT, CSP } from '../src/admin/http.js';
import { sql } from './helpers/db.js';
import { ASSET_JS, AUTH, insertTask } from './helpers/admin.js';
import { adminSuite, type AdminCtx } from './helpers/suites.js';

interface Ctx extends AdminCtx {
  seen: string[];
}

const STACK = /\n\s+at\s|node_modules|\.ts:\d+|\.js:\d+/;

function securitySuite(name: string) {
  return adminSuite<Ctx>(name, {
    setup(ctx) {
      ctx.seen = [];
      const start = ctx.start;
      ctx.start = async (options, wrap) => {
        const served = await start(options, wrap);
        const api = served.api;
        // Every answer this suite sees is checked for stack traces at the end.
        const record = <F extends (...a: any[]) => Promise<{ text: string }>>(f: F) =>
          (async (...a: Parameters<F>) => {
            const r = await f(...a);
            ctx.seen.push(r.text);
            return r;
          }) as F;
        return {
          ...served,
          api: { get: record(api.get), post: record(api.post), put: record(api.put), patch: record(api.patch), call: record(api.call) },
        };
      };
    },
  });
}

/** Ends a suite with the check that none of the answers it saw carried a stack trace. */
function finish(s: ReturnType<typeof securitySuite>) {
  s('no answer in this suite carried a stack trace or a source path', (ctx) => {
    assert.ok(ctx.seen.length > 0);
    for (const text of ctx.seen) assert.not.match(text, STACK, `a stack trace in: ${text.slice(0, 200)}`);
  });
  s.run();
}

/** A request with exactly these headers (fetch will not send a Host of our choosing). */
function post(url: string, path: string, body: unknown, headers: Record<string, string>) {
  return new Promise<{ status: number; json: any; text: string }>((resolve, reject) => {
    const u = new URL(url);
    const text = JSON.stringify(body);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...AUTH, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const t = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, text: t, json: t ? JSON.parse(t) : undefined });
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** A request with the exact path given: fetch would normalise `..` and `%2e%2e` away. */
function raw(
  url: string,
  path: string,
  init: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string; chunks?: Buffer[] } = {},
) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path, method: init.method ?? 'GET', headers: { ...AUTH, ...init.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    if (init.chunks) {
      for (const c of init.chunks) req.write(c);
      req.end();
    } else req.end(init.body);
  });
}

async function seed(orm: MikroORM) {
  const task = await insertTask(orm, { name: 'victim', success: false });
  const s = await schedule(orm.em.fork(), { name: 'victim', func: 'work', scheduleType: 'D', nextRun: new Date(Date.now() + 86_400_000) });
  await enqueue(orm.em.fork(), 'work', [], { name: 'victim' });
  const [q] = await sql<{ id: string }>(orm, 'select id from ormq_queued');
  return { task, schedule: s.id, queued: Number(q!.id) };
}

async function untouched(orm: MikroORM) {
  assert.is((await sql(orm, 'select 1 from ormq_task')).length, 1, 'task row still there');
  const [s] = await sql<any>(orm, 'select version, repeats from ormq_schedule');
  assert.equal(s, { version: 1, repeats: -1 }, 'schedule unchanged');
  const [q] = await sql<any>(orm, 'select key from ormq_queued');
  assert.is(q.key, 'default', 'package unchanged');
  assert.is((await sql(orm, 'select 1 from ormq_admin_log')).length, 0, 'nothing logged');
  assert.is((await sql(orm, 'select 1 from ormq_limit')).length, 0, 'no limit set');
}

// ---------------------------------------------------------------------------------------------
const CrossSite = securitySuite('admin security: cross-site mutations and request shape');

CrossSite('POST, PUT, PATCH and DELETE from another site are refused with 403 and change nothing', async (ctx) => {
  const { api } = await ctx.start();
  const ids = await seed(ctx.orm);
  const requests: [string, string, unknown][] = [
    ['POST', 'api/failed/actions/delete', { ids: [ids.task] }],
    ['POST', 'api/scheduled/actions/pause', { all: true }],
    ['PUT', `api/scheduled/${ids.schedule}`, { version: 1, repeats: 0 }],
    ['PATCH', `api/queued/${ids.queued}`, { key: 'stolen' }],
    ['DELETE', `api/failed/${ids.task}`, {}],
    ['POST', 'api/clusters/actions/limits', { func: 'work', limit: { concurrency: 1 } }],
  ];
  const hostile: Record<string, string>[] = [
    { origin: 'http://evil.example' },
    { origin: 'null' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' },
    { 'sec-fetch-site': 'none' },
  ];
  for (const [method, path, body] of requests) {
    for (const headers of hostile) {
      const r = await api.call(method, path, body, headers);
      assert.is(r.status, 403, `${method} ${path} ${JSON.stringify(headers)}: ${r.text}`);
      assert.is(r.json.error.status, 403);
      assert.match(r.json.error.message, /Cross-site/);
    }
  }
  await untouched(ctx.orm);
  // The same request from the admin's own page goes through: the refusals above are about origin.
  const host = `127.0.0.1:${(ctx.servers[0]!.address() as { port: number }).port}`;
  const ok = await api.post(
    'api/failed/actions/delete',
    { ids: [ids.task] },
    { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
  );
  assert.is(ok.status, 200, ok.text);
  assert.is(ok.json.done, 1);
});

CrossSite('a mutation needs a JSON content type (415), valid JSON (400) and at most 1 MB (413)', async (ctx) => {
  const { api, url } = await ctx.start();
  const ids = await seed(ctx.orm);
  const body = JSON.stringify({ ids: [ids.task] });
  for (const type of [
    undefined,
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonp',
  ]) {
    const headers: Record<string, string> = type ? { 'content-type': type } : {};
    const r = await raw(url, '/api/failed/actions/delete', { method: 'POST', headers, body });
    assert.is(r.status, 415, `${type}: ${r.text}`);
    assert.is(JSON.parse(r.text).error.status, 415);
    ctx.seen.push(r.text);
  }
  for (const bad of ['{"ids": [', "{'ids': []}", '', 'undefined']) {
    const r = await raw(url, '/api/failed/actions/delete', { method: 'POST', headers: { 'content-type': 'application/json' }, body: bad });
    assert.is(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
    assert.match(JSON.parse(r.text).error.message, /JSON/);
    ctx.seen.push(r.text);
  }
  const big = Buffer.from(JSON.stringify({ ids: [ids.task], pad: 'x'.repeat(1024 * 1024) }));
  const declared = await raw(url, '/api/failed/actions/delete', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': big.length },
    body: big,
  });
  assert.is(declared.status, 413, declared.text);
  const chunked = await raw(url, '/api/failed/actions/delete', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    chunks: [big.subarray(0, 600_000), big.subarray(600_000)],
  });
  assert.is(chunked.status, 413, chunked.text);
  ctx.seen.push(declared.text, chunked.text);
  const charset = await api.post('api/failed/actions/delete', { ids: [ids.task] }, { 'content-type': 'application/json; charset=utf-8' });
  assert.is(charset.status, 200, 'a charset parameter is fine');
  await api.get('api/meta');
});

CrossSite('a hostile limit or list columns is a 400 naming the field, and writes nothing', async (ctx) => {
  const { api, url } = await ctx.start();
  await seed(ctx.orm);
  const limit = (l: unknown, func: unknown = 'work') => JSON.stringify({ func, limit: l });
  const whole = 'must be a whole number from 1 to 2147483647';
  const seconds = 'must be a number of seconds greater than 0, at most 86,400';
  const bodies: [string, string, RegExp][] = [
    [limit({ concurrency: 1e308 }), 'concurrency', new RegExp(whole)],
    ['{"func":"work","limit":{"concurrency":1e400}}', 'concurrency', new RegExp(whole)],
    [limit({ concurrency: 2147483648 }), 'concurrency', new RegExp(whole)],
    [limit({ concurrency: -1 }), 'concurrency', new RegExp(whole)],
    [limit({ concurrency: 1.5 }), 'concurrency', new RegExp(whole)],
    [limit({ concurrency: 'NaN' }), 'concurrency', new RegExp(whole)],
    [limit({ concurrency: '5' }), 'concurrency', new RegExp(whole)],
    [limit({ rate: { count: 1, perSeconds: 0 } }), 'rate.perSeconds', new RegExp(seconds)],
    [limit({ rate: { count: 1, perSeconds: 1e12 } }), 'rate.perSeconds', new RegExp(seconds)],
    [limit({ rate: { count: 1, perSeconds: 'Infinity' } }), 'rate.perSeconds', new RegExp(seconds)],
    [limit({ rate: { count: 1e6, perSeconds: 1 } }), 'rate.count', /at most|from 1 to 10,000/],
    [limit({ concurrency: 1, constructor: 1 }), 'constructor', /not a limit field/],
    ['{"func":"work","limit":{"rate":{"count":1,"perSeconds":1,"__proto__":{}}}}', 'rate.__proto__', /not a rate field/],
    ['{"func":"work","__proto__":{"limit":{"concurrency":1}}}', 'limit', /Body must be \{ func, limit \}/],
    [limit({ concurrency: 1 }, 'x'.repeat(10_240)), 'func', /at most 256 characters/],
    ['{"func":"wo\\u0000rk","limit":{"concurrency":1}}', 'func', /NUL/],
    [limit({ concurrency: 1 }, ['work']), 'func', /non-empty string/],
    ['{"func":"work","limit":' + '{"rate":'.repeat(5_000) + '1' + '}'.repeat(5_000) + '}', 'limit', /deeper than 100 levels/],
    ['['.repeat(100_000) + ']'.repeat(100_000), '', /deeper than 100 levels/],
  ];
  for (const [body, field, message] of bodies) {
    const r = await raw(url, '/api/clusters/actions/limits', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    ctx.seen.push(r.text);
    const error = JSON.parse(r.text).error;
    assert.is(r.status, 400, `${body.slice(0, 80)}: ${r.text.slice(0, 300)}`);
    assert.match(error.message, message, body.slice(0, 80));
    if (field) assert.ok(error.fields?.[field], `${body.slice(0, 80)} names ${field}: ${r.text.slice(0, 300)}`);
  }
  // A form post (what another site can send without a preflight) is refused by its type, from this site or another.
  const forms: [Record<string, string>, number, RegExp][] = [
    [{ 'content-type': 'application/x-www-form-urlencoded' }, 415, /Content-Type must be application\/json/],
    [{ 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }, 403, /Cross-site/],
    [{ 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' }, 403, /Cross-site/],
  ];
  for (const [headers, status, message] of forms) {
    const r = await raw(url, '/api/clusters/actions/limits', { method: 'POST', headers, body: 'func=work&limit=null' });
    ctx.seen.push(r.text);
    assert.is(r.status, status, `${JSON.stringify(headers)}: ${r.text}`);
    assert.match(JSON.parse(r.text).error.message, message);
  }
  const lie = await raw(url, '/api/clusters/actions/limits', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: 'func=work&limit=null',
  });
  assert.equal([lie.status, /not valid JSON/.test(JSON.parse(lie.text).error.message)], [400, true], lie.text);
  const huge = Buffer.from(limit({ concurrency: 1 }, 'x'.repeat(2 * 1024 * 1024)));
  const large = await raw(url, '/api/clusters/actions/limits', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': huge.length },
    body: huge,
  });
  assert.is(large.status, 413, large.text);
  await untouched(ctx.orm);

  const optional = 'must be among args, attemptCount';
  for (const page of ['successful', 'failed']) {
    for (const [columns, field] of [
      ['__proto__', optional],
      ['constructor', optional],
      ['ärgs', optional],
      ['ARGS', optional],
      ['args,', optional],
      [',,,', optional],
      [','.repeat(10_000), 'must be at most 100 characters'],
      ['args,'.repeat(30), 'must be at most 100 characters'],
    ]) {
      const r = await api.get(`api/${page}?columns=${columns}`);
      assert.is(r.status, 400, `${page} ${columns.slice(0, 40)}: ${r.text.slice(0, 200)}`);
      assert.equal(r.json.error.fields, { columns: field }, `${page} ${columns.slice(0, 40)}`);
    }
    const nul = await api.get(`api/${page}?columns=args%00`);
    assert.is(nul.status, 400);
    assert.match(nul.json.error.fields.columns, /NUL/);
    const repeated = await api.get(`api/${page}?columns=args,attemptCount,args`);
    assert.is(repeated.status, 200, 'a name given twice is shown once');
    assert.ok(
      repeated.json.rows.every((row: Record<string, unknown>) => 'args' in row && 'attemptCount' in row),
      'repeated names',
    );
  }
});

CrossSite('unknown routes, pages, ids, actions and fields are 404 JSON errors', async (ctx) => {
  const { api } = await ctx.start();
  const ids = await seed(ctx.orm);
  for (const path of [
    'api',
    'api/',
    'api/nope',
    'api/failed/nope/extra/more',
    'api/archive',
    `api/failed/${'0'.repeat(32)}`,
    'api/failed/XYZ',
    'api/scheduled/0',
    'api/scheduled/99999',
    'api/queued/-1',
    `api/failed/${ids.task}/field/secret`,
    `api/failed/${ids.task}/field/name`,
    'api/scheduled/99999/field/args',
    'nope.js',
    'app-AAAAAAAA.js',
    'api/%E0%A4%A',
  ]) {
    const r = await api.get(path);
    assert.is(r.status, 404, `${path}: ${r.status} ${r.text}`);
    assert.is(r.json.error.status, 404, path);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  }
  const action = await api.post('api/failed/actions/nope', { ids: [ids.task] });
  assert.is(action.status, 404);
  const edit = await api.put('api/scheduled/99999', { version: 1 });
  assert.is(edit.status, 404);
});

CrossSite('asset paths cannot leave the client folder, however they are encoded', async (ctx) => {
  // A secret beside the client folder, and the repository's own files above it.
  const root = mkdtempSync(join(tmpdir(), 'ormq-traversal-'));
  const dist = join(root, 'dist');
  mkdirSync(dist);
  writeFileSync(join(root, 'secret.txt'), 'TOP-SECRET-CONTENT');
  writeFileSync(join(dist, 'index.html'), '<!doctype html><script type="module" src="./app-AAAAAAAA.js"></script>');
  writeFileSync(join(dist, 'app-AAAAAAAA.js'), 'export {}');
  try {
    const { url } = await ctx.start({ clientDir: dist });
    const nested = await ctx.start({ clientDir: dist, basePath: '/qa' });
    const paths = [
      '/../secret.txt',
      '/..%2fsecret.txt',
      '/..%2Fsecret.txt',
      '/%2e%2e%2fsecret.txt',
      '/%2e%2e/secret.txt',
      '/..%252fsecret.txt',
      '/%252e%252e%252fsecret.txt',
      '/..\\secret.txt',
      '/..%5csecret.txt',
      '/app-AAAAAAAA.js/../../secret.txt',
      '/./../secret.txt',
      '/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/....//secret.txt',
      '/index.html%00.js',
      '/%00',
      '//secret.txt',
      '/api/..%2f..%2fsecret.txt',
      '/..%c0%afsecret.txt',
    ];
    for (const base of [url, nested.url]) {
      const prefix = base === nested.url ? '/qa' : '';
      for (const p of paths) {
        const r = await raw(base, prefix + p);
        assert.ok(r.status === 404 || r.status === 400, `${prefix}${p}: ${r.status}`);
        assert.not.match(r.text, /TOP-SECRET|root:x:|devDependencies/, `${prefix}${p} leaked a file`);
        ctx.seen.push(r.text);
      }
    }
    const fine = await raw(url, '/app-AAAAAAAA.js');
    assert.is(fine.status, 200, 'the control request is served');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

CrossSite('security headers on every kind of response; no-store on the API', async (ctx) => {
  const { url } = await ctx.start({ basePath: '/qa' });
  const check = (r: { status: number; headers: Record<string, string | string[] | undefined> }, what: string, api: boolean) => {
    assert.is(r.headers['content-security-policy'], CSP, what);
    assert.match(CSP, /script-src 'self'; style-src 'self'/);
    assert.not.match(CSP, /unsafe-inline|unsafe-eval/);
    assert.is(r.headers['x-content-type-options'], 'nosniff', what);
    assert.is(r.headers['referrer-policy'], 'same-origin', what);
    if (api) assert.is(r.headers['cache-control'], 'no-store', what);
  };
  check(await raw(url, '/qa/'), 'entry page', false);
  check(await raw(url, '/qa'), 'redirect', false);
  const asset = await raw(url, `/qa/${ASSET_JS}`);
  check(asset, 'asset', false);
  check(await raw(url, `/qa/${ASSET_JS}`, { headers: { 'if-none-match': String(asset.headers.etag) } }), '304', false);
  check(await raw(url, '/qa/api/meta'), 'API', true);
  check(await raw(url, '/qa/api/failed/nope'), 'API 404', true);
  check(await raw(url, '/qa/api/failed?limit=0'), 'API 400', true);
  check(
    await raw(url, '/qa/api/failed/actions/delete', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }),
    'API 415',
    true,
  );
  check(await raw(url, '/elsewhere'), 'outside the base path', true);
});

CrossSite("the redirect to the mount folder stays on this site whatever the mount path's last segment holds", async (ctx) => {
  // A host mounting one admin per tenant: the last segment of the path is the visitor's.
  const { url } = await ctx.start({}, (admin) => express().use('/:tenant', admin));
  for (const [segment, folder] of [
    ['acme', 'acme/'],
    ['https:evil.example', 'https:evil.example/'],
    ['javascript:alert(1)', 'javascript:alert(1)/'],
  ]) {
    const r = await raw(url, `/${segment}?x=1`);
    assert.is(r.status, 302, segment);
    const location = String(r.headers.location);
    const to = new URL(location, `${url}/${segment}?x=1`);
    assert.is(to.origin, new URL(url).origin, `${segment}: Location ${location} leaves the site`);
    assert.is(to.pathname, `/${folder}`, segment);
    assert.is(to.search, '?x=1', segment);
  }
});

CrossSite('Sec-Fetch-Site: same-origin is enough whatever Host says; otherwise Origin must match Host or X-Forwarded-Host', async (ctx) => {
  // Behind a proxy the admin needs authorize: without it, it answers only direct local requests.
  const { url } = await ctx.start({ authorize: () => true });
  const path = '/api/queued/actions/delete';
  const ok = async (headers: Record<string, string>) => {
    await enqueue(ctx.orm.em.fork(), 'work');
    const r = await post(url, path, { all: true, filter: {} }, headers);
    assert.is(r.status, 200, `${JSON.stringify(headers)}: ${r.text}`);
    assert.is(r.json.done, 1);
  };
  const refused = async (headers: Record<string, string>) => {
    const r = await post(url, path, { all: true, filter: {} }, headers);
    assert.is(r.status, 403, `${JSON.stringify(headers)}: ${r.text}`);
    assert.match(r.json.error.message, /Cross-site/);
  };
  // nginx's default `proxy_set_header Host $proxy_host`: the app sees the upstream's name.
  const proxied = { host: 'backend:3000', origin: 'https://admin.example.com' };
  await ok({ ...proxied, 'sec-fetch-site': 'same-origin' });
  await ok({ ...proxied, 'x-forwarded-host': 'admin.example.com' });
  await ok({ host: 'backend:3000', origin: 'http://backend:3000' });
  await refused(proxied);
  await refused({ ...proxied, 'x-forwarded-host': 'evil.example' });
  await refused({ ...proxied, origin: 'https://evil.example', 'x-forwarded-host': 'admin.example.com' });
  await refused({ ...proxied, 'x-forwarded-host': 'admin.example.com', 'sec-fetch-site': 'cross-site' });
  await refused({ ...proxied, 'x-forwarded-host': 'admin.example.com', 'sec-fetch-site': 'same-site' });
  await refused({ host: 'admin.example.com', origin: 'https://admin.example.com', 'sec-fetch-site': 'none' });
});

finish(CrossSite);

// ---------------------------------------------------------------------------------------------
const Permissions = securitySuite('admin security: readOnly and authorize');

/** Every mutation the API offers, for a seeded set of rows. */
function everyMutation(ids: { task: string; schedule: number; queued: number }): [string, string, unknown][] {
  const out: [string, string, unknown][] = [];
  for (const page of ['successful', 'failed'])
    for (const action of ['delete', 'resubmit'])
      out.push(
        ['POST', `api/${page}/actions/${action}`, { ids: [ids.task] }],
        ['POST', `api/${page}/actions/${action}`, { all: true, filter: {} }],
      );
  for (const action of ['delete', 'pause', 'resume', 'run'])
    out.push(
      ['POST', `api/scheduled/actions/${action}`, { ids: [ids.schedule] }],
      ['POST', `api/scheduled/actions/${action}`, { all: true }],
    );
  for (const action of ['delete', 'release'])
    out.push(['POST', `api/queued/actions/${action}`, { ids: [ids.queued] }], ['POST', `api/queued/actions/${action}`, { all: true }]);
  out.push(['POST', 'api/scheduled', { func: 'work', scheduleType: 'D', nextRun: new Date().toISOString() }]);
  out.push(['PUT', `api/scheduled/${ids.schedule}`, { version: 1, repeats: 0 }]);
  out.push(['PATCH', `api/queued/${ids.queued}`, { key: 'elsewhere' }]);
  out.push(['POST', 'api/clusters/actions/limits', { func: 'work', limit: { concurrency: 1 } }]);
  return out;
}

Permissions('readOnly answers 403 to every action, bulk included, and meta says only view is allowed', async (ctx) => {
  const { api } = await ctx.start({ readOnly: true });
  const ids = await seed(ctx.orm);
  for (const [method, path, body] of everyMutation(ids)) {
    const r = await api.call(method, path, body);
    assert.is(r.status, 403, `${method} ${path}: ${r.text}`);
    assert.match(r.json.error.message, /read-only/);
  }
  await untouched(ctx.orm);
  const meta = await api.get('api/meta');
  assert.is(meta.json.readOnly, true);
  for (const [page, { can }] of Object.entries(meta.json.pages as Record<string, { can: Record<string, boolean> }>)) {
    for (const [action, allowed] of Object.entries(can)) assert.is(allowed, action === 'view', `${page}.${action}`);
  }
  assert.is((await api.get('api/failed')).status, 200, 'viewing still works');
  assert.is((await api.get(`api/failed/${ids.task}`)).status, 200);
});

Permissions('authorize decides per request, page and action; meta.can reflects it', async (ctx) => {
  const asked: string[] = [];
  const { api } = await ctx.start({
    async authorize(req, { page, action }) {
      asked.push(`${page}:${action}`);
      if (req.headers['x-role'] === 'admin') return true;
      return action === 'view' && page !== 'queued';
    },
  });
  const ids = await seed(ctx.orm);
  for (const [method, path, body] of everyMutation(ids)) {
    const r = await api.call(method, path, body);
    assert.is(r.status, 403, `${method} ${path}: ${r.text}`);
    assert.match(r.json.error.message, /not authorized/);
  }
  await untouched(ctx.orm);
  assert.ok(asked.includes('scheduled:pause') && asked.includes('queued:edit') && asked.includes('failed:resubmit'));
  assert.is((await api.get('api/queued')).status, 403, 'view denied');
  assert.is((await api.get(`api/queued/${ids.queued}`)).status, 403);
  assert.is((await api.get('api/queued/filters')).status, 403);
  assert.is((await api.get('api/failed')).status, 200);
  const meta = await api.get('api/meta');
  assert.equal(meta.json.pages.failed.can, { view: true, delete: false, resubmit: false });
  assert.equal(meta.json.pages.queued.can, { view: false, edit: false, release: false, delete: false });
  const adminMeta = await api.get('api/meta', { 'x-role': 'admin' });
  assert.equal(adminMeta.json.pages.queued.can, { view: true, edit: true, release: true, delete: true });
  const allowed = await api.post('api/scheduled/actions/pause', { ids: [ids.schedule] }, { 'x-role': 'admin' });
  assert.equal(allowed.json, { done: 1, remaining: 0 });
});

/** Sends a request's headers and part of its body, never the rest; resolves with the answer that comes meanwhile. */
function withheld(url: string, path: string, method: string, part: string, declared: number) {
  return new Promise<{ status: number; json: any; bodyStillOpen: boolean }>((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path, method, headers: { 'content-type': 'application/json', 'content-length': declared } },
      (res) => {
        const bodyStillOpen = !req.writableEnded;
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')), bodyStillOpen });
        });
      },
    );
    req.on('error', reject);
    req.write(part);
  });
}

Permissions('PATCH queued asks authorize before it reads the body: a refused caller gets 403 while its body is still open', async (ctx) => {
  const asked: string[] = [];
  const { url, api } = await ctx.start({
    authorize(req, { page, action }) {
      asked.push(`${page}:${action}`);
      if (req.headers['x-role'] === 'releaser') return page === 'queued' && (action === 'release' || action === 'view');
      return false;
    },
  });
  const ids = await seed(ctx.orm);
  const refused = await withheld(url, `/api/queued/${ids.queued}`, 'PATCH', '{"key":', BODY_LIMIT);
  assert.is(refused.status, 403);
  assert.ok(refused.bodyStillOpen, 'answered before the body was read');
  assert.match(refused.json.error.message, /queued/);
  assert.equal(asked, ['queued:edit', 'queued:release']);
  // A caller who may release passes the first check; the body then decides, precisely.
  const edit = await api.patch(`api/queued/${ids.queued}`, { key: 'elsewhere' }, { 'x-role': 'releaser' });
  assert.is(edit.status, 403, edit.text);
  assert.match(edit.json.error.message, /edit on queued/);
  await untouched(ctx.orm);
  const release = await api.patch(`api/queued/${ids.queued}`, { lock: null }, { 'x-role': 'releaser' });
  assert.is(release.status, 200, release.text);
  // readOnly refuses the same way, saying why.
  const { url: readOnlyUrl } = await ctx.start({ readOnly: true, authorize: () => true });
  const readOnly = await withheld(readOnlyUrl, `/api/queued/${ids.queued}`, 'PATCH', '{', 1000);
  assert.is(readOnly.status, 403);
  assert.ok(readOnly.bodyStillOpen);
  assert.match(readOnly.json.error.message, /read-only/);
});

Permissions('a throwing authorize is a 500 without details, never an allow', async (ctx) => {
  const { api } = await ctx.start({
    authorize() {
      throw new Error('auth backend down');
    },
  });
  const ids = await seed(ctx.orm);
  const consoleError = console.error;
  console.error = () => {};
  try {
    const r = await api.post('api/failed/actions/delete', { ids: [ids.task] });
    assert.is(r.status, 500);
    assert.not.match(r.text, /auth backend down/);
  } finally {
    console.error = consoleError;
  }
  await untouched(ctx.orm);
});

finish(Permissions);

// ---------------------------------------------------------------------------------------------
const Data = securitySuite('admin security: stored markup comes back as data');

Data('HTML and script in names, groups, results and payloads are returned intact as JSON', async (ctx) => {
  const { api } = await ctx.start();
  const script = '<script>alert("x")</script>';
  const attr = '"><img src=x onerror=alert(1)>';
  const closing = "</script><script>alert('y')</script>";
  const id = await insertTask(ctx.orm, {
    name: script,
    group: attr,
    func: 'work',
    success: false,
    result: { error: 'Error', message: closing, html: script },
  });
  await schedule(ctx.orm.em.fork(), { name: attr, func: script, scheduleType: 'D', nextRun: new Date(), kwargs: { note: closing } });
  await enqueue(ctx.orm.em.fork(), closing, [script], { name: script });
  const list = await api.get('api/failed');
  assert.match(list.headers.get('content-type') ?? '', /^application\/json/);
  assert.is(list.json.rows[0].name, script);
  assert.is(list.json.rows[0].group, attr);
  assert.is(list.json.rows[0].shortResult, `Error: ${closing}`);
  const detail = await api.get(`api/failed/${id}`);
  assert.equal(detail.json.object.result, { error: 'Error', message: closing, html: script });
  const found = await api.get(`api/failed?search=${encodeURIComponent('<script>')}`);
  assert.is(found.json.rows.length, 1);
  const sched = await api.get('api/scheduled');
  assert.is(sched.json.rows[0].name, attr);
  assert.is(sched.json.rows[0].func, script);
  assert.equal(sched.json.rows[0].kwargs, { note: closing });
  const queued = await api.get('api/queued');
  assert.equal([queued.json.rows[0].name, queued.json.rows[0].func], [script, closing]);
  const filters = await api.get('api/failed/filters');
  assert.equal(filters.json.group, [attr]);
  const page = await api.get('');
  assert.not.ok(page.text.includes('alert('), 'nothing from the database is in the page itself');
});

finish(Data);
