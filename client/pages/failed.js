/**
 * Failed tasks: finished tasks with success = false; the error is in the result. Two views of the
 * same filter: the list, and the failures grouped by cause (`?view=groups`), each group opening the
 * list filtered by it.
 */
import { html } from 'htm/preact';
import { ListPage } from '../components/list.js';
import { failedFilters, lazy, missingOn, optionalTaskColumns, taskCell } from '../components/task.js';
import { href } from '../lib/router.js';

const title = 'Failed tasks';
const one = 'failed task';
const many = 'failed tasks';

const Groups = lazy(() => import('../components/triage.js').then((m) => m.Groups));

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Failed({ meta, route }) {
  if (route.params.get('view') === 'groups') return html`<${Groups} params=${route.params} />`;
  // the groups of the same filter (they leave out the list's paging)
  const tools = html`<a class="view-switch" href=${href(['failed'], new URLSearchParams([...route.params, ['view', 'groups']]))}>Group by cause</a>`;
  return html`<${ListPage} page="failed" meta=${meta} route=${route} title=${title} one=${one} many=${many}
    searchHint="name, func, group, error or task id" filters=${failedFilters} cell=${taskCell} rowName=${(/** @type {any} */ r) => r.name}
    tools=${tools} missing=${missingOn('failed')} optional=${optionalTaskColumns} />`;
}
