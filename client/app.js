/** The admin's shell: header, navigation, the "Live" toggle, and the page the URL hash names. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ErrorBox } from './components/detail.js';
import { LiveContext, lastLoad, useData } from './lib/data.js';
import { clearNotice, useNotice } from './lib/notice.js';
import { isListPage, PAGES, viewOf } from './lib/pages.js';
import { href, pageTitle, parseHash, useRoute } from './lib/router.js';

// the first page's code is fetched alongside api/meta rather than after it
viewOf(parseHash().path)
  ?.load()
  .catch(() => {});

/** Each view's component once its code has loaded. @type {Map<() => Promise<any>, any>} */
const loaded = new Map();

/** @param {{ load: () => Promise<any>, meta: any, route: any }} props */
function View({ load, meta, route }) {
  const [, setTick] = useState(0);
  const [error, setError] = useState(/** @type {any} */ (null));
  const Page = loaded.get(load);
  useEffect(() => {
    if (Page) return;
    setError(null);
    load().then((C) => {
      loaded.set(load, C);
      setTick((t) => t + 1);
    }, setError);
  }, [load]);
  if (error) return html`<${ErrorBox} error=${{ message: `This page could not be loaded: ${error.message}` }} />`;
  return Page ? html`<${Page} meta=${meta} route=${route} />` : html`<p class="loading">Loading…</p>`;
}

/**
 * Adds to `api/meta` what only the registry knows: each page's title and the order of its row
 * actions, and the list pages in navigation order. Pages and components read these from meta, so
 * none of them imports the registry (which imports every page).
 * @param {any} meta
 */
function withRegistry(meta) {
  if (meta && !meta.listPages) {
    for (const [id, p] of Object.entries(PAGES))
      if (meta.pages[id]) Object.assign(meta.pages[id], { title: p.title, order: p.actions ?? [] });
    meta.listPages = Object.keys(PAGES).filter(isListPage);
  }
  return meta;
}

/** Live per page, as this browser last set it there; on by default where the figures move (Overview, Clusters). */
const liveKey = (/** @type {string} */ page) => `ormq-admin-live:${page || 'overview'}`;

/** @param {string} page */
function liveOf(page) {
  let v = null;
  try {
    v = localStorage.getItem(liveKey(page));
  } catch {}
  return v === null ? page === '' || page === 'clusters' : v === '1';
}

/** @param {string} page */
function useLiveSetting(page) {
  const [live, set] = useState(() => liveOf(page));
  useEffect(() => set(liveOf(page)), [page]);
  const setLive = (/** @type {boolean} */ on) => {
    set(on);
    try {
      localStorage.setItem(liveKey(page), on ? '1' : '0');
    } catch {}
  };
  return /** @type {const} */ ([live, setLive]);
}

/** "updated 4 s ago": how old what the page shows is, from the last data that arrived. */
function Updated() {
  const [, tick] = useState(0);
  useEffect(() => {
    lastLoad.onLoaded = () => tick((t) => t + 1);
    const timer = setInterval(() => tick((t) => t + 1), 1000);
    return () => clearInterval(timer);
  }, []);
  if (!lastLoad.at) return null;
  const s = Math.round((Date.now() - lastLoad.at) / 1000);
  return html`<span class="updated hint">updated ${s < 60 ? `${s} s` : `${Math.floor(s / 60)} min`} ago</span>`;
}

function Notice() {
  const n = useNotice();
  const route = useRoute();
  const key = route.path.join('/');
  // a notice survives the navigation its action causes at once, and goes with the next one
  useEffect(() => {
    if (n && Date.now() - n.at > 1500) clearNotice();
  }, [key]);
  return html`<div class="notice-area" role="status" aria-live="polite">
    ${n && html`<p class=${`notice ${n.kind}`}>${n.text} ${n.link && html`<a href=${n.link.href}>${n.link.text}</a> `}<button type="button" class="link" onClick=${clearNotice}>Dismiss</button></p>`}
  </div>`;
}

/** @param {boolean} [still] keep the scroll position */
function focusHeading(still) {
  const h = /** @type {HTMLElement | null} */ (document.querySelector('main h1'));
  if (h) {
    h.tabIndex = -1;
    h.focus({ preventScroll: still });
  }
}

/** The Go to box, its code fetched when first opened. */
const goto = () => import('./components/goto.js').then((m) => m.openGoto((p) => PAGES[p]?.title ?? p));

export function App() {
  const meta = useData('meta', { live: false });
  const route = useRoute();
  const page = route.path[0] ?? '';
  const [live, setLive] = useLiveSetting(page);
  const m = withRegistry(meta.data);

  const shown = viewOf(route.path);
  const form = shown?.view === 'form';
  const name = PAGES[page]?.title ?? 'Not found';
  const where = form ? (route.path[1] === 'new' ? 'New schedule' : 'Edit schedule') : name;
  useEffect(() => pageTitle(m?.title, route.path[1] && !form ? [name] : [where]), [m?.title, route.path.join('/')]);

  useEffect(() => {
    const onKey = (/** @type {KeyboardEvent} */ e) => {
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = /** @type {HTMLElement} */ (e.target);
      if (t.closest('input, textarea, select, [contenteditable]')) return;
      const search = document.getElementById('search');
      e.preventDefault();
      // a list's own search finds its rows and says where else a miss is; elsewhere, Go to
      if (search) search.focus();
      else goto();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [page]);

  // a page change moves focus to the new heading so screen readers announce it
  useEffect(() => {
    if (document.activeElement === document.body) focusHeading(true);
  }, [route.path.join('/')]);

  let view;
  if (meta.error) view = html`<${ErrorBox} error=${meta.error} retry=${meta.reload} busy=${meta.loading} />`;
  else if (!m) view = html`<p class="loading">Loading…</p>`;
  else if (!shown) view = html`<h1>Not found</h1><p>There is no page “${page}”. <a href="#/">Go to the overview</a>.</p>`;
  else if (page && !m.pages[page]?.can.view) view = html`<h1>Not allowed</h1><p>You cannot view this page.</p>`;
  else view = html`<${View} load=${shown.load} meta=${m} route=${route} />`;

  return html`<${LiveContext.Provider} value=${live}>
    <a class="skip" href="#main" onClick=${(/** @type {Event} */ e) => {
      // the hash is the route: move focus without changing it
      e.preventDefault();
      focusHeading();
    }}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/">${m?.title ?? 'Queue admin'}</a>
      <nav aria-label="Pages">
        <ul>
          ${Object.entries(PAGES)
            .filter(([p]) => p === '' || !m || m.pages[p]?.can.view)
            .map(
              ([p, { title }]) =>
                html`<li><a href=${p ? href([p]) : '#/'} aria-current=${page === p ? 'page' : undefined}>${title}</a></li>`,
            )}
        </ul>
      </nav>
      <div class="top-right">
        ${m?.readOnly && html`<span class="tag">read-only</span>`}
        <button type="button" class="link" aria-keyshortcuts="/" onClick=${goto}>Go to…</button>
        <${Updated} />
        <label class="live"><input type="checkbox" checked=${live} onChange=${(/** @type {any} */ e) => setLive(e.currentTarget.checked)} /> Live</label>
      </div>
    </header>
    <${Notice} />
    <main id="main">${view}</main>
  <//>`;
}
