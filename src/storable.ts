/**
 * PostgreSQL stores neither a NUL character nor an unpaired UTF-16 surrogate, in text or in jsonb:
 * a value holding one fails the whole statement it is in.
 */

const UNSTORABLE_CHAR = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** JSON.stringify writes those characters as \u0000 and \udXXX escapes; an odd run of backslashes makes it one. */
const UNSTORABLE_ESCAPE = /(\\+)u(0000|d[89a-f][0-9a-f]{2})/gi;

export const UNSTORABLE_MESSAGE = 'contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store';

/** Whether JSON text from JSON.stringify can be stored as jsonb. */
export function isStorableJson(json: string): boolean {
  for (const m of json.matchAll(UNSTORABLE_ESCAPE)) if (m[1]!.length % 2 === 1) return false;
  return true;
}

/** Replaces each character PostgreSQL cannot store with U+FFFD, so an error's text can be saved. */
export function scrub(text: string): string {
  return text.replace(UNSTORABLE_CHAR, '\ufffd');
}
