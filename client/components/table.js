import { html } from 'htm/preact';
import { useRef } from 'preact/hooks';
import { label } from '../lib/format.js';

/**
 * A list's table: the configured columns, the first one linking to the row's detail, and a
 * checkbox per row when the caller can act on rows.
 * @param {{
 *   columns: string[],
 *   rows: any[],
 *   cell: (column: string, row: any) => any,
 *   detail?: (row: any) => string | null,
 *   rowName: (row: any) => string,
 *   selected?: Set<string> | null,
 *   onSelect?: (ids: string[], on: boolean) => void,
 *   caption: string,
 * }} props
 */
export function Table({ columns, rows, cell, detail, rowName, selected, onSelect, caption }) {
  const ids = rows.map((r) => String(r.id));
  const allOn = ids.length > 0 && ids.every((id) => selected?.has(id));
  // shift-click sets every row from the last one clicked to this one (as Django admin does)
  const anchor = useRef(/** @type {string | null} */ (null));
  /** @param {MouseEvent} e @param {number} i */
  const pick = (e, i) => {
    const on = /** @type {HTMLInputElement} */ (e.currentTarget).checked;
    const from = anchor.current === null ? -1 : ids.indexOf(anchor.current);
    anchor.current = ids[i] ?? null;
    if (!e.shiftKey || from < 0) return onSelect?.([ids[i]], on);
    onSelect?.(ids.slice(Math.min(from, i), Math.max(from, i) + 1), on);
  };
  return html`
    <div class="table-wrap" role="region" aria-label=${`${caption}, table`} tabindex="0">
      <table>
        <caption class="sr-only">${caption}</caption>
        <thead>
          <tr>
            ${
              onSelect &&
              html`<th class="check" scope="col">
              <input type="checkbox" aria-label="Select all rows on this page" checked=${allOn}
                onChange=${(/** @type {any} */ e) => onSelect(ids, e.currentTarget.checked)} />
            </th>`
            }
            ${columns.map((c) => html`<th scope="col" class=${`col-${c}`}>${label(c)}</th>`)}
          </tr>
        </thead>
        <tbody>
          ${rows.map((row, i) => {
            const id = ids[i];
            const link = detail?.(row);
            return html`<tr key=${id} class=${selected?.has(id) ? 'selected' : ''}>
              ${
                onSelect &&
                html`<td class="check">
                <input type="checkbox" aria-label=${`Select ${rowName(row)}`} checked=${selected?.has(id)}
                  onClick=${(/** @type {MouseEvent} */ e) => pick(e, i)} />
              </td>`
              }
              ${columns.map((c, j) => {
                const content = cell(c, row);
                return html`<td class=${`col-${c}`}>${j === 0 && link ? html`<a href=${link}>${content === '' || content == null ? id : content}</a>` : content}</td>`;
              })}
            </tr>`;
          })}
        </tbody>
      </table>
    </div>
  `;
}
