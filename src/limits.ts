/**
 * Limits per func, over every process: how many tasks of a func may run at once (`concurrency`)
 * and how many may start in any window of `rate.perSeconds` seconds (`rate.count`). A limit is a
 * row of ormq_limit, so every cluster obeys it from its next claim and a restart keeps it; the
 * claim (src/cluster/claim-sql.ts) reads and updates the row. A package held back by a limit
 * stays waiting, unlocked: it is not stuck.
 */
import type { EntityManager } from '@mikro-orm/core';
import { lockOf } from './claim-lock.js';
import { isStorableText, UNSTORABLE_MESSAGE } from './storable.js';
import { inSchema, schemaOf } from './table-names.js';
import { db } from './db/run.js';
import { isPlainObject, ValidationError } from './validate.js';

export interface Limit {
  /** At most this many tasks of the func run at once, over all processes (a claimed package counts until it is acked). */
  concurrency?: number;
  /** At most `count` tasks of the func start (are claimed) in any window of `perSeconds` seconds. */
  rate?: { count: number; perSeconds: number };
}

export interface LimitRecord {
  func: string;
  concurrency: number | null;
  rate: { count: number; perSeconds: number } | null;
  /** Tasks of the func claimed and not yet acked, as the claims counted them. */
  running: number;
  /** Starts inside the rate's window now (0 without a rate). */
  recentStarts: number;
  /** When the limit was last set. */
  updated: Date;
}

const MAX_RATE_COUNT = 10_000;
const MAX_RATE_SECONDS = 86_400;
const INT32_MAX = 2147483647;

type SchemaOption = { schema?: string };

const tx = (em: EntityManager, options: SchemaOption) => db(inSchema(em, schemaOf(em, options.schema)));

function funcError(func: unknown): string | null {
  if (typeof func !== 'string' || func.trim() === '') return 'must be a non-empty string';
  if (func.length > 256) return 'must be at most 256 characters';
  return isStorableText(func) ? null : UNSTORABLE_MESSAGE;
}

/** Checks a limit; throws a ValidationError naming each bad field (`concurrency`, `rate.count`, …). */
function checkLimit(func: unknown, limit: unknown): Limit | null {
  const errors: Record<string, string> = {};
  const fe = funcError(func);
  if (fe) errors.func = fe;
  if (limit === null) {
    if (fe) throw new ValidationError(errors, 'limit');
    return null;
  }
  if (!isPlainObject(limit))
    throw new ValidationError({ ...errors, limit: 'must be an object with concurrency or rate, or null' }, 'limit');
  const l = limit as Record<string, unknown>;
  for (const k of Object.keys(l)) if (k !== 'concurrency' && k !== 'rate') errors[k] = 'is not a limit field (concurrency, rate)';
  const out: Limit = {};
  if (l.concurrency !== undefined) {
    if (!(Number.isInteger(l.concurrency) && (l.concurrency as number) >= 1 && (l.concurrency as number) <= INT32_MAX)) {
      errors.concurrency = `must be a whole number from 1 to ${INT32_MAX}`;
    } else out.concurrency = l.concurrency as number;
  }
  if (l.rate !== undefined) {
    if (!isPlainObject(l.rate)) errors.rate = 'must be an object { count, perSeconds }';
    else {
      const r = l.rate as Record<string, unknown>;
      for (const k of Object.keys(r))
        if (k !== 'count' && k !== 'perSeconds') errors[`rate.${k}`] = 'is not a rate field (count, perSeconds)';
      const countOk = Number.isInteger(r.count) && (r.count as number) >= 1 && (r.count as number) <= MAX_RATE_COUNT;
      if (!countOk) errors['rate.count'] = `must be a whole number from 1 to ${MAX_RATE_COUNT.toLocaleString('en')}`;
      const secondsOk =
        typeof r.perSeconds === 'number' && Number.isFinite(r.perSeconds) && r.perSeconds > 0 && r.perSeconds <= MAX_RATE_SECONDS;
      if (!secondsOk)
        errors['rate.perSeconds'] = `must be a number of seconds greater than 0, at most ${MAX_RATE_SECONDS.toLocaleString('en')}`;
      if (countOk && secondsOk) out.rate = { count: r.count as number, perSeconds: r.perSeconds as number };
    }
  }
  if (!Object.keys(errors).length && out.concurrency === undefined && out.rate === undefined)
    errors.limit = 'must set concurrency or rate (null removes the limit)';
  if (Object.keys(errors).length) throw new ValidationError(errors, 'limit');
  return out;
}

/**
 * The packages of the func locked now, as holders: a new concurrency counts what already runs. A
 * scan of the queue, once per setLimit that adds a concurrency.
 */
const RUNNING_NOW = `(select coalesce(jsonb_agg(jsonb_build_array(id, ${lockOf('q')})), '[]') from ormq_queued q where q.lock is not null and q.payload->>'func' = ?)`;

/** $func, $concurrency, $count, $seconds, then $concurrency and $func twice more for the holders. */
const UPSERT = `insert into ormq_limit as l (func, concurrency, rate_count, rate_seconds, holders, updated)
  values (?, ?::int, ?::int, ?::float8, case when ?::int is null then '[]'::jsonb else ${RUNNING_NOW} end, now())
  on conflict (func) do update set concurrency = excluded.concurrency, rate_count = excluded.rate_count, rate_seconds = excluded.rate_seconds,
    holders = case when excluded.concurrency is null then '[]'::jsonb when l.concurrency is null then ${RUNNING_NOW} else l.holders end,
    starts = case when excluded.rate_count is null then '[]'::jsonb else l.starts end, updated = now()`;

/**
 * Sets the limit of `func` for every cluster, or removes it (`null`). Given the host's
 * transactional `em`, it takes effect when that transaction commits. Returns the limit as stored,
 * or null when it was removed.
 */
export async function setLimit(
  em: EntityManager,
  func: string,
  limit: Limit | null,
  options: SchemaOption = {},
): Promise<LimitRecord | null> {
  const checked = checkLimit(func, limit);
  const run = tx(em, options);
  if (checked === null) {
    await run.execute('delete from ormq_limit where func = ?', [func]);
    return null;
  }
  const c = checked.concurrency ?? null;
  await run.execute(UPSERT, [func, c, checked.rate?.count ?? null, checked.rate?.perSeconds ?? null, c, func, func]);
  return (await limits(em, options)).find((l) => l.func === func) ?? null;
}

/** Each func's limit and its use now, by func. */
export async function limits(em: EntityManager, options: SchemaOption = {}): Promise<LimitRecord[]> {
  const rows = await tx(em, options).query(
    `select l.func, l.concurrency, l.rate_count, l.rate_seconds, l.updated,
       (select count(*) from jsonb_array_elements(l.holders) x(e) join ormq_queued q on q.id = (x.e->>0)::bigint and ${lockOf('q')} = (x.e->>1)::bigint)::int as running,
       (select count(*) from jsonb_array_elements(l.starts) x(e) where x.e::text::float8 > extract(epoch from now()) - l.rate_seconds)::int as recent
     from ormq_limit l order by l.func`,
  );
  return rows.map((r) => ({
    func: r.func as string,
    concurrency: r.concurrency === null ? null : Number(r.concurrency),
    rate: r.rate_count === null ? null : { count: Number(r.rate_count), perSeconds: Number(r.rate_seconds) },
    running: Number(r.running),
    recentStarts: Number(r.recent),
    updated: new Date(r.updated as string),
  }));
}
