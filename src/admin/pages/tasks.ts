/**
 * Successful and Failed tasks are one table (`success` tells them apart) with the same list, detail,
 * filters and actions; only resubmit differs (a failure row is deleted when it is resubmitted).
 */
import { db } from '../../db/run.js';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { buildPackage, insertPackages, type BuiltPackage } from '../../producer.js';
import { parseLimit, textFilter, Where } from '../filters.js';
import { badRequest } from '../http.js';
import { distinctValues, iso, keysetPage, parseCursor } from '../list.js';
import { searchBound } from '../search.js';
import { taskRows, taskWhere } from '../task-query.js';
import { KEYSET, LIST_COLUMNS, parseTaskId, taskIdOf } from '../task-row.js';
import { failureGroups } from '../failure-groups.js';
import { headFields, jsonHead } from '../fields.js';
import { chainOf, lineageOf, resubmittedSummary, successorOf, visiblePlace } from '../lineage.js';
import { writeLog, type LogEntry } from '../log.js';
import { DELETE, type Action, type Page, type RequestContext, type Route } from '../page.js';

const JSON_FIELDS = ['args', 'kwargs', 'result'] as const;

type Row = Record<string, unknown>;

function toListRow(r: Row): Row {
  const started = iso(r.started)!;
  const stopped = iso(r.stopped)!;
  return {
    id: taskIdOf(r),
    name: r.name,
    func: r.func,
    hook: r.hook ?? null,
    group: r.group ?? null,
    cluster: r.cluster ?? null,
    enqueued: iso(r.enqueued),
    started,
    stopped,
    timeTaken: Date.parse(stopped) - Date.parse(started),
    success: r.success,
    attemptCount: Number(r.attempt_count),
    shortResult: r.short_result ?? null,
    ...(r.short_args !== undefined && { args: r.short_args }),
  };
}

/** Columns a list shows only when asked (`?columns=args,attemptCount`): args are read for them; attempts come with every row. */
const OPTIONAL_COLUMNS = ['args', 'attemptCount'];

function optionalColumns(query: Record<string, string>): string[] {
  const asked = textFilter(query, 'columns', 100)?.split(',') ?? [];
  const unknown = asked.find((c) => !OPTIONAL_COLUMNS.includes(c));
  if (unknown !== undefined)
    throw badRequest(`columns: unknown optional column ${JSON.stringify(unknown)} (optional: ${OPTIONAL_COLUMNS.join(', ')})`, {
      columns: `must be among ${OPTIONAL_COLUMNS.join(', ')}`,
    });
  return asked;
}

/**
 * A failed task's package stays queued while the cluster retries it (a retry is the lock expiring),
 * and the retry writes the failure row again. Resubmitting or deleting the row without the package
 * would run the task twice, or bring the deleted failure back. The cluster marks such a package
 * linked when it saves the failure; ormq_queued_task_idx holds the linked packages only.
 */
async function dropQueuedRetries(tx: SqlEntityManager, rows: Row[]): Promise<void> {
  await db(tx).query(`delete from ormq_queued where (payload->>'id') in (?) and linked`, [rows.map(taskIdOf)]);
}

/**
 * Failed tasks whose package is still queued. The cluster stores a failure's next attempt as the
 * package's run_at, unlocked; a package still locked (running again, or left by a cluster from
 * before run_at was used) runs again when its lock expires.
 */
async function pendingRetries(
  em: SqlEntityManager,
  ids: string[],
): Promise<Map<string, { queuedId: number; lock: string | null; runAt: string | null }>> {
  const found = new Map<string, { queuedId: number; lock: string | null; runAt: string | null }>();
  if (!ids.length) return found;
  const rows = await db(em).query(
    `select id, lock, run_at, payload->>'id' as task_id from ormq_queued where (payload->>'id') in (?) and linked order by id`,
    [ids],
  );
  for (const r of rows)
    if (!found.has(r.task_id as string))
      found.set(r.task_id as string, { queuedId: Number(r.id), lock: iso(r.lock), runAt: iso(r.run_at) });
  return found;
}

const nextAt = (q: { lock: string | null; runAt: string | null }, retry: number) =>
  q.lock ? new Date(new Date(q.lock).getTime() + retry * 1000).toISOString() : q.runAt;

/**
 * Failures counted by cause (see failureGroups). Without a span of its own, the last 24 hours: their
 * groups are an index-only read of ormq_task_error_group_idx.
 */
const groupsRoute: Route = {
  method: 'GET',
  access: { page: 'failed', action: 'view' },
  // the same for every caller who may view Failed: a team triaging one bad deploy costs one read at a time
  shared: true,
  async run(ctx, { query }) {
    const spanned = ['from', 'to', 'hour'].some((k) => query[k]);
    const body = await ctx.read(async (x) => {
      let filter: Record<string, unknown> = query;
      if (!spanned) {
        const [r] = await db(x.em).query(
          `select to_char((now() - interval '1 day') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as since`,
        );
        filter = { ...query, from: r!.since };
      }
      const { rows, truncated } = await failureGroups(x.em, taskWhere(false, filter));
      return {
        groups: rows.map((r) => ({
          id: r.error_group as string,
          func: r.func as string,
          error: (r.error as string | null) ?? null,
          message: (r.message as string | null) ?? null,
          count: Number(r.n),
          first: iso(r.first),
          last: iso(r.last),
          retrying: Number(r.retrying),
        })),
        from: (filter.from as string | undefined) ?? null,
        truncated,
      };
    });
    return { status: 200, body };
  },
};

export interface TaskPageConfig {
  /** Successful or Failed: its rows (`success`), its hourly series and whether resubmit deletes the row all follow from it. */
  id: 'successful' | 'failed';
}

function resubmit(page: TaskPageConfig['id']): Action {
  // Failed tasks: the resubmitted failure row is deleted in the same transaction.
  const deletes = page === 'failed';
  return {
    label: 'Resubmit',
    past: 'Resubmitted',
    converges: deletes,
    columns: 'id, name, func, hook, "group", cluster',
    async apply(tx: SqlEntityManager, rows: Row[], ctx): Promise<LogEntry[]> {
      const packages: BuiltPackage[] = [];
      const entries: LogEntry[] = [];
      // on the new tasks: where each came from (returned entries count the rows handled)
      const origins: LogEntry[] = [];
      for (const r of rows) {
        const built = buildPackage(r.func, [], {
          // the same name, so the resubmission is found where the failure was looked for
          name: r.name as string,
          hook: (r.hook as string | null) ?? null,
          group: (r.group as string | null) ?? null,
          key: (r.cluster as string | null) ?? 'default',
        });
        const id = taskIdOf(r);
        packages.push({ ...built, copyArgs: { task: id } });
        entries.push({
          action: 'resubmit',
          page,
          objectId: id,
          summary: `Resubmitted ${JSON.stringify(r.name)} as task ${built.payload.id}`,
        });
        origins.push({ action: 'resubmitted', page, objectId: built.payload.id, summary: resubmittedSummary(r.name, id) });
      }
      await writeLog(tx, await ctx.actor(), origins);
      await dropQueuedRetries(tx, rows);
      await insertPackages(tx, packages);
      if (deletes) await db(tx).query('delete from ormq_task where id in (?)', [rows.map(taskIdOf)]);
      return entries;
    },
  };
}

const remove = (page: TaskPageConfig['id']): Action => ({
  ...DELETE,
  converges: true,
  async apply(tx, rows) {
    await dropQueuedRetries(tx, rows);
    await db(tx).query('delete from ormq_task where id in (?)', [rows.map(taskIdOf)]);
    return rows.map((r) => ({
      action: 'delete',
      page,
      objectId: taskIdOf(r),
      summary: `Deleted ${JSON.stringify(r.name)} (${r.func as string})`,
    }));
  },
});

export function taskPage({ id }: TaskPageConfig): Page {
  const success = id === 'successful';
  const where = (filter: Record<string, unknown>): Where => taskWhere(success, filter);
  const find = async (em: SqlEntityManager, taskId: string | number, columns: string) =>
    (await db(em).query(`select ${columns} from ormq_task where id = ? and success = ?`, [taskId, success]))[0];

  const actions = { resubmit: resubmit(id), delete: remove(id) };
  return {
    id,
    labels: actions,
    routes: success ? {} : { groups: groupsRoute },
    hourly: success ? 'success' : 'failure',
    table: 'ormq_task',
    keyset: KEYSET,
    actionColumns: 'id, name, func',
    parseId: parseTaskId,
    where,
    jsonFields: JSON_FIELDS,

    async list(ctx: RequestContext, query: Record<string, string>) {
      const limit = parseLimit(query.limit);
      const cursor = parseCursor(KEYSET, query.cursor);
      const args = optionalColumns(query).includes('args');
      const found = await taskRows({ em: ctx.em, success, filter: query, cursor, limit: limit + 1, cacheKey: ctx.options, args });
      const page = await keysetPage(ctx.em, 'ormq_task', found.rows, {
        limit,
        keyset: KEYSET,
        where: where(query),
        firstPage: !cursor,
        toRow: toListRow,
        planned: found.planned,
      });
      const bounded = found.bounded ? { searchBound: searchBound('tasks', 'the term has no three letters or digits in a row') } : {};
      if (!success) {
        const retries = await pendingRetries(
          ctx.em,
          page.rows.map((r) => r.id as string),
        );
        // The package's id links to Queued tasks: only for those who may view that page.
        const linked = await ctx.can('queued', 'view');
        for (const r of page.rows) {
          const q = retries.get(r.id as string);
          r.retrying = q ? { ...(linked && { queuedId: q.queuedId }), nextAt: nextAt(q, ctx.options.retry) } : null;
        }
      }
      return { ...page, ...bounded };
    },

    async filters(ctx) {
      const scope = new Where().add('t.success = ?', success);
      return {
        group: await distinctValues(ctx.em, 'ormq_task', '"group"', scope),
        cluster: await distinctValues(ctx.em, 'ormq_task', 'cluster', scope),
        func: await distinctValues(ctx.em, 'ormq_task', 'func', scope),
      };
    },

    async detail(ctx, taskId) {
      const r = await find(ctx.em, taskId, `${LIST_COLUMNS}, ${JSON_FIELDS.map((f) => jsonHead(f, f)).join(', ')}, attempts`);
      if (!r) {
        // a resubmitted failure is deleted: its bookmark leads on to the resubmission
        // Its history (who resubmitted it, when) is still in the log and comes with the answer.
        const successor = await visiblePlace(ctx, await successorOf(ctx.em, String(taskId)));
        return successor ? { object: null, truncated: {}, extra: { successor } } : null;
      }
      const { values, truncated } = headFields(r, JSON_FIELDS);
      const attempts = Array.isArray(r.attempts) ? (r.attempts as Row[]) : [];
      let retry = null;
      if (!success) {
        const q = (await pendingRetries(ctx.em, [String(taskId)])).get(String(taskId));
        const max = Number(attempts[attempts.length - 1]?.max ?? 0);
        const linked = q && (await ctx.can('queued', 'view'));
        if (q)
          retry = {
            ...(linked && { queuedId: q.queuedId }),
            nextAt: nextAt(q, ctx.options.retry),
            attempt: Number(r.attempt_count) + 1,
            max: max > 0 ? max : null,
          };
      }
      const lineage = await lineageOf(ctx.em, String(taskId));
      const extra = {
        attempts,
        lineage: { from: await visiblePlace(ctx, lineage.from), to: await visiblePlace(ctx, lineage.to) },
        retry,
        chain: await chainOf(ctx, String(taskId)),
      };
      return { object: { ...toListRow(r), ...values }, truncated, extra };
    },

    actions,
  };
}
