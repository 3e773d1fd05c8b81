/**
 * A failure's group: its func, its error type and its message with the parts that differ between
 * occurrences of one cause folded (e-mail addresses, quoted values, hex ids and numbers), hashed to
 * 16 hex digits. The cluster stores it in ormq_task.error_group when it saves a failure (COMPLETE),
 * so the admin counts failures by cause from ormq_task_error_group_idx instead of folding every
 * message at read time. A success has none.
 */

/** The message as the admin shows it: an error's `message`, or a string result as it is. */
export const ERROR_MESSAGE = `case jsonb_typeof(result) when 'object' then result->>'message' when 'string' then result #>> '{}' end`;

/** A failure's error type and message as one text: what the Failed list's search reads (ormq_task_error_trgm_idx). */
export const ERROR_TEXT = `(coalesce(result->>'error', '') || ': ' || coalesce(${ERROR_MESSAGE}, ''))`;

/**
 * A task's args as the lists' `args` filter reads them: their JSON text, its first 500 characters,
 * so that what ormq_task_args_trgm_idx holds per task stays bounded whatever a task was given.
 */
export const ARGS_TEXT = `left(args::text, 500)`;

/**
 * The message folded. Its first 500 characters only: the cost to a save stays bounded whatever a
 * task threw (four regexp passes over at most 500 characters, on failures only).
 */
const FOLDED_MESSAGE = `regexp_replace(regexp_replace(regexp_replace(regexp_replace(left(coalesce(${ERROR_MESSAGE}, ''), 500),
    '[[:alnum:]._%+-]+@[[:alnum:].-]+\\.[[:alpha:]]{2,}', '<email>', 'g'),
    '"[^"]*"|''[^'']*''', '<q>', 'g'),
    '\\m(0x[[:xdigit:]]+|[[:xdigit:]]*[[:digit:]][[:xdigit:]]*(-[[:xdigit:]]+)*)\\M', '#', 'g'),
    '[[:digit:]]+', '#', 'g')`;

/**
 * ormq_task.error_group of a row with these columns (`success`, `func`, `result`): immutable
 * functions only, the same in every statement that writes it.
 */
export const ERROR_GROUP = `case when not success then left(md5(func || E'\\n' || coalesce(result->>'error', '') || E'\\n' || ${FOLDED_MESSAGE}), 16) end`;

/** A group id as the API takes it. */
export const parseErrorGroup = (raw: unknown): string | null => (typeof raw === 'string' && /^[0-9a-f]{16}$/.test(raw) ? raw : null);
