/** Scheduled tasks: the list. A schedule's detail and its form are chunks of their own. */
import { html } from 'htm/preact';
import { ListPage } from '../components/list.js';
import { LastRun, timing, typeName, Zone } from '../components/schedule.js';
import { text } from '../lib/format.js';
import { href } from '../lib/router.js';
import { localTime, Time } from '../lib/time.js';

const title = 'Scheduled tasks';
const one = 'schedule';
const many = 'schedules';

const NEXT_RUN = [
  { value: 'past', label: 'In the past' },
  { value: 'today', label: 'Today' },
  { value: 'next7', label: 'Next 7 days' },
  { value: 'later', label: 'Later' },
];

/** @param {any} meta */
function cellFor(meta) {
  /** @param {string} column @param {any} row */
  return (column, row) => {
    const v = row[column];
    switch (column) {
      case 'scheduleType':
        return timing(meta, row);
      case 'name':
        return html`<a href=${href(['scheduled', String(row.id)])}>${text(v ?? `schedule ${row.id}`)}</a>`;
      case 'nextRun':
        // a paused schedule keeps its next run but will not run then
        return row.repeats === 0
          ? html`<span class="tag warn" title=${localTime(v)}>paused</span>`
          : html`<${Time} iso=${v} rel /> <${Zone} meta=${meta} zone=${row.timeZone} />`;
      case 'lastRun':
        return html`<${LastRun} lastRun=${v} />`;
      case 'success':
        return html`<${SuccessIcon} ok=${row.lastRun ? row.lastRun.success : null} />`;
      case 'repeats':
        return v === 0 ? html`${v} <span class="tag">paused</span>` : text(v);
      default:
        return text(v);
    }
  };
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
function List({ meta, route }) {
  const can = meta.pages.scheduled.can;
  return html`<${ListPage} page="scheduled" meta=${meta} route=${route} title=${title} one=${one} many=${many}
    searchHint="name and func" cell=${cellFor(meta)}
    rowName=${(/** @type {any} */ r) => r.name ?? `schedule ${r.id}`}
    tools=${can.create && html`<a class="button primary" href=${href(['scheduled', 'new'])}>Add schedule</a>`}
    filters=${[
      { name: 'nextRun', label: 'Next run', options: () => NEXT_RUN },
      {
        name: 'state',
        label: 'State',
        options: () => [
          { value: 'active', label: 'Active' },
          { value: 'paused', label: 'Paused' },
        ],
      },
      {
        name: 'type',
        label: 'Schedule type',
        options: (/** @type {any} */ c) =>
          (c.type?.length ? c.type : Object.keys(meta.scheduleTypes)).map((/** @type {any} */ t) => {
            const code = typeof t === 'string' ? t : (t.value ?? t.code);
            return { value: code, label: typeName(meta, code) };
          }),
      },
      {
        name: 'cluster',
        label: 'Cluster',
        options: (/** @type {any} */ c) => (c.cluster ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })),
      },
    ]} />`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Scheduled({ meta, route }) {
  return html`<${List} meta=${meta} route=${route} />`;
}
