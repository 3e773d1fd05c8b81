/**
 * Actions on rows: a confirmation that names how many rows, then a progress bar while the server
 * works through them. "All matching" actions are chunked by the server (at most 500 rows per
 * transaction); the client repeats the call, passing on the server's cursor, until nothing remains.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { num } from '../lib/format.js';

/**
 * @typedef {{ action: string, label: string, past: string, danger?: boolean }} Action
 * @typedef {{ ids: (string | number)[] } | { all: true, filter: Record<string, string>, count: number }} Target
 * A selection is one page of rows (at most 500, the server's limit for one transaction).
 */

/**
 * The row actions of a page the caller may use, in the order of their buttons (`order`, which the
 * shell adds to each page of `api/meta`), named as `api/meta` names them.
 * @param {any} meta @param {string} page @returns {Action[]}
 */
export const rowActions = (meta, page) =>
  (meta.pages[page]?.order ?? [])
    .filter((/** @type {string} */ a) => meta.pages[page].can[a])
    .map((/** @type {string} */ a) => ({ action: a, ...meta.pages[page].actions[a] }));

/**
 * Runs an action on ids or on every row matching a filter.
 * @param {string} page
 * @param {string} action
 * @param {Target} target
 * @param {(done: number, total: number) => void} [progress]
 */
async function runAction(page, action, target, progress) {
  const path = `${page}/actions/${action}`;
  if ('ids' in target) {
    progress?.(0, target.ids.length);
    const r = await api(path, { method: 'POST', body: { ids: target.ids } });
    progress?.(r.done, r.done);
    return /** @type {number} */ (r.done);
  }
  let done = 0;
  // null on the first call: the server then handles one chunk and answers where to continue
  /** @type {string | null} */
  let cursor = null;
  progress?.(0, target.count);
  for (;;) {
    const r = await api(path, { method: 'POST', body: { all: true, filter: target.filter, cursor } });
    done += r.done;
    // an action whose rows still match afterwards continues after the rows already handled
    if (typeof r.cursor === 'string') cursor = r.cursor;
    progress?.(done, done + r.remaining);
    // done 0 with rows remaining would loop forever: those rows cannot take this action
    if (r.remaining === 0 || r.done === 0) return done;
  }
}

/**
 * A modal confirmation, resolving true when the user confirms; its code is fetched when first asked for.
 * @param {[string, string, string, boolean?, import('./confirm.js').More?]} a title, detail, verb, danger, more
 * @returns {Promise<boolean>}
 */
export const ask = async (...a) => (await import('./confirm.js')).confirm(...a);

/** @param {{ label: string, done: number, total: number }} props */
function Progress({ label, done, total }) {
  return html`<div class="progress" role="status">
    <label for="bulk-progress">${label} ${num(done)} of ${num(total)}</label>
    <progress id="bulk-progress" max=${Math.max(total, 1)} value=${done}>${num(done)} of ${num(total)}</progress>
  </div>`;
}

/**
 * The buttons for one or more actions, with confirmation and progress.
 * @param {{
 *   page: string,
 *   actions: Action[],
 *   target: () => Target | null,
 *   count: number,
 *   estimated?: boolean,
 *   noun: (n: number) => string,
 *   onDone: (action: Action, done: number) => void,
 *   onError?: (e: Error) => void,
 *   quick?: boolean,
 *   scope?: () => string[],
 * }} props scope: the list's search and filters restated, for an action on all matching rows; quick: only destructive actions ask first (a detail page's buttons act on the one row shown);
 *   estimated: count is the server's estimate (a large table), so the confirmation says "about"
 */
export function ActionButtons({ page, actions, target, count, estimated, noun, onDone, onError, quick, scope }) {
  const [running, setRunning] = useState(/** @type {null | { label: string, done: number, total: number }} */ (null));
  // shown beside the buttons that caused it, and scrolled to: the top of the page may be out of sight
  const [failed, setFailed] = useState(/** @type {string | null} */ (null));
  const errorRef = useRef(/** @type {HTMLParagraphElement | null} */ (null));
  useEffect(() => {
    if (failed) errorRef.current?.scrollIntoView({ block: 'nearest' });
  }, [failed]);
  /** @param {Action} a */
  const run = async (a) => {
    const t = target();
    if (!t) return;
    const about = estimated ? 'about ' : '';
    const ok =
      (quick && !a.danger) ||
      (await ask(
        `${a.label} ${about}${noun(count)}?`,
        a.danger ? 'This cannot be undone.' : `This applies to ${about}${num(count)} ${count === 1 ? 'row' : 'rows'}.`,
        a.label,
        a.danger,
        'all' in t ? { scope: scope?.(), count } : {},
      ));
    if (!ok) return;
    setFailed(null);
    setRunning({ label: `${a.label}:`, done: 0, total: count });
    try {
      const done = await runAction(page, a.action, t, (d, total) => setRunning({ label: `${a.label}:`, done: d, total }));
      onDone(a, done);
    } catch (e) {
      setFailed(/** @type {Error} */ (e).message);
      onError?.(/** @type {Error} */ (e));
    } finally {
      setRunning(null);
    }
  };
  return html`
    <div class="actions" role="group" aria-label="Actions">
      ${actions.map((a) => html`<button type="button" class=${a.danger ? 'danger' : ''} disabled=${!count || !!running} onClick=${() => run(a)}>${a.label}</button>`)}
    </div>
    ${running && html`<${Progress} ...${running} />`}
    ${failed && html`<p class="error action-error" role="alert" ref=${errorRef}>${failed}</p>`}
  `;
}
