/** A queued package's detail: its fields, the key and lock editor, actions and history. Loaded on demand. */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ObjectDetail } from '../components/object-detail.js';
import { Until, waits } from '../components/queued.js';
import { api } from '../lib/api.js';
import { plural } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href } from '../lib/router.js';
import { fromLocalInput, Time, toLocalInput } from '../lib/time.js';
import { styles } from '../lib/styles.js';

// the built file's name, set by client/build.ts
await styles(STYLES_FORM);

const title = 'Queued tasks';
const one = 'queued task';
const many = 'queued tasks';

const ORDER = [
  'id',
  'key',
  'priority',
  'serial',
  'enqueued',
  'lock',
  'lockExpires',
  'lockedBy',
  'runAt',
  'stuck',
  'taskId',
  'name',
  'func',
  'group',
  'payload',
];

/** Edits the key (which cluster runs it) and when it may run (delay it). @param {{ o: any, onSaved: () => void }} props */
function EditQueued({ o, onSaved }) {
  const [key, setKey] = useState(o.key);
  const [runAt, setRunAt] = useState(toLocalInput(o.runAt));
  const [priority, setPriority] = useState(String(o.priority));
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [message, setMessage] = useState('');
  useEffect(() => {
    setKey(o.key);
    setRunAt(toLocalInput(o.runAt));
    setPriority(String(o.priority));
  }, [o.key, o.runAt, o.priority]);
  // beside Save, and scrolled to: the form's top may be out of sight
  const said = useRef(/** @type {HTMLParagraphElement | null} */ (null));
  useEffect(() => {
    if (message) said.current?.scrollIntoView({ block: 'nearest' });
  }, [message]);
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    setMessage('');
    /** @type {Record<string, any>} */
    const body = {};
    if (key !== o.key) body.key = key.trim();
    if (priority.trim() !== String(o.priority)) body.priority = /^\s*-?\d+\s*$/.test(priority) ? Number(priority) : priority;
    if (runAt !== toLocalInput(o.runAt)) {
      const iso = fromLocalInput(runAt);
      if (iso === undefined) return setErrors({ runAt: 'must be a date and time' });
      body.runAt = iso;
    }
    if (!Object.keys(body).length) return setMessage('Nothing changed.');
    try {
      await api(`queued/${o.id}`, { method: 'PATCH', body });
      setErrors({});
      notify(`Saved queued task ${o.id}.`);
      onSaved();
    } catch (err) {
      const x = /** @type {any} */ (err);
      if (x.fields) setErrors(x.fields);
      else setMessage(x.message);
    }
  };
  return html`<form class="queued-form" onSubmit=${submit} novalidate aria-labelledby="edit-title">
    <h2 id="edit-title">Edit</h2>
    <div class=${`form-field${errors.key ? ' invalid' : ''}`}>
      <label for="q-key">Key</label>
      <input id="q-key" value=${key} onInput=${(/** @type {any} */ e) => setKey(e.currentTarget.value)} aria-describedby="q-key-h${errors.key ? ' q-key-e' : ''}" aria-invalid=${errors.key ? 'true' : undefined} />
      <span class="hint" id="q-key-h">The cluster (by name) that should run it.</span>
      ${errors.key && html`<span class="field-error" id="q-key-e">Key ${errors.key}</span>`}
    </div>
    <div class=${`form-field${errors.priority ? ' invalid' : ''}`}>
      <label for="q-priority">Priority</label>
      <input id="q-priority" inputmode="numeric" value=${priority} onInput=${(/** @type {any} */ e) => setPriority(e.currentTarget.value)} aria-describedby="q-priority-h${errors.priority ? ' q-priority-e' : ''}" aria-invalid=${errors.priority ? 'true' : undefined} />
      <span class="hint" id="q-priority-h">Higher is claimed first; enqueue order within one priority.</span>
      ${errors.priority && html`<span class="field-error" id="q-priority-e">Priority ${errors.priority}</span>`}
    </div>
    <div class=${`form-field${errors.runAt ? ' invalid' : ''}`}>
      <label for="q-run-at">Waits until</label>
      <input id="q-run-at" type="datetime-local" step="1" value=${runAt} onInput=${(/** @type {any} */ e) => setRunAt(e.currentTarget.value)} aria-describedby="q-run-at-h${errors.runAt ? ' q-run-at-e' : ''}" aria-invalid=${errors.runAt ? 'true' : undefined} />
      <span class="hint" id="q-run-at-h">Not claimed before then. Empty: at once.</span>
      ${errors.runAt && html`<span class="field-error" id="q-run-at-e">Waits until ${errors.runAt}</span>`}
    </div>
    <div class="buttons"><button type="submit" class="primary">Save</button>
      ${message && html`<p class="error" role="alert" ref=${said}>${message}</p>`}</div>
  </form>`;
}

/** @param {{ meta: any, id: string }} props */
function Detail({ meta, id }) {
  return html`<${ObjectDetail} page="queued" id=${id} meta=${meta} title=${title}
    name=${(/** @type {any} */ o) => `${o.payload?.name ?? o.name ?? 'Package'} (${o.id})`} missing=${() => `Queued task ${id}`}
    noun=${(/** @type {number} */ n) => plural(n, one, many)} said=${(/** @type {any} */ o) => o.name ?? `queued task ${o.id}`}
    applies=${(/** @type {string} */ a, /** @type {any} */ o) => a !== 'release' || !!o.lock}
    before=${(
      /** @type {any} */ data,
    ) => html`${data?.extra?.retrying && html`<p class="lineage">Retries the failed task <a href=${href(['failed', data.extra.retrying.taskId])}>${data.extra.retrying.name}</a>${' '}after ${plural(data.extra.retrying.attempts, 'failed attempt')}.</p>`}
      ${data?.extra?.waitsBehind && html`<p class="lineage">Serial key ${data.object.serial}: waits behind <a href=${href(['queued', String(data.extra.waitsBehind.id)])}>${data.extra.waitsBehind.name ?? data.extra.waitsBehind.id}</a>${data.extra.waitsBehind.running ? ', which is running' : ', which runs first'}.</p>`}`}
    order=${ORDER} render=${{
      lock: (/** @type {string | null} */ v) => (v ? html`<${Time} iso=${v} rel />` : 'none (waiting)'),
      lockExpires: (/** @type {string | null} */ v) => (v ? html`<${Time} iso=${v} rel />` : '—'),
      lockedBy: (/** @type {string | null} */ v) => v ?? '—',
      enqueued: (/** @type {string | null} */ v) => html`<${Time} iso=${v} rel />`,
      runAt: (/** @type {string | null} */ v) => (v ? html`<${waits(v) ? Until : Time} iso=${v} rel />` : 'at once'),
      serial: (/** @type {string | null} */ v) => v ?? '—',
      stuck: (/** @type {boolean} */ v) =>
        v ? html`<span class="tag bad">stuck</span> its cluster process stopped beating: release it to run it now` : 'no',
    }}
    after=${(/** @type {any} */ data, /** @type {() => void} */ reload) => meta.pages.queued.can.edit && html`<${EditQueued} o=${data.object} onSaved=${reload} />`} />`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function QueuedDetailPage({ meta, route }) {
  return html`<${Detail} key=${route.path[1]} meta=${meta} id=${route.path[1]} />`;
}
