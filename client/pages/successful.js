/** Successful tasks: finished tasks with success = true. */
import { html } from 'htm/preact';
import { ListPage } from '../components/list.js';
import { missingOn, optionalTaskColumns, taskCell, taskFilters } from '../components/task.js';
import { num } from '../lib/format.js';

const title = 'Successful tasks';
const one = 'successful task';
const many = 'successful tasks';

/** @param {number | null} limit */
function saveLimitNote(limit) {
  if (limit === null || limit === undefined || limit === 0) return null;
  const text =
    limit < 0
      ? 'Successful tasks are not kept: the clusters run with saveLimit −1.'
      : `Only the newest ${num(limit)} successes are kept (saveLimit).`;
  return html`<p class="note">${text}</p>`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Successful({ meta, route }) {
  return html`<${ListPage} page="successful" meta=${meta} route=${route} title=${title} one=${one} many=${many}
    searchHint="name, func, group or task id" filters=${taskFilters} cell=${taskCell} rowName=${(/** @type {any} */ r) => r.name}
    intro=${saveLimitNote(meta.saveLimit)} missing=${missingOn('successful')} optional=${optionalTaskColumns} />`;
}
