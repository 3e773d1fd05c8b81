/** A schedule's detail: every field, its last run, actions and history. Loaded on demand. */
import { html } from 'htm/preact';
import { SuccessIcon } from '../components/detail.js';
import { ObjectDetail } from '../components/object-detail.js';
import { LastRun, typeName } from '../components/schedule.js';
import { plural } from '../lib/format.js';
import { href } from '../lib/router.js';
import { Time } from '../lib/time.js';

const title = 'Scheduled tasks';
const noun = (/** @type {number} */ n) => plural(n, 'schedule', 'schedules');

/** @param {number} repeats */
function repeatsText(repeats) {
  if (repeats === 0) return '0 (paused)';
  if (repeats < 0) return `${repeats} (runs indefinitely; has run ${-repeats - 1} ${repeats === -2 ? 'time' : 'times'})`;
  return `${repeats} (${repeats === 1 ? 'one more run' : `${repeats} more runs`})`;
}

const ORDER = [
  'id',
  'name',
  'func',
  'hook',
  'scheduleType',
  'minutes',
  'cron',
  'repeats',
  'pausedRepeats',
  'nextRun',
  'timeZone',
  'anchor',
  'lastRun',
  'success',
  'task',
  'cluster',
  'intendedDateKwarg',
  'args',
  'kwargs',
  'version',
];

/** @param {{ meta: any, id: string }} props */
function Detail({ meta, id }) {
  const named = (/** @type {any} */ o) => o.name ?? `schedule ${o.id}`;
  return html`<${ObjectDetail} page="scheduled" id=${id} meta=${meta} title=${title}
    name=${(/** @type {any} */ o) => o.name ?? `Schedule ${o.id}`} missing=${() => `Schedule ${id}`} noun=${noun} said=${named}
    applies=${(/** @type {string} */ a, /** @type {any} */ o) => (a === 'pause' ? o.repeats !== 0 : a === 'resume' ? o.repeats === 0 : true)}
    tools=${() => meta.pages.scheduled.can.edit && html`<a class="button" href=${href(['scheduled', id, 'edit'])}>Edit</a>`}
    order=${ORDER} render=${{
      scheduleType: (/** @type {string} */ v) => typeName(meta, v),
      // a paused schedule keeps its next run but does not run then: no countdown to it
      nextRun: (/** @type {string} */ v, /** @type {any} */ obj) =>
        obj.repeats === 0
          ? html`<span class="tag warn">paused</span> <span class="muted">no run until resumed (was due <${Time} iso=${v} />)</span>`
          : html`<${Time} iso=${v} rel />`,
      lastRun: (/** @type {any} */ v) => html`<${LastRun} lastRun=${v} />`,
      success: (/** @type {any} */ _v, /** @type {any} */ obj) => html`<${SuccessIcon} ok=${obj.lastRun ? obj.lastRun.success : null} />`,
      repeats: (/** @type {number} */ v) => repeatsText(v),
      pausedRepeats: (/** @type {number | null} */ v) =>
        v === null ? html`<span class="muted">—</span>` : html`${v} <span class="muted">(restored by Resume)</span>`,
      timeZone: (/** @type {string | null} */ v) => (v ? v : html`${meta.timeZone ?? 'UTC'} <span class="muted">(the cluster's)</span>`),
      anchor: (/** @type {string} */ v) => html`<${Time} iso=${v} /> <span class="muted">(calendar steps count from here)</span>`,
    }} />`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function ScheduleDetailPage({ meta, route }) {
  return html`<${Detail} key=${route.path[1]} meta=${meta} id=${route.path[1]} />`;
}
