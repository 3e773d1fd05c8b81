/**
 * Substring search as SQL for the task lists: the condition the trigram index answers, and the
 * same match checked row by row where rows are read without it.
 */
import { likePattern, type Where } from './filters.js';
import { orderBy, type Keyset } from './list.js';
import type { Statement } from '../db/run.js';

/** The runs of letters and digits of a term that the trigram index can look up: 3 or more long. */
function searchWords(text: string): string[] {
  return [...new Set(text.split(/[^\p{L}\p{N}]+/u).filter((w) => Array.from(w).length >= 3))];
}

/**
 * Rows a search term the trigram index cannot serve is looked for in: the page's newest ones. Such
 * a term ("zq", "@@", "é", "a b") is checked row by row, and over the whole table that read every
 * row: 0.74 s at 500k tasks, and 20 at once held the host's pool for seconds. Within the newest
 * 10,000 a page took 15 ms and its count 21 ms at 500k tasks (EXPLAIN ANALYZE, `k-4`, 1,000 matches).
 */
const UNINDEXED_ROWS = 10_000;

/** What a list answers when its search was looked for only in the newest rows. */
export const searchBound = (noun: string, why: string) => ({
  rows: UNINDEXED_ROWS,
  note: `Searched the newest ${UNINDEXED_ROWS.toLocaleString('en')} ${noun}: ${why}`,
});

/** A term with no run of three letters or digits: the trigram index has nothing to look up. */
export const isUnindexed = (text: string): boolean => searchWords(text).length === 0;

/**
 * `match` (SQL over `columns`, and its values) checked within the newest UNINDEXED_ROWS rows of
 * `table` under `scope`, in the list's (descending) `keyset` order: their ids, collected once and
 * looked up by primary key, so every query built on it (page, count, "all matching" actions) reads
 * at most that many rows. A floor on (time, id) instead left the planner guessing at its
 * selectivity: it counted with a scan of the whole table.
 */
export function withinNewest(
  table: string,
  keyset: Keyset,
  scope: Where,
  columns: string,
  [match, ...values]: [string, ...unknown[]],
): [string, ...unknown[]] {
  return [
    `${table}.${keyset.id} = any(array(select n.${keyset.id} from (select ${keyset.id}, ${columns} from ${table} ${scope.sql} ${orderBy(keyset)} limit ${UNINDEXED_ROWS}) n where ${match}))`,
    ...scope.params,
    ...values,
  ];
}

/** A term of several words: its index condition can be narrowed by the columns' statistics (`narrowParts`). */
export const isMultiWord = (text: string): boolean => searchWords(text).length > 1;

/**
 * SQL matching rows where one of `columns` holds `text` as a literal substring, ignoring case.
 * pg_trgm reads the text between separators (`-`, `.`, `_`, spaces) as words and a pattern that
 * spans one also asks the trigram index for word-boundary trigrams (" lo", "er "), which occur in a
 * large share of names made of words: for "amber-lotus" they were most of the index's work at 1M
 * tasks (bench/admin.ts). So such a term looks up parts of itself through the index (by default
 * its words of 3 or more characters, `ilike '%amber%' and ilike '%lotus%'`; `parts` names others
 * per column, see `narrowParts`), each implied by the whole term, and checks the whole term row by
 * row with `strpos` on lower-cased text: what ILIKE compares, but not an index condition that would
 * bring those trigrams back. A term without such a split is one ILIKE.
 */
export function substringSearch(text: string, columns: string[], parts?: Map<string, string[]>): [string, ...unknown[]] {
  const words = searchWords(text);
  if (words.length === 0 || (words.length === 1 && words[0] === text)) {
    const p = likePattern(text);
    return [`(${columns.map((c) => `${c} ilike ?`).join(' or ')})`, ...columns.map(() => p)];
  }
  const of = (c: string) => parts?.get(c) ?? words;
  const arm = (c: string) =>
    `(${of(c)
      .map(() => `${c} ilike ?`)
      .join(' and ')} and strpos(lower(${c}), lower(?)) > 0)`;
  return [`(${columns.map(arm).join(' or ')})`, ...columns.flatMap((c) => [...of(c).map(likePattern), text])];
}

/**
 * The match of `substringSearch`, for rows read without the trigram index (the newest rows of a
 * common term): one strpos in the lower-cased columns joined by newlines. A term without a newline
 * can only be found within one column, and ILIKE compares the same lower-cased text, but lowers its
 * pattern again for every row and column: at 1M tasks the newest rows' query for "amber" (~1,300
 * rows read) took 4.2 ms of the server's CPU with three ILIKEs a row, 2.8 ms with this strpos.
 */
export function rowMatch(text: string, columns: string[]): [string, ...unknown[]] {
  if (text.includes('\n')) return [`(${columns.map((c) => `strpos(lower(${c}), lower(?)) > 0`).join(' or ')})`, ...columns.map(() => text)];
  return [`strpos(lower(concat_ws(E'\\n', ${columns.join(', ')})), lower(?)) > 0`, text];
}

/**
 * What the planner's sample of one column (pg_stats: its most common values with their shares, and
 * a histogram of the rest) says of the share of rows holding each trigram, lower-cased. Built once
 * when the samples are read, so a search only looks its trigrams up.
 */
export interface ColumnSample {
  shares: Map<string, number>;
}

/** A column's name as pg_stats spells it, from the SQL name the search uses (`"group"`). */
const attname = (column: string) => column.replace(/"/g, '');

/**
 * The statement reading the planner's samples of `columns` of `table` (one row each, or two when
 * the table has children, the whole hierarchy's first; none for a column never analysed). `table`
 * is one of ormq's own names, inlined so that it is qualified with the host's schema; the columns
 * are given as the SQL names the search uses.
 */
export function sampleStatement(table: string, columns: string[]): Statement {
  return [
    `select s.attname, s.null_frac, s.most_common_vals::text::text[] as common, s.most_common_freqs as shares,
            s.histogram_bounds::text::text[] as histogram
       from pg_stats s
      where (s.schemaname, s.tablename) = (select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass('${table}'))
        and s.attname in (?)
      order by s.inherited desc`,
    [columns.map(attname)],
  ];
}

const trigramsOf = (value: string): Set<string> => {
  const chars = Array.from(value.toLowerCase());
  const found = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i++) found.add(chars.slice(i, i + 3).join(''));
  return found;
};

/**
 * The trigram pg_trgm indexes at the end of a word (its last two characters and a blank, "42 " for
 * "user42"): an ILIKE pattern asks for it where the word is followed by a character that is not a
 * letter or digit ("%42@%").
 */
const endOf = (word: string) => `${Array.from(word.toLowerCase()).slice(-2).join('')} `;

/** What the sample counts a value as holding: its trigrams, and the end of each of its words. */
const sampled = (value: string): Set<string> => {
  const found = trigramsOf(value);
  for (const word of value.match(/[\p{L}\p{N}]{2,}/gu) ?? []) found.add(endOf(word));
  return found;
};

/** The samples read by `sampleStatement`, by the SQL names the search uses. */
export function readSamples(rows: Record<string, unknown>[], columns: string[]): Map<string, ColumnSample> {
  const found = new Map<string, ColumnSample>();
  for (const c of columns) {
    const r = rows.find((row) => row.attname === attname(c));
    if (!r) continue;
    const shares = new Map<string, number>();
    const add = (value: string, share: number) => {
      for (const t of sampled(value)) shares.set(t, (shares.get(t) ?? 0) + share);
    };
    const common = (r.common as string[] | null) ?? [];
    const commonShares = ((r.shares as number[] | null) ?? []).map(Number);
    common.forEach((v, i) => add(v, commonShares[i] ?? 0));
    const histogram = (r.histogram as string[] | null) ?? [];
    const rest = Math.max(0, 1 - Number(r.null_frac ?? 0) - commonShares.reduce((a, b) => a + b, 0));
    for (const v of histogram) add(v, rest / histogram.length);
    found.set(c, { shares });
  }
  return found;
}

/** A part whose share is above this is not worth its posting list: it rules out too few rows. */
const COMMON_PART = 0.5;
/**
 * A word's end is looked up beside its rarest trigram when at most this share of rows holds it.
 * Values made of common words with a unique part ("user42@example.com") are found through it:
 * "r42" is in 11,111 of 1M args, "r42" with the end "42 " in 310 (EXPLAIN ANALYZE, bench/admin.ts's
 * args). Each part asked costs the index its posting list: an end in more rows is left out.
 */
const RARE_END = 0.05;

/**
 * Per column, the parts of a term of several words to look up through the trigram index: for each
 * word, its trigram that the column's sample holds least often; a word whose rarest trigram is in
 * more than half the rows is left out, unless every word is. The index intersects the posting list
 * of every trigram asked, so each one costs the index its whole list, while the rows it rules out
 * are few once each word has one rare trigram: the whole term is checked in each row anyway.
 * "amber-lotus" at 10M tasks (bench/admin.ts --scale 10, EXPLAIN ANALYZE, warm): its six trigrams
 * read 1,055 index pages in 37 ms and left 2,107 rows to check, 46 ms in all; the rarest of each
 * word ("amb", "lot") read 231 pages in 12 ms and left 4,107 rows, 22 ms in all.
 *
 * A word followed in the term by a character that is not a letter or digit has a known end, which
 * the index holds as a trigram of its own (`endOf`): it is asked too where it is rare (RARE_END).
 * Words common on their own make a rare whole where they meet ("user42@example.com": each of
 * "user", "example" and "com" is in every row); the end narrows what the rarest trigram alone
 * leaves to check in the table. A word's start is not used: its pattern would also ask for the
 * blank-led trigram of its first letter, in every word that begins with it.
 *
 * A part keeps the case it was typed in: ILIKE lowers it as PostgreSQL lowers the column, which is
 * not always as JavaScript does (the database's locale). Only a word of ASCII letters and digits is
 * cut into trigrams; another stays whole, since lowering can depend on a letter's neighbours (a
 * Greek sigma at a word's end), and a trigram has other neighbours than the word. A column the
 * planner has no sample of keeps the words.
 */
export function narrowParts(text: string, samples: Map<string, ColumnSample>): Map<string, string[]> {
  const words = searchWords(text);
  // the character after a word of ASCII letters and digits, where it is ASCII and neither
  const after = new Map<string, string>();
  for (const m of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    const next = text[m.index + m[0].length];
    if (/^[A-Za-z0-9]+$/.test(m[0]) && next !== undefined && /^[\x00-\x7f]$/.test(next) && !/[A-Za-z0-9]/.test(next) && !after.has(m[0]))
      after.set(m[0], next);
  }
  const parts = new Map<string, string[]>();
  for (const [column, sample] of samples) {
    const shareOf = (part: string) => sample.shares.get(part.toLowerCase()) ?? 0;
    const rarest = words.map((word) => {
      if (!/^[A-Za-z0-9]+$/.test(word)) return { parts: [word], share: Math.min(...[...trigramsOf(word)].map(shareOf)) };
      let best = { part: word, share: Infinity };
      for (let i = 0; i + 3 <= word.length; i++) {
        const part = word.slice(i, i + 3);
        const share = shareOf(part);
        if (share < best.share) best = { part, share };
      }
      const next = after.get(word);
      const end = next === undefined ? Infinity : shareOf(endOf(word));
      if (end > RARE_END) return { parts: [best.part], share: best.share };
      // one pattern where the rarest trigram is the word's last: "r42@" asks for "r42" and "42 "
      if (best.share > COMMON_PART) return { parts: [word.slice(-2) + next], share: end };
      return {
        parts: word.endsWith(best.part) ? [best.part + next] : [best.part, word.slice(-2) + next],
        share: Math.min(best.share, end),
      };
    });
    const kept = rarest.filter((r) => r.share <= COMMON_PART);
    const chosen = kept.length ? kept : [rarest.reduce((a, b) => (b.share < a.share ? b : a))];
    parts.set(column, [...new Set(chosen.flatMap((r) => r.parts))]);
  }
  return parts;
}

/**
 * The share of a column's rows its sample says may hold `text`: the least share among the trigrams
 * of its words, since a match holds every one of them. 0 for a term with no word of 3 or more.
 */
export function termShare(text: string, sample: ColumnSample): number {
  const shares = searchWords(text).flatMap((w) => [...trigramsOf(w)].map((t) => sample.shares.get(t) ?? 0));
  return shares.length ? Math.min(...shares) : 0;
}
