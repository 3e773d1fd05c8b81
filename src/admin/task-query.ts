/**
 * The Successful and Failed lists' rows as SQL, apart from the pages that show them: their filters,
 * their search and the planner that keeps a search within the lists' budget at a million tasks.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { ARGS_TEXT, ERROR_TEXT, parseErrorGroup } from '../error-groups.js';
import { badRequest } from './http.js';
import { planStatements, readPlanned, type Planned } from './count.js';
import { textFilter, timeFilter, Where } from './filters.js';
import { afterCursor, keyColumn, orderBy, type Cursor } from './list.js';
import { db, type Statement } from '../db/run.js';
import { KEYSET, LIST_COLUMNS, parseTaskId } from './task-row.js';
import {
  isMultiWord,
  isUnindexed,
  narrowParts,
  readSamples,
  rowMatch,
  sampleStatement,
  substringSearch,
  termShare,
  withinNewest,
  type ColumnSample,
} from './search.js';

type Row = Record<string, unknown>;

/** The args' head as text, for a list that shows them: read only when asked, the default list reads the same columns as before. */
const SHORT_ARGS = ', left(args::text, 100) as short_args';
const listed = (o: { args?: boolean }) => `${LIST_COLUMNS}${o.args ? SHORT_ARGS : ''}${keyColumn(KEYSET)}`;

/**
 * The task ids of the linked packages (ormq_queued_task_idx holds only those), read once: a list of
 * retrying failures is then a probe of ormq_task by id. Asked per failed row instead, it walked every
 * failure newest first: 0.7 s at a million failures with none retrying (bench/admin.ts --scale 10).
 */
const RETRYING = `ormq_task.id = any(array(select (q.payload->>'id')::char(32) from ormq_queued q where q.linked and q.payload->>'id' is not null))`;

/** The columns the search box looks in; the Failed list's also the error's type and message (ormq_task_error_trgm_idx). */
const searched = (success: boolean) => (success ? ['name', 'func', '"group"'] : ['name', 'func', '"group"', ERROR_TEXT]);
/** The stored columns `searched` reads: what a bounded search selects from the newest rows. */
const searchedFrom = (success: boolean) => (success ? 'name, func, "group"' : 'name, func, "group", result');

/**
 * A page's rows narrowed by the group, cluster and func filters and a span of `stopped` (from
 * inclusive, to exclusive: the Metrics page's bars); the search is added apart from it.
 */
function taskScope(success: boolean, filter: Record<string, unknown>): Where {
  const w = new Where().add('success = ?', success);
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
  // text inside args, beside a search: checked in the rows the search finds (alone, it is the search: see taskSearch)
  const args = textFilter(filter, 'args', 200);
  if (args !== null && textFilter(filter, 'search') !== null) w.search(...rowMatch(args, [ARGS_TEXT]));
  if (!success) {
    const raw = textFilter(filter, 'errorGroup', 16);
    const errorGroup = raw === null ? null : parseErrorGroup(raw);
    if (raw !== null && errorGroup === null)
      throw badRequest('errorGroup must be a failure group id (16 hex digits)', { errorGroup: 'must be 16 hex digits' });
    // success = false (the page's own clause) is the partial index's predicate: said twice, the planner would count it twice
    if (errorGroup !== null) w.add('error_group = ?', errorGroup);
    const state = textFilter(filter, 'state', 20);
    if (state !== null && state !== 'retrying' && state !== 'final')
      throw badRequest('state must be "retrying" or "final"', { state: 'must be "retrying" or "final"' });
    if (state !== null) w.add(state === 'retrying' ? RETRYING : `not ${RETRYING}`);
  }
  return w;
}

/** A search as SQL; `rows` is the same match checked row by row, for a substring search. */
interface Search {
  where: Where;
  substring?: { rows: Where; term: string; columns: string[]; ofArgs: boolean };
  /** Looked for only in the newest rows: the term gives the trigram index nothing to look up. */
  bounded?: true;
}

function taskSearch(success: boolean, filter: Record<string, unknown>): Search {
  const search = textFilter(filter, 'search');
  const args = textFilter(filter, 'args', 200);
  if (search !== null && parseTaskId(search.toLowerCase())) return { where: new Where().add('id = ?', search.toLowerCase()) };
  // a search of the box's columns; args alone is searched the same way through ormq_task_args_trgm_idx
  const [term, columns, from] = search !== null ? [search, searched(success), searchedFrom(success)] : [args, [ARGS_TEXT], 'args'];
  if (term === null) return { where: new Where() };
  if (isUnindexed(term)) {
    // no three letters or digits in a row: nothing for the index to look up
    const page = new Where().add('success = ?', success);
    return { where: new Where().search(...withinNewest('ormq_task', KEYSET, page, from, rowMatch(term, columns))), bounded: true };
  }
  return {
    where: new Where().search(...substringSearch(term, columns)),
    substring: { rows: new Where().add(...rowMatch(term, columns)), term, columns, ofArgs: search === null },
  };
}

/** A list's rows (the page's own, its filters and its search) as SQL. */
export const taskWhere = (success: boolean, filter: Record<string, unknown>): Where =>
  taskScope(success, filter).and(taskSearch(success, filter).where);

export interface TaskRowsOptions {
  em: SqlEntityManager;
  success: boolean;
  /** The list's query: filters, search and args. */
  filter: Record<string, unknown>;
  cursor: Cursor | null;
  /** Rows read at most (a page and one more, which says whether there is a next page). */
  limit: number;
  /** What the planner's samples are kept per (the admin's options): they outlive a request. */
  cacheKey: object;
  /** Each row's args too, as the head of their text (`short_args`). */
  args?: boolean;
}

/**
 * A page of a task list and what its count decides by. Unsearched, the page and the count's facts
 * come in one round trip: at a million tasks a page is full and counted.
 */
export async function taskRows(o: TaskRowsOptions): Promise<{ rows: Row[]; planned: Planned; bounded: boolean }> {
  const search = taskSearch(o.success, o.filter);
  const scope = taskScope(o.success, o.filter);
  const filtered = scope.and(search.where);
  const scoped = scope.and(afterCursor(KEYSET, o.cursor));
  if (search.substring) {
    const found = await searchPage(o, {
      scoped,
      search: search.where,
      ...search.substring,
      counted: o.cursor ? filtered : null,
      unfiltered: scope.clauses.length === 1,
    });
    return { ...found, bounded: false };
  }
  const all = scoped.and(search.where);
  const [rows, ...plan] = await db(o.em).all([
    [`select ${listed(o)} from ormq_task ${all.sql} ${orderBy(KEYSET)} limit ${o.limit}`, all.params],
    ...planStatements('ormq_task', filtered),
  ]);
  return { rows: rows!, planned: readPlanned(plan), bounded: !!search.bounded };
}

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
type Cached<T> = WeakMap<object, { at: number } & T>;
const samplesOf: Cached<{ samples: Map<string, ColumnSample> }> = new WeakMap();
/**
 * The same of the args' text, from the statistics ANALYZE keeps of ormq_task_args_trgm_idx's
 * expression (its column is named after the expression's function, `left`). Args are mostly
 * unique values with words in every row ("user42@example.com": "example" and "com" are in all of
 * them); their rarest trigram each is what narrows a search of them.
 */
const argsSamplesOf: Cached<{ samples: Map<string, ColumnSample> }> = new WeakMap();
const ARGS_INDEX = 'ormq_task_args_trgm_idx';
const ARGS_INDEX_COLUMN = 'left';
/**
 * The planner guesses a search of the error text (ormq_task_error_trgm_idx's expression) to match
 * a few rows whatever it is: "TypeError", in a quarter of 100,000 failures, was guessed at 10, so
 * the search went to the index for rare terms first and counted its matches, 30 of its 31 ms
 * (bench/admin.ts). The index's statistics and its size say how many failures may hold the term.
 */
const errorSamplesOf: Cached<{ sample: ColumnSample | undefined; rows: number }> = new WeakMap();
const ERROR_INDEX = 'ormq_task_error_trgm_idx';
const fresh = (c: { at: number } | undefined) => !!c && Date.now() - c.at < SAMPLES_TTL_MS;

/**
 * Every match of `where` collected, counted (`matched`) and the page of them in order; null when
 * there are more than `cap` (no cap: all of them).
 */
async function allMatches(o: TaskRowsOptions, where: Where, cap: number | null): Promise<Row[] | null> {
  const rows = await db(o.em).query(
    `with m as materialized (select id, stopped from ormq_task ${where.sql}),
          c as materialized (select id, stopped from m${cap === null ? '' : ` limit ${cap + 1}`})
     select (select count(*) from c) as matched, ${listed(o)}
       from ormq_task join (select id from c ${orderBy(KEYSET)} limit ${o.limit}) k using (id) ${orderBy(KEYSET)}`,
    where.params,
  );
  return cap !== null && rows.length && Number(rows[0]!.matched) > cap ? null : rows;
}

interface SubstringPage {
  /** The page's filters and cursor. */
  scoped: Where;
  /** The search as the index answers it, and `rows`, the same checked row by row. */
  search: Where;
  rows: Where;
  term: string;
  columns: string[];
  ofArgs: boolean;
  /** Past the first page: the count's filter (without the cursor), planned in the same round trip. */
  counted: Where | null;
  /** No filter but the page's own: the error index's statistics speak of these rows. */
  unfiltered: boolean;
}

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
async function searchPage(o: TaskRowsOptions, s: SubstringPage): Promise<{ rows: Row[]; planned: Planned }> {
  const { em, cacheKey } = o;
  const all = s.scoped.and(s.search);
  const multiWord = isMultiWord(s.term);
  const cache = s.ofArgs ? argsSamplesOf : samplesOf;
  const sample = multiWord && !fresh(cache.get(cacheKey));
  // only over all failures: the sample knows nothing of the other filters, and would overstate a count under them
  const ofErrors = !o.success && !s.ofArgs && s.unfiltered;
  const errorSample = ofErrors && !fresh(errorSamplesOf.get(cacheKey));
  // The table's size and the estimate come in one round trip; past the first page the count's
  // filter (without the cursor) is planned in it too, and a term of several words reads the samples.
  const [size, plan, ...more] = await db(em).all([
    ...planStatements('ormq_task', all),
    ...(s.counted ? [planStatements('ormq_task', s.counted)[1]!] : []),
    ...(errorSample
      ? [
          sampleStatement(ERROR_INDEX, ['expr']),
          [`select reltuples::bigint as n from pg_class where oid = to_regclass('${ERROR_INDEX}')`] as Statement,
        ]
      : []),
    ...(sample ? [s.ofArgs ? sampleStatement(ARGS_INDEX, [ARGS_INDEX_COLUMN]) : sampleStatement('ormq_task', s.columns)] : []),
  ]);
  const countPlan = s.counted ? more[0] : undefined;
  if (errorSample) {
    const at = s.counted ? 1 : 0;
    errorSamplesOf.set(cacheKey, {
      at: Date.now(),
      sample: readSamples(more[at]!, ['expr']).get('expr'),
      rows: Math.max(0, Number(more[at + 1]?.[0]?.n ?? 0)),
    });
  }
  // at least as many as the failures the error index's sample says may hold the term
  const errors = ofErrors ? errorSamplesOf.get(cacheKey)! : undefined;
  const atLeast = (p: Planned): Planned =>
    errors?.sample ? { ...p, estimate: Math.max(p.estimate, Math.round(termShare(s.term, errors.sample) * errors.rows)) } : p;
  if (sample) {
    const rows = more[more.length - 1]!;
    const samples = s.ofArgs
      ? new Map([...readSamples(rows, [ARGS_INDEX_COLUMN]).values()].map((v) => [ARGS_TEXT, v]))
      : readSamples(rows, s.columns);
    cache.set(cacheKey, { at: Date.now(), samples });
  }
  const collect = multiWord
    ? s.scoped.and(new Where().search(...substringSearch(s.term, s.columns, narrowParts(s.term, cache.get(cacheKey)!.samples))))
    : all;
  const { estimate, tableRows } = atLeast(readPlanned([size!, plan!]));
  const planned: Planned = countPlan ? atLeast(readPlanned([size!, countPlan])) : { estimate, tableRows };
  // A first page's search is the count's filter: where every match was collected, they are the
  // count (at 10M tasks, counting "amber-lotus" again cost as much as finding it).
  const collected = (rows: Row[]): Planned => (countPlan || !rows.length ? planned : { ...planned, matched: Number(rows[0]!.matched) });
  if (estimate <= RARE_MATCHES) {
    const rows = await allMatches(o, collect, RARE_MATCHES);
    if (rows) return { rows, planned: collected(rows) };
  }
  const recent = await db(em).query(
    `select ${listed(o)} from (select * from ormq_task ${s.scoped.sql} ${orderBy(KEYSET)} limit ${SEARCH_WINDOW}) t
      where ${s.rows.clauses.join(' and ')} ${orderBy(KEYSET)} limit ${o.limit}`,
    [...s.scoped.params, ...s.rows.params],
  );
  if (recent.length >= o.limit) return { rows: recent, planned };
  const rows = (await allMatches(o, collect, null))!;
  return { rows, planned: collected(rows) };
}
