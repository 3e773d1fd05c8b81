/** Queued tasks: the packages waiting in ormq_queued, with their locks. A package's detail is a chunk of its own. */
import { html } from 'htm/preact';
import { ListPage } from '../components/list.js';
import { Until, waits } from '../components/queued.js';
import { text } from '../lib/format.js';
import { relative, Time } from '../lib/time.js';

const title = 'Queued tasks';
const one = 'queued task';
const many = 'queued tasks';

/** @param {string} column @param {any} row */
function cell(column, row) {
  const v = row[column];
  if (column === 'lock') {
    // when another process may claim it: the lock's age alone does not say
    const exp = row.lockExpires && new Date(row.lockExpires).getTime() > Date.now() ? `expires ${relative(row.lockExpires)}` : 'expired';
    if (v)
      return html`<${Time} iso=${v} rel /> <span class="rel">· ${exp}</span>${row.stuck ? html` <span class="tag bad" title="Locked by a cluster process that stopped beating">stuck</span>` : ''}`;
    return html`<span class="muted">${waits(row.runAt) ? html`<${Until} iso=${row.runAt} />` : 'waiting'}</span>`;
  }
  if (column === 'runAt') return waits(v) ? html`<${Until} iso=${v} />` : '—';
  if (column === 'enqueued') return html`<${Time} iso=${v} rel />`;
  if (column === 'serial') return v ?? '—';
  return text(v);
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Queued({ meta, route }) {
  return html`<${ListPage} page="queued" meta=${meta} route=${route} title=${title} one=${one} many=${many}
    searchHint="name and func" cell=${cell} rowName=${(/** @type {any} */ r) => `${r.name ?? 'package'} (${r.id})`}
    filters=${[
      {
        name: 'key',
        label: 'Key',
        options: (/** @type {any} */ c) => (c.key ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })),
      },
      {
        name: 'priority',
        label: 'Priority',
        options: (/** @type {any} */ c) => (c.priority ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })),
      },
      { name: 'stuck', label: 'Lock', options: () => [{ value: 'yes', label: 'Stuck (its cluster stopped beating)' }] },
    ]} />`;
}
