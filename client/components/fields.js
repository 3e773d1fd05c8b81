/**
 * A detail's fields and its admin history: only details show them, so they load with the detail
 * pages and not with the shell.
 */
import { html } from 'htm/preact';
import { api } from '../lib/api.js';
import { label, text } from '../lib/format.js';
import { styles } from '../lib/styles.js';
import { Time } from '../lib/time.js';
import { Json } from './json.js';

await styles(STYLES_DETAIL);

const JSON_FIELDS = ['args', 'kwargs', 'result', 'payload'];

/**
 * Every field of an object: those in `order` first, then any others the server sent, so a field
 * added on the server is never hidden. JSON fields, including those the server left out for size,
 * are formatted and load on demand.
 * @param {{
 *   page: string,
 *   id: string,
 *   object: Record<string, any>,
 *   truncated?: Record<string, { preview: string, bytes: number }>,
 *   order: string[],
 *   render?: Record<string, (v: any, o: Record<string, any>) => any>,
 *   skip?: string[],
 * }} props
 */
export function Fields({ page, id, object, truncated = {}, order, render = {}, skip = [] }) {
  const keys = [...order, ...Object.keys(object), ...Object.keys(truncated)].filter(
    (k, i, all) => all.indexOf(k) === i && !skip.includes(k) && (k in object || k in truncated),
  );
  return html`<dl class="fields">
    ${keys.map((k) => {
      let value;
      if (render[k]) value = render[k](object[k], object);
      else if (JSON_FIELDS.includes(k) || k in truncated)
        value = html`<${Json} name=${label(k)} value=${object[k]} truncated=${truncated[k]}
          load=${() => api(`${page}/${encodeURIComponent(id)}/field/${k}`)} />`;
      else if (object[k] === null || object[k] === undefined || object[k] === '') value = html`<span class="muted">—</span>`;
      else value = text(object[k]);
      return html`<div class=${`field field-${k}`}><dt>${label(k)}</dt><dd>${value}</dd></div>`;
    })}
  </dl>`;
}

/** @param {{ history: { at: string, actor: string | null, action: string, summary: string }[] }} props */
export function History({ history }) {
  return html`<section aria-labelledby="history-title">
    <h2 id="history-title">History</h2>
    ${
      history && history.length
        ? html`<div class="table-wrap" role="region" aria-label="History, table" tabindex="0"><table>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Summary</th></tr></thead>
          <tbody>${history.map((h) => html`<tr><td><${Time} iso=${h.at} /></td><td>${h.actor ?? html`<span class="muted">unknown</span>`}</td><td>${h.action}</td><td>${h.summary}</td></tr>`)}</tbody>
        </table></div>`
        : html`<p class="empty">No admin actions on this object yet.</p>`
    }
  </section>`;
}
