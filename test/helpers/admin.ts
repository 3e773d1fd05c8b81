/** Servers, a stand-in client build and seed rows for the admin's suites. */
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MikroORM } from '@mikro-orm/postgresql';
import { ERROR_GROUP } from '../../src/error-groups.js';
import { bucketOf } from '../../src/histogram.js';
import { newTaskId } from '../../src/names.js';
import { sql } from './db.js';

const realDist = fileURLToPath(new URL('../../client/dist', import.meta.url));

export const ASSET_JS = 'app-TESTJS01.js';
const ASSET_CSS = 'app-TESTCSS1.css';

/**
 * A minimal build with the real one's shape (index.html + hashed assets, relative URLs), in a
 * temporary folder. `real: true` uses client/dist when it has been built.
 */
export function testClient(options: { real?: boolean } = {}): { dir: string; real: boolean; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'ormq-client-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  // A copy, so a rebuild of client/dist while the suite runs cannot pull files from under it.
  if (options.real && existsSync(join(realDist, 'index.html'))) {
    try {
      cpSync(realDist, dir, { recursive: true });
      if (existsSync(join(dir, 'index.html'))) return { dir, real: true, cleanup };
    } catch {
      // being rebuilt right now: use the stand-in below
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  }
  writeFileSync(
    join(dir, 'index.html'),
    `<!doctype html><html><head><meta charset="utf-8"><title>ormq</title><link rel="stylesheet" href="./${ASSET_CSS}"></head>` +
      `<body><div id="app"></div><script type="module" src="./${ASSET_JS}"></script></body></html>`,
  );
  writeFileSync(join(dir, ASSET_JS), `// test bundle\n${'console.log("ormq admin test bundle");\n'.repeat(40)}`);
  writeFileSync(join(dir, ASSET_CSS), `body { margin: 0; }\n${'.row { padding: 1px; }\n'.repeat(40)}`);
  return { dir, real: false, cleanup };
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function close(server: Server): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Serves a node:http handler on an ephemeral port. */
export async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  return { url: await listen(server), server };
}

export interface TaskSeed {
  id?: string;
  name?: string;
  func?: string;
  hook?: string | null;
  args?: unknown;
  kwargs?: unknown;
  result?: unknown;
  group?: string | null;
  cluster?: string | null;
  stopped?: string;
  started?: string;
  success?: boolean;
  attemptCount?: number;
}

export async function insertTask(orm: MikroORM, t: TaskSeed = {}): Promise<string> {
  const id = t.id ?? newTaskId();
  const stopped = t.stopped ?? new Date().toISOString();
  const started = t.started ?? new Date(new Date(stopped).getTime() - 1500).toISOString();
  await sql(
    orm,
    `insert into ormq_task (id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, attempt_count)
     values (?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      t.name ?? `task-${id.slice(0, 6)}`,
      t.func ?? 'work',
      t.hook ?? null,
      JSON.stringify(t.args ?? []),
      JSON.stringify(t.kwargs ?? {}),
      t.result === undefined ? null : JSON.stringify(t.result),
      t.group ?? null,
      t.cluster ?? null,
      started,
      started,
      stopped,
      t.success ?? true,
      t.attemptCount ?? 1,
    ],
  );
  // as the cluster saves a failure: with its group
  if (t.success === false) await sql(orm, `update ormq_task set error_group = ${ERROR_GROUP} where id = ?`, [id]);
  return id;
}

export interface RollupSeed {
  /** any instant in the minute the attempts finished */
  at: string;
  func?: string;
  key?: string;
  success?: boolean;
  count?: number;
  /** runtime and wait of each attempt, ms */
  runtime?: number;
  wait?: number;
  /** the cluster process's shard (1–32767); 0 is a folded row. Default 1. */
  shard?: number;
}

/** Adds attempts to the metrics rollups as a cluster would have recorded them: a minute row and an hour row of its shard. */
export async function insertRollup(orm: MikroORM, r: RollupSeed): Promise<void> {
  const n = r.count ?? 1;
  const runtime = r.runtime ?? 1500;
  const wait = r.wait ?? 10;
  const hist = (ms: number) => JSON.stringify({ [bucketOf(ms)]: n });
  for (const span of [1, 60]) {
    const width = span * 60_000;
    const bucket = new Date(Math.floor(new Date(r.at).getTime() / width) * width).toISOString();
    await sql(
      orm,
      `insert into ormq_metric as m (bucket, span_minutes, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist, shard)
       values (?::timestamptz, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?)
       on conflict (span_minutes, bucket, key, func, success, shard) do update set count = m.count + excluded.count,
         runtime_sum = m.runtime_sum + excluded.runtime_sum, runtime_max = greatest(m.runtime_max, excluded.runtime_max),
         wait_sum = m.wait_sum + excluded.wait_sum, wait_max = greatest(m.wait_max, excluded.wait_max),
         ${['runtime_hist', 'wait_hist']
           .map(
             (c) => `${c} = (select jsonb_object_agg(k, n) from (select k, sum(v::bigint) as n from
           (select * from jsonb_each_text(m.${c}) union all select * from jsonb_each_text(excluded.${c})) x(k, v) group by k) y)`,
           )
           .join(', ')}`,
      [
        bucket,
        span,
        r.key ?? 'default',
        r.func ?? 'work',
        r.success ?? true,
        n,
        n * runtime,
        runtime,
        n * wait,
        wait,
        hist(runtime),
        hist(wait),
        r.shard ?? 1,
      ],
    );
  }
}

/** Many task rows in one statement; all with the same `stopped` when `sameStopped` is set. */
export async function insertManyTasks(
  orm: MikroORM,
  n: number,
  opts: { success?: boolean; group?: string | null; cluster?: string | null; sameStopped?: string; func?: string; prefix?: string } = {},
): Promise<void> {
  await sql(
    orm,
    `insert into ormq_task (id, name, func, args, kwargs, "group", cluster, enqueued, started, stopped, success)
     select md5(random()::text || i::text), ? || i, ?, '[1]'::jsonb, '{}'::jsonb, ?, ?, t - interval '1 second', t - interval '1 second', t, ?
       from generate_series(1, ?) i,
       lateral (select coalesce(?::timestamptz, now() - i * interval '1 millisecond') as t) s`,
    [
      opts.prefix ?? 'bulk-',
      opts.func ?? 'bulk.work',
      opts.group ?? null,
      opts.cluster ?? null,
      opts.success ?? true,
      n,
      opts.sameStopped ?? null,
    ],
  );
}

/**
 * The access token of every admin the tests mount without `authorize` (test/run.ts sets it as
 * ORMQ_ADMIN_TOKEN); `AUTH` is the header that carries it.
 */
export const TEST_TOKEN = 'ormq-test-token-0123456789';
export const AUTH = { authorization: `Bearer ${TEST_TOKEN}` } as const;

/** fetch with the headers the admin's own page sends on a mutation, and the test token. */
export function client(base: string) {
  const call = async (method: string, path: string, body?: unknown, given: Record<string, string> = {}) => {
    const headers = { ...AUTH, ...given };
    const res = await fetch(new URL(path, base), {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
    });
    const text = await res.text();
    let json: any = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  return {
    get: (path: string, headers?: Record<string, string>) => call('GET', path, undefined, headers),
    post: (path: string, body: unknown, headers?: Record<string, string>) => call('POST', path, body, headers),
    put: (path: string, body: unknown, headers?: Record<string, string>) => call('PUT', path, body, headers),
    patch: (path: string, body: unknown, headers?: Record<string, string>) => call('PATCH', path, body, headers),
    call,
  };
}
