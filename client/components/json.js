import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { size } from '../lib/format.js';

const COLLAPSED_LINES = 30;

/**
 * A JSON value, formatted. Large values start collapsed; "Load all" shows the rest, fetching it
 * first when the server left it out of the detail (over 8 KB).
 * @param {{ name: string, value?: unknown, truncated?: { preview: string, bytes: number }, load?: () => Promise<unknown> }} props
 */
export function Json({ name, value, truncated, load }) {
  const [full, setFull] = useState(/** @type {{ value: unknown } | null} */ (null));
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  let body;
  let more = false;
  let moreLabel = '';
  if (truncated && !full) {
    body = `${truncated.preview}…`;
    more = true;
    moreLabel = `Load all (${size(truncated.bytes)})`;
  } else {
    const text = JSON.stringify(full ? full.value : value, null, 2) ?? 'null';
    const lines = text.split('\n');
    if (!open && lines.length > COLLAPSED_LINES) {
      body = `${lines.slice(0, COLLAPSED_LINES).join('\n')}\n…`;
      more = true;
      moreLabel = `Load all (${lines.length} lines)`;
    } else body = text;
  }

  const loadAll = async () => {
    if (truncated && !full && load) {
      setBusy(true);
      setError('');
      try {
        setFull({ value: await load() });
        setOpen(true);
      } catch (e) {
        setError(/** @type {Error} */ (e).message);
      } finally {
        setBusy(false);
      }
    } else setOpen(true);
  };

  return html`
    <div class="json">
      <pre role="region" aria-label=${`${name} as JSON`} tabindex="0">${body}</pre>
      ${more && html`<button type="button" class="link" onClick=${loadAll} disabled=${busy}>${busy ? 'Loading…' : moreLabel}</button>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
    </div>
  `;
}
