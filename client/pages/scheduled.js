/** Scheduled tasks: the list, a schedule's detail, and the form that creates or edits one. */
import { html } from 'htm/preact';
import { ActionButtons } from '../components/bulk.js';
import { ErrorBox, Fields, History, SuccessIcon } from '../components/detail.js';
import { ListPage } from '../components/list.js';
import { useData } from '../lib/data.js';
import { plural, text } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href, navigate } from '../lib/router.js';
import { Time } from '../lib/time.js';

const title = 'Scheduled tasks';
const one = 'schedule';
const many = 'schedules';
const noun = (/** @type {number} */ n) => plural(n, one, many);

/** @type {import('../components/bulk.js').Action[]} */
const ACTIONS = [
  { action: 'pause', label: 'Pause', past: 'Paused' },
  { action: 'resume', label: 'Resume', past: 'Resumed' },
  { action: 'run', label: 'Run now', past: 'Started' },
  { action: 'delete', label: 'Delete', past: 'Deleted', danger: true },
];

const NEXT_RUN = [
  { value: 'past', label: 'In the past' },
  { value: 'today', label: 'Today' },
  { value: 'next7', label: 'Next 7 days' },
  { value: 'later', label: 'Later' },
];

/** @param {any} meta @param {string} code */
const typeName = (meta, code) => meta.scheduleTypes?.[code] ?? code;

/** The last task a schedule created, linked to its detail on the page its outcome puts it on. @param {{ lastRun: { id: string, success: boolean } | null }} props */
function LastRun({ lastRun }) {
  if (!lastRun) return html`<span class="muted">—</span>`;
  const id = String(lastRun.id);
  return html`<${SuccessIcon} ok=${lastRun.success} /> <a class="mono" href=${href([lastRun.success ? 'successful' : 'failed', id])} title=${id}>${id.slice(0, 8)}…</a>`;
}

/** The zone a schedule keeps its wall clock in: its own, else the cluster's. @param {{ meta: any, zone: string | null }} props */
function Zone({ meta, zone }) {
  const z = zone ?? meta.timeZone ?? 'UTC';
  return html`<span class="tag zone" title=${zone ? 'Time zone of this schedule' : "The cluster's time zone (the schedule has none of its own)"}>${z}</span>`;
}

/** @param {number} repeats */
function repeatsText(repeats) {
  if (repeats === 0) return '0 (paused)';
  if (repeats < 0) return `${repeats} (runs indefinitely; has run ${-repeats - 1} ${repeats === -2 ? 'time' : 'times'})`;
  return `${repeats} (${repeats === 1 ? 'one more run' : `${repeats} more runs`})`;
}

/** @param {any} meta */
function cellFor(meta) {
  /** @param {string} column @param {any} row */
  return (column, row) => {
    const v = row[column];
    switch (column) {
      case 'scheduleType':
        return typeName(meta, v);
      case 'nextRun':
        return html`<${Time} iso=${v} rel /> <${Zone} meta=${meta} zone=${row.timeZone} />`;
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
    searchHint="name and func" cell=${cellFor(meta)} actions=${ACTIONS}
    rowName=${(/** @type {any} */ r) => r.name ?? `schedule ${r.id}`}
    tools=${can.create && html`<a class="button primary" href=${href(['scheduled', 'new'])}>Add schedule</a>`}
    filters=${[
      { name: 'nextRun', label: 'Next run', options: () => NEXT_RUN },
      {
        name: 'type',
        label: 'Schedule type',
        options: (/** @type {any} */ c) =>
          (c.type?.length ? c.type : Object.keys(meta.scheduleTypes)).map((/** @type {any} */ t) => {
            const code = typeof t === 'string' ? t : t.value ?? t.code;
            return { value: code, label: typeName(meta, code) };
          }),
      },
      { name: 'cluster', label: 'Cluster', options: (/** @type {any} */ c) => (c.cluster ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })) },
    ]} />`;
}

const ORDER = ['id', 'name', 'func', 'hook', 'scheduleType', 'minutes', 'cron', 'repeats', 'pausedRepeats', 'nextRun', 'timeZone', 'anchor', 'lastRun', 'success', 'task', 'cluster', 'intendedDateKwarg', 'args', 'kwargs', 'version'];

/** @param {{ meta: any, id: string }} props */
function Detail({ meta, id }) {
  const { data, error, reload } = useData(`scheduled/${encodeURIComponent(id)}`);
  const can = meta.pages.scheduled.can;
  const o = data?.object;
  const actions = o
    ? ACTIONS.filter((a) => can[a.action] && (a.action === 'pause' ? o.repeats !== 0 : a.action === 'resume' ? o.repeats === 0 : true))
    : [];
  return html`<article class="detail" aria-labelledby="page-title">
    <p class="back"><a href=${href(['scheduled'])}>← ${title}</a></p>
    <div class="page-head">
      <h1 id="page-title">${o ? o.name ?? `Schedule ${o.id}` : `Schedule ${id}`}</h1>
      ${o && can.edit && html`<a class="button" href=${href(['scheduled', id, 'edit'])}>Edit</a>`}
      ${o && actions.length > 0 &&
      html`<${ActionButtons} page="scheduled" actions=${actions} count=${1} noun=${noun} quick
        target=${() => ({ ids: [o.id] })}
        onDone=${(/** @type {any} */ a) => {
          notify(`${a.past} ${o.name ?? `schedule ${o.id}`}.`);
          if (a.action === 'delete') navigate(href(['scheduled']));
          else reload();
        }}
        onError=${(/** @type {Error} */ e) => notify(e.message, 'error')} />`}
    </div>
    <${ErrorBox} error=${error} />
    ${o && html`<${Fields} page="scheduled" id=${id} object=${o} truncated=${data.truncated} order=${ORDER} render=${{
      scheduleType: (/** @type {string} */ v) => typeName(meta, v),
      nextRun: (/** @type {string} */ v) => html`<${Time} iso=${v} rel />`,
      lastRun: (/** @type {any} */ v) => html`<${LastRun} lastRun=${v} />`,
      success: (/** @type {any} */ _v, /** @type {any} */ obj) => html`<${SuccessIcon} ok=${obj.lastRun ? obj.lastRun.success : null} />`,
      repeats: (/** @type {number} */ v) => repeatsText(v),
      pausedRepeats: (/** @type {number | null} */ v) => (v === null ? html`<span class="muted">—</span>` : html`${v} <span class="muted">(restored by Resume)</span>`),
      timeZone: (/** @type {string | null} */ v) => (v ? v : html`${meta.timeZone ?? 'UTC'} <span class="muted">(the cluster's)</span>`),
      anchor: (/** @type {string} */ v) => html`<${Time} iso=${v} /> <span class="muted">(calendar steps count from here)</span>`,
    }} />`}
    ${data && html`<${History} history=${data.history} />`}
    ${!data && !error && html`<p class="loading">Loading…</p>`}
  </article>`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Scheduled({ meta, route }) {
  const id = route.path[1];
  if (id) return html`<${Detail} meta=${meta} id=${id} />`;
  return html`<${List} meta=${meta} route=${route} />`;
}

