/** What the shell, the lists and the details all show: a success icon and an error. */
import { html } from 'htm/preact';

/** A success flag as an icon with a text alternative. @param {{ ok: boolean | null | undefined }} props */
export function SuccessIcon({ ok }) {
  if (ok === null || ok === undefined) return html`<span class="muted">—</span>`;
  return ok
    ? html`<span class="icon ok" role="img" aria-label="Succeeded" title="Succeeded">✔</span>`
    : html`<span class="icon fail" role="img" aria-label="Failed" title="Failed">✘</span>`;
}

/** @param {{ error: any, retry?: () => void, busy?: boolean }} props retry: a Retry button (not for a 404) */
export function ErrorBox({ error, retry, busy }) {
  if (!error) return null;
  const gone = error.status === 404;
  return html`<p class="error" role="alert">${gone ? 'Not found: it may have been deleted.' : error.message}${retry && !gone && html` <button type="button" class="retry" disabled=${busy} onClick=${retry}>${busy ? 'Retrying…' : 'Retry'}</button>`}</p>`;
}
