/** The limits per func on the Metrics page: each with its use now, and a form to set or remove one. */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { num } from '../lib/format.js';
import { notify } from '../lib/notice.js';

/** @param {string} v */
const whole = (v) => (v.trim() === '' ? undefined : Number(v));

/** @param {{ can: any }} props */
export function Limits({ can }) {
  const { data, reload } = useData('clusters/limits');
  const [form, setForm] = useState({ func: '', concurrency: '', count: '', seconds: '' });
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const send = async (/** @type {string} */ func, /** @type {any} */ limit) => {
    try {
      await api('clusters/actions/limits', { method: 'POST', body: { func, limit } });
      setErrors({});
      notify(limit ? `Set the limit of ${func}.` : `Removed the limit of ${func}.`);
      reload();
    } catch (e) {
      const x = /** @type {any} */ (e);
      if (x.fields) setErrors(x.fields);
      else notify(x.message, 'error');
    }
  };
  const submit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const count = whole(form.count);
    /** @type {any} */
    const limit = {};
    if (form.concurrency.trim() !== '') limit.concurrency = whole(form.concurrency);
    if (count !== undefined || form.seconds.trim() !== '') limit.rate = { count, perSeconds: whole(form.seconds) };
    send(form.func.trim(), limit);
  };
  const field = (
    /** @type {'func' | 'concurrency' | 'count' | 'seconds'} */ name,
    /** @type {string} */ label,
    /** @type {string} */ error,
  ) =>
    html`<div class=${`form-field${errors[error] ? ' invalid' : ''}`}><label for=${`limit-${name}`}>${label}</label>
      <input id=${`limit-${name}`} value=${form[name]} inputmode=${name === 'func' ? undefined : 'decimal'} onInput=${(/** @type {any} */ e) => setForm({ ...form, [name]: e.currentTarget.value })} aria-invalid=${errors[error] ? 'true' : undefined} />
      ${errors[error] && html`<span class="field-error">${label} ${errors[error]}</span>`}</div>`;
  const rows = data?.limits ?? [];
  return html`<h2>Limits per func</h2>
    ${
      rows.length === 0
        ? html`<p class="empty">No func has a limit: every claim takes what is waiting.</p>`
        : html`<div class="table-wrap stacked"><table class="limits"><caption class="sr-only">Limits per func</caption>
          <thead><tr><th scope="col">Func</th><th scope="col">Running / concurrency</th><th scope="col">Starts / rate</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${rows.map(
            (/** @type {any} */ l) => html`<tr><th scope="row">${l.func}</th>
            <td data-label="Running / concurrency">${l.concurrency === null ? html`<span class="muted">—</span>` : `${num(l.running)} / ${num(l.concurrency)}`}</td>
            <td data-label="Starts / rate">${l.rate === null ? html`<span class="muted">—</span>` : `${num(l.recentStarts)} / ${num(l.rate.count)} per ${l.rate.perSeconds} s`}</td>
            <td class="row-actions">${can.limits && html`<button type="button" onClick=${() => send(l.func, null)}>Remove</button>`}</td></tr>`,
          )}</tbody></table></div>`
    }
    ${
      can.limits &&
      html`<form class="limit-form" onSubmit=${submit} novalidate aria-label="Set a limit">
      ${field('func', 'Func to limit', 'func')}${field('concurrency', 'Concurrency', 'concurrency')}${field('count', 'Starts', 'rate.count')}${field('seconds', 'Per seconds', 'rate.perSeconds')}
      ${errors.limit && html`<p class="error" role="alert">${errors.limit}</p>`}
      <div class="buttons"><button type="submit" class="primary">Set limit</button></div></form>`
    }`;
}
