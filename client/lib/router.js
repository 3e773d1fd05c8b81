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
