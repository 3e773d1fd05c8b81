/** Activity: every admin action, newest first (who, what, on which object, when), filterable. */
import { html } from 'htm/preact';
import { ErrorBox } from '../components/detail.js';
import { FilterSelect } from '../components/filters.js';
import { query } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { href, navigate } from '../lib/router.js';
import { Time } from '../lib/time.js';

/** Where an entry's object is shown: a row of a list page, or the failed task a stop ended. @param {any} e */
function objectLink(e) {
  if (e.objectId === null) return html`<span class="muted">—</span>`;
  const page = e.page === 'clusters' ? (e.action === 'stop' ? 'failed' : null) : e.page;
  return page ? html`<a href=${href([page, e.objectId])}>${e.objectId}</a>` : html`<span class="mono">${e.objectId}</span>`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Activity({ meta, route }) {
  const p = route.params;
  const filter = { actor: p.get('actor') ?? '', action: p.get('action') ?? '', page: p.get('page') ?? '' };
  const before = p.get('before') ?? '';
  const { data, error, reload, loading } = useData(`activity${query({ ...filter, before })}`);
  const go = (/** @type {Record<string, string>} */ changes) => navigate(href(['activity'], { ...filter, ...changes }));
  const withActions = Object.keys(meta.pages).filter((id) => meta.pages[id].actions);
  const actions = [...new Set(withActions.flatMap((id) => Object.keys(meta.pages[id].actions)))].sort();
  const rows = data?.rows ?? [];
  return html`<section class=${loading && data ? 'stale' : undefined} aria-labelledby="page-title">
    <div class="page-head"><h1 id="page-title">Activity</h1>${loading && data && html`<span class="busy" role="status">Loading…</span>`}</div>
    <form class="toolbar" role="search" onSubmit=${(/** @type {any} */ e) => {
      e.preventDefault();
      go({ actor: new FormData(e.currentTarget).get('actor')?.toString().trim() ?? '' });
    }}>
      <div class="filter"><label for="filter-actor">Who</label><input id="filter-actor" name="actor" value=${filter.actor} autocomplete="off" /></div>
      <${FilterSelect} name="action" label="Action" value=${filter.action} options=${actions.map((a) => ({ value: a, label: a }))} onChange=${(/** @type {string} */ v) => go({ action: v })} />
      <${FilterSelect} name="page" label="Page" value=${filter.page} options=${withActions.map((id) => ({ value: id, label: meta.pages[id].title }))} onChange=${(/** @type {string} */ v) => go({ page: v })} />
      <button type="submit">Filter</button>
      ${(filter.actor || filter.action || filter.page) && html`<a class="clear" href=${href(['activity'])}>Clear filters</a>`}
    </form>
    <${ErrorBox} error=${error} retry=${reload} busy=${loading} />
    ${!data && !error && html`<p class="loading">Loading…</p>`}
    ${data && rows.length === 0 && html`<p class="empty">${before ? 'No older actions.' : 'No admin action matches.'}</p>`}
    ${
      rows.length > 0 &&
      html`<div class="table-wrap" role="region" aria-label="Activity, table" tabindex="0"><table>
      <caption class="sr-only">Admin actions, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Page</th><th scope="col">Object</th><th scope="col">What</th></tr></thead>
      <tbody>${rows.map(
        (/** @type {any} */ e) => html`<tr>
        <td><${Time} iso=${e.at} rel /></td>
        <td>${e.actor ?? html`<span class="muted">unknown</span>`}</td>
        <td>${e.action}</td>
        <td>${meta.pages[e.page]?.title ?? e.page}</td>
        <td>${objectLink(e)}</td>
        <td class="wrap">${e.summary}</td>
      </tr>`,
      )}</tbody>
    </table></div>`
    }
    <nav class="paging" aria-label="Pages of results">
      <button type="button" disabled=${!before} onClick=${() => go({})}>Newest</button>
      <button type="button" disabled=${!data?.next} onClick=${() => go({ before: data.next })}>Older</button>
    </nav>
  </section>`;
}
