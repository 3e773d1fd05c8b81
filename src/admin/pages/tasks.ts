/**
 * Successful and Failed tasks are one table (`success` tells them apart) with the same list, detail,
 * filters and actions; only resubmit differs (a failure row is deleted when it is resubmitted).
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { buildPackage, insertPackages, type BuiltPackage } from '../../producer.js';
import {
  distinctValues, iso, keyColumn, keysetPage, orderBy, afterCursor, parseCursor, parseLimit, planStatements, readPlanned, textFilter,
  timeFilter, Where, type Keyset, type Planned,
} from '../list.js';
import { isMultiWord, isUnindexed, narrowParts, readSamples, rowMatch, sampleStatement, searchBound, substringSearch, termShare, withinNewest, type ColumnSample } from '../search.js';
import { headFields, jsonHead } from '../fields.js';
import { ARGS_TEXT, ERROR_MESSAGE, ERROR_TEXT, parseErrorGroup } from '../../error-groups.js';
import { db, type Statement } from '../../db/run.js';
import { badRequest } from '../http.js';
import { lineageOf, resubmittedSummary, successorOf, visiblePlace } from '../lineage.js';
import { writeLog, type LogEntry } from '../log.js';
import { DELETE, type Action, type Page, type RequestContext, type Route } from '../page.js';

const KEYSET: Keyset = { time: 'stopped', id: 'id', dir: 'desc', idKind: 'text' };
const JSON_FIELDS = ['args', 'kwargs', 'result'] as const;
/** Rows a search reads newest first before it collects every match instead (see searchPage). */
const SEARCH_WINDOW = 2_000;
/**
 * A search the planner expects to match at most this many rows is looked up through the trigram
 * index first: at most this many rows rechecked in the table when the guess was wrong.
 */
const RARE_MATCHES = 2_000;
/**
 * The planner's samples of the searched columns change only when ormq_task is analysed; an admin
 * reads them at most this often (reading them cost 0.4-1 ms of catalog joins, at 1M tasks a third
 * of a search of several words).
 */
const SAMPLES_TTL_MS = 60_000;
const samplesOf = new WeakMap<object, { at: number; samples: Map<string, ColumnSample> }>();
/**
 * The same of the args' text, from the statistics ANALYZE keeps of ormq_task_args_trgm_idx's
 * expression (its column is named after the expression's function, `left`). Args are mostly
 * unique values with words in every row ("user42@example.com": "example" and "com" are in all of
 * them); their rarest trigram each is what narrows a search of them.
 */
const argsSamplesOf = new WeakMap<object, { at: number; samples: Map<string, ColumnSample> }>();
const ARGS_INDEX = 'ormq_task_args_trgm_idx';
const ARGS_INDEX_COLUMN = 'left';
/**
 * The planner guesses a search of the error text (ormq_task_error_trgm_idx's expression) to match
 * a few rows whatever it is: "TypeError", in a quarter of 100,000 failures, was guessed at 10, so
 * the search went to the index for rare terms first and counted its matches, 30 of its 31 ms
 * (bench/admin.ts). The index's statistics and its size say how many failures may hold the term.
 */
const errorSamplesOf = new WeakMap<object, { at: number; sample: ColumnSample | undefined; rows: number }>();
const ERROR_INDEX = 'ormq_task_error_trgm_idx';

/** ≤ 100 characters of text: a failure's "Error: message", else the result as text. */
const SHORT_RESULT = `left(case
    when result is null then null
    when jsonb_typeof(result) = 'string' then result #>> '{}'
    when jsonb_typeof(result) = 'object' and (result->>'message') is not null then concat_ws(': ', result->>'error', result->>'message')
    else result::text end, 100) as short_result`;

const LIST_COLUMNS = `id, name, func, hook, "group", cluster, enqueued, started, stopped, success, attempt_count, ${SHORT_RESULT}`;

type Row = Record<string, unknown>;

function toListRow(r: Row): Row {
  const started = iso(r.started)!;
  const stopped = iso(r.stopped)!;
  return {
    id: String(r.id).trim(),
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
  };
}

function parseTaskId(raw: unknown): string | null {
  return typeof raw === 'string' && /^[0-9a-f]{32}$/.test(raw) ? raw : null;
}

/**
 * A failed task's package stays queued while the cluster retries it (a retry is the lock expiring),
 * and the retry writes the failure row again. Resubmitting or deleting the row without the package
 * would run the task twice, or bring the deleted failure back. The cluster marks such a package
 * linked when it saves the failure; ormq_queued_task_idx holds the linked packages only.
 */
async function dropQueuedRetries(tx: SqlEntityManager, rows: Row[]): Promise<void> {
  await tx.execute(`delete from ormq_queued where (payload->>'id') in (?) and linked`, [rows.map((r) => String(r.id).trim())]);
}

/**
 * Failed tasks whose package is still queued. The cluster stores a failure's next attempt as the
 * package's run_at, unlocked; a package still locked (running again, or left by a cluster from
 * before run_at was used) runs again when its lock expires.
 */
async function pendingRetries(em: SqlEntityManager, ids: string[]): Promise<Map<string, { queuedId: number; lock: string | null; runAt: string | null }>> {
  const found = new Map<string, { queuedId: number; lock: string | null; runAt: string | null }>();
  if (!ids.length) return found;
  const rows = await em.execute(`select id, lock, run_at, payload->>'id' as task_id from ormq_queued where (payload->>'id') in (?) and linked order by id`, [ids]);
  for (const r of rows) if (!found.has(r.task_id as string)) found.set(r.task_id as string, { queuedId: Number(r.id), lock: iso(r.lock), runAt: iso(r.run_at) });
  return found;
}

const nextAt = (q: { lock: string | null; runAt: string | null }, retry: number) =>
  q.lock ? new Date(new Date(q.lock).getTime() + retry * 1000).toISOString() : q.runAt;

/**
 * The task ids of the linked packages (ormq_queued_task_idx holds only those), read once: a list of
 * retrying failures is then a probe of ormq_task by id. Asked per failed row instead, it walked every
 * failure newest first: 0.7 s at a million failures with none retrying (bench/admin.ts --scale 10).
 */
const RETRYING = `ormq_task.id = any(array(select (q.payload->>'id')::char(32) from ormq_queued q where q.linked and q.payload->>'id' is not null))`;

/** Failure groups answered at most; the largest first. */
const GROUP_CAP = 100;

/**
 * Failures of `where` counted by cause (ormq_task.error_group, see src/error-groups.ts), the most
 * frequent first, each with the newest one's func, error and message. Without a span of its own,
 * the last 24 hours: their groups are an index-only read of ormq_task_error_group_idx.
 */
function groupsRoute(where: (filter: Record<string, unknown>) => Where): Route {
  return {
    method: 'GET',
    access: { page: 'failed', action: 'view' },
    async run(ctx, { query }) {
      const spanned = ['from', 'to', 'hour'].some((k) => query[k]);
      const body = await ctx.read(async (x) => {
        let filter: Record<string, unknown> = query;
        if (!spanned) {
          const [r] = await x.em.execute(`select to_char((now() - interval '1 day') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as since`);
          filter = { ...query, from: r!.since };
        }
        const w = where(filter).add('error_group is not null');
        const rows = await x.em.execute(
          `with g as materialized (
             select error_group, count(*)::int as n, min(stopped) as first, max(stopped) as last,
                    count(*) filter (where id in (select (payload->>'id')::char(32) from ormq_queued where linked and payload->>'id' is not null))::int as retrying
               from ormq_task ${w.sql} group by error_group order by n desc, last desc limit ${GROUP_CAP + 1})
           select g.*, s.func, s.error, s.message from g cross join lateral (
             select func, result->>'error' as error, left(${ERROR_MESSAGE}, 500) as message from ormq_task t
              where t.error_group = g.error_group and not t.success order by t.stopped desc, t.id desc limit 1) s
           order by n desc, last desc`,
          w.params,
        );
        return {
          groups: rows.slice(0, GROUP_CAP).map((r) => ({
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
          truncated: rows.length > GROUP_CAP,
        };
      });
      return { status: 200, body };
    },
  };
}

export interface TaskPageConfig {
  id: 'successful' | 'failed';
  success: boolean;
  /** The overview's hourly series this page's viewers see. */
  hourly: 'success' | 'failure';
  /** Failed tasks: the resubmitted failure row is deleted in the same transaction. */
  deleteOnResubmit: boolean;
}

function resubmit(config: TaskPageConfig): Action {
  return {
    label: 'Resubmit',
    past: 'Resubmitted',
    converges: config.deleteOnResubmit,
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
        const id = String(r.id).trim();
        packages.push({ ...built, copyArgs: { task: id } });
        entries.push({ action: 'resubmit', page: config.id, objectId: id, summary: `Resubmitted ${JSON.stringify(r.name)} as task ${built.payload.id}` });
        origins.push({ action: 'resubmitted', page: config.id, objectId: built.payload.id, summary: resubmittedSummary(r.name, id) });
      }
      await writeLog(tx, await ctx.actor(), origins);
      await dropQueuedRetries(tx, rows);
      await insertPackages(tx, packages);
      if (config.deleteOnResubmit) {
        await tx.execute('delete from ormq_task where id in (?)', [rows.map((r) => String(r.id).trim())]);
      }
      return entries;
    },
  };
}

const remove = (page: 'successful' | 'failed'): Action => ({
  ...DELETE,
  converges: true,
  async apply(tx, rows) {
    await dropQueuedRetries(tx, rows);
    await tx.execute('delete from ormq_task where id in (?)', [rows.map((r) => String(r.id).trim())]);
    return rows.map((r) => ({
      action: 'delete',
      page,
      objectId: String(r.id).trim(),
      summary: `Deleted ${JSON.stringify(r.name)} (${r.func as string})`,
    }));
  },
});

export function taskPage(config: TaskPageConfig): Page {
  /**
   * The page's rows narrowed by the group, cluster and func filters and a span of `stopped`
   * (from inclusive, to exclusive: the Metrics page's bars); the search is added apart from it.
   */
  const scope = (filter: Record<string, unknown>): Where => {
    const w = new Where().add('success = ?', config.success);
    const group = textFilter(filter, 'group', 100);
    const cluster = textFilter(filter, 'cluster', 100);
    if (group !== null) w.add('"group" = ?', group);
    if (cluster !== null) w.add('cluster = ?', cluster);
    const func = textFilter(filter, 'func', 256);
    if (func !== null) w.add('func = ?', func);
    const from = timeFilter(filter, 'from');
    const to = timeFilter(filter, 'to');
    if (from !== null) w.add('stopped >= ?::timestamptz', from);
    if (to !== null) w.add('stopped < ?::timestamptz', to);
    const hour = timeFilter(filter, 'hour');
    // an hour of the overview's chart: tasks that ended in it (the database adds the hour: 9999-12-31T23:30Z + 1 h is past JavaScript's ISO years)
    if (hour !== null) w.add("stopped >= ?::timestamptz and stopped < ?::timestamptz + interval '1 hour'", hour, hour);
    // text inside args, beside a search: checked in the rows the search finds (alone, it is the search: see searchOf)
    const args = textFilter(filter, 'args', 200);
    if (args !== null && textFilter(filter, 'search') !== null) w.search(...rowMatch(args, [ARGS_TEXT]));
    if (!config.success) {
      const raw = textFilter(filter, 'errorGroup', 16);
      const errorGroup = raw === null ? null : parseErrorGroup(raw);
      if (raw !== null && errorGroup === null) throw badRequest('errorGroup must be a failure group id (16 hex digits)', { errorGroup: 'must be 16 hex digits' });
      // success = false (the page's own clause) is the partial index's predicate: said twice, the planner would count it twice
      if (errorGroup !== null) w.add('error_group = ?', errorGroup);
    }
    const state = textFilter(filter, 'state', 20);
    if (state !== null && !config.success) {
      if (state !== 'retrying' && state !== 'final') throw badRequest('state must be "retrying" or "final"', { state: 'must be "retrying" or "final"' });
      w.add(state === 'retrying' ? RETRYING : `not ${RETRYING}`);
    }
    return w;
  };
  // Failed tasks: the error's type and message too (ormq_task_error_trgm_idx holds them for failures).
  const SEARCHED = config.success ? ['name', 'func', '"group"'] : ['name', 'func', '"group"', ERROR_TEXT];
  /** The stored columns SEARCHED reads: what a bounded search selects from the newest rows. */
  const SEARCHED_FROM = config.success ? 'name, func, "group"' : 'name, func, "group", result';
  /** The search as SQL; `rows` is the same match checked row by row, when it is a substring search. */
  const searchOf = (filter: Record<string, unknown>): { where: Where; rows?: Where; term?: string; columns?: string[]; bounded?: true } => {
    const w = new Where();
    const search = textFilter(filter, 'search');
    const args = textFilter(filter, 'args', 200);
    if (search !== null && parseTaskId(search.toLowerCase())) w.add('id = ?', search.toLowerCase());
    else if (search !== null && isUnindexed(search)) {
      const page = new Where().add('success = ?', config.success);
      return { where: w.search(...withinNewest('ormq_task', KEYSET, page, SEARCHED_FROM, rowMatch(search, SEARCHED))), bounded: true };
    } else if (search !== null) {
      return { where: w.search(...substringSearch(search, SEARCHED)), rows: new Where().add(...rowMatch(search, SEARCHED)), term: search, columns: SEARCHED };
    } else if (args !== null && isUnindexed(args)) {
      // As a search term: no three letters or digits in a row gets no help from the index.
      const page = new Where().add('success = ?', config.success);
      return { where: w.search(...withinNewest('ormq_task', KEYSET, page, 'args', rowMatch(args, [ARGS_TEXT]))), bounded: true };
    } else if (args !== null) {
      // the args' text is searched as the search box's columns are, through ormq_task_args_trgm_idx
      return { where: w.search(...substringSearch(args, [ARGS_TEXT])), rows: new Where().add(...rowMatch(args, [ARGS_TEXT])), term: args, columns: [ARGS_TEXT] };
    }
    return { where: w };
  };
  const where = (filter: Record<string, unknown>): Where => scope(filter).and(searchOf(filter).where);

  const listed = `${LIST_COLUMNS}${keyColumn(KEYSET)}`;
  /**
   * Every match of `where` collected, counted (`matched`) and the page of them in order; null when
   * there are more than `cap` (no cap: all of them).
   */
  const allMatches = async (em: SqlEntityManager, where: Where, n: number, cap: number | null): Promise<Row[] | null> => {
    const rows = await em.execute(
      `with m as materialized (select id, stopped from ormq_task ${where.sql}),
            c as materialized (select id, stopped from m${cap === null ? '' : ` limit ${cap + 1}`})
       select (select count(*) from c) as matched, ${listed}
         from ormq_task join (select id from c ${orderBy(KEYSET)} limit ${n}) k using (id) ${orderBy(KEYSET)}`,
      where.params,
    );
    return cap !== null && rows.length && Number(rows[0]!.matched) > cap ? null : rows;
  };
  /**
   * A search's page, newest first. Left alone, the planner either walks ormq_task_list_idx and
   * filters (quick when matches are common) or collects every match through the trigram index and
   * sorts them (quick when they are rare), choosing by a guess at the ILIKE's selectivity; a rare
   * term guessed common walked the whole index: 6.7 s at 1M tasks (bench/admin.ts). Both ways are
   * bounded here. A term the planner expects at most RARE_MATCHES times is looked up through the
   * trigram index first, stopping after that many matches; otherwise, or when there were more, the
   * newest SEARCH_WINDOW rows are searched, and only when they hold less than a page are all
   * matches collected. Each collection is a materialized CTE with no ORDER BY / LIMIT of its own,
   * which would tempt the planner back to the index walk. Reading the window first cost a rare term
   * 2,000 heap rows for nothing: more than its own lookup (bench/admin.ts, "amber-lotus"). A term
   * of several words collects through the rarest trigram of each word (`narrowParts`), by the
   * planner's samples of the columns, read in the same round trip as the estimate.
   */
  const searchPage = async (
    em: SqlEntityManager,
    scoped: Where,
    search: { where: Where; rows: Where; term: string; columns: string[] },
    n: number,
    counted: Where | null,
    admin: object,
    unfiltered: boolean,
  ): Promise<{ rows: Row[]; planned: Planned }> => {
    const all = scoped.and(search.where);
    const multiWord = isMultiWord(search.term);
    const ofArgs = search.columns !== SEARCHED;
    const cache = ofArgs ? argsSamplesOf : samplesOf;
    const cached = cache.get(admin);
    const sample = multiWord && !(cached && Date.now() - cached.at < SAMPLES_TTL_MS);
    // only over all failures: the sample knows nothing of the other filters, and would overstate a count under them
    const ofErrors = !config.success && !ofArgs && unfiltered;
    const cachedErrors = errorSamplesOf.get(admin);
    const errorSample = ofErrors && !(cachedErrors && Date.now() - cachedErrors.at < SAMPLES_TTL_MS);
    // The table's size and the estimate come in one round trip; past the first page the count's
    // filter (without the cursor) is planned in it too, and a term of several words reads the samples.
    const [size, plan, ...more] = await db(em).all([
      ...planStatements('ormq_task', all),
      ...(counted ? [planStatements('ormq_task', counted)[1]!] : []),
      ...(errorSample
        ? [sampleStatement(ERROR_INDEX, ['expr']), [`select reltuples::bigint as n from pg_class where oid = to_regclass('${ERROR_INDEX}')`] as Statement]
        : []),
      ...(sample ? [ofArgs ? sampleStatement(ARGS_INDEX, [ARGS_INDEX_COLUMN]) : sampleStatement('ormq_task', SEARCHED)] : []),
    ]);
    const countPlan = counted ? more[0] : undefined;
    if (errorSample) {
      const at = counted ? 1 : 0;
      errorSamplesOf.set(admin, { at: Date.now(), sample: readSamples(more[at]!, ['expr']).get('expr'), rows: Math.max(0, Number(more[at + 1]?.[0]?.n ?? 0)) });
    }
    // at least as many as the failures the error index's sample says may hold the term
    const errors = ofErrors ? errorSamplesOf.get(admin)! : undefined;
    const atLeast = (p: Planned): Planned => (errors?.sample ? { ...p, estimate: Math.max(p.estimate, Math.round(termShare(search.term, errors.sample) * errors.rows)) } : p);
    if (sample) {
      const rows = more[more.length - 1]!;
      const samples = ofArgs ? new Map([...readSamples(rows, [ARGS_INDEX_COLUMN]).values()].map((v) => [ARGS_TEXT, v])) : readSamples(rows, SEARCHED);
      cache.set(admin, { at: Date.now(), samples });
    }
    const collect = multiWord
      ? scoped.and(new Where().search(...substringSearch(search.term, search.columns, narrowParts(search.term, cache.get(admin)!.samples))))
      : all;
    const { estimate, tableRows } = atLeast(readPlanned([size!, plan!]));
    const planned: Planned = countPlan ? atLeast(readPlanned([size!, countPlan])) : { estimate, tableRows };
    // A first page's search is the count's filter: where every match was collected, they are the
    // count (at 10M tasks, counting "amber-lotus" again cost as much as finding it).
    const collected = (rows: Row[]): Planned => (countPlan || !rows.length ? planned : { ...planned, matched: Number(rows[0]!.matched) });
    if (estimate <= RARE_MATCHES) {
      const rows = await allMatches(em, collect, n, RARE_MATCHES);
      if (rows) return { rows, planned: collected(rows) };
    }
    const recent = await em.execute(
      `select ${listed} from (select * from ormq_task ${scoped.sql} ${orderBy(KEYSET)} limit ${SEARCH_WINDOW}) t
        where ${search.rows.clauses.join(' and ')} ${orderBy(KEYSET)} limit ${n}`,
      [...scoped.params, ...search.rows.params],
    );
    if (recent.length >= n) return { rows: recent, planned };
    const rows = (await allMatches(em, collect, n, null))!;
    return { rows, planned: collected(rows) };
  };

  const find = async (em: SqlEntityManager, id: string | number, columns: string) =>
    (await em.execute(`select ${columns} from ormq_task where id = ? and success = ?`, [id, config.success]))[0];

  const actions = { resubmit: resubmit(config), delete: remove(config.id) };
  return {
    id: config.id,
    labels: actions,
    routes: config.success ? {} : { groups: groupsRoute(where) },
    hourly: config.hourly,
    table: 'ormq_task',
    keyset: KEYSET,
    actionColumns: 'id, name, func',
    parseId: parseTaskId,
    where,
    jsonFields: JSON_FIELDS,

    async list(ctx: RequestContext, query: Record<string, string>) {
      const limit = parseLimit(query.limit);
      const filtered = where(query);
      const cursor = parseCursor(KEYSET, query.cursor);
      const scoped = scope(query).and(afterCursor(KEYSET, cursor));
      const search = searchOf(query);
      let found: { rows: Row[]; planned: Planned };
      if (search.rows) found = await searchPage(ctx.em, scoped, { where: search.where, rows: search.rows, term: search.term!, columns: search.columns! }, limit + 1, cursor ? filtered : null, ctx.options, scope(query).clauses.length === 1);
      else {
        // The count's facts come in the page's round trip: at a million tasks a page is full and counted.
        const all = scoped.and(search.where);
        const [rows, ...plan] = await db(ctx.em).all([
          [`select ${listed} from ormq_task ${all.sql} ${orderBy(KEYSET)} limit ${limit + 1}`, all.params],
          ...planStatements('ormq_task', filtered),
        ]);
        found = { rows: rows!, planned: readPlanned(plan) };
      }
      const page = await keysetPage(ctx.em, 'ormq_task', found.rows, { limit, keyset: KEYSET, where: filtered, firstPage: !cursor, toRow: toListRow, planned: found.planned });
      const bounded = search.bounded ? { searchBound: searchBound('tasks', 'the term has no three letters or digits in a row') } : {};
      if (!config.success) {
        const retries = await pendingRetries(ctx.em, page.rows.map((r) => r.id as string));
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
      const scope = new Where().add('t.success = ?', config.success);
      return {
        group: await distinctValues(ctx.em, 'ormq_task', '"group"', scope),
        cluster: await distinctValues(ctx.em, 'ormq_task', 'cluster', scope),
        func: await distinctValues(ctx.em, 'ormq_task', 'func', scope),
      };
    },

    async detail(ctx, id) {
      const r = await find(ctx.em, id, `${LIST_COLUMNS}, ${JSON_FIELDS.map((f) => jsonHead(f, f)).join(', ')}, attempts`);
      if (!r) {
        // a resubmitted failure is deleted: its bookmark leads on to the resubmission
        // Its history (who resubmitted it, when) is still in the log and comes with the answer.
        const successor = await visiblePlace(ctx, await successorOf(ctx.em, String(id)));
        return successor ? { object: null, truncated: {}, extra: { successor } } : null;
      }
      const { values, truncated } = headFields(r, JSON_FIELDS);
      const attempts = Array.isArray(r.attempts) ? (r.attempts as Row[]) : [];
      let retry = null;
      if (!config.success) {
        const q = (await pendingRetries(ctx.em, [String(id)])).get(String(id));
        const max = Number(attempts[attempts.length - 1]?.max ?? 0);
        const linked = q && (await ctx.can('queued', 'view'));
        if (q) retry = { ...(linked && { queuedId: q.queuedId }), nextAt: nextAt(q, ctx.options.retry), attempt: Number(r.attempt_count) + 1, max: max > 0 ? max : null };
      }
      const lineage = await lineageOf(ctx.em, String(id));
      const extra = { attempts, lineage: { from: await visiblePlace(ctx, lineage.from), to: await visiblePlace(ctx, lineage.to) }, retry };
      return { object: { ...toListRow(r), ...values }, truncated, extra };
    },

    actions,
  };
}
