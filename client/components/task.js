/** What Successful tasks and Failed tasks share in their lists: filters and cells. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { text } from '../lib/format.js';
import { duration, localTime, relative, Time } from '../lib/time.js';
import { SuccessIcon } from './detail.js';
const hourLabel = new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: 'numeric', minute: '2-digit' });

/** The last 24 whole hours, newest first, as the overview's chart links to them. */
function lastHours() {
  const now = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  return Array.from({ length: 24 }, (_, i) => {
    const d = new Date(now - i * 3_600_000);
    return { value: d.toISOString(), label: hourLabel.format(d) };
  });
}

export const taskFilters = [
  {
    name: 'group',
    label: 'Group',
    options: (/** @type {any} */ c) => (c.group ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })),
  },
  {
    name: 'cluster',
    label: 'Cluster',
    options: (/** @type {any} */ c) => (c.cluster ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })),
  },
  {
    name: 'func',
    label: 'Func',
    options: (/** @type {any} */ c) => (c.func ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })),
  },
  { name: 'hour', label: 'Ended in hour', options: lastHours },
  // a span of `stopped`, set by the Metrics page's links: shown as removable chips
  { name: 'from', label: 'Stopped from', chip: localTime },
  { name: 'to', label: 'Stopped before', chip: localTime },
  { name: 'args', label: 'Args contain', control: argsFilter },
];

/**
 * Text inside the task's args (`invoice-3`). What is typed is kept while the list redraws (its
 * rows arriving): a box bound to the filter alone lost it.
 * @param {{ value: string, set: (v: string) => void }} props
 */
function ArgsFilter({ value, set }) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  // change: on Enter, or when the box is left with a new value (the same filter is no navigation)
  return html`<div class="filter"><label for="filter-args">Args contain</label><input id="filter-args" size="12" value=${draft}
    onInput=${(/** @type {any} */ e) => setDraft(e.currentTarget.value)} onChange=${(/** @type {any} */ e) => set(e.currentTarget.value.trim())} /></div>`;
}

/** @param {string} value @param {(v: string) => void} set */
function argsFilter(value, set) {
  return html`<${ArgsFilter} value=${value} set=${set} />`;
}

/**
 * A component whose code is fetched when it is first drawn: views most visits never show stay out
 * of the page's first load.
 */
export const lazy = (/** @type {() => Promise<any>} */ load) => (/** @type {any} */ props) => {
  const [C, set] = useState(/** @type {any} */ (null));
  useEffect(() => void load().then((c) => set(() => c)), []);
  return C && html`<${C} ...${props} />`;
};

const Elsewhere = lazy(() => import('./triage.js').then((m) => m.Elsewhere));

/** @param {string} page */
export const missingOn = (page) => (/** @type {string} */ q) => html`<${Elsewhere} page=${page} q=${q} />`;

/** Columns a task list adds when this browser asks for them (off by default), and their menu. */
export const optionalTaskColumns = { columns: ['args', 'attemptCount'], menu: lazy(() => import('./triage.js').then((m) => m.ColumnMenu)) };

/** Failed tasks also tell a failure the cluster will retry from one it will not. */
export const failedFilters = [
  ...taskFilters,
  {
    name: 'state',
    label: 'State',
    options: () => [
      { value: 'retrying', label: 'Retrying' },
      { value: 'final', label: 'Final' },
    ],
  },
  // set by a failure group's link
  { name: 'errorGroup', label: 'Cause', chip: (/** @type {string} */ v) => v },
];

/** @param {string} column @param {any} row */
export function taskCell(column, row) {
  const v = row[column];
  switch (column) {
    case 'enqueued':
    case 'started':
    case 'stopped':
      return html`<${Time} iso=${v} rel />`;
    case 'timeTaken':
      return duration(v);
    case 'success':
      return html`<${SuccessIcon} ok=${v} />`;
    case 'name':
      return row.retrying
        ? html`${text(v)} <span class="tag warn" title=${row.retrying.nextAt ? `Runs again ${relative(row.retrying.nextAt)}` : 'Runs again when a cluster takes it'}>retrying</span>`
        : text(v);
    case 'shortResult':
    case 'args':
      return html`<span class="short" title=${text(v)}>${text(v)}</span>`;
    default:
      return text(v);
  }
}
