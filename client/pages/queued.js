/** Queued tasks: the packages waiting in ormq_queued, with their locks. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ActionButtons } from '../components/bulk.js';
import { ErrorBox, Fields, History } from '../components/detail.js';
import { ListPage } from '../components/list.js';
import { api } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { plural, text } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href, navigate } from '../lib/router.js';
import { fromLocalInput, Time, toLocalInput } from '../lib/time.js';

const title = 'Queued tasks';
const one = 'queued task';
const many = 'queued tasks';

/** @type {import('../components/bulk.js').Action[]} */
const ACTIONS = [
  { action: 'release', label: 'Release', past: 'Released' },
  { action: 'delete', label: 'Delete', past: 'Deleted', danger: true },
];

/** @param {string} column @param {any} row */
function cell(column, row) {
  const v = row[column];
  if (column === 'lock') {
    if (v) return html`<${Time} iso=${v} rel />${row.stuck ? html` <span class="tag bad" title="Locked by a cluster process that stopped beating">stuck</span>` : ''}`;
    return html`<span class="muted">${waits(row.runAt) ? html`<${Until} iso=${row.runAt} />` : 'waiting'}</span>`;
  }
  if (column === 'runAt') return waits(v) ? html`<${Until} iso=${v} />` : '—';
  return text(v);
}

/** A delayed package not yet due. @param {string | null | undefined} iso */
const waits = (iso) => !!iso && new Date(iso).getTime() > Date.now();
const Until = (/** @type {{ iso: string }} */ { iso }) => html`waits until <${Time} iso=${iso} rel />`;

const ORDER = ['id', 'key', 'lock', 'runAt', 'stuck', 'taskId', 'name', 'func', 'group', 'payload'];

/** Edits the key (which cluster runs it) and when it may run (delay it). @param {{ o: any, onSaved: () => void }} props */
function EditQueued({ o, onSaved }) {
  const [key, setKey] = useState(o.key);
  const [lock, setLock] = useState(toLocalInput(o.runAt));
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [message, setMessage] = useState('');
  useEffect(() => {
    setKey(o.key);
    setLock(toLocalInput(o.runAt));
  }, [o.key, o.runAt]);
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    setMessage('');
    /** @type {Record<string, any>} */
    const body = {};
    if (key !== o.key) body.key = key.trim();
    if (lock !== toLocalInput(o.runAt)) {
      const iso = fromLocalInput(lock);
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
    ${message && html`<p class="error" role="alert">${message}</p>`}
    <div class=${`form-field${errors.key ? ' invalid' : ''}`}>
      <label for="q-key">Key</label>
      <input id="q-key" value=${key} onInput=${(/** @type {any} */ e) => setKey(e.currentTarget.value)} aria-describedby="q-key-h${errors.key ? ' q-key-e' : ''}" aria-invalid=${errors.key ? 'true' : undefined} />
      <span class="hint" id="q-key-h">The cluster (by name) that should run it.</span>
      ${errors.key && html`<span class="field-error" id="q-key-e">Key ${errors.key}</span>`}
    </div>
    <div class=${`form-field${errors.runAt ? ' invalid' : ''}`}>
      <label for="q-run-at">Waits until</label>
      <input id="q-run-at" type="datetime-local" step="1" value=${lock} onInput=${(/** @type {any} */ e) => setLock(e.currentTarget.value)} aria-describedby="q-run-at-h${errors.runAt ? ' q-run-at-e' : ''}" aria-invalid=${errors.runAt ? 'true' : undefined} />
      <span class="hint" id="q-run-at-h">Empty: at once.</span>
      ${errors.runAt && html`<span class="field-error" id="q-run-at-e">Waits until ${errors.runAt}</span>`}
    </div>
    <div class="buttons"><button type="submit" class="primary">Save</button></div>
  </form>`;
}

/** @param {{ meta: any, id: string }} props */
function Detail({ meta, id }) {
  const { data, error, reload } = useData(`queued/${encodeURIComponent(id)}`);
  const can = meta.pages.queued.can;
  const o = data?.object;
  const actions = o ? ACTIONS.filter((a) => can[a.action] && (a.action !== 'release' || o.lock)) : [];
  return html`<article class="detail" aria-labelledby="page-title">
    <p class="back"><a href=${href(['queued'])}>← ${title}</a></p>
    <div class="page-head">
      <h1 id="page-title">${o ? `${o.payload?.name ?? o.name ?? 'Package'} (${o.id})` : `Queued task ${id}`}</h1>
      ${o && actions.length > 0 &&
      html`<${ActionButtons} page="queued" actions=${actions} count=${1} noun=${(/** @type {number} */ n) => plural(n, one, many)} quick
        target=${() => ({ ids: [o.id] })}
        onDone=${(/** @type {any} */ a) => {
          notify(`${a.past} queued task ${o.id}.`);
          if (a.action === 'delete') navigate(href(['queued']));
          else reload();
        }}
        onError=${(/** @type {Error} */ e) => notify(e.message, 'error')} />`}
    </div>
    <${ErrorBox} error=${error} />
    ${o && html`<${Fields} page="queued" id=${id} object=${o} truncated=${data.truncated} order=${ORDER}
      render=${{
        lock: (/** @type {string | null} */ v) => (v ? html`<${Time} iso=${v} rel />` : 'none (waiting)'),
        runAt: (/** @type {string | null} */ v) => (v ? html`<${waits(v) ? Until : Time} iso=${v} rel />` : 'at once'),
        stuck: (/** @type {boolean} */ v) => (v ? html`<span class="tag bad">stuck</span> its cluster process stopped beating: release it to run it now` : 'no'),
      }} />`}
    ${o && can.edit && html`<${EditQueued} o=${o} onSaved=${reload} />`}
    ${data && html`<${History} history=${data.history} />`}
    ${!data && !error && html`<p class="loading">Loading…</p>`}
  </article>`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Queued({ meta, route }) {
  const id = route.path[1];
  if (id) return html`<${Detail} meta=${meta} id=${id} />`;
  return html`<${ListPage} page="queued" meta=${meta} route=${route} title=${title} one=${one} many=${many}
    searchHint="name and func" cell=${cell} actions=${ACTIONS} rowName=${(/** @type {any} */ r) => `${r.name ?? 'package'} (${r.id})`}
    filters=${[
      { name: 'key', label: 'Key', options: (/** @type {any} */ c) => (c.key ?? []).map((/** @type {string} */ v) => ({ value: v, label: v })) },
      { name: 'stuck', label: 'Lock', options: () => [{ value: 'yes', label: 'Stuck (its cluster stopped beating)' }] },
    ]} />`;
}
