/**
 * A finished task's detail, for Successful and Failed tasks: its error, attempts, where it came
 * from and went, fields and history. Loaded on demand, apart from the lists.
 */
import { html } from 'htm/preact';
import { SuccessIcon } from '../components/detail.js';
import { ObjectDetail } from '../components/object-detail.js';
import { api } from '../lib/api.js';
import { plural, text } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href } from '../lib/router.js';
import { duration, Time } from '../lib/time.js';

/** The order of a task's fields. */
const TASK_ORDER = [
  'id',
  'name',
  'func',
  'hook',
  'group',
  'cluster',
  'success',
  'attemptCount',
  'enqueued',
  'started',
  'stopped',
  'timeTaken',
  'args',
  'kwargs',
  'result',
];

/** @type {Record<string, (v: any) => any>} */
const render = {
  enqueued: (v) => html`<${Time} iso=${v} />`,
  started: (v) => html`<${Time} iso=${v} />`,
  stopped: (v) => html`<${Time} iso=${v} />`,
  timeTaken: (v) => duration(v),
  success: (v) => html`<${SuccessIcon} ok=${v} /> ${v ? 'Succeeded' : 'Failed'}`,
};

/** @param {any} result */
const isFailure = (result) => !!result && typeof result === 'object' && !!(result.error || result.message || result.stack);

/** A failure's error: its class and message, then the stack. @param {{ result: any }} props */
function Failure({ result }) {
  const { error, message, stack } = result;
  return html`<section class="failure-box" aria-labelledby="error-title">
    <h2 id="error-title">Error</h2>
    <p class="error-message"><strong>${text(error ?? 'Error')}</strong>${message ? `: ${text(message)}` : ''}</p>
    ${stack && html`<pre class="stack" role="region" aria-label="Stack trace" tabindex="0">${text(stack)}</pre>`}
  </section>`;
}

/** Where a task is now, as a link. @param {{ place: any, taskId: string }} props */
function PlaceLink({ place, taskId }) {
  if (!place) return html`<span>task <code>${taskId}</code> <span class="muted">(no longer kept)</span></span>`;
  const where = { queued: 'queued', successful: 'succeeded', failed: 'failed' }[/** @type {'queued'} */ (place.page)];
  const to = place.page === 'queued' ? href(['queued', String(place.id)]) : href([place.page, place.taskId]);
  return html`<a href=${to}>${place.name ?? place.taskId}</a> <span class="tag">${where}</span>`;
}

/** Resubmitted from / as, and a retry the cluster will still make. @param {{ extra: any }} props */
function Lineage({ extra }) {
  const { lineage, retry } = extra ?? {};
  if (!lineage?.from && !lineage?.to && !retry) return null;
  return html`<ul class="lineage">
    ${
      retry &&
      html`<li class="retry-line"><strong>Retrying:</strong> attempt ${retry.attempt}${retry.max && retry.attempt <= retry.max ? ` of ${retry.max}` : ''},
      next ${retry.nextAt ? html`at <${Time} iso=${retry.nextAt} rel />` : 'as soon as a cluster takes it'}
      ${retry.queuedId != null && html`${' · '}<a href=${href(['queued', String(retry.queuedId)])}>its queued package</a>`}</li>`
    }
    ${lineage?.from && html`<li>Resubmitted from <${PlaceLink} ...${lineage.from} /></li>`}
    ${lineage?.to && html`<li>Resubmitted as <${PlaceLink} ...${lineage.to} /></li>`}
  </ul>`;
}

/**
 * The failed attempts, newest first; numbered back from the attempt count (the oldest may be gone).
 * @param {{ attempts: any[], count: number, success: boolean }} props
 */
function Attempts({ attempts, count, success }) {
  if (!attempts?.length) return null;
  const last = success ? count - 1 : count;
  const rows = attempts.map((a, i) => ({ ...a, n: last - (attempts.length - 1 - i) })).reverse();
  return html`<section aria-labelledby="attempts-title">
    <h2 id="attempts-title">Failed attempts</h2>
    <div class="table-wrap" role="region" aria-label="Failed attempts, table" tabindex="0"><table>
      <thead><tr><th scope="col">Attempt</th><th scope="col">When</th><th scope="col">Cluster</th><th scope="col">Error</th></tr></thead>
      <tbody>${rows.map((a) => html`<tr><td>${a.n > 0 ? a.n : ''}</td><td><${Time} iso=${a.at} rel /></td><td>${text(a.cluster)}</td><td class="wrap">${text(a.error)}</td></tr>`)}</tbody>
    </table></div>
    ${count > attempts.length + (success ? 1 : 0) && html`<p class="hint">Only the last ${attempts.length} failed attempts are kept.</p>`}
  </section>`;
}

/** A chain step's place, "step 2 of 5", and every other step where it is now. @param {{ chain: any }} props */
function Chain({ chain: c }) {
  return (
    c &&
    html`<ul class="lineage"><li><strong>Chain: step ${c.step} of ${c.steps}</strong>${c.stopped ? ` · chain stopped at step ${c.step} of ${c.steps}` : ''}</li>
    ${c.links.map((/** @type {any} */ l) => l.step !== c.step && html`<li>Step ${l.step}: ${l.place || l.step < c.step ? html`<${PlaceLink} ...${l} />` : html`<code>${l.taskId}</code> (not run)`}</li>`)}</ul>`
  );
}

/** A bookmark of a task that was resubmitted (and so deleted): where its work went. @param {{ successor: any }} props */
function Moved({ successor }) {
  return html`<p class="lineage moved" role="status">This task was resubmitted; its work continues as <${PlaceLink} ...${successor} />.</p>`;
}

/** The notice after a resubmit, linking to the new task. @param {string} page @param {string} id @param {string} done */
async function noticeResubmitted(page, id, done) {
  let successor = null;
  try {
    const r = await api(`${page}/${encodeURIComponent(id)}`);
    successor = r.extra?.successor ?? r.extra?.lineage?.to;
  } catch {}
  const place = successor?.place;
  if (!place) return notify(done);
  notify(done, 'ok', {
    text: `Open the new task`,
    href: place.page === 'queued' ? href(['queued', String(place.id)]) : href([place.page, place.taskId]),
  });
}

/**
 * @param {{ page: 'successful' | 'failed', id: string, meta: any, title: string, one: string, many: string }} props
 */
function TaskDetail({ page, id, meta, title, one, many }) {
  // the error box shows the failure's result: the fields then leave it out, so the stack shows once
  const failure = (/** @type {any} */ o) => page === 'failed' && isFailure(o.result);
  return html`<${ObjectDetail} page=${page} id=${id} meta=${meta} title=${title}
    name=${(/** @type {any} */ o) => o.name} missing=${(/** @type {any} */ data) => (data?.extra?.successor ? 'Resubmitted' : id)}
    noun=${(/** @type {number} */ n) => plural(n, one, many)} said=${(/** @type {any} */ o, /** @type {number} */ done) => (done === 1 ? o.name : plural(done, one, many))}
    onDone=${async (/** @type {any} */ a, /** @type {any} */ o, /** @type {string} */ said, /** @type {number} */ done) => {
      if (a.action === 'resubmit' && done) await noticeResubmitted(page, o.id, said);
      else notify(said);
      // a resubmitted failure is gone too
      return page === 'failed';
    }}
    order=${TASK_ORDER} render=${render} skip=${(/** @type {any} */ o) => (failure(o) ? ['result', 'shortResult'] : [])}
    before=${(/** @type {any} */ data) => html`
      ${data?.extra?.successor && html`<${Moved} successor=${data.extra.successor} />`}
      ${data?.object && html`<${Lineage} extra=${data.extra} />`}
      ${data?.object && html`<${Chain} chain=${data.extra?.chain} />`}
      ${data?.object && failure(data.object) && html`<${Failure} result=${data.object.result} />`}`}
    after=${(/** @type {any} */ data) => html`<${Attempts} attempts=${data.extra?.attempts} count=${data.object.attemptCount} success=${data.object.success} />`} />`;
}

const KINDS = {
  successful: { title: 'Successful tasks', one: 'successful task', many: 'successful tasks' },
  failed: { title: 'Failed tasks', one: 'failed task', many: 'failed tasks' },
};

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function TaskDetailPage({ meta, route }) {
  const page = /** @type {'successful' | 'failed'} */ (route.path[0]);
  return html`<${TaskDetail} key=${route.path[1]} page=${page} id=${route.path[1]} meta=${meta} ...${KINDS[page]} />`;
}
