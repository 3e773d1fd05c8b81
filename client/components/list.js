/**
 * One list page: search, filters, the table, keyset paging and row actions. Its state lives in
 * the URL hash so a view can be bookmarked and survives a reload; "Newer" works by keeping the
 * cursors of the pages before this one in the hash (`prev`), as keyset cursors only go one way.
 */
import { html } from 'htm/preact';
import { useContext, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, query } from '../lib/api.js';
import { LiveContext, useData } from '../lib/data.js';
import { num, plural } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href, navigate, rememberList, replace } from '../lib/router.js';
import { ActionButtons, rowActions } from './bulk.js';
import { ErrorBox } from './detail.js';
import { FilterSelect, SearchBox } from './filters.js';
import { Table } from './table.js';

/**
 * The optional columns this browser shows on a page, as their menu remembered them (none without a menu).
 * @param {string} page @param {{ columns: string[] } | undefined} optional
 */
const stored = (page, optional) => {
  try {
    return /** @type {string[]} */ (optional).columns.filter((c) => JSON.parse(localStorage[`ormq-admin-columns:${page}`]).includes(c));
  } catch {
    return [];
  }
};

/**
 * @typedef {{ name: string, label: string, options?: (choices: any) => { value: string, label: string }[], chip?: (value: string) => string,
 *   control?: (value: string, set: (v: string) => void) => any }} Filter
 * A filter with `chip` has no control: set by a link, it shows as a chip that removes it. One with
 * `control` draws its own.
 * @param {{
 *   page: string,
 *   meta: any,
 *   route: import('../lib/router.js').Route,
 *   title: string,
 *   one: string,
 *   many: string,
 *   searchHint: string,
 *   filters: Filter[],
 *   cell: (column: string, row: any) => any,
 *   rowName: (row: any) => string,
 *   intro?: any,
 *   tools?: any,
 *   missing?: (search: string) => any,
 *   optional?: { columns: string[], menu: any },
 * }} props
 * `missing` is shown under a search that found nothing (where else it is); `optional` columns are
 * added to the page's by their `menu` (the server sends their fields when the list asks with `columns`).
 */
export function ListPage({ page, meta, route, title, one, many, searchHint, filters, cell, rowName, intro, tools, missing, optional }) {
  const conf = meta.pages[page];
  const noun = (/** @type {number} */ n) => plural(n, one, many);
  const params = route.params;
  const search = params.get('search') ?? '';
  /** @type {Record<string, string>} */
  const filter = { search };
  for (const f of filters) filter[f.name] = params.get(f.name) ?? '';
  const cursor = params.get('cursor') ?? '';
  const prev = params.getAll('prev');
  const filterKey = query(filter);

  const [selected, setSelected] = useState(/** @type {Set<string>} */ (new Set()));
  const [all, setAll] = useState(false);
  const liveOn = useContext(LiveContext);
  // a refresh would move selected rows off the page while the user decides what to do with them
  const paused = liveOn && (selected.size > 0 || all);
  const [chosen, choose] = useState(() => stored(page, optional));
  const [menu, setMenu] = useState(false);
  const columns = [...new Set([...conf.columns, ...chosen])];
  const list = useData(`${page}${query({ ...filter, cursor, columns: chosen.join() })}`, { live: !paused });
  useEffect(() => {
    rememberList(page, href([page], { ...filter, cursor: cursor || null, prev }));
  }, [page, filterKey, cursor, prev.join()]);
  const choices = useData(filters.length ? `${page}/filters` : null, { live: false });
  const allowed = rowActions(meta, page);

  const [matching, setMatching] = useState(/** @type {number | null} */ (null));
  const [estimated, setEstimated] = useState(false);
  useEffect(() => {
    setSelected(new Set());
    setAll(false);
    setMatching(null);
  }, [filterKey, cursor]);

  const rows = /** @type {any[]} */ (list.data?.rows ?? []);
  // ids as the API spells them, for selected rows a refresh has taken off the page
  const rawIds = useRef(/** @type {Map<string, any>} */ (new Map()));
  rows.forEach((r) => rawIds.current.set(String(r.id), r.id));
  const pageIds = useMemo(() => rows.map((r) => String(r.id)), [rows]);
  const allOnPage = pageIds.length > 0 && pageIds.every((id) => selected.has(id));
  const more = !!(list.data?.next || cursor);

  // the count for "Select all N matching" (an estimate on a large table), asked only when it can be offered
  useEffect(() => {
    if (!allOnPage || !more || matching !== null) return;
    let live = true;
    api(`${page}/count${filterKey}`).then(
      (r) => {
        if (!live) return;
        setEstimated(r.estimated === true);
        setMatching(r.count);
      },
      () => {},
    );
    return () => void (live = false);
  }, [allOnPage, more, filterKey]);

  /**
   * A filter change is a history entry, so Back undoes it; refining a search as it is typed
   * replaces the entry instead of adding one per pause.
   * @param {Record<string, string>} changes @param {boolean} [refine]
   */
  const setQuery = (changes, refine = false) => {
    const next = href([page], { ...filter, ...changes });
    if (refine) replace(next);
    else navigate(next);
  };

  const count = list.data?.count;
  const selectedCount = all && matching !== null ? matching : selected.size;
  const about = estimated ? 'about ' : '';
  const noFilter = Object.values(filter).every((v) => !v);
  // a new filter or page is loading: the rows and count shown are the old ones, dimmed
  const stale = list.stale && list.loading;

  return html`
    <section class=${stale ? 'list stale' : 'list'} aria-labelledby="page-title" aria-busy=${stale}>
      <div class="page-head">
        <h1 id="page-title">${title}</h1>
        ${stale && html`<span class="busy" role="status">Loading…</span>`}
        ${count && html`<span class="count">${count.estimated ? 'about ' : ''}${num(count.value)} ${count.value === 1 ? 'row' : 'rows'}${noFilter ? '' : ' match'}</span>`}
        ${tools}
        ${optional && html`<button type="button" class="link" aria-expanded=${menu} onClick=${() => setMenu(!menu)}>Columns</button>`}
      </div>
      ${menu && html`<${optional.menu} page=${page} optional=${optional} chosen=${chosen} choose=${choose} />`}
      ${intro}
      <div class="toolbar">
        <${SearchBox} value=${search} hint=${`Searches ${searchHint}`} onSearch=${(/** @type {string} */ v, /** @type {boolean} */ typing) => v !== search && setQuery({ search: v }, typing && !!v && !!search)} />
        ${filters.map((f) =>
          f.control
            ? f.control(filter[f.name], (/** @type {string} */ v) => setQuery({ [f.name]: v }))
            : f.chip
              ? filter[f.name] &&
                html`<span class="chip">${f.label} ${f.chip(filter[f.name])}
            <a href=${href([page], { ...filter, [f.name]: null })} aria-label=${`Remove ${f.label.toLowerCase()}`}>×</a></span>`
              : html`<${FilterSelect} name=${f.name} label=${f.label} value=${filter[f.name]}
            options=${choices.data && f.options ? f.options(choices.data) : []}
            onChange=${(/** @type {string} */ v) => setQuery({ [f.name]: v })} />`,
        )}
        ${!noFilter && html`<a class="clear" href=${href([page])}>Clear search and filters</a>`}
      </div>
      ${list.data?.searchBound && html`<p class="hint">${list.data.searchBound.note}</p>`}
      <${ErrorBox} error=${list.error} retry=${list.reload} busy=${list.loading} />
      ${
        allowed.length > 0 &&
        rows.length > 0 &&
        html`<div class="bulk">
        <span class="selection" aria-live="polite">${all && matching !== null ? `All ${about}${num(matching)} matching rows selected` : `${num(selected.size)} selected`}${paused ? html` <span class="tag warn">updates paused</span>` : ''}</span>
        <${ActionButtons} page=${page} actions=${allowed} count=${selectedCount} estimated=${all && matching !== null && estimated} noun=${noun}
          target=${() => (all && matching !== null ? { all: true, filter, count: matching } : selected.size ? { ids: [...selected].map((id) => rawIds.current.get(id) ?? id) } : null)}
          onDone=${(/** @type {any} */ a, /** @type {number} */ done) => {
            // one row picked: the notice names it ("Resubmitted sync-invoices")
            const picked = !all && selected.size === 1 && rows.find((r) => selected.has(String(r.id)));
            notify(`${a.past} ${done === 1 && picked ? rowName(picked) : noun(done)}.`);
            setSelected(new Set());
            setAll(false);
            setMatching(null);
            list.reload();
          }}
          scope=${() => [...(search ? [`Search: ${search}`] : []), ...filters.filter((f) => filter[f.name]).map((f) => `${f.label}: ${f.chip ? f.chip(filter[f.name]) : filter[f.name]}`)]}
          onError=${() => list.reload()} />
        ${
          allOnPage &&
          more &&
          !all &&
          matching !== null &&
          html`<button type="button" class="link" onClick=${() => setAll(true)}>Select all ${about}${num(matching)} matching</button>`
        }
        ${
          (all || selected.size > 0) &&
          html`<button type="button" class="link" onClick=${() => {
            setSelected(new Set());
            setAll(false);
          }}>Clear selection</button>`
        }
      </div>`
      }
      ${
        list.data &&
        rows.length > 0 &&
        html`<${Table} caption=${title} columns=${columns} rows=${rows} cell=${cell} rowName=${rowName}
        detail=${conf.can.view ? (/** @type {any} */ r) => href([page, String(r.id)]) : undefined}
        selected=${selected} onSelect=${
          allowed.length
            ? (/** @type {string[]} */ ids, /** @type {boolean} */ on) => {
                const s = new Set(selected);
                ids.forEach((id) => (on ? s.add(id) : s.delete(id)));
                setSelected(s);
                if (!on) setAll(false);
              }
            : null
        } />`
      }
      ${
        list.data &&
        rows.length === 0 &&
        html`<p class="empty">${cursor ? 'No more rows.' : noFilter ? `No ${many} yet.` : `No ${many} match.`}</p>${!cursor && search && missing?.(search)}`
      }
      ${!list.data && !list.error && html`<p class="loading" aria-busy="true">Loading…</p>`}
      <nav class="paging" aria-label="Pages of results">
        <button type="button" disabled=${!cursor} onClick=${() => {
          const back = prev.slice(0, -1);
          navigate(href([page], { ...filter, cursor: prev[prev.length - 1] || null, prev: back }));
        }}>Newer</button>
        <button type="button" disabled=${!list.data?.next} onClick=${() =>
          navigate(href([page], { ...filter, cursor: list.data.next, prev: [...prev, cursor] }))}>Next</button>
      </nav>
    </section>
  `;
}
