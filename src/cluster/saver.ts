/**
 * Finished tasks on their way to the database: saved, acked and counted in batches (COMPLETE, or
 * ACK when nothing of the batch is saved), then handed to their hooks; the scopes of the saved
 * successes go to the pruner, which brings them down to saveLimit off this path (prune.ts).
 */
import { toTask, type TaskRecord } from '../rows.js';
import { Abort, registered, withTimeout } from './attempt.js';
import type { ResolvedOptions } from './options.js';
import type { Db } from '../db/run.js';
import { Pruner } from './prune.js';
import { completion, taskRow, type Completion } from './completion.js';
import { continueFlows, isFlowStep } from './flows.js';

/** Runs statements in one transaction. */
export type Transact = <T>(work: (run: Db) => Promise<T>) => Promise<T>;

/**
 * Completion statements a process has under way at once. Each writes up to 500 rows of ormq_task
 * with their ten index entries, which takes longer than the claim that fed them: one at a time, a
 * process saved no faster than its single statement could.
 */
const LANES = 2;

/** The packages a completion's rows say were held by another claim. */
const lostOf = (rows: Record<string, unknown>[]) =>
  new Set(rows.filter((r) => r.lost !== null && r.lost !== undefined).map((r) => Number(r.lost)));

type SaverOptions = Pick<
  ResolvedOptions,
  'name' | 'saveLimit' | 'saveLimitPer' | 'ackFailures' | 'maxAttempts' | 'retry' | 'retryBackoff' | 'metrics' | 'tasks' | 'timeout' | 'log'
>;

export class Saver {
  #pending: Completion[] = [];
  /** package id → a result whose statement is under way. */
  readonly #writing = new Map<number, Completion>();
  /** Which of the LANES have a statement under way. */
  readonly #lanes: boolean[] = Array.from({ length: LANES }, () => false);
  /** Settled once nothing is pending or under way: what `flush` returns. */
  #idle: { settled: Promise<void>; settle: () => void } | null = null;
  #flushSoon = false;
  /** Called once a batch is acked: a limit's slot its tasks held is free from then on. */
  afterSave: () => void = () => {};
  /** Hooks still running: they never hold up saving, and a stop waits for them up to its deadline. */
  readonly #hooks = new Set<Promise<void>>();
  readonly #pruner: Pruner;

  constructor(
    private readonly options: SaverOptions,
    private readonly db: Db,
    /** This process's ormq_cluster id: only packages it still holds are saved and acked. */
    private readonly processId: string,
    /** For a batch with chain steps or iteration runs: what follows them is written with their completion. */
    private readonly transact: Transact,
  ) {
    this.#pruner = new Pruner(db, options.saveLimit, options.saveLimitPer ?? null, (message, err) => options.log('warn', message, err));
  }

  /** Stops pruning on a timer, after a last pass over what was saved since the one before. */
  stopPruning(): Promise<void> {
    return this.#pruner.stop();
  }

  /**
   * Queues a finished task; the batch is written once this turn of the event loop is over. Short
   * tasks of one claim all finish in the same turn: started at the first of them, the write took
   * that one alone and the rest in a second statement (a drain of 5,000 no-op tasks in claims of
   * 500 sent 14 completions, 4 of them of one task, each its own commit).
   */
  add(f: Completion): void {
    this.#pending.push(f);
    if (this.#flushSoon) return;
    this.#flushSoon = true;
    setImmediate(() => {
      this.#flushSoon = false;
      this.flush().catch(() => {});
    });
  }

  /**
   * This process claimed package `qid` again (its lock had expired while the task ran) before its
   * result was written: the result is saved under the new claim. A statement already under way
   * with the old claim finds the package lost, and the result goes out again under the new one.
   * False when no result of it waits.
   */
  adopt(qid: number, lock: number): boolean {
    const waiting = this.#pending.find((f) => f.qid === qid) ?? this.#writing.get(qid);
    if (waiting) waiting.lock = lock;
    return waiting !== undefined;
  }

  /** Waits up to ms for the hooks still running. */
  async hooksDone(ms: number): Promise<void> {
    if (this.#hooks.size) await Promise.race([Promise.all(this.#hooks), new Promise((r) => setTimeout(r, ms))]);
  }

  /**
   * Writes finished tasks in batches of up to 500, on up to LANES statements at once: whatever
   * finished while they were written goes next. Resolves once nothing is pending or under way.
   */
  flush(): Promise<void> {
    if (!this.#pending.length && !this.#lanes.includes(true)) return Promise.resolve();
    if (!this.#idle) {
      let settle!: () => void;
      const settled = new Promise<void>((resolve) => (settle = resolve));
      this.#idle = { settled, settle };
    }
    const { settled } = this.#idle;
    this.#start();
    return settled;
  }

  #start(): void {
    for (let lane = this.#lanes.indexOf(false); lane >= 0 && this.#pending.length; lane = this.#lanes.indexOf(false)) {
      this.#lanes[lane] = true;
      const batch = this.#pending.splice(0, 500);
      void this.#write(batch, lane).then(() => {
        this.#lanes[lane] = false;
        if (this.#pending.length) this.#start();
        else if (!this.#lanes.includes(true)) {
          const idle = this.#idle;
          this.#idle = null;
          idle?.settle();
        }
      });
    }
  }

  /** One batch on its lane; never throws (a host `log` that throws must not stop every later save). */
  async #write(batch: Completion[], lane: number): Promise<void> {
    try {
      await this.#complete(batch, lane);
    } catch (err) {
      try {
        if (batch.length === 1) {
          // The package stays locked and runs again once its lock expires: at-least-once.
          this.options.log('error', `could not save task ${batch[0]!.pkg.id}; it will run again after retry`, err);
          return;
        }
        // One row the database refuses must not hold back the others: save them one by one.
        for (const f of batch) {
          await this.#complete([f], lane).catch((e) =>
            this.options.log('error', `could not save task ${f.pkg.id}; it will run again after retry`, e),
          );
        }
      } catch {
        // the host's log threw: nothing more to tell
      }
    }
  }

  /** Saves, acks and counts one batch in one statement; hooks start once it is written, off the save path. */
  async #complete(batch: Completion[], lane: number): Promise<void> {
    const { saveLimit } = this.options;
    const { statement, values } = completion(batch, this.options, this.processId, lane);
    const sent = batch.map((f) => f.lock);
    for (const f of batch) this.#writing.set(f.qid, f);
    let rows: Record<string, unknown>[];
    let flowHooks: TaskRecord[] = [];
    try {
      if (batch.some(isFlowStep)) {
        ({ rows, flowHooks } = await this.transact(async (run) => {
          const done = await run.query(statement, values);
          return { rows: done, flowHooks: await continueFlows(run, batch, lostOf(done), this.options.name) };
        }));
      } else rows = await this.db.query(statement, values);
    } finally {
      for (const f of batch) if (this.#writing.get(f.qid) === f) this.#writing.delete(f.qid);
    }
    this.afterSave();
    const attempts = new Map<string, number>();
    const lost = new Set<number>();
    for (const r of rows) {
      if (r.lost === null || r.lost === undefined) attempts.set(String(r.id).trim(), Number(r.attempt_count));
      else lost.add(Number(r.lost));
    }
    if (lost.size) {
      // Claimed again by this process while the statement was under way: written under that claim.
      const adopted = batch.filter((f, i) => lost.has(f.qid) && f.lock !== sent[i]);
      this.#pending.push(...adopted);
      const gone = batch.filter((f, i) => lost.has(f.qid) && f.lock === sent[i]);
      if (gone.length) this.#lost(gone);
    }
    // Saved and acked: from here on nothing runs again, whatever pruning or hooks do.
    if (saveLimit > 0) {
      // A saved task's cluster is the key it was claimed from: this cluster's name.
      const per = this.options.saveLimitPer;
      const scope = (f: Completion) =>
        per === 'group'
          ? f.pkg.group
          : per === 'name'
            ? f.pkg.name
            : per === 'key'
              ? this.options.name
              : per === 'func'
                ? f.pkg.func
                : null;
      const successes = batch.filter((f) => f.success && attempts.has(f.pkg.id));
      if (successes.length) this.#pruner.saved(new Set(successes.map((f) => scope(f) ?? null)));
    }
    const hooked = batch.filter((f) => f.pkg.hook && !lost.has(f.qid));
    const tasks = hooked.map((f) => toTask({ ...taskRow(f, this.options.name), attempt_count: attempts.get(f.pkg.id) ?? 1 }));
    for (const task of [...tasks, ...flowHooks]) {
      const running = this.#runHook(task).finally(() => this.#hooks.delete(running));
      this.#hooks.add(running);
    }
  }

  /**
   * Tasks whose package another process claimed while they ran here (this one stalled past
   * `retry`, or the package was released or edited from the admin): the package is not this
   * process's any more, so their results are not saved and the package is left to its new claim.
   */
  #lost(batch: Completion[]): void {
    const shown = batch
      .slice(0, 10)
      .map((f) => `${f.pkg.id} (package ${f.qid})`)
      .join(', ');
    this.options.log(
      'warn',
      `${batch.length} task(s) finished after their package was claimed again or released, so their results were not saved: ${shown}${batch.length > 10 ? ', …' : ''}`,
    );
  }

  async #runHook(task: TaskRecord): Promise<void> {
    const hook = registered(this.options.tasks, task.hook!);
    const abort = new Abort();
    try {
      if (!hook) throw new Error(`hook ${JSON.stringify(task.hook)} is not registered`);
      const context = abort.context(task.id, task.name, this.options.name);
      await withTimeout(
        Promise.resolve().then(() => hook.call(context, task)),
        this.options.timeout,
        abort,
      );
    } catch (err) {
      this.options.log('error', `hook ${JSON.stringify(task.hook)} of task ${task.id} failed: ${(err as Error)?.message ?? err}`, err);
    }
  }
}
