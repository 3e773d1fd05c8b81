/**
 * Substring search as SQL for the task lists: the condition the trigram index answers, and the
 * same match checked row by row where rows are read without it.
 */
import { likePattern } from './list.js';

/**
 * SQL matching rows where one of `columns` holds `text` as a literal substring, ignoring case.
 * pg_trgm reads the text between separators (`-`, `.`, `_`, spaces) as words and a pattern that
 * spans one also asks the trigram index for word-boundary trigrams (" lo", "er "), which occur in a
 * large share of names made of words: for "amber-lotus" they were most of the index's work at 1M
 * tasks (bench/admin.ts). So such a term looks up each of its words of 3 or more characters
 * through the index (`ilike '%amber%' and ilike '%lotus%'`, implied by the whole term) and checks
 * the whole term row by row, with `strpos` on lower-cased text: what ILIKE compares, but not an
 * index condition that would bring those trigrams back. A term without such a split is one ILIKE.
 */
export function substringSearch(text: string, columns: string[]): [string, ...unknown[]] {
  const words = [...new Set(text.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length >= 3))];
  if (words.length === 0 || (words.length === 1 && words[0] === text)) {
    const p = likePattern(text);
    return [`(${columns.map((c) => `${c} ilike ?`).join(' or ')})`, ...columns.map(() => p)];
  }
  const arm = (c: string) => `(${words.map(() => `${c} ilike ?`).join(' and ')} and strpos(lower(${c}), lower(?)) > 0)`;
  return [`(${columns.map(arm).join(' or ')})`, ...columns.flatMap(() => [...words.map(likePattern), text])];
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
