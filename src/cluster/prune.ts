/**
 * saveLimit pruning, off the save path: the saver notes which scopes got new successes, and a timer
 * brings them back down to the limit about once a second, in bounded deletes, one process at a time.
 *
 * Pruning after every saved batch sent a delete per insert at full drain speed, each one waiting in
 * the saver's chain before the next batch went out. Now a drain pays one delete a second whatever
 * its rate, and the table holds up to saveLimit plus the successes saved since the last pass (about
 * a second's worth) until the next one.
 */
import type { Db } from '../db/run.js';

export type PruneScope = 'group' | 'name' | 'func' | 'key';

/** ms between passes while successes are being saved. */
export const PRUNE_EVERY = 1000;
/** Rows one statement deletes at most, so a pass never holds many locks for long; a full one is followed by another at once. */
const PRUNE_BATCH = 10_000;
/** Scope values one statement takes. */
const VALUES_PER_STATEMENT = 500;

/**
 * A success a producer is waiting on (`result(em, id, { wait })`, src/results.ts) is not pruned:
 * its waiter's ormq_wait row, live until the waiter has read it, keeps it out of the delete. The
 * check is on the outer delete, so it probes ormq_wait_task_idx only for the rows past the limit
 * (the batch's worth), and a waited row still counts among the N kept. Cost with nobody waiting,
 * 100,000 saved successes, saveLimit 99,500 (500 pruned), median of 41 interleaved runs each in a
 * rolled-back transaction, four rounds on a busy 2-core machine: 14.6–16.6 ms without the check,
 * 14.9–17.0 ms with it; per group (10 of 10,000, 50 pruned) 1.1–1.4 ms either way. EXPLAIN
 * (ANALYZE, BUFFERS): 3,087 buffer hits both ways, the empty ormq_wait reads none.
 */
const NOT_WAITED = 'not exists (select 1 from ormq_wait w where w.task = t.id and w.until > now())';

/**
 * One process prunes at a time: the statement first tries a transaction-scoped advisory lock keyed
 * by ormq_task's oid (so tables in two schemas do not share it), and deletes nothing when another
 * process holds it; that one is deleting the same rows, and this process tries again next pass.
 * Two deletes at once were safe (each counts its offset in its own snapshot, so neither reaches a
 * row newer than its limit) but did the same work twice and queued on each other's row locks.
 */
const LOCKED = `with lock as (select pg_try_advisory_xact_lock(${0x6f726d70}, ('ormq_task'::regclass)::oid::int) as got)`;
const RESULT = 'select (select got from lock) as got, (select count(*) from gone)::int as n';

/**
 * Keeps the newest $1 successes in scope, deleting at most $2 of the rest. Each scope has an index
 * led by its column (src/schema.ts); the queue key's is `cluster`, the key a task was claimed from,
 * under ormq_task_cluster_idx. Past the limit the delete reads $1 + $2 index entries at most.
 */
function pruneStatement(per: PruneScope | null, nullScope: boolean): { name: string; text: string } {
  const inner = 'order by stopped desc, id desc offset $1 limit $2';
  const statement = (name: string, ids: string) => ({
    name,
    text: `${LOCKED}, gone as (delete from ormq_task t where t.id in (${ids}) and ${NOT_WAITED} returning 1) ${RESULT}`,
  });
  if (per === null) return statement('ormq_prune_all', `select id from ormq_task where success and (select got from lock) ${inner}`);
  const col = per === 'key' ? '"cluster"' : `"${per}"`;
  if (nullScope)
    return statement(
      `ormq_prune_${per}_null`,
      `select id from ormq_task where ${col} is null and success and (select got from lock) ${inner}`,
    );
  return statement(
    `ormq_prune_${per}`,
    `select x.id from unnest($3::text[]) as s(v), lateral (select id from ormq_task where ${col} = s.v and success and (select got from lock) ${inner}) x`,
  );
}

/** What one pass did: rows deleted; `full`: a statement hit its bound, so more may be past the limit; `left`: scope values to prune again. */
export interface PrunePass {
  deleted: number;
  full: boolean;
  left: Set<string | null>;
}

/**
 * One pass over the scopes given (all successes when `per` is null): each statement deletes at most
 * `batch` rows (per scope value). Scope values a statement could not finish are returned.
 */
export async function prune(
  db: Db,
  limit: number,
  per: PruneScope | null,
  values: ReadonlySet<string | null>,
  batch = PRUNE_BATCH,
): Promise<PrunePass> {
  const left = new Set<string | null>();
  let deleted = 0;
  let full = false;
  const run = async (statement: { name: string; text: string }, params: unknown[], scopes: (string | null)[]) => {
    const row = await db.queryOne(statement, params);
    const n = Number(row?.n ?? 0);
    deleted += n;
    if (n >= batch) full = true;
    // Not this process's turn, or a full statement: more may be past the limit.
    if (row?.got !== true || n >= batch) for (const s of scopes) left.add(s);
  };
  if (per === null) {
    await run(pruneStatement(null, false), [limit, batch], [null]);
  } else {
    const named = [...values].filter((v): v is string => v !== null);
    for (let i = 0; i < named.length; i += VALUES_PER_STATEMENT) {
      const chunk = named.slice(i, i + VALUES_PER_STATEMENT);
      await run(pruneStatement(per, false), [limit, batch, chunk], chunk);
    }
    if (values.has(null)) await run(pruneStatement(per, true), [limit, batch], [null]);
  }
  return { deleted, full, left };
}

/**
 * The cluster's pruning: `saved` notes the scopes of a saved batch's successes (cheap, on the save
 * path); a timer prunes them PRUNE_EVERY ms later, and `stop` runs a last pass so that a stopped
 * cluster leaves the table at its limit.
 */
export class Pruner {
  /** Scope values with new successes since the last pass; null is the tasks without one (or all, with no `per`). */
  #pending = new Set<string | null>();
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<boolean> | null = null;
  #stopped = false;

  constructor(
    private readonly db: Db,
    private readonly limit: number,
    private readonly per: PruneScope | null,
    private readonly warn: (message: string, err: unknown) => void,
    private readonly every = PRUNE_EVERY,
  ) {}

  /** Successes of these scope values were saved. */
  saved(values: Iterable<string | null>): void {
    if (this.limit <= 0) return;
    this.#stopped = false;
    for (const v of values) this.#pending.add(this.per === null ? null : v);
    this.#schedule(this.every);
  }

  #schedule(ms: number): void {
    if (this.#timer || this.#pass || !this.#pending.size) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, ms);
    this.#timer.unref();
  }

  /** One pass; true when a statement was full. */
  #run(): Promise<boolean> {
    if (this.#pass) return this.#pass;
    const scopes = this.#pending;
    this.#pending = new Set();
    this.#pass = (async () => {
      let full = false;
      try {
        const pass = await prune(this.db, this.limit, this.per, scopes);
        for (const s of pass.left) this.#pending.add(s);
        full = pass.full;
      } catch (err) {
        for (const s of scopes) this.#pending.add(s);
        this.warn(`saveLimit pruning failed: ${(err as Error)?.message ?? err}`, err);
      } finally {
        this.#pass = null;
      }
      // A full statement goes on at once; a pass another process held waits its turn.
      if (!this.#stopped) this.#schedule(full ? 0 : this.every);
      return full;
    })();
    return this.#pass;
  }

  /** No more timed passes; a last one (repeated while its statements are full) for what was saved since the previous pass. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass;
    while (this.#pending.size && (await this.#run()));
  }
}
