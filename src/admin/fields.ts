/**
 * Large JSON fields of a detail page: cut down in the database to a head and a size, and shown
 * as a preview whose full value loads on demand.
 */

/** JSON fields larger than this are left out of a detail and loaded on demand. */
const FIELD_LIMIT = 8 * 1024;
const PREVIEW_CHARS = 2000;

export interface Truncated {
  preview: string;
  bytes: number;
}

/**
 * SQL selecting a JSON column cut down in the database: its first FIELD_LIMIT + 1 characters of
 * text and its size, so a list or detail never loads a large value only to drop it.
 */
export function jsonHead(column: string, as: string): string {
  return `left((${column})::text, ${FIELD_LIMIT + 1}) as "${as}_head", octet_length((${column})::text) as "${as}_bytes"`;
}

/**
 * The values of columns selected with `jsonHead`: whole ones parsed into `values`, the larger ones
 * as a preview in `truncated` (their full value loads on demand).
 */
export function headFields(
  row: Record<string, unknown>,
  fields: readonly string[],
): { values: Record<string, unknown>; truncated: Record<string, Truncated> } {
  const values: Record<string, unknown> = {};
  const truncated: Record<string, Truncated> = {};
  for (const field of fields) {
    const head = row[`${field}_head`];
    if (head === null || head === undefined) {
      values[field] = null;
      continue;
    }
    const bytes = Number(row[`${field}_bytes`]);
    if (bytes <= FIELD_LIMIT) values[field] = JSON.parse(head as string);
    else truncated[field] = { preview: (head as string).slice(0, PREVIEW_CHARS), bytes };
  }
  return { values, truncated };
}
