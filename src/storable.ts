/**
 * PostgreSQL stores neither a NUL character nor an unpaired UTF-16 surrogate, in text or in jsonb:
 * a value holding one fails the whole statement it is in.
 */

const UNSTORABLE_CHAR = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export const UNSTORABLE_MESSAGE = 'contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store';

const BACKSLASH = 0x5c;

/** The value of four hex digits at `at`, or -1. */
function hex4(text: string, at: number): number {
  let value = 0;
  for (let k = at; k < at + 4; k++) {
    const c = text.charCodeAt(k) | 0x20;
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/**
 * Whether JSON text from JSON.stringify can be stored as jsonb. JSON.stringify writes NUL and lone
 * surrogates as \u0000 and \udXXX escapes (and a proper pair as its two characters). A "\u" is an
 * escape only when an odd run of backslashes leads to it (`\\u0000` is an escaped backslash, then
 * "u0000"); each run is counted once, as the one right before its "u", so the check is linear.
 * The regex it replaces held the run itself and backtracked: 50,000 backslashes took 8 s.
 */
export function isStorableJson(json: string): boolean {
  for (let i = json.indexOf('\\u'); i >= 0; i = json.indexOf('\\u', i + 2)) {
    let run = 1;
    for (let j = i - 1; j >= 0 && json.charCodeAt(j) === BACKSLASH; j--) run++;
    if (run % 2 === 0) continue;
    const code = hex4(json, i + 2);
    if (code === 0 || (code >= 0xdc00 && code <= 0xdfff)) return false;
    if (code >= 0xd800 && code <= 0xdbff) {
      // Hand-written JSON may spell a proper pair as two escapes: \ud83d\ude42.
      const low = json.charCodeAt(i + 6) === BACKSLASH && json.charCodeAt(i + 7) === 0x75 ? hex4(json, i + 8) : -1;
      if (low < 0xdc00 || low > 0xdfff) return false;
      i += 6;
    }
  }
  return true;
}

/** Replaces each character PostgreSQL cannot store with U+FFFD, so an error's text can be saved. */
export function scrub(text: string): string {
  return text.replace(UNSTORABLE_CHAR, '\ufffd');
}
