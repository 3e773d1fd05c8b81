/**
 * Loads API data for a view and, while "Live" is on, reloads it: each reload is scheduled with
 * setTimeout only after the previous one finished (requests never pile up on a slow server), and
 * none is made while the tab is hidden.
 */
import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';

const LIVE_INTERVAL = 5000;
/** The longest wait between live reloads of a server that keeps answering 503 or cannot be reached. */
const LIVE_MAX = 60_000;

/**
 * The wait before the next live reload: LIVE_INTERVAL after an answer; after a 503 or no answer at
 * all, twice the previous wait (at least the server's Retry-After), up to LIVE_MAX, so a busy
 * admin is not asked again every five seconds by every open tab.
 * @param {number} previous the wait before the load that just ended
 * @param {any} error what that load failed with, or null
 */
function nextLiveDelay(previous, error) {
  return error && (error.status === 503 || !error.status)
    ? Math.min(LIVE_MAX, Math.max(previous * 2, (error.retryAfter ?? 0) * 1000))
    : LIVE_INTERVAL;
}

/** @type {import('preact').Context<boolean>} */
export const LiveContext = createContext(false);

/** When data last arrived (ms), for the shell's "updated N s ago"; `onLoaded` hears of each arrival. */
export const lastLoad = { at: 0, /** @type {() => void} */ onLoaded: () => {} };

/**
 * @param {string | null} path null: nothing to load
 * @param {{ live?: boolean }} [options] live: false for data that does not change (filter choices)
 */
export function useData(path, options = {}) {
  const liveOn = useContext(LiveContext) && options.live !== false;
  const [version, setVersion] = useState(0);
  const [state, setState] = useState(
    /** @type {{ data: any, error: any, path: string | null, loading: boolean }} */ ({
      data: null,
      error: null,
      path: null,
      loading: true,
    }),
  );
  const delay = useRef(LIVE_INTERVAL);

  useEffect(() => {
    if (!path) return;
    let stopped = false;
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api(path, { signal: controller.signal }).then(
      (data) => {
        if (stopped) return;
        setState({ data, error: null, path, loading: false });
        lastLoad.at = Date.now();
        lastLoad.onLoaded();
      },
      (e) => {
        if (stopped || /** @type {Error} */ (e).name === 'AbortError') return;
        setState((s) => ({ ...s, error: e, loading: false }));
      },
    );
    return () => {
      stopped = true;
      controller.abort();
    };
  }, [path, version]);

  // The next live reload is scheduled when a load has ended; turning live off (or pausing it)
  // cancels it without loading anything.
  useEffect(() => {
    if (!path || !liveOn || state.loading) return;
    const whenVisible = () => {
      if (document.hidden) document.addEventListener('visibilitychange', whenVisible, { once: true });
      else setVersion((v) => v + 1);
    };
    delay.current = nextLiveDelay(delay.current, state.error);
    const timer = setTimeout(whenVisible, delay.current);
    return () => {
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', whenVisible);
    };
  }, [path, liveOn, state]);

  return {
    // data from an earlier path stays shown while the new one loads, so the table does not blink
    data: state.data,
    stale: state.path !== path,
    error: state.error,
    loading: state.loading,
    reload: () => setVersion((v) => v + 1),
  };
}
