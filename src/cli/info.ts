/**
 * `ormq info`, Django Q's qinfo: the cluster processes, what waits in each queue key, the last
 * hour's successes and failures (from the metrics rollups, so exact at any saveLimit) and the
 * schedules that are due. `ormq monitor` prints the same again and again.
 */
import type { EntityManager } from '@mikro-orm/core';
import { responding } from '../liveness.js';
import { inSchema } from '../table-names.js';
import { db } from '../db/run.js';

export interface QueueInfo {
  at: string;
  clusters: {
    name: string;
    host: string;
    pid: number;
    state: string;
    responding: boolean;
    busy: number;
    workers: number;
    done: number;
    failed: number;
    version: string;
    heartbeatAge: number;
  }[];
  keys: { key: string; waiting: number; locked: number; oldestWait: number | null; paused: boolean }[];
  lastHour: { successes: number; failures: number };
  schedules: { total: number; due: number; paused: number; next: { name: string | null; func: string; nextRun: string } | null };
}

const n = (v: unknown) => Number(v ?? 0);

export async function queueInfo(em: EntityManager, schema: string | null): Promise<QueueInfo> {
  const x = db(inSchema(em.fork(), schema));
  const [clusters, keys, hour, schedules, next] = await Promise.all([
    x.query(`select name, host, pid, state, busy, workers, done, failed, version, ${responding('c')} as alive,
                 extract(epoch from now() - heartbeat) as age from ormq_cluster c order by name, started`),
    x.query(`select k.key, k.waiting, k.locked, k.oldest, (p.key is not null) as paused
                 from (select key, count(*) filter (where lock is null)::int as waiting, count(*) filter (where lock is not null)::int as locked,
                         extract(epoch from now() - min(coalesce(run_at, (payload->>'enqueued')::timestamptz)) filter (where lock is null)) as oldest
                         from ormq_queued group by key) k
                 full join ormq_paused_key p on p.key = k.key order by 1`),
    x.query(`select coalesce(sum(count) filter (where success), 0)::bigint as ok, coalesce(sum(count) filter (where not success), 0)::bigint as failed
                 from ormq_metric where span_minutes = 1 and bucket >= date_trunc('minute', now() - interval '1 hour')`),
    x.query(`select count(*)::int as total, count(*) filter (where repeats <> 0 and next_run <= now())::int as due,
                 count(*) filter (where repeats = 0)::int as paused from ormq_schedule`),
    x.query(`select name, func, next_run from ormq_schedule where repeats <> 0 order by next_run, id limit 1`),
  ]);
  const s = schedules[0]!;
  const first = next[0];
  return {
    at: new Date().toISOString(),
    clusters: clusters.map((c) => ({
      name: String(c.name),
      host: String(c.host),
      pid: n(c.pid),
      state: c.alive ? String(c.state) : 'not responding',
      responding: Boolean(c.alive),
      busy: n(c.busy),
      workers: n(c.workers),
      done: n(c.done),
      failed: n(c.failed),
      version: String(c.version),
      heartbeatAge: Math.max(0, n(c.age)),
    })),
    keys: keys.map((k) => ({
      key: String(k.key),
      waiting: n(k.waiting),
      locked: n(k.locked),
      oldestWait: k.oldest === null ? null : Math.max(0, n(k.oldest)),
      paused: Boolean(k.paused),
    })),
    lastHour: { successes: n(hour[0]!.ok), failures: n(hour[0]!.failed) },
    schedules: {
      total: n(s.total),
      due: n(s.due),
      paused: n(s.paused),
      next: first
        ? {
            name: (first.name as string | null) ?? null,
            func: String(first.func),
            nextRun: new Date(first.next_run as string).toISOString(),
          }
        : null,
    },
  };
}

const seconds = (s: number) => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

/** Rows under a header, each column as wide as its widest cell. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export function formatInfo(info: QueueInfo): string {
  const out: string[] = [];
  const live = info.clusters.filter((c) => c.responding).length;
  out.push(`Clusters: ${live} running${info.clusters.length - live ? `, ${info.clusters.length - live} not responding` : ''}`);
  if (info.clusters.length) {
    out.push(
      ...table(
        ['name', 'host', 'pid', 'state', 'busy', 'done', 'failed', 'heartbeat', 'version'],
        info.clusters.map((c) => [
          c.name,
          c.host,
          String(c.pid),
          c.state,
          `${c.busy}/${c.workers}`,
          String(c.done),
          String(c.failed),
          `${seconds(c.heartbeatAge)} ago`,
          c.version,
        ]),
      ).map((l) => `  ${l}`),
    );
  }
  out.push('', 'Queues:');
  if (info.keys.length) {
    out.push(
      ...table(
        ['key', 'waiting', 'locked', 'oldest wait', 'state'],
        info.keys.map((k) => [
          k.key,
          String(k.waiting),
          String(k.locked),
          k.oldestWait === null ? '-' : seconds(k.oldestWait),
          k.paused ? 'paused' : '',
        ]),
      ).map((l) => `  ${l}`),
    );
  } else out.push('  nothing queued');
  const { successes, failures } = info.lastHour;
  const rate = successes + failures ? ` (${((100 * failures) / (successes + failures)).toFixed(1)} % failed)` : '';
  out.push('', `Last hour: ${successes} succeeded, ${failures} failed${rate}`);
  const s = info.schedules;
  out.push(
    `Schedules: ${s.total}, ${s.due} due now, ${s.paused} paused${s.next ? `; next: ${s.next.name ?? s.next.func} at ${s.next.nextRun}` : ''}`,
  );
  return out.join('\n');
}
