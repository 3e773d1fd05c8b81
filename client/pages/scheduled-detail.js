/** A schedule's detail: every field, its last run, actions and history. Loaded on demand. */
import { html } from 'htm/preact';
import { useEffect } from 'preact/hooks';
import { ActionButtons } from '../components/bulk.js';
import { ErrorBox, SuccessIcon } from '../components/detail.js';
import { Fields, History } from '../components/fields.js';
import { ACTIONS, LastRun, typeName } from '../components/schedule.js';
import { useData } from '../lib/data.js';
import { plural } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { detailTitle, href, listHref, navigate } from '../lib/router.js';
import { Time } from '../lib/time.js';

const title = 'Scheduled tasks';
const noun = (/** @type {number} */ n) => plural(n, 'schedule', 'schedules');

/** @param {number} repeats */
function repeatsText(repeats) {
  if (repeats === 0) return '0 (paused)';
  if (repeats < 0) return `${repeats} (runs indefinitely; has run ${-repeats - 1} ${repeats === -2 ? 'time' : 'times'})`;
  return `${repeats} (${repeats === 1 ? 'one more run' : `${repeats} more runs`})`;
}

const ORDER = ['id', 'name', 'func', 'hook', 'scheduleType', 'minutes', 'cron', 'repeats', 'pausedRepeats', 'nextRun', 'timeZone', 'anchor', 'lastRun', 'success', 'task', 'cluster', 'intendedDateKwarg', 'args', 'kwargs', 'version'];

/** @param {{ meta: any, id: string }} props */
function Detail({ meta, id }) {
  const { data, error, reload } = useData(`scheduled/${encodeURIComponent(id)}`);
  const can = meta.pages.scheduled.can;
  const o = data?.object;
  const name = o ? o.name ?? `Schedule ${o.id}` : null;
  useEffect(() => {
    if (name) detailTitle(name, title);
  }, [name]);
  const actions = o
    ? ACTIONS.filter((a) => can[a.action] && (a.action === 'pause' ? o.repeats !== 0 : a.action === 'resume' ? o.repeats === 0 : true))
    : [];
  return html`<article class="detail" aria-labelledby="page-title">
    <p class="back"><a href=${listHref('scheduled')}>← ${title}</a></p>
    <div class="page-head">
      <h1 id="page-title">${o ? o.name ?? `Schedule ${o.id}` : `Schedule ${id}`}</h1>
      ${o && can.edit && html`<a class="button" href=${href(['scheduled', id, 'edit'])}>Edit</a>`}
      ${o && actions.length > 0 &&
      html`<${ActionButtons} page="scheduled" actions=${actions} count=${1} noun=${noun} quick
        target=${() => ({ ids: [o.id] })}
        onDone=${(/** @type {any} */ a) => {
          notify(`${a.past} ${o.name ?? `schedule ${o.id}`}.`);
          if (a.action === 'delete') navigate(listHref('scheduled'));
          else reload();
        }} />`}
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
export function ScheduleDetailPage({ meta, route }) {
  return html`<${Detail} key=${route.path[1]} meta=${meta} id=${route.path[1]} />`;
}
