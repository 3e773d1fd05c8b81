import { html } from 'htm/preact';

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const zoned = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });

/** @param {string | null | undefined} iso */
export function localTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : absolute.format(d);
}

/** "in 5 min", "3 min ago" @param {string} iso @param {number} [now] */
export function relative(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  if (Number.isNaN(ms)) return '';
  const s = Math.round(Math.abs(ms) / 1000);
  let text;
  if (s < 45) return ms >= 0 ? 'in a few seconds' : 'just now';
  if (s < 5400) text = `${Math.max(1, Math.round(s / 60))} min`;
  else if (s < 172800) text = `${Math.round(s / 3600)} h`;
  else text = `${Math.round(s / 86400)} days`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/**
 * A time in the browser's zone; the zone and the UTC value are in the title (shown on hover).
 * @param {{ iso: string | null | undefined, rel?: boolean }} props
 */
export function Time({ iso, rel }) {
  if (!iso) return html`<span class="muted">—</span>`;
  const d = new Date(iso);
  const utc = d.toISOString();
  return html`<time datetime=${utc} title=${`${zoned.format(d)} · ${utc}`}>${localTime(iso)}</time>${rel ? html` <span class="rel">${relative(iso)}</span>` : null}`;
}

/** @param {number | null | undefined} ms */
export function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `<input type="datetime-local">` value for an ISO time, in the browser's zone. @param {string | null | undefined} iso */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** @param {string} value from a datetime-local input */
export function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
