import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { expressApp } from '../fixtures/express-app.js';
import { koaApp } from '../fixtures/koa-app.js';
import { nodeHttpServer } from '../fixtures/node-http-app.js';
import { AUTH, close, insertTask, listen } from './helpers/admin.js';
import { createTestDb } from './helpers/db.js';
import { adminSuite } from './helpers/suites.js';

const F = adminSuite('fixtures: the host apps docs/admin.md shows', { clear: null });

const json = { 'content-type': 'application/json' };

F('Express: the host login guards the admin; viewers see and cannot act, admins act as themselves', async ({ orm, clientDir }) => {
  const server = createServer(expressApp(orm, { clientDir: clientDir.dir }));
  const base = await listen(server);
  try {
    assert.is((await fetch(`${base}/health`)).status, 200);
    assert.is((await fetch(`${base}/queue-admin/`)).status, 401);
    const page = await fetch(`${base}/queue-admin/`, { headers: { 'x-user': 'viewer' } });
    assert.is(page.status, 200);
    const viewerMeta = await (await fetch(`${base}/queue-admin/api/meta`, { headers: { 'x-user': 'viewer' } })).json();
    assert.equal(viewerMeta.pages.failed.can, { view: true, delete: false, resubmit: false });
    const id = await insertTask(orm, { success: false });
    const refused = await fetch(`${base}/queue-admin/api/failed/actions/delete`, {
      method: 'POST',
      headers: { ...json, 'x-user': 'viewer' },
      body: JSON.stringify({ ids: [id] }),
    });
    assert.is(refused.status, 403);
    const done = await fetch(`${base}/queue-admin/api/failed/actions/delete`, {
      method: 'POST',
      headers: { ...json, 'x-user': 'ada', 'x-role': 'admin' },
      body: JSON.stringify({ ids: [id] }),
    });
    assert.is(done.status, 200);
    const detail = await fetch(`${base}/queue-admin/api/failed/${id}`, { headers: { 'x-user': 'ada' } });
    assert.is(detail.status, 404);
  } finally {
    await close(server);
  }
});

F('Koa: read-only for everyone past the login', async ({ orm, clientDir }) => {
  const server = createServer(koaApp(orm, { clientDir: clientDir.dir }).callback());
  const base = await listen(server);
  try {
    assert.is((await fetch(`${base}/health`)).status, 200);
    assert.is((await fetch(`${base}/queue-admin/`)).status, 401);
    const meta = await (await fetch(`${base}/queue-admin/api/meta`, { headers: { 'x-user': 'x' } })).json();
    assert.is(meta.readOnly, true);
    const id = await insertTask(orm);
    const refused = await fetch(`${base}/queue-admin/api/successful/actions/delete`, {
      method: 'POST',
      headers: { ...json, 'x-user': 'x' },
      body: JSON.stringify({ ids: [id] }),
    });
    assert.is(refused.status, 403);
  } finally {
    await close(server);
  }
});

F('node:http: the admin under its basePath, the host everywhere else', async ({ orm, clientDir }) => {
  const server = nodeHttpServer(orm, { clientDir: clientDir.dir });
  const base = await listen(server);
  try {
    assert.is((await fetch(`${base}/health`)).status, 200);
    assert.is((await fetch(`${base}/elsewhere`)).status, 404);
    assert.is((await fetch(`${base}/queue-admin/`)).status, 403, 'no token, no admin');
    assert.is((await fetch(`${base}/queue-admin/`, { headers: AUTH })).status, 200);
    const list = await (await fetch(`${base}/queue-admin/api/scheduled`, { headers: AUTH })).json();
    assert.equal(list.rows, []);
  } finally {
    await close(server);
  }
});

F('the demo: a port in use is a clear error and exit 1, with no link printed', async () => {
  const taken = createServer();
  const base = await listen(taken);
  const db = await createTestDb();
  try {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'fixtures/demo.ts'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, DATABASE_URL: db.url, PORT: new URL(base).port, NODE_V8_COVERAGE: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.is(run.status, 1, `${run.stdout}${run.stderr}`);
    assert.match(run.stderr, new RegExp(`ormq demo: port ${new URL(base).port} is in use; choose another, e\\.g\\. PORT=\\d+ npm start`));
    assert.not.match(run.stdout, /token=/, 'no link to a server that is not there');
  } finally {
    await close(taken);
    await db.drop();
  }
});

F.run();
