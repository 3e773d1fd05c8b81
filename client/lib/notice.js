/**
 * One message at a time for the status line under the header (e.g. "Deleted 3 failed tasks"),
 * kept across the navigation that often follows an action.
 */
import { useEffect, useState } from 'preact/hooks';

/** @typedef {{ text: string, kind: 'ok' | 'error', at: number, link?: { text: string, href: string } }} Notice */
/** @type {Set<(n: Notice | null) => void>} */
const listeners = new Set();
/** @type {Notice | null} */
let current = null;

/** @param {string} text @param {'ok' | 'error'} [kind] @param {{ text: string, href: string }} [link] */
export function notify(text, kind = 'ok', link) {
  current = { text, kind, at: Date.now(), link };
  listeners.forEach((l) => l(current));
}

export function clearNotice() {
  current = null;
  listeners.forEach((l) => l(null));
}

export function useNotice() {
  const [n, setN] = useState(current);
  useEffect(() => {
    listeners.add(setN);
    return () => void listeners.delete(setN);
  }, []);
  return n;
}
