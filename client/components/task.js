/** What Successful tasks and Failed tasks share: their cells and their detail view. */
import { html } from 'htm/preact';
import { useData } from '../lib/data.js';
import { plural, text } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href, navigate } from '../lib/router.js';
import { duration, localTime, Time } from '../lib/time.js';
import { ActionButtons } from './bulk.js';
import { ErrorBox, Fields, History, SuccessIcon } from './detail.js';

export const taskFilters = [
  { name: 'group', label: 'Group', options: (/** @type {any} */ c) => (c.group ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })) },
  { name: 'cluster', label: 'Cluster', options: (/** @type {any} */ c) => (c.cluster ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })) },
  { name: 'func', label: 'Func', options: (/** @type {any} */ c) => (c.func ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })) },
  // a span of `stopped`, set by the Metrics page's links: shown as removable chips
  { name: 'from', label: 'Stopped from', chip: localTime },
  { name: 'to', label: 'Stopped before', chip: localTime },
];

/** @param {string} column @param {any} row */
export function taskCell(column, row) {
  const v = row[column];
  switch (column) {
    case 'enqueued':
    case 'started':
    case 'stopped':
      return html`<${Time} iso=${v} />`;
    case 'timeTaken':
      return duration(v);
    case 'success':
      return html`<${SuccessIcon} ok=${v} />`;
    case 'shortResult':
      return html`<span class="short" title=${text(v)}>${text(v)}</span>`;
    default:
      return text(v);
  }
}

export const TASK_ORDER = ['id', 'name', 'func', 'hook', 'group', 'cluster', 'success', 'attemptCount', 'enqueued', 'started', 'stopped', 'timeTaken', 'args', 'kwargs', 'result'];

/** @type {Record<string, (v: any) => any>} */
const render = {
  enqueued: (v) => html`<${Time} iso=${v} />`,
  started: (v) => html`<${Time} iso=${v} />`,
  stopped: (v) => html`<${Time} iso=${v} />`,
  timeTaken: (v) => duration(v),
  success: (v) => html`<${SuccessIcon} ok=${v} /> ${v ? 'Succeeded' : 'Failed'}`,
};

/** A failure's error: its class and message, then the stack. @param {{ result: any }} props */
function Failure({ result }) {
  if (!result || typeof result !== 'object') return null;
  const { error, message, stack } = result;
  if (!error && !message && !stack) return null;
  return html`<section class="failure-box" aria-labelledby="error-title">
    <h2 id="error-title">Error</h2>
    <p class="error-message"><strong>${text(error ?? 'Error')}</strong>${message ? `: ${text(message)}` : ''}</p>
    ${stack && html`<pre class="stack" role="region" aria-label="Stack trace" tabindex="0">${text(stack)}</pre>`}
  </section>`;
}

/**
 * @param {{ page: 'successful' | 'failed', id: string, meta: any, title: string, one: string, many: string }} props
 */
export function TaskDetail({ page, id, meta, title, one, many }) {
  const { data, error, reload } = useData(`${page}/${encodeURIComponent(id)}`);
  const can = meta.pages[page].can;
  /** @type {import('./bulk.js').Action[]} */
  const actions = [
    { action: 'resubmit', label: 'Resubmit', past: 'Resubmitted' },
    { action: 'delete', label: 'Delete', past: 'Deleted', danger: true },
  ].filter((a) => can[a.action]);
  const o = data?.object;
  return html`<article class="detail" aria-labelledby="page-title">
    <p class="back"><a href=${href([page])}>← ${title}</a></p>
    <div class="page-head">
      <h1 id="page-title">${o ? o.name : id}</h1>
      ${o && actions.length > 0 &&
      html`<${ActionButtons} page=${page} actions=${actions} count=${1} noun=${(/** @type {number} */ n) => plural(n, one, many)}
        target=${() => ({ ids: [o.id] })} quick
        onDone=${(/** @type {any} */ a, /** @type {number} */ done) => {
          notify(`${a.past} ${plural(done, one, many)}.`);
          // a resubmitted failure and a deleted row are gone: back to the list
          if (a.action === 'delete' || page === 'failed') navigate(href([page]));
          else reload();
        }}
        onError=${(/** @type {Error} */ e) => notify(e.message, 'error')} />`}
    </div>
    <${ErrorBox} error=${error} />
    ${o && page === 'failed' && html`<${Failure} result=${o.result} />`}
    ${o && html`<${Fields} page=${page} id=${id} object=${o} truncated=${data.truncated} order=${TASK_ORDER} render=${render} />`}
    ${data && html`<${History} history=${data.history} />`}
    ${!data && !error && html`<p class="loading">Loading…</p>`}
  </article>`;
}
