/**
 * The admin's default and its limits: without `authorize` only requests with its access token are
 * served (a same-host proxy and DNS rebinding included), `allowedHosts` refuses every other Host,
 * and a request body is held to 1 MB however it arrives.
 */
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import express from 'express';
import { queueAdmin, schedule } from '../src/index.js';
import { sql } from './helpers/db.js';
import { insertTask, TEST_TOKEN } from './helpers/admin.js';
import { adminSuite } from './helpers/suites.js';

/** This machine's first non-loopback IPv4 address: a request to it comes from that address, not from 127.0.0.1. */
function outsideAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this test needs a network interface besides loopback');
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A request with exactly these headers (fetch would set Host itself). */
function call(
  address: string,
  port: number,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { host: `localhost:${port}`, ...init.headers };
    for (const [k, v] of Object.entries(headers)) if (v === '' && k !== 'host') delete headers[k];
    if (init.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = Buffer.byteLength(init.body);
    }
    const req = request({ host: address, port, path, method: init.method ?? 'GET', headers, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

const json = (a: Answer) => JSON.parse(a.text);

// Its admins listen on 0.0.0.0: reachable from a non-loopback address too.
const Locked = adminSuite('admin locked by default: only requests with the access token without authorize', { address: '0.0.0.0' });

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

Locked(
  'a same-host forwarder (loopback peer, Host 127.0.0.1:PORT, no forwarding header) gets 403 without the token, 200 with it',
  async (ctx) => {
    const { port } = await ctx.start();
    const id = await insertTask(ctx.orm, { success: false });
    // What nginx's plain proxy_pass, socat or an ssh tunnel sends on from another machine's visitor.
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const r = await call('127.0.0.1', port, '/api/overview', { headers: { host } });
      assert.is(r.status, 403, `${host}: ${r.text}`);
      assert.match(json(r).error.message, /access token/);
      assert.is((await call('127.0.0.1', port, '/', { headers: { host } })).status, 403, 'the page too');
      assert.is((await call('127.0.0.1', port, '/app-TESTJS01.js', { headers: { host } })).status, 403, 'assets too');
      const pause = await call('127.0.0.1', port, '/api/clusters/actions/pause', {
        method: 'POST',
        headers: { host },
        body: JSON.stringify({ key: 'default' }),
      });
      assert.is(pause.status, 403);
    }
    assert.is((await sql(ctx.orm, 'select 1 from ormq_paused_key')).length, 0, 'nothing paused');
    const del = await call('127.0.0.1', port, '/api/failed/actions/delete', {
      method: 'POST',
      headers: { host: `127.0.0.1:${port}` },
      body: JSON.stringify({ ids: [id] }),
    });
    assert.is(del.status, 403);
    assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 1, 'nothing deleted');
    // With the token, from loopback through a forwarder or from another machine alike.
    for (const address of ['127.0.0.1', outsideAddress()]) {
      const ok = await call(address, port, '/api/overview', { headers: { host: `127.0.0.1:${port}`, ...bearer(TEST_TOKEN) } });
      assert.is(ok.status, 200, `${address}: ${ok.text}`);
    }
    const done = await call('127.0.0.1', port, '/api/failed/actions/delete', {
      method: 'POST',
      headers: bearer(TEST_TOKEN),
      body: JSON.stringify({ ids: [id] }),
    });
    assert.is(done.status, 200, done.text);
    assert.is((await call('127.0.0.1', port, '/api/meta', { headers: bearer(`${TEST_TOKEN}x`) })).status, 403, 'a wrong token is no token');
    assert.is((await call('127.0.0.1', port, `/api/meta?token=${TEST_TOKEN}`)).status, 403, 'the API takes no token in its URL');
  },
);

Locked('the access link: the token becomes an HttpOnly SameSite=Strict cookie, then the page loads without it in the URL', async (ctx) => {
  const { port } = await ctx.start();
  const link = await call('127.0.0.1', port, `/?token=${TEST_TOKEN}`);
  assert.is(link.status, 200, link.text);
  const setCookie = String(link.headers['set-cookie']);
  assert.match(setCookie, /^ormq_admin=[^;]+; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
  assert.match(link.text, /http-equiv="refresh" content="0;url=\.\/"/);
  assert.is(link.headers['cache-control'], 'no-store');
  const cookie = setCookie.split(';')[0]!;
  const page = await call('127.0.0.1', port, '/', { headers: { cookie: `theme=dark; ${cookie}` } });
  assert.is(page.status, 200);
  assert.is((await call('127.0.0.1', port, '/api/failed', { headers: { cookie } })).status, 200);
  // Another ormq_admin cookie sent first (another admin on this host name, whatever its port, at a
  // longer path; or one planted by a sibling subdomain) does not hide this admin's own.
  for (const header of [`ormq_admin=another-admins-token-0123; ${cookie}`, `${cookie}; ormq_admin=another-admins-token-0123`]) {
    assert.is((await call('127.0.0.1', port, '/api/failed', { headers: { cookie: header } })).status, 200, header);
  }
  assert.is(
    (await call('127.0.0.1', port, '/api/failed', { headers: { cookie: 'ormq_admin=another-admins-token-0123; ormq_admin=' } })).status,
    403,
  );
  const wrong = await call('127.0.0.1', port, '/?token=not-the-token-at-all');
  assert.is(wrong.status, 403);
  assert.is(wrong.headers['set-cookie'], undefined);
  // Behind a TLS-terminating proxy the cookie is Secure.
  const tls = await call('127.0.0.1', port, `/?token=${TEST_TOKEN}`, { headers: { 'x-forwarded-proto': 'https' } });
  assert.match(String(tls.headers['set-cookie']), /; Secure$/);
});

Locked('DNS rebinding: a page on another name that resolves here carries no cookie and gets 403, GET included', async (ctx) => {
  const { port } = await ctx.start();
  const id = await insertTask(ctx.orm, { success: false });
  for (const host of [`evil.example:${port}`, `127.0.0.1.evil.example:${port}`, `localhost:${port}`]) {
    const r = await call('127.0.0.1', port, '/api/failed', { headers: { host } });
    assert.is(r.status, 403, `Host ${JSON.stringify(host)}: ${r.text}`);
    const del = await call('127.0.0.1', port, '/api/failed/actions/delete', {
      method: 'POST',
      headers: { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ ids: [id] }),
    });
    assert.is(del.status, 403);
  }
  assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 1, 'nothing deleted');
});

Locked(
  'the 403 page says where the link is and how to pass authorize; a link from another site reloads once to send the cookie',
  async (ctx) => {
    const { port } = await ctx.start();
    const page = await call('127.0.0.1', port, '/');
    assert.is(page.status, 403);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.text, /ormq admin: open …\/\?token=…/);
    assert.match(page.text, /ORMQ_ADMIN_TOKEN/);
    assert.match(page.text, /<code>authorize<\/code>/);
    assert.not.match(page.text, /<script/);
    assert.not.match(page.text, /http-equiv="refresh"/, 'no reload for a same-site visit: it would change nothing');
    const fromChat = await call('127.0.0.1', port, '/?a=1&b="<x>', {
      headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
    });
    assert.is(fromChat.status, 403);
    assert.match(fromChat.text, /<meta http-equiv="refresh" content="0;url=\.\/\?a=1&amp;b=&quot;&lt;x&gt;">/);
    const api = await call('127.0.0.1', port, '/api/failed');
    assert.match(String(api.headers['content-type']), /^application\/json/);
    assert.match(json(api).error.message, /Authorization: Bearer <token>/);
    assert.match(json(api).error.message, /authorize/);
  },
);

Locked('without ORMQ_ADMIN_TOKEN a random token is made at mount and logged once as the link; each admin has its own', async (ctx) => {
  const saved = process.env.ORMQ_ADMIN_TOKEN;
  const lines: string[] = [];
  delete process.env.ORMQ_ADMIN_TOKEN;
  let ports: number[];
  try {
    const a = await ctx.start({ basePath: '/queue-admin', log: (level, message) => lines.push(`${level} ${message}`) });
    const b = await ctx.start({ log: (level, message) => lines.push(`${level} ${message}`) });
    ports = [a.port, b.port];
  } finally {
    process.env.ORMQ_ADMIN_TOKEN = saved;
  }
  assert.is(lines.length, 2, lines.join('\n'));
  const [first, second] = lines.map((l) => /\?token=([A-Za-z0-9_-]{32}) /.exec(l)?.[1]);
  assert.ok(first && second && first !== second, lines.join('\n'));
  assert.match(lines[0]!, /^info open \/queue-admin\/\?token=/);
  assert.match(lines[1]!, /^info open …\/\?token=\S+ to sign in \(… is where the admin is mounted\)/);
  const [pa, pb] = ports;
  assert.is((await call('127.0.0.1', pa!, '/queue-admin/api/meta', { headers: bearer(first!) })).status, 200);
  assert.is((await call('127.0.0.1', pa!, '/queue-admin/api/meta', { headers: bearer(TEST_TOKEN) })).status, 403);
  assert.is(
    (await call('127.0.0.1', pb!, '/api/meta', { headers: bearer(first!) })).status,
    403,
    "one admin's token does not open another",
  );
  assert.is((await call('127.0.0.1', pb!, '/api/meta', { headers: bearer(second!) })).status, 200);
  // An explicit token or ORMQ_ADMIN_TOKEN is the operator's own: never written to the log.
  lines.length = 0;
  await ctx.start({ token: 'an-explicit-token-of-ours', log: (level, message) => lines.push(`${level} ${message}`) });
  assert.equal(lines, []);
});

Locked('token options are checked at mount: a short or odd token, or a token beside authorize, stops the app', async (ctx) => {
  assert.throws(() => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, token: 'short' }), /token must be 16 to 256 characters/);
  assert.throws(() => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, token: 'has a space in it, long enough' }), /token must be/);
  assert.throws(
    () => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, token: 'x'.repeat(20), authorize: () => true }),
    /token and authorize exclude each other/,
  );
  const saved = process.env.ORMQ_ADMIN_TOKEN;
  process.env.ORMQ_ADMIN_TOKEN = 'semi;colon;token;value';
  try {
    assert.throws(() => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir }), /ORMQ_ADMIN_TOKEN must be/);
    queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, authorize: () => true }); // with authorize it is not read
  } finally {
    process.env.ORMQ_ADMIN_TOKEN = saved;
  }
  assert.throws(() => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, allowedHosts: [] }), /allowedHosts must be a non-empty array/);
  assert.throws(() => queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, allowedHosts: ['http://a.example'] }), /is not a host name/);
});

Locked('the public health route needs no token', async (ctx) => {
  const { port } = await ctx.start();
  const r = await call(outsideAddress(), port, '/api/health');
  assert.ok(r.status === 200 || r.status === 503, r.text);
});

Locked('readOnly alone does not open the admin', async (ctx) => {
  const { port } = await ctx.start({ readOnly: true });
  assert.is((await call('127.0.0.1', port, '/api/meta')).status, 403);
  assert.is((await call('127.0.0.1', port, '/api/meta', { headers: bearer(TEST_TOKEN) })).status, 200);
});

Locked('given authorize, it decides for every request, from anywhere and whatever the Host, with no token', async (ctx) => {
  const { port } = await ctx.start({ authorize: (req) => req.headers['x-user'] === 'ada' });
  const outside = outsideAddress();
  const ok = await call(outside, port, '/api/failed', { headers: { host: 'queue.example.com', 'x-user': 'ada' } });
  assert.is(ok.status, 200, ok.text);
  const proxied = await call('127.0.0.1', port, '/api/meta', { headers: { 'x-forwarded-for': '203.0.113.9', 'x-user': 'ada' } });
  assert.is(proxied.status, 200);
  const refused = await call(outside, port, '/api/failed', { headers: { host: 'queue.example.com', ...bearer(TEST_TOKEN) } });
  assert.is(refused.status, 403, 'the token means nothing once authorize decides');
  assert.match(json(refused).error.message, /not authorized/);
  const { port: open } = await ctx.start({ authorize: () => true });
  assert.is(
    (await call(outside, open, '/api/meta', { headers: { host: 'queue.example.com' } })).status,
    200,
    'authorize: () => true keeps the admin open',
  );
});

Locked('allowedHosts: any other Host gets 403 on every route, authorize or not; a name, a name:port or .domain matches', async (ctx) => {
  // An authorize that trusts the peer's address: a rebinding page on evil.example passes it.
  const trustsLoopback = (req: { socket: { remoteAddress?: string } }) => /^(::ffff:)?127\./.test(req.socket.remoteAddress ?? '');
  const { port } = await ctx.start({ authorize: trustsLoopback, allowedHosts: ['localhost', `127.0.0.1:${'1'}`, '.ops.example'] });
  const { port: open } = await ctx.start({ authorize: trustsLoopback });
  const pause = (p: number, host: string) =>
    call('127.0.0.1', p, '/api/clusters/actions/pause', {
      method: 'POST',
      headers: { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ key: 'default' }),
    });
  // Without allowedHosts such an authorize lets a rebinding page act; with it, the Host is refused.
  assert.is((await pause(open, `evil.example:${open}`)).status, 200, 'the attack this option stops');
  await sql(ctx.orm, 'delete from ormq_paused_key');
  const refused = await pause(port, `evil.example:${port}`);
  assert.is(refused.status, 403, refused.text);
  assert.match(json(refused).error.message, /Host "evil\.example:\d+" is not one of this admin's allowedHosts/);
  assert.is((await sql(ctx.orm, 'select 1 from ormq_paused_key')).length, 0, 'nothing paused');
  for (const path of ['/', '/api/meta', '/api/health', '/app-TESTJS01.js']) {
    assert.is((await call('127.0.0.1', port, path, { headers: { host: `evil.example:${port}` } })).status, 403, path);
  }
  for (const [host, status] of <[string, number][]>[
    [`localhost:${port}`, 200],
    ['LOCALHOST', 200],
    ['localhost.', 200],
    ['127.0.0.1:1', 200],
    [`127.0.0.1:${port}`, 403],
    ['ops.example', 200],
    ['admin.ops.example:8443', 200],
    ['evilops.example', 403],
    ['ops.example.evil', 403],
    ['', 403],
    [`localhost:${port}@evil.example`, 403],
    ['a.example, localhost', 403],
  ]) {
    const r = await call('127.0.0.1', port, '/api/meta', { headers: { host } });
    assert.is(r.status, status, `Host ${JSON.stringify(host)}: ${r.text}`);
  }
  // Without authorize it comes before the token: a listed Host still needs the token.
  const { port: both } = await ctx.start({ allowedHosts: ['localhost'] });
  assert.is((await call('127.0.0.1', both, '/api/meta', { headers: { host: 'elsewhere', ...bearer(TEST_TOKEN) } })).status, 403);
  assert.is((await call('127.0.0.1', both, '/api/meta', { headers: { host: 'localhost' } })).status, 403);
  assert.is((await call('127.0.0.1', both, '/api/meta', { headers: { host: 'localhost', ...bearer(TEST_TOKEN) } })).status, 200);
});

Locked('Cross-Origin-Opener-Policy and Cross-Origin-Resource-Policy are same-origin on every answer', async (ctx) => {
  const { port } = await ctx.start();
  for (const path of ['/', '/api/meta', '/api/nope', '/app-TESTJS01.js']) {
    const r = await call('127.0.0.1', port, path, { headers: bearer(TEST_TOKEN) });
    assert.is(r.headers['cross-origin-opener-policy'], 'same-origin', path);
    assert.is(r.headers['cross-origin-resource-policy'], 'same-origin', path);
  }
  const refused = await call(outsideAddress(), port, '/api/meta');
  assert.is(refused.headers['cross-origin-resource-policy'], 'same-origin');
});

Locked.run();

// ---------------------------------------------------------------------------------------------
/** A request from this machine with the access token. */
const withToken = (port: number, path: string, init: Parameters<typeof call>[3] = {}) =>
  call('127.0.0.1', port, path, { ...init, headers: { ...bearer(TEST_TOKEN), ...init.headers } });

const Body = adminSuite('admin body limit: 1 MB however the body arrives');

const bigSchedule = (bytes: number) =>
  JSON.stringify({ name: 'big', func: 'work', scheduleType: 'D', nextRun: new Date().toISOString(), args: ['y'.repeat(bytes)] });

Body('behind express.json({ limit: "20mb" }) a 3 MB body is still a 413 and nothing is saved', async (ctx) => {
  const { port } = await ctx.start({ argsLimit: 16 * 1024 * 1024 }, (admin) => {
    const app = express();
    app.use(express.json({ limit: '20mb' }));
    app.use(admin);
    return app;
  });
  const r = await withToken(port, '/api/scheduled', { method: 'POST', body: bigSchedule(3 * 1024 * 1024) });
  assert.is(r.status, 413, r.text.slice(0, 300));
  assert.is(json(r).error.status, 413);
  assert.equal(await sql(ctx.orm, 'select 1 from ormq_schedule'), []);
  const small = await withToken(port, '/api/scheduled', { method: 'POST', body: bigSchedule(1000) });
  assert.is(small.status, 201, 'a body under the limit still goes through the host parser');
});

/**
 * Sends a head declaring (or not) a huge body, then writes until the server stops taking it;
 * resolves with the answer's status line and how much the client could write.
 */
function flood(port: number, chunked: boolean): Promise<{ statusLine: string; written: number }> {
  const total = 200 * 1024 * 1024;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let written = 0;
    let answer = '';
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      socket.destroy();
      resolve({ statusLine: answer.split('\r\n')[0] ?? '', written });
    };
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(
        `POST /api/failed/actions/delete HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: application/json\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n` +
          (chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${total}\r\n\r\n`),
      );
      const piece = Buffer.alloc(64 * 1024, 0x20);
      const framed = chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
      const pump = () => {
        while (!finished && written < total) {
          written += piece.length;
          if (!socket.write(framed)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    // A server that drained the body would take all 200 MB; one that stops reading leaves the client stuck.
    setTimeout(finish, 5_000).unref();
  });
}

Body('an over-limit body is cut off at the limit: 413, the connection closed, the rest never read', async (ctx) => {
  const { port } = await ctx.start();
  for (const chunked of [false, true]) {
    const { statusLine, written } = await flood(port, chunked);
    assert.match(statusLine, /^HTTP\/1\.1 413 /, `${chunked ? 'chunked' : 'declared'}: ${statusLine}`);
    // Kernel buffers hold a few MB on loopback; draining would have taken all 200 MB.
    assert.ok(written < 40 * 1024 * 1024, `${chunked ? 'chunked' : 'declared'}: the client wrote ${written} bytes`);
  }
  const r = await withToken(port, '/api/meta');
  assert.is(r.status, 200, 'the server still answers');
});

Body('a body nested 10,000 deep is a 400 naming the field, never a 500', async (ctx) => {
  const { port } = await ctx.start();
  const deep = `{"name":"deep","func":"work","scheduleType":"D","nextRun":"${new Date().toISOString()}","args":[${'['.repeat(10_000)}${']'.repeat(10_000)}]}`;
  const r = await withToken(port, '/api/scheduled', { method: 'POST', body: deep });
  assert.is(r.status, 400, r.text.slice(0, 300));
  assert.match(json(r).error.fields.args, /deeper than 100/);
  await schedule(ctx.orm.em.fork(), { name: 'x', func: 'work', scheduleType: 'D', nextRun: new Date() });
  const filter = await withToken(port, '/api/scheduled/actions/pause', {
    method: 'POST',
    body: `{"all":true,"filter":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
  });
  assert.is(filter.status, 400);
  assert.equal(
    (await sql<{ repeats: number }>(ctx.orm, 'select repeats from ormq_schedule')).map((s) => s.repeats),
    [-1],
  );
});

Body.run();
