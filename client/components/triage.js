/**
 * Views of the task lists that most visits never show, loaded when first drawn: Failed tasks by
 * cause (the groups of the list's filter, each opening the list filtered by it), and where else a
 * search that found nothing is.
 */
import { html } from 'htm/preact';
import { ErrorBox } from './detail.js';
import { query } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { label, num, plural, text } from '../lib/format.js';
import { href } from '../lib/router.js';
import { styles } from '../lib/styles.js';
import { localTime, relative, Time } from '../lib/time.js';

await styles(STYLES_TRIAGE);

const title = 'Failed tasks';

/** The route's filter without its paging and view: what both views share. @param {URLSearchParams} params */
function filterOf(params) {
  /** @type {Record<string, string>} */
  const f = {};
  for (const [k, v] of params) if (!['cursor', 'prev', 'view'].includes(k)) f[k] = v;
  return f;
}

/** @param {{ params: URLSearchParams }} props */
export function Groups({ params }) {
  const filter = filterOf(params);
  const { data, error } = useData(`failed/groups${query(filter)}`);
  const groups = /** @type {any[]} */ (data?.groups ?? []);
  return html`<section class="list" aria-labelledby="page-title">
    <div class="page-head">
      <h1 id="page-title">${title}: by cause</h1>
      ${data && html`<span class="count">${plural(groups.length, 'cause', 'causes')}${data.truncated ? ' (the largest)' : ''}${!params.get('from') && data.from ? ' · last 24 hours' : ''}</span>`}
      <a class="view-switch" href=${href(['failed'], filter)}>Show the list</a>
    </div>
    <${ErrorBox} error=${error} />
    ${!data && !error && html`<p class="loading" aria-busy="true">Loading…</p>`}
    ${data && groups.length === 0 && html`<p class="empty">No failures${data.from ? ` since ${localTime(data.from)}` : ''}${Object.keys(filter).length ? ' match' : ''}.</p>`}
    ${
      groups.length > 0 &&
      html`<div class="table-wrap" role="region" aria-label="Failure groups, table" tabindex="0"><table class="groups">
      <caption class="sr-only">Failures grouped by func, error type and message</caption>
      <thead><tr><th scope="col" class="num">Count</th><th scope="col">Cause</th><th scope="col" class="wide">Func</th><th scope="col" class="wide">Last</th><th scope="col" class="wide">First</th></tr></thead>
      <tbody>${groups.map(
        (g) => html`<tr>
        <td class="num">${num(g.count)}${g.retrying > 0 && html` <span class="tag warn" title="still retrying">${num(g.retrying)} retrying</span>`}</td>
        <td class="cause"><a href=${href(['failed'], { ...filter, errorGroup: g.id, from: filter.from || data.from })}><strong>${text(g.error ?? 'Error')}</strong>: ${text(g.message ?? '')}</a>
          <span class="narrow rel">${text(g.func)}, last ${relative(g.last)}</span></td>
        <td class="wide">${text(g.func)}</td>
        <td class="wide"><${Time} iso=${g.last} /></td>
        <td class="wide"><span title=${localTime(g.first)}>${relative(g.first)}</span></td>
      </tr>`,
      )}</tbody>
    </table></div>`
    }
  </section>`;
}

/** The title of a page `api/find` answers with, as the navigation says it. @param {string} page */
const titleOf = (page) => (page === 'clusters' ? 'Clusters' : `${page[0].toUpperCase()}${page.slice(1)} tasks`);

/** Under a search that found nothing on a page: the pages that hold it as an id or an exact name. */
/** @param {{ page: string, q: string }} props */
export function Elsewhere({ page, q }) {
  const { data, stale } = useData(`find${query({ q })}`, { live: false });
  const found = /** @type {{ page: string, id: string | number }[]} */ ((!stale && data?.found) || []).filter((f) => f.page !== page);
  return (
    found.length > 0 &&
    html`<p class="elsewhere">Not in ${titleOf(page)}: it is in ${found.map((f, i) => html`${i ? ', ' : ''}<a href=${f.page === 'clusters' ? href([f.page]) : href([f.page, String(f.id)])}>${titleOf(f.page)}</a>`)}.</p>`
  );
}

/**
 * The list's optional columns, each a checkbox: what this browser shows on the page, remembered
 * per page (the list reads it back when it is drawn).
 * @param {{ page: string, optional: { columns: string[] }, chosen: string[], choose: (chosen: string[]) => void }} props
 */
export function ColumnMenu({ page, optional, chosen, choose }) {
  /** @param {string} c @param {boolean} on */
  const set = (c, on) => {
    const next = optional.columns.filter((x) => (x === c ? on : chosen.includes(x)));
    choose(next);
    try {
      localStorage.setItem(`ormq-admin-columns:${page}`, JSON.stringify(next));
    } catch {}
  };
  return html`<fieldset class="column-menu"><legend>Optional columns</legend>
    ${optional.columns.map((c) => html`<label><input type="checkbox" checked=${chosen.includes(c)} onChange=${(/** @type {any} */ e) => set(c, e.currentTarget.checked)} /> ${label(c)}</label>`)}
  </fieldset>`;
}
