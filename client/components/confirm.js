/**
 * The confirmation before an action, fetched when first asked for (most visits never act). It
 * restates what the action applies to (the filter of "all matching") and, above 1,000 rows, wants
 * the count typed before its button enables. Plain DOM: a modal that lives for one answer needs no
 * rendering, and so this chunk shares nothing with the pages but the number format.
 */
import { num } from '../lib/format.js';

/** Above this many rows the count must be typed: a slip of the mouse should not change a table. */
export const TYPE_ABOVE = 1000;

/**
 * @typedef {{ scope?: string[], count?: number }} More
 * scope: the filter restated, one "Label: value" each (empty: every row); count: the rows it applies to
 * @param {string} title @param {string} detail @param {string} verb @param {boolean} [danger] @param {More} [more]
 * @returns {Promise<boolean>}
 */
export function confirm(title, detail, verb, danger, more = {}) {
  /** @type {(tag: string, props?: Record<string, any>, ...kids: (Node | string)[]) => any} */
  const el = (tag, props = {}, ...kids) => {
    const e = Object.assign(document.createElement(tag), props);
    e.append(...kids);
    return e;
  };
  const d = el('dialog');
  d.setAttribute('aria-labelledby', 'confirm-title');
  d.setAttribute('aria-describedby', 'confirm-detail');
  const ok = el('button', { type: 'button', className: danger ? 'danger' : 'primary' }, verb);
  const cancel = el('button', { type: 'button', autofocus: true }, 'Cancel');
  d.append(el('h2', { id: 'confirm-title' }, title), el('p', { id: 'confirm-detail' }, detail));
  const { scope, count = 0 } = more;
  const typed = count > TYPE_ABOVE ? count : undefined;
  if (scope) {
    const ul = el('ul', { className: 'scope' }, ...(scope.length ? scope : ['Every row: no search or filter']).map((s) => el('li', {}, s)));
    ul.setAttribute('aria-label', 'Matching');
    d.append(ul);
  }
  if (typed !== undefined) {
    // "12,345", "12 345" and "12345" all name the count
    const input = el('input', {
      id: 'confirm-count',
      inputMode: 'numeric',
      autocomplete: 'off',
      oninput: () => (ok.disabled = input.value.replace(/\D/g, '') !== String(typed)),
    });
    ok.disabled = true;
    d.append(el('p', {}, el('label', { htmlFor: 'confirm-count' }, `Type ${num(typed)} to confirm`), el('br'), input));
  }
  d.append(el('div', { className: 'buttons' }, ok, cancel));
  document.body.append(d);
  return new Promise((resolve) => {
    /** @param {boolean} answer */
    const done = (answer) => {
      d.close();
      d.remove();
      resolve(answer);
    };
    ok.onclick = () => done(true);
    cancel.onclick = () => done(false);
    d.oncancel = (e) => {
      e.preventDefault();
      done(false);
    };
    d.showModal();
  });
}
