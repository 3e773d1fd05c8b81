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
 * its waiter's ormq_wait row, live until the waiter has read it, keeps it out of the delete, and a
 * waited row still counts among the N kept. The check is asked of the rows past the limit only,
 * and only when any wait is live: the first `not exists` is one probe of ormq_wait for the whole
 * statement (a one-time InitPlan), and while it holds, `or` never reaches the per-row probe of
 * ormq_wait_task_idx. It sits in the select of the rows to delete, so a batch's bound counts only
 * rows that go.
 */
const NOT_WAITED = (t: string) =>
  `(not exists (select 1 from ormq_wait w where w.until > now()) or not exists (select 1 from ormq_wait w where w.task = ${t}.id and w.until > now()))`;

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
 * Keeps the newest $1 successes in scope, deleting at most $2 of the rest. The newest $1 end at a
 * cutoff, the $1-th newest (stopped, id): a walk of $1 entries of the scope's index, led by its
 * column (src/schema.ts; the queue key's is `cluster`, the key a task was claimed from, under
 * ormq_task_cluster_idx). Every success older than the cutoff goes, in no particular order, so the
 * rows to delete are read from that index's range below it without a sort, and deleted by their
 * ctid (a TID scan) rather than probed again by id: at full drain speed a pass deletes a second's
 * successes, and these reads were most of its cost. A row updated since the select (a retried id
 * saved again) is not at that ctid any more, and stays.
 */
function pruneStatement(per: PruneScope | null, nullScope: boolean): { name: string; text: string } {
  const below = (scope: string) =>
    `${scope} and success and (select got from lock) and ${NOT_WAITED('o')} and (o.stopped, o.id) < (select stopped, id from ormq_task where ${scope} and success order by stopped desc, id desc offset $1::int - 1 limit 1) limit $2`;
  const statement = (name: string, ctids: string) => ({
    name,
    text: `${LOCKED}, gone as (delete from ormq_task t where t.ctid = any(array(${ctids})) returning 1) ${RESULT}`,
  });
  if (per === null) return statement('ormq_prune_all', `select o.ctid from ormq_task o where ${below('true')}`);
  const col = per === 'key' ? '"cluster"' : `"${per}"`;
  if (nullScope) return statement(`ormq_prune_${per}_null`, `select o.ctid from ormq_task o where ${below(`${col} is null`)}`);
  return statement(
    `ormq_prune_${per}`,
    `select x.ctid from unnest($3::text[]) as s(v), lateral (select o.ctid from ormq_task o where ${below(`${col} = s.v`)}) x`,
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
