/**
 * Loads API data for a view and, while "Live" is on, reloads it: each reload is scheduled with
 * setTimeout only after the previous one finished (requests never pile up on a slow server), and
 * none is made while the tab is hidden.
 */
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

export const LIVE_INTERVAL = 5000;

/** @type {import('preact').Context<boolean>} */
export const LiveContext = createContext(false);

/**
 * @param {string | null} path null: nothing to load
 * @param {{ live?: boolean }} [options] live: false for data that does not change (filter choices)
 */
export function useData(path, options = {}) {
  const liveOn = useContext(LiveContext) && options.live !== false;
  const [version, setVersion] = useState(0);
  const [state, setState] = useState(/** @type {{ data: any, error: any, path: string | null, loading: boolean }} */ ({ data: null, error: null, path: null, loading: true }));

  useEffect(() => {
    if (!path) return;
    let stopped = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    let controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));

    const whenVisible = () => {
      if (stopped) return;
      if (document.hidden) document.addEventListener('visibilitychange', whenVisible, { once: true });
      else load();
    };
    const load = async () => {
      controller = new AbortController();
      try {
        const data = await api(path, { signal: controller.signal });
        if (!stopped) setState({ data, error: null, path, loading: false });
      } catch (e) {
        if (stopped || /** @type {Error} */ (e).name === 'AbortError') return;
        setState((s) => ({ ...s, error: e, loading: false }));
      }
      if (!stopped && liveOn) timer = setTimeout(whenVisible, LIVE_INTERVAL);
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
      controller.abort();
      document.removeEventListener('visibilitychange', whenVisible);
    };
  }, [path, liveOn, version]);

  return {
    // data from an earlier path stays shown while the new one loads, so the table does not blink
    data: state.data,
    stale: state.path !== path,
    error: state.error,
    loading: state.loading,
    reload: () => setVersion((v) => v + 1),
  };
}
