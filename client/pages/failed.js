/** Failed tasks: finished tasks with success = false; the error is in the result. */
import { html } from 'htm/preact';
import { ListPage } from '../components/list.js';
import { failedFilters, taskCell } from '../components/task.js';

const title = 'Failed tasks';
const one = 'failed task';
const many = 'failed tasks';

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Failed({ meta, route }) {
  return html`<${ListPage} page="failed" meta=${meta} route=${route} title=${title} one=${one} many=${many}
    searchHint="name, func, group or task id" filters=${failedFilters} cell=${taskCell} rowName=${(/** @type {any} */ r) => r.name} />`;
}
