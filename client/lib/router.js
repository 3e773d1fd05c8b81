/**
 * Routing lives in the URL hash (`#/failed?search=x&cursor=...`) so the server needs no page routes
 * and a view can be bookmarked and reloaded under any mount path.
 */
import { useEffect, useState } from 'preact/hooks';

/** @typedef {{ path: string[], params: URLSearchParams }} Route */

/** @returns {Route} */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const at = raw.indexOf('?');
  const pathPart = at < 0 ? raw : raw.slice(0, at);
  const path = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return { path, params: new URLSearchParams(at < 0 ? '' : raw.slice(at + 1)) };
}

/**
 * @param {string[]} path
 * @param {URLSearchParams | Record<string, string | string[] | null | undefined>} [params]
 */
export function href(path, params) {
  let q = params instanceof URLSearchParams ? params : new URLSearchParams();
  if (params && !(params instanceof URLSearchParams)) {
    for (const [k, v] of Object.entries(params)) {
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else if (v !== undefined && v !== null && v !== '') q.set(k, v);
    }
  }
  const s = q.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${s ? `?${s}` : ''}`;
}

/** @param {string} to */
export function navigate(to) {
  if (location.hash !== to) location.hash = to;
}

/** @param {string} to replaces the history entry, for changes as the user types */
export function replace(to) {
  history.replaceState(null, '', to);
  dispatchEvent(new HashChangeEvent('hashchange'));
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const update = () => setRoute(parseHash());
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}

/*
 * What the admin keeps of where the user is: the list as last seen (for a detail's "← list" link),
 * the document title per page, and a search box to focus once the page that has one is shown.
 */

const LAST_LIST = 'ormq-admin-list-';

/** Remembers a list's URL (filters, search, page) for the way back from a detail. @param {string} page @param {string} at */
export function rememberList(page, at) {
  try {
    sessionStorage.setItem(LAST_LIST + page, at);
  } catch {}
}

/** The list as the user last saw it, else the list unfiltered. @param {string} page */
export function listHref(page) {
  try {
    const last = sessionStorage.getItem(LAST_LIST + page);
    if (last && last.startsWith(`#/${page}`)) return last;
  } catch {}
  return href([page]);
}

let app = 'Queue admin';
/** @type {string[]} */
let parts = [];

/**
 * The page's own title, then the admin's: "import · Failed tasks · Jobs".
 * @param {string | undefined} appTitle set by the shell; undefined keeps the last one
 * @param {string[]} [own] the page's parts, most specific first
 */
export function pageTitle(appTitle, own) {
  if (appTitle) app = appTitle;
  if (own) parts = own;
  document.title = [...parts, app].join(' · ');
}

/** A detail page names its object in front of the page's name. @param {string} name @param {string} page */
export function detailTitle(name, page) {
  pageTitle(undefined, [name, page]);
}
