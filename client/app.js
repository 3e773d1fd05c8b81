/** The admin's shell: header, navigation, the "Live" toggle, and the page the URL hash names. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ErrorBox } from './components/detail.js';
import { LiveContext, useData } from './lib/data.js';
import { clearNotice, useNotice } from './lib/notice.js';
import { PAGES, ROW_ACTIONS } from './lib/format.js';
import { href, navigate, pageTitle, parseHash, searchSoon, useRoute } from './lib/router.js';

/**
 * Each page's code loads when it is first shown, so the first load carries the shell and one page
 * (the whole client would exceed the 20 KB budget).
 * @type {Record<string, () => Promise<any>>}
 */
const VIEWS = {
  '': () => import('./pages/overview.js').then((m) => m.Overview),
  successful: () => import('./pages/successful.js').then((m) => m.Successful),
  failed: () => import('./pages/failed.js').then((m) => m.Failed),
  scheduled: () => import('./pages/scheduled.js').then((m) => m.Scheduled),
  'scheduled-form': () => import('./pages/schedule-form.js').then((m) => m.ScheduleFormPage),
  queued: () => import('./pages/queued.js').then((m) => m.Queued),
  clusters: () => import('./pages/clusters.js').then((m) => m.Clusters),
  metrics: () => import('./pages/metrics.js').then((m) => m.Metrics),
  'task-detail': () => import('./pages/task-detail.js').then((m) => m.TaskDetailPage),
  'scheduled-detail': () => import('./pages/scheduled-detail.js').then((m) => m.ScheduleDetailPage),
  'queued-detail': () => import('./pages/queued-detail.js').then((m) => m.QueuedDetailPage),
};

/** The chunk a route needs; the schedule form has its own. @param {string[]} path */
const viewOf = (path) =>
  path[0] === 'scheduled' && (path[1] === 'new' || path[2] === 'edit') ? 'scheduled-form'
  : (path[0] === 'successful' || path[0] === 'failed') && path[1] ? 'task-detail'
  : path[0] === 'scheduled' && path[1] ? 'scheduled-detail'
  : path[0] === 'queued' && path[1] ? 'queued-detail'
  : path[0] ?? '';

// the first page's code is fetched alongside api/meta rather than after it
VIEWS[viewOf(parseHash().path)]?.().catch(() => {});

/** @type {Record<string, any>} */
const loaded = {};

/** @param {{ page: string, meta: any, route: any }} props */
function View({ page, meta, route }) {
  const [, setTick] = useState(0);
  const [error, setError] = useState(/** @type {any} */ (null));
  const Page = loaded[page];
  useEffect(() => {
    if (Page) return;
    setError(null);
    VIEWS[page]().then((C) => {
      loaded[page] = C;
      setTick((t) => t + 1);
    }, setError);
  }, [page]);
  if (error) return html`<${ErrorBox} error=${{ message: `This page could not be loaded: ${error.message}` }} />`;
  return Page ? html`<${Page} meta=${meta} route=${route} />` : html`<p class="loading">Loading…</p>`;
}

const LIVE_KEY = 'ormq-admin-live';

function useLiveSetting() {
  const [live, setLive] = useState(() => {
    try {
      return localStorage.getItem(LIVE_KEY) === '1';
    } catch {
      return false;
    }
  });
  useEffect(() => {
    try {
      localStorage.setItem(LIVE_KEY, live ? '1' : '0');
    } catch {}
  }, [live]);
  return /** @type {const} */ ([live, setLive]);
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

export function App() {
  const meta = useData('meta', { live: false });
  const route = useRoute();
  const [live, setLive] = useLiveSetting();
  const page = route.path[0] ?? '';
  const m = meta.data;

  const form = viewOf(route.path) === 'scheduled-form';
  const name = page === '' ? 'Overview' : page === 'metrics' ? 'Metrics' : (PAGES.find(([p]) => p === page)?.[1] ?? 'Not found');
  const where = form ? (route.path[1] === 'new' ? 'New schedule' : 'Edit schedule') : name;
  useEffect(() => pageTitle(m?.title, route.path[1] && !form ? [name] : [where]), [m?.title, route.path.join('/')]);

  useEffect(() => {
    const onKey = (/** @type {KeyboardEvent} */ e) => {
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = /** @type {HTMLElement} */ (e.target);
      if (t.closest('input, textarea, select, [contenteditable]')) return;
      const search = document.getElementById('search');
      e.preventDefault();
      if (search) return search.focus();
      // no search box here (the overview, a detail, Clusters, Metrics): the list's, else Failed tasks'
      const list = page in ROW_ACTIONS ? page : 'failed';
      searchSoon();
      navigate(href([list]));
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [page]);

  // a page change moves focus to the new heading so screen readers announce it
  useEffect(() => {
    if (document.activeElement === document.body) focusHeading(true);
  }, [route.path.join('/')]);

  let view;
  if (meta.error) view = html`<${ErrorBox} error=${meta.error} />`;
  else if (!m) view = html`<p class="loading">Loading…</p>`;
  else if (!(page in VIEWS)) view = html`<h1>Not found</h1><p>There is no page “${page}”. <a href="#/">Go to the overview</a>.</p>`;
  else if (page && !m.pages[page]?.can.view) view = html`<h1>Not allowed</h1><p>You cannot view this page.</p>`;
  else view = html`<${View} page=${viewOf(route.path)} meta=${m} route=${route} />`;

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
          <li><a href="#/" aria-current=${page === '' ? 'page' : undefined}>Overview</a></li>
          ${PAGES.filter(([p]) => !m || m.pages[p]?.can.view).map(
            ([p, name]) => html`<li><a href=${href([p])} aria-current=${page === p ? 'page' : undefined}>${name}</a></li>`,
          )}
          ${m?.pages.metrics?.can.view && html`<li><a href="#/metrics" aria-current=${page === 'metrics' ? 'page' : undefined}>Metrics</a></li>`}
        </ul>
      </nav>
      <div class="top-right">
        ${m?.readOnly && html`<span class="tag">read-only</span>`}
        <label class="live"><input type="checkbox" checked=${live} onChange=${(/** @type {any} */ e) => setLive(e.currentTarget.checked)} /> Live</label>
      </div>
    </header>
    <${Notice} />
    <main id="main">${view}</main>
  <//>`;
}
