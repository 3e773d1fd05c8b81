/** What the shell, the lists and the details all show: a success icon and an error. */
import { html } from 'htm/preact';

/** A success flag as an icon with a text alternative. @param {{ ok: boolean | null | undefined }} props */
export function SuccessIcon({ ok }) {
  if (ok === null || ok === undefined) return html`<span class="muted">—</span>`;
  return ok
    ? html`<span class="icon ok" role="img" aria-label="Succeeded" title="Succeeded">✔</span>`
    : html`<span class="icon fail" role="img" aria-label="Failed" title="Failed">✘</span>`;
}

/** @param {{ error: any }} props */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.status === 404 ? 'Not found: it may have been deleted.' : error.message}</p>`;
}
