/**
 * The admin at a million rows (ten million with --scale 10): each list, search, filter, detail and the
 * overview under concurrent HTTP clients on loopback, beside the database's own time for the very
 * statements the handler sent. The clients run in a child process (bench/load.ts).
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, type LogContext, type LoggerOptions } from '@mikro-orm/core';
import { MikroORM, type SqlEntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { ensureSchema, queueAdmin, queueEntities } from '../src/index.js';
import { NAME_WORDS } from '../src/names.js';
import { ERROR_GROUP } from '../src/error-groups.js';
import { INDEXES, TRIGRAM_INDEXES } from '../src/schema-tables.js';
import { BUILD_COARSE } from '../src/metric-rows.js';
import type { LoadRequest, LoadResult } from './load.js';
import type { BenchContext, Section } from './run.js';
import type { Target } from './stats.js';

export const FULL_SIZES = { successes: 1_000_000, failures: 100_000, schedules: 10_000, queued: 100_000 };

const FUNCS = [
  'app.mail.send_welcome_email',
  'app.images.resize_thumbnail',
  'app.billing.charge_invoice',
  'app.reports.build_daily_report',
  'app.sync.pull_partner_orders',
  'app.notify.push_mobile',
  'app.cleanup.expire_sessions',
  'app.search.reindex_product',
];
const CLUSTERS = ['default', 'default', 'default', 'eu-west', 'us-east', 'batch'];

const sqlArray = (values: string[]) => `string_to_array('${values.join(' ')}', ' ')`;

export interface Seeded {
  orm: MikroORM;
  url: string;
  sizes: typeof FULL_SIZES;
  seconds: number;
}

const TRANSACTION_CONTROL = /^\s*(begin|commit|rollback|savepoint|release|set local statement_timeout)\b/i;
/** A request's own settings for its statements (the Metrics page turns JIT and parallel workers off): applied, not profiled. */
const SETTING = /^\s*set local\b/i;

/** Statements the handler sent while `capture` was on, exactly as sent (values inlined by the driver). */
class CapturingLogger extends DefaultLogger {
  static sink: string[] | null = null;
  constructor(options: LoggerOptions) {
    super(options);
  }
  override logQuery(context: { query: string } & LogContext): void {
    const formatted = (context as { formatted?: string }).formatted;
    const sql = formatted ?? context.query;
    // A read's own transaction and statement timeout (see Request.read) are not queries to profile;
    // its other settings are kept, and profile() applies them to the statements after them.
    if (CapturingLogger.sink && context.level !== 'error' && !TRANSACTION_CONTROL.test(sql)) CapturingLogger.sink.push(sql);
  }
}

/** The database seeded in this run: the client section reuses it instead of seeding again. */
let seeded: { scale: number; url: string; data: Omit<Seeded, 'orm'> } | undefined;

/**
 * Creates `ormq_bench_admin` and fills it with generate_series: successes spread over 30 days, a
 * tenth as many failures with an error and a stack, schedules of every type and queued packages.
 */
export async function seedAdmin(ctx: BenchContext, scale = ctx.scale): Promise<Seeded> {
  if (seeded?.scale === scale) {
    const orm = await MikroORM.init({
      clientUrl: seeded.url,
      entities: queueEntities,
      debug: ['query'],
      loggerFactory: (o) => new CapturingLogger(o),
    });
    return { ...seeded.data, orm };
  }
  if (ctx.reuse) {
    const kept = await keptSeed(ctx, scale);
    if (kept) {
      ctx.log(`reusing ormq_bench_admin, seeded at scale ${scale} in ${kept.seconds.toFixed(1)} s`);
      seeded = { scale, url: kept.url, data: kept };
      const orm = await MikroORM.init({
        clientUrl: kept.url,
        entities: queueEntities,
        debug: ['query'],
        loggerFactory: (o) => new CapturingLogger(o),
      });
      // an index the code under test declares and the kept database lacks is built here
      await ensureSchema(orm);
      await orm.em.fork().execute('analyze ormq_task');
      return { ...kept, orm };
    }
  }
  const url = await ctx.createDatabase('ormq_bench_admin');
  const orm = await MikroORM.init({
    clientUrl: url,
    entities: queueEntities,
    debug: ['query'],
    loggerFactory: (options) => new CapturingLogger(options),
  });
  await ensureSchema(orm);
  const sizes = Object.fromEntries(Object.entries(FULL_SIZES).map(([k, v]) => [k, Math.round(v * scale)])) as typeof FULL_SIZES;
  const em = orm.em.fork() as SqlEntityManager;
  const started = performance.now();
  let last = started;
  const phase = (what: string) => {
    const now = performance.now();
    ctx.log(`seed: ${what} ${((now - last) / 1000).toFixed(1)} s`);
    last = now;
  };
  const words = sqlArray([...NAME_WORDS]);
  const funcs = sqlArray(FUNCS);
  const clusters = sqlArray(CLUSTERS);
  const nw = NAME_WORDS.length;
  // ormq's own humanName(id) in SQL, from the id's bytes `d`: folded to four, one word each.
  const name = [0, 1, 2, 3].map((k) => `w[1 + (${[0, 1, 2, 3].map((j) => `get_byte(d, ${k * 4 + j})`).join(' # ')})]`).join(` || '-' || `);
  // Skewed picks: a few funcs and groups carry most of the traffic, as in a real app; groups are
  // named after the first fifty name words.
  const func = `f[1 + floor(power(random(), 1.5) * ${FUNCS.length})::int]`;
  const group = `case when random() < 0.2 then null else w[1 + floor(power(random(), 1.3) * 50)::int] || '-jobs' end`;
  const cluster = `c[1 + floor(random() * ${CLUSTERS.length})::int]`;
  const vocab = `(select ${words} as w, ${funcs} as f, ${clusters} as c) v`;

  // Building ormq_task's indexes once after the insert is several times faster than maintaining
  // them row by row (the trigram index most of all); they are ensureSchema's own definitions.
  // Inserts and index builds run two at a time on separate connections: one per core.
  for (const i of [...INDEXES.ormq_task, ...TRIGRAM_INDEXES.ormq_task]) await em.execute(`drop index ${i.name}`);
  const exec = (sql: string) => orm.em.fork().execute(sql);
  // stopped is spread uniformly over the last 30 days.
  const tasks = (first: number, count: number, success: boolean) => {
    const prefix = success ? 's' : 'f';
    const result = success
      ? `jsonb_build_object('ok', true, 'items', floor(random() * 500)::int)`
      : // four causes a func fails with, each message carrying the numbers, ids and addresses of its occurrence
        `(array[
           jsonb_build_object('error', 'Error', 'message', 'upstream answered 503 after ' || floor(random() * 30)::int || ' s'),
           jsonb_build_object('error', 'TypeError', 'message', 'Cannot read properties of undefined (reading ''total'') in invoice INV-' || i),
           jsonb_build_object('error', 'Error', 'message', 'SMTP 451: mailbox user' || (i % 9973) || '@example.com temporarily unavailable'),
           jsonb_build_object('error', 'Error', 'message', 'row ' || md5(i::text) || ' not found')
         ])[1 + i % 4] || jsonb_build_object('stack', 'Error: upstream answered 503\n    at request (/srv/app/lib/http.js:88:11)\n    at async run (/srv/app/tasks/sync.js:41:5)')`;
    // each failure with its group, as the cluster saves it
    return exec(`
      insert into ormq_task (id, name, func, hook, args, kwargs, result, "group", cluster, enqueued, started, stopped, success, attempt_count, error_group)
      select x.*, ${ERROR_GROUP} from (
      select encode(d, 'hex') as id, ${name} as name, ${func} as func, null as hook,
        jsonb_build_array(i, 'user' || (i % 9973) || '@example.com') as args, '{}'::jsonb as kwargs, ${result} as result, ${group} as "group", ${cluster} as cluster,
        t - interval '1 second' * (0.05 + random()) as enqueued, t as started, t + interval '1 millisecond' * (5 + random() * 900) as stopped,
        ${success} as success, ${success ? 1 : `1 + floor(random() * 3)::int`} as attempt_count
      from (select i, decode(md5('${prefix}' || i), 'hex') as d, now() - interval '30 days' * random() as t
              from generate_series(${first}, ${first + count - 1}) i) g, ${vocab}) x`);
  };
  const half = Math.ceil(sizes.successes / 2);
  const types = sqlArray(['O', 'I', 'H', 'D', 'W', 'BW', 'M', 'BM', 'Q', 'Y', 'C']);
  await Promise.all([
    tasks(1, half, true),
    (async () => {
      await tasks(half + 1, sizes.successes - half, true);
      await tasks(1, sizes.failures, false);
      await exec(`
        insert into ormq_schedule (name, func, args, kwargs, schedule_type, minutes, repeats, next_run, cron, task, cluster)
        select 'schedule ' || w[1 + i % ${nw}] || ' ' || i, ${func}, jsonb_build_array(i), '{}'::jsonb, st,
          case when st = 'I' then 5 + i % 55 end, case when i % 20 = 0 then 0 else -1 end,
          now() + interval '1 hour' * (random() * 24 * 60 - 24), case when st = 'C' then '*/15 * * * *' end,
          case when i % 3 = 0 then md5('s' || (1 + i * 37 % ${Math.max(1, sizes.successes)})) end, ${cluster}
        from generate_series(1, ${sizes.schedules}) i, ${vocab}, ${types} as ty,
          lateral (select ty[1 + i % 11] as st) s`);
      await exec(`
        insert into ormq_queued (key, payload, lock)
        select ${cluster}, jsonb_build_object('id', md5('q' || i), 'name', ${name}, 'func', ${func}, 'args', jsonb_build_array(i),
          'kwargs', '{}'::jsonb, 'group', ${group}, 'hook', null, 'timeout', null, 'save', null, 'enqueued', now() - interval '1 second' * i),
          case when i % 50 = 0 then now() + interval '30 seconds' end
        from (select i, decode(md5('q' || i), 'hex') as d from generate_series(1, ${sizes.queued}) i) g, ${vocab}`);
    })(),
  ]);
  phase('rows');
  // Metrics rollups as a busy fleet leaves them, whatever the scale: every func on four keys, both
  // outcomes, minute rows for the last 48 hours and hour rows for the last 30 days.
  await exec(`
    insert into ormq_metric (span_minutes, bucket, key, func, success, count, runtime_sum, runtime_max, wait_sum, wait_max, runtime_hist, wait_hist)
    select span, b, k, f, s, n, n * 40, 900, n * 5, 300, h, h
      from (select 1 as span, b from generate_series(date_trunc('minute', now() - interval '48 hours'), now(), interval '1 minute') b
            union all
            select 60, b from generate_series(date_trunc('hour', now() - interval '30 days'), now(), interval '1 hour') b) t,
           unnest(${funcs}) f, unnest(array['default', 'eu-west', 'us-east', 'batch']) k, unnest(array[true, false]) s,
           lateral (select case when s then span * 20 else span end as n) c,
           lateral (select jsonb_build_object('25', n * 3 / 4, '30', n - n * 3 / 4) as h) hh`);
  // Folded, as the clusters' upkeep leaves them: the 6-hour and day rows of those hours.
  await exec(BUILD_COARSE);
  phase('metrics rollups');
  const build = (indexes: { expression: string }[]) =>
    orm.em.fork().transactional(async (tx) => {
      await tx.execute(`set local maintenance_work_mem = '512MB'`);
      for (const i of indexes) await tx.execute(i.expression);
    });
  await Promise.all([build(TRIGRAM_INDEXES.ormq_task), build(INDEXES.ormq_task)]);
  phase('indexes');
  // What autovacuum reaches on its own after a while: statistics and a visibility map for index-only scans.
  await em.execute('vacuum (analyze) ormq_task, ormq_schedule, ormq_queued, ormq_metric');
  phase('vacuum analyze');
  const seconds = (performance.now() - started) / 1000;
  // what --reuse checks before keeping this database
  await em.execute(
    `create table ormq_bench_seed as select ${scale}::float8 as scale, '${JSON.stringify(sizes)}'::jsonb as sizes, ${seconds}::float8 as seconds`,
  );
  ctx.log(
    `seeded ${Object.entries(sizes)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')} in ${seconds.toFixed(1)} s`,
  );
  seeded = { scale, url, data: { url, sizes, seconds } };
  return { orm, url, sizes, seconds };
}

/** The database a finished seed at this scale left behind, if there is one (`--reuse`). */
async function keptSeed(ctx: BenchContext, scale: number): Promise<Omit<Seeded, 'orm'> | null> {
  const url = ctx.databaseUrl('ormq_bench_admin');
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch {
    return null; // no such database
  }
  try {
    const { rows } = await client
      .query(`select scale, sizes, seconds from ormq_bench_seed where to_regclass('ormq_bench_seed') is not null`)
      .catch(() => ({ rows: [] }));
    const row = rows[0] as { scale: number; sizes: typeof FULL_SIZES; seconds: number } | undefined;
    return row && row.scale === scale ? { url, sizes: row.sizes, seconds: row.seconds } : null;
  } finally {
    await client.end();
  }
}

interface Endpoint {
  label: string;
  path: string;
  /** which targets apply: see `verdict` */
  kind: 'list' | 'detail' | 'overview' | 'metrics';
}

/**
 * At a million rows (scale ≤ 1): a list or search takes at most 10 ms of SQL and has a p95 under
 * 50 ms with 10 clients, the overview at most 5 ms of SQL. At ten million (scale > 1): every list,
 * search and detail has a p95 under 50 ms with one client. Never a sequential scan of ormq_task.
 * Every range of the Metrics page (whose rollups are the same at any scale): at most 20 ms of SQL
 * and a 10-client p95 under 50 ms.
 */
function verdict(kind: Endpoint['kind'], scale: number, sqlMs: number, p95One: number, p95Ten: number, seqScan: boolean): string {
  const met = (ok: boolean) => (ok && !seqScan ? 'met' : 'MISSED');
  if (kind === 'metrics') return met(sqlMs <= 20 && p95Ten < 50);
  if (scale > 1) return kind === 'overview' ? '—' : met(p95One < 50);
  if (kind === 'list') return met(sqlMs <= 10 && p95Ten < 50);
  return kind === 'overview' ? met(sqlMs <= 5) : '—';
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function seqScans(node: PlanNode, found: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) found.push(node['Relation Name']);
  for (const child of node.Plans ?? []) seqScans(child, found);
  return found;
}

function scans(node: PlanNode, found: string[] = []): string[] {
  if (node['Relation Name'])
    found.push(`${node['Node Type']}${node['Index Name'] ? ` ${node['Index Name']}` : ` ${node['Relation Name']}`}`);
  for (const child of node.Plans ?? []) scans(child, found);
  return found;
}

interface SqlProfile {
  ms: number;
  statements: number;
  seqScanOfTask: boolean;
  plans: string[];
}

/**
 * The database's own time for each statement a request sent: planning + execution from EXPLAIN
 * ANALYZE (timing per node off, which only adds overhead), the median of five runs.
 */
async function profile(em: SqlEntityManager, sent: string[]): Promise<SqlProfile> {
  let ms = 0;
  let seqScanOfTask = false;
  const plans: string[] = [];
  const settings: string[] = [];
  const statements = sent.filter((sql) => !SETTING.test(sql));
  for (const sql of sent) {
    if (SETTING.test(sql)) {
      settings.push(sql);
      continue;
    }
    // A count's own EXPLAIN only plans; measure that planning.
    const explain = /^explain /i.test(sql)
      ? sql.replace(/^explain \(([^)]*)\)/i, 'explain ($1, summary true)')
      : `explain (analyze, buffers, timing off, format json) ${sql}`;
    const runs: { plan: PlanNode; ms: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const rows = await em.transactional(async (tx) => {
        for (const setting of settings) await tx.execute(setting);
        return tx.execute(explain);
      });
      const raw = rows[0]?.['QUERY PLAN'];
      const [out] = (typeof raw === 'string' ? JSON.parse(raw) : raw) as {
        Plan: PlanNode;
        'Planning Time'?: number;
        'Execution Time'?: number;
      }[];
      runs.push({ plan: out!.Plan, ms: (out!['Planning Time'] ?? 0) + (out!['Execution Time'] ?? 0) });
    }
    runs.sort((a, b) => a.ms - b.ms);
    const { plan, ms: one } = runs[2]!;
    ms += one;
    // A count's own EXPLAIN never runs its plan.
    if (!/^explain /i.test(sql) && seqScans(plan).includes('ormq_task')) seqScanOfTask = true;
    plans.push(`${sql.replace(/\s+/g, ' ').slice(0, 200)}\n      → ${scans(plan).join(', ')} (${one.toFixed(2)} ms)`);
  }
  return { ms, statements: statements.length, seqScanOfTask, plans };
}

/** The load generator's process: one request at a time, one JSON line back for each. */
function startLoadProcess() {
  const script = fileURLToPath(new URL('./load.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new Error(`the load generator exited (${signal ?? code})`))),
  );
  exited.catch(() => {});
  return {
    async load(url: string, seconds: number, connections: number): Promise<LoadResult> {
      const request: LoadRequest = { url, seconds, connections };
      child.stdin!.write(`${JSON.stringify(request)}\n`);
      const next = await Promise.race([answers.next(), exited]);
      if (next.done) throw new Error('the load generator closed its output');
      return JSON.parse(next.value) as LoadResult;
    },
    stop() {
      child.stdin!.end();
      if (child.exitCode === null) child.kill();
    },
  };
}

async function getJson(base: string, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(base + path);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

const round = (n: number, digits = 1) => Number(n.toFixed(digits));

export async function run(ctx: BenchContext): Promise<Section> {
  const seeded = await seedAdmin(ctx);
  const { orm } = seeded;
  // The bench measures reads: access is open here, as a host behind its own login would have it.
  const handler = queueAdmin(orm, { authorize: () => true });
  // Requests still running from the previous endpoint's load must finish before the next capture.
  let inFlight = 0;
  const server: Server = createServer((req, res) => {
    inFlight++;
    res.on('close', () => inFlight--);
    handler(req, res);
  });
  const idle = async () => {
    while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const loader = startLoadProcess();
  const load = loader.load;
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
  const rows: Section['rows'] = [];
  const notes: string[] = [];
  const plans: string[] = [];
  const targets: Target[] = [];
  let loadBefore: number | undefined;
  try {
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const page = await getJson(base, `successful${cursor ? `?cursor=${cursor}` : ''}`);
      cursor = page.next as string;
    }
    const failure = ((await getJson(base, 'failed')).rows as { id: string }[])[0]!;
    const group = ((await getJson(base, 'successful/filters')).group as string[])[0]!;
    const errorGroup = ((await getJson(base, 'failed/groups')).groups as { id: string }[])[0]!.id;
    const endpoints: Endpoint[] = [
      { label: 'Successful, first page', path: 'successful', kind: 'list' },
      { label: 'Failed, first page', path: 'failed', kind: 'list' },
      { label: 'Scheduled, first page', path: 'scheduled', kind: 'list' },
      { label: 'Queued, first page', path: 'queued', kind: 'list' },
      { label: 'Successful, page 51 (cursor)', path: `successful?cursor=${cursor}`, kind: 'list' },
      { label: 'Successful, search func "resize"', path: 'successful?search=resize', kind: 'list' },
      { label: 'Successful, search name "amber"', path: 'successful?search=amber', kind: 'list' },
      { label: 'Successful, search name "amber-lotus"', path: 'successful?search=amber-lotus', kind: 'list' },
      { label: 'Failed, search func "billing"', path: 'failed?search=billing', kind: 'list' },
      { label: 'Failed, search error "TypeError"', path: 'failed?search=TypeError', kind: 'list' },
      { label: 'Failed, search message "SMTP"', path: 'failed?search=SMTP', kind: 'list' },
      { label: 'Failed, search message "INV-4242"', path: 'failed?search=INV-4242', kind: 'list' },
      { label: 'Failed, groups of the last 24 hours', path: 'failed/groups', kind: 'list' },
      { label: 'Failed, one group (its list)', path: `failed?errorGroup=${errorGroup}`, kind: 'list' },
      { label: 'Successful, args "user42@example.com"', path: `successful?args=${encodeURIComponent('user42@example.com')}`, kind: 'list' },
      { label: 'Successful, args "example"', path: 'successful?args=example', kind: 'list' },
      { label: `Successful, group "${group}"`, path: `successful?group=${encodeURIComponent(group)}`, kind: 'list' },
      { label: 'Failed, detail', path: `failed/${failure.id}`, kind: 'detail' },
      { label: 'Overview', path: 'overview', kind: 'overview' },
      { label: 'Metrics, 1 hour', path: 'metrics?range=1h', kind: 'metrics' },
      { label: 'Metrics, 24 hours', path: 'metrics?range=24h', kind: 'metrics' },
      { label: 'Metrics, 7 days', path: 'metrics?range=7d', kind: 'metrics' },
      { label: 'Metrics, 30 days', path: 'metrics?range=30d', kind: 'metrics' },
      { label: 'Metrics, 7 days, one func', path: `metrics?range=7d&func=${encodeURIComponent(FUNCS[1]!)}`, kind: 'metrics' },
      { label: 'Metrics, 30 days, one func', path: `metrics?range=30d&func=${encodeURIComponent(FUNCS[1]!)}`, kind: 'metrics' },
      { label: 'Metrics, 30 days, one key', path: 'metrics?range=30d&key=eu-west', kind: 'metrics' },
      {
        label: 'Successful, one func over one hour (a Metrics bar)',
        path: `successful?func=${encodeURIComponent(FUNCS[1]!)}&from=${encodeURIComponent(new Date(Date.now() - 5 * 3_600_000).toISOString())}&to=${encodeURIComponent(new Date(Date.now() - 4 * 3_600_000).toISOString())}`,
        kind: 'list',
      },
    ];
    // BENCH_ENDPOINTS=search,Overview: only the endpoints whose label contains one of these
    const picked = process.env.BENCH_ENDPOINTS?.split(',');
    if (picked) endpoints.splice(0, endpoints.length, ...endpoints.filter((e) => picked.some((p) => e.label.includes(p))));
    const seconds = 3;
    const connections = 10;
    const em = orm.em.fork() as SqlEntityManager;
    // After the seed (which itself raises the load average), before the first measurement.
    loadBefore = await ctx.settle();
    for (const e of endpoints) {
      await idle();
      const sink: string[] = [];
      CapturingLogger.sink = sink;
      await getJson(base, e.path);
      CapturingLogger.sink = null;
      // Warm the plan and buffer caches the way a running admin has them, then measure.
      await load(base + e.path, 1, connections);
      const alone = await load(base + e.path, 2, 1);
      const http = await load(base + e.path, seconds, connections);
      const sql = await profile(em, sink);
      ctx.log(
        `${e.label}: p50 ${alone.p50.toFixed(1)} ms alone, ${http.p50.toFixed(1)} ms, p95 ${http.p95.toFixed(1)} ms, SQL ${sql.ms.toFixed(2)} ms`,
      );
      plans.push(`${e.label}:\n${sql.plans.map((p) => `  ${p}`).join('\n')}`);
      rows.push({
        endpoint: e.label,
        'SQL ms': round(sql.ms, 2),
        statements: sql.statements,
        'p50 ms, 1 client': round(alone.p50),
        'p95 ms, 1 client': round(alone.p95),
        '× SQL': round(alone.p50 / sql.ms),
        'p50 ms': round(http.p50),
        'p95 ms': round(http.p95),
        'p99 ms': round(http.p99),
        'req/s': Math.round(http.rps),
        'seq scan of ormq_task': sql.seqScanOfTask ? 'YES' : 'no',
        target: verdict(e.kind, ctx.scale, sql.ms, alone.p95, http.p95, sql.seqScanOfTask),
      });
      if (e.kind === 'metrics') {
        targets.push({
          name: `${e.label}: SQL ms (and p95 with ${connections} clients)`,
          target: `≤ 20 ms of SQL, p95 < 50 ms`,
          value: round(sql.ms, 2),
          met: sql.ms <= 20 && http.p95 < 50,
          detail: `p95 ${round(http.p95)} ms with ${connections} clients, ${round(alone.p95)} ms with 1`,
        });
      }
      if (http.failed + alone.failed) notes.push(`${e.label}: ${http.failed + alone.failed} requests failed`);
    }
    notes.push(
      `Seeded ${Object.entries(seeded.sizes)
        .map(([k, v]) => `${v.toLocaleString('en')} ${k}`)
        .join(', ')} in ${seeded.seconds.toFixed(1)} s ` +
        `(generate_series, then VACUUM ANALYZE). Per endpoint: a 1 s warm-up, 2 s with 1 client (× SQL = that p50 over SQL ms), ` +
        `then ${seconds} s with ${connections} concurrent clients (p50/p95/p99, req/s); autocannon runs in a child process of its own, ` +
        "not in the server's event loop. " +
        'SQL ms: planning + execution of every statement the request sent, from EXPLAIN (ANALYZE, BUFFERS, TIMING OFF), median of 5 ' +
        "(a count's own EXPLAIN: its planning). BENCH_PLANS=1 prints each statement's scans. " +
        (ctx.scale > 1
          ? 'target (ten million): p95 with 1 client under 50 ms for lists, searches and the detail; no seq scan of ormq_task.'
          : 'target (a million): lists and searches at most 10 ms of SQL and p95 with 10 clients under 50 ms, the overview at most 5 ms of SQL; no seq scan of ormq_task.') +
        ' Every range of the Metrics page, at any scale: at most 20 ms of SQL and p95 with 10 clients under 50 ms (its rollups are the same at every scale).',
    );
    if (process.env.BENCH_PLANS) notes.push(`Plans:\n${plans.join('\n')}`);
  } finally {
    loader.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await orm.close(true);
  }
  return { title: 'Admin', rows, notes, loadBefore, targets };
}
