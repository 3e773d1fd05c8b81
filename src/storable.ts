/**
 * PostgreSQL stores neither a NUL character nor an unpaired UTF-16 surrogate, in text or in jsonb:
 * a value holding one fails the whole statement it is in.
 */

const UNSTORABLE_CHAR = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export const UNSTORABLE_MESSAGE = 'contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store';

const BACKSLASH = 0x5c;
const HEX = /^[0-9a-fA-F]{4}$/;

/** A \uXXXX escape JSON.parse would turn into NUL or a surrogate half. */
function unstorableCode(hex: string): number | null {
  if (!HEX.test(hex)) return null;
  const code = parseInt(hex, 16);
  return code === 0 || (code >= 0xd800 && code <= 0xdfff) ? code : null;
}

/**
 * Whether JSON text from JSON.stringify can be stored as jsonb. JSON.stringify writes NUL and lone
 * surrogates as \u0000 and \udXXX escapes (and keeps a proper pair as its two characters), so one
 * pass over the text finds them: a backslash starts an escape, and the character after it is
 * skipped, so `\\u0000` (an escaped backslash, then "u0000") is not one. A regex with a backslash
 * run in it backtracked: 50,000 backslashes took 8 s.
 */
export function isStorableJson(json: string): boolean {
  let i = json.indexOf('\\');
  while (i >= 0 && i < json.length - 1) {
    if (json.charCodeAt(i + 1) === 0x75 /* u */) {
      const code = unstorableCode(json.slice(i + 2, i + 6));
      if (code !== null) {
        // Hand-written JSON may pair two escapes: \ud83d\ude00 is a proper surrogate pair.
        const high = code >= 0xd800 && code <= 0xdbff;
        const low = json.charCodeAt(i + 6) === BACKSLASH && json.charCodeAt(i + 7) === 0x75 ? unstorableCode(json.slice(i + 8, i + 12)) : null;
        if (!(high && low !== null && low >= 0xdc00 && low <= 0xdfff)) return false;
        i += 12;
        i = json.indexOf('\\', i);
        continue;
      }
      i += 6;
    } else i += 2;
    i = json.indexOf('\\', i);
  }
  return true;
}

/** Replaces each character PostgreSQL cannot store with U+FFFD, so an error's text can be saved. */
export function scrub(text: string): string {
  return text.replace(UNSTORABLE_CHAR, '\ufffd');
}
