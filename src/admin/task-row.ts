/**
 * A row of the Successful and Failed lists as they read it: the columns, the order they page in
 * and the id as the API sends it.
 */
import type { Row } from '../db/run.js';
import type { Keyset } from './list.js';

export const KEYSET: Keyset = { time: 'stopped', id: 'id', dir: 'desc', idKind: 'text' };

/** A task row's id as the API sends it (the column is char(32)). */
export const taskIdOf = (row: Row): string => String(row.id).trim();

export const parseTaskId = (raw: unknown): string | null => (typeof raw === 'string' && /^[0-9a-f]{32}$/.test(raw) ? raw : null);

/** ≤ 100 characters of text: a failure's "Error: message", else the result as text. */
const SHORT_RESULT = `left(case
    when result is null then null
    when jsonb_typeof(result) = 'string' then result #>> '{}'
    when jsonb_typeof(result) = 'object' and (result->>'message') is not null then concat_ws(': ', result->>'error', result->>'message')
    else result::text end, 100) as short_result`;

export const LIST_COLUMNS = `id, name, func, hook, "group", cluster, enqueued, started, stopped, success, attempt_count, ${SHORT_RESULT}`;
