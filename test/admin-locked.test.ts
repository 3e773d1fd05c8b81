/**
 * The admin's default and its limits: without `authorize` only direct local requests are served
 * (DNS rebinding included), and a request body is held to 1 MB however it arrives.
 */
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import express from 'express';
import { schedule } from '../src/index.js';
import { sql } from './helpers/db.js';
import { insertTask } from './helpers/admin.js';
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
function call(address: string, port: number, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { host: `localhost:${port}`, ...init.headers };
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
const Locked = adminSuite('admin locked by default: only direct local requests without authorize', { address: '0.0.0.0' });

Locked('a direct local request is served: loopback peer, Host localhost, 127.0.0.1 or [::1], any port', async (ctx) => {
  const { port } = await ctx.start();
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST', '127.0.0.1:1', 'localhost:8080']) {
    const r = await call('127.0.0.1', port, '/api/meta', { headers: { host } });
    assert.is(r.status, 200, `${host}: ${r.text}`);
  }
  assert.is((await call('127.0.0.1', port, '/')).status, 200, 'the page too');
  const id = await insertTask(ctx.orm, { success: false });
  const done = await call('127.0.0.1', port, '/api/failed/actions/delete', { method: 'POST', body: JSON.stringify({ ids: [id] }) });
  assert.is(done.status, 200, done.text);
});

Locked('a request from another machine gets 403: JSON saying how to open it for the API, a short page for the browser', async (ctx) => {
  const { port } = await ctx.start();
  const outside = outsideAddress();
  const id = await insertTask(ctx.orm, { success: false });
  const api = await call(outside, port, '/api/failed');
  assert.is(api.status, 403, api.text);
  assert.match(String(api.headers['content-type']), /^application\/json/);
  assert.is(json(api).error.status, 403);
  assert.match(json(api).error.message, /authorize/);
  assert.match(json(api).error.message, /does not come from this machine/);
  const page = await call(outside, port, '/');
  assert.is(page.status, 403);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(page.text, /only local requests/);
  assert.match(page.text, /<code>authorize<\/code>/);
  assert.not.match(page.text, /<script/);
  assert.is(page.headers['cross-origin-opener-policy'], 'same-origin');
  const asset = await call(outside, port, '/app-TESTJS01.js');
  assert.is(asset.status, 403, 'assets too');
  const del = await call(outside, port, '/api/failed/actions/delete', { method: 'POST', body: JSON.stringify({ ids: [id] }) });
  assert.is(del.status, 403);
  assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 1, 'nothing deleted');
});

Locked('readOnly alone does not open the admin to other machines', async (ctx) => {
  const { port } = await ctx.start({ readOnly: true });
  const r = await call(outsideAddress(), port, '/api/meta');
  assert.is(r.status, 403, r.text);
  assert.is((await call('127.0.0.1', port, '/api/meta')).status, 200);
});

Locked('a loopback request that came through a proxy (Forwarded, X-Forwarded-For, X-Real-IP, X-Forwarded-Host) gets 403', async (ctx) => {
  const { port } = await ctx.start();
  for (const headers of <Record<string, string>[]>[
    { forwarded: 'for=203.0.113.9' }, { 'x-forwarded-for': '203.0.113.9' }, { 'x-forwarded-for': '127.0.0.1' },
    { 'x-real-ip': '203.0.113.9' }, { 'x-forwarded-host': 'admin.example.com' },
  ]) {
    const r = await call('127.0.0.1', port, '/api/meta', { headers });
    assert.is(r.status, 403, `${JSON.stringify(headers)}: ${r.text}`);
    assert.match(json(r).error.message, /proxy/);
  }
});

Locked('DNS rebinding: a local request whose Host is another name gets 403, GET included', async (ctx) => {
  const { port } = await ctx.start();
  const id = await insertTask(ctx.orm, { success: false });
  for (const host of [`evil.example:${port}`, `127.0.0.1.evil.example:${port}`, 'localhost.evil.example', '127.0.0.2', '0.0.0.0', `localhost:${port}@evil.example`, '', 'localhost:x']) {
    const r = await call('127.0.0.1', port, '/api/failed', { headers: { host } });
    assert.is(r.status, 403, `Host ${JSON.stringify(host)}: ${r.text}`);
    assert.match(json(r).error.message, /Host/);
    const del = await call('127.0.0.1', port, '/api/failed/actions/delete', { method: 'POST', headers: { host }, body: JSON.stringify({ ids: [id] }) });
    assert.is(del.status, 403);
  }
  assert.is((await sql(ctx.orm, 'select 1 from ormq_task')).length, 1, 'nothing deleted');
});

Locked('given authorize, it decides for every request, from anywhere and whatever the Host', async (ctx) => {
  const { port } = await ctx.start({ authorize: (req) => req.headers['x-user'] === 'ada' });
  const outside = outsideAddress();
  const ok = await call(outside, port, '/api/failed', { headers: { host: 'queue.example.com', 'x-user': 'ada' } });
  assert.is(ok.status, 200, ok.text);
  const proxied = await call('127.0.0.1', port, '/api/meta', { headers: { 'x-forwarded-for': '203.0.113.9', 'x-user': 'ada' } });
  assert.is(proxied.status, 200);
  const refused = await call(outside, port, '/api/failed', { headers: { host: 'queue.example.com' } });
  assert.is(refused.status, 403);
  assert.match(json(refused).error.message, /not authorized/);
  const { port: open } = await ctx.start({ authorize: () => true });
  assert.is((await call(outside, open, '/api/meta', { headers: { host: 'queue.example.com' } })).status, 200, 'authorize: () => true keeps the admin open');
});

Locked('Cross-Origin-Opener-Policy and Cross-Origin-Resource-Policy are same-origin on every answer', async (ctx) => {
  const { port } = await ctx.start();
  for (const path of ['/', '/api/meta', '/api/nope', '/app-TESTJS01.js']) {
    const r = await call('127.0.0.1', port, path);
    assert.is(r.headers['cross-origin-opener-policy'], 'same-origin', path);
    assert.is(r.headers['cross-origin-resource-policy'], 'same-origin', path);
  }
  const refused = await call(outsideAddress(), port, '/api/meta');
  assert.is(refused.headers['cross-origin-resource-policy'], 'same-origin');
});

Locked.run();

// ---------------------------------------------------------------------------------------------
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
  const r = await call('127.0.0.1', port, '/api/scheduled', { method: 'POST', body: bigSchedule(3 * 1024 * 1024) });
  assert.is(r.status, 413, r.text.slice(0, 300));
  assert.is(json(r).error.status, 413);
  assert.equal(await sql(ctx.orm, 'select 1 from ormq_schedule'), []);
  const small = await call('127.0.0.1', port, '/api/scheduled', { method: 'POST', body: bigSchedule(1000) });
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
        `POST /api/failed/actions/delete HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: application/json\r\n` +
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
  const r = await call('127.0.0.1', port, '/api/meta');
  assert.is(r.status, 200, 'the server still answers');
});

Body('a body nested 10,000 deep is a 400 naming the field, never a 500', async (ctx) => {
  const { port } = await ctx.start();
  const deep = `{"name":"deep","func":"work","scheduleType":"D","nextRun":"${new Date().toISOString()}","args":[${'['.repeat(10_000)}${']'.repeat(10_000)}]}`;
  const r = await call('127.0.0.1', port, '/api/scheduled', { method: 'POST', body: deep });
  assert.is(r.status, 400, r.text.slice(0, 300));
  assert.match(json(r).error.fields.args, /deeper than 100/);
  await schedule(ctx.orm.em.fork(), { name: 'x', func: 'work', scheduleType: 'D', nextRun: new Date() });
  const filter = await call('127.0.0.1', port, '/api/scheduled/actions/pause', { method: 'POST', body: `{"all":true,"filter":${'['.repeat(10_000)}${']'.repeat(10_000)}}` });
  assert.is(filter.status, 400);
  assert.equal((await sql<{ repeats: number }>(ctx.orm, 'select repeats from ormq_schedule')).map((s) => s.repeats), [-1]);
});

Body.run();
