/**
 * Scheduled tasks' form (`#/scheduled/new`, `#/scheduled/<id>/edit`): adds a schedule or edits one,
 * with each error shown at its field or beside Save, and a stale save applied onto the other change
 * or discarded. A chunk of its own: most visits never open it.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorBox } from '../components/detail.js';
import { api, ApiError, query } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { notify } from '../lib/notice.js';
import { href, navigate } from '../lib/router.js';
import { fromLocalInput, relative, toLocalInput } from '../lib/time.js';
import { styles } from '../lib/styles.js';

// the built file's name, set by client/build.ts
await styles(STYLES_FORM);

const FIELDS = [
  'name',
  'func',
  'hook',
  'args',
  'kwargs',
  'scheduleType',
  'minutes',
  'repeats',
  'nextRun',
  'timeZone',
  'cron',
  'cluster',
  'priority',
  'intendedDateKwarg',
];

/** The browser's IANA zone: a new schedule's zone unless changed. */
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

/**
 * Form values are the inputs' text; `toBody` turns them into the API's types. A new schedule's
 * next run is pre-filled with now in the browser's zone, and its zone with the browser's.
 * @param {any} o
 * @returns {Record<string, string>}
 */
function toForm(o) {
  return {
    name: o?.name ?? '',
    func: o?.func ?? '',
    hook: o?.hook ?? '',
    args: o ? JSON.stringify(o.args ?? []) : '[]',
    kwargs: o ? JSON.stringify(o.kwargs ?? {}) : '{}',
    scheduleType: o?.scheduleType ?? 'O',
    minutes: o?.minutes == null ? '' : String(o.minutes),
    repeats: o ? String(o.repeats) : '-1',
    nextRun: toLocalInput(o ? o.nextRun : new Date().toISOString()),
    timeZone: o ? (o.timeZone ?? '') : browserZone(),
    cron: o?.cron ?? '',
    cluster: o?.cluster ?? '',
    priority: o ? String(o.priority ?? 0) : '0',
    intendedDateKwarg: o?.intendedDateKwarg ?? '',
  };
}

/**
 * @param {Record<string, string>} f
 * @param {any} original the stored schedule when editing
 * @param {boolean} nextRunTouched whether the next run was changed by hand
 * @returns {{ body?: any, errors?: Record<string, string> }}
 */
function toBody(f, original, nextRunTouched) {
  /** @type {Record<string, string>} */
  const errors = {};
  /** @param {string} field @param {(v: unknown) => boolean} ok @param {string} kind */
  const json = (field, ok, kind) => {
    const raw = f[field].trim();
    if (!raw) return undefined;
    try {
      const v = JSON.parse(raw);
      if (ok(v)) return v;
    } catch {}
    errors[field] = `must be ${kind} in JSON`;
  };
  const nullable = (/** @type {string} */ v) => (v.trim() === '' ? null : v.trim());
  /** @type {Record<string, any>} */
  const body = {
    name: nullable(f.name),
    func: f.func.trim(),
    hook: nullable(f.hook),
    args: json('args', Array.isArray, 'an array, like [1, "a"]') ?? [],
    kwargs: json('kwargs', (v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'an object, like {"key": 1}') ?? {},
    scheduleType: f.scheduleType,
    minutes: f.scheduleType === 'I' ? (f.minutes.trim() === '' ? null : Number(f.minutes)) : null,
    repeats: f.repeats.trim() === '' ? -1 : Number(f.repeats),
    cron: f.scheduleType === 'C' ? nullable(f.cron) : null,
    cluster: nullable(f.cluster),
    priority: f.priority.trim() === '' ? 0 : Number(f.priority),
    intendedDateKwarg: nullable(f.intendedDateKwarg),
    timeZone: nullable(f.timeZone),
  };
  if (!Number.isInteger(body.repeats)) errors.repeats = 'must be a whole number';
  if (!Number.isInteger(body.priority)) errors.priority = 'must be a whole number';
  if (f.scheduleType === 'I' && body.minutes !== null && !Number.isInteger(body.minutes)) errors.minutes = 'must be a whole number';
  // Left out when unchanged on edit (a new type, cron or zone recomputes it on the server) and when
  // untouched on create (the server stores now, or a cron's first match, at the moment of saving).
  if (original ? f.nextRun !== toLocalInput(original.nextRun) : nextRunTouched) {
    const iso = fromLocalInput(f.nextRun);
    if (iso === undefined) errors.nextRun = 'must be a date and time';
    else body.nextRun = iso;
  }
  if (original) body.version = original.version;
  return Object.keys(errors).length ? { errors } : { body };
}

/**
 * The first five runs of the timing being edited, computed by the server with the rules Save and
 * the scheduler use, and shown on the schedule's own wall clock.
 * @param {{ form: Record<string, string>, id?: string, nextRunTouched: boolean, original: any, zone: string }} props
 */
function RunPreview({ form, id, nextRunTouched, original, zone }) {
  const [state, setState] = useState(/** @type {{ runs?: string[], error?: string }} */ ({}));
  const changed = original ? form.nextRun !== toLocalInput(original.nextRun) : nextRunTouched;
  const params = {
    id,
    scheduleType: form.scheduleType,
    cron: form.scheduleType === 'C' ? form.cron.trim() : undefined,
    minutes: form.scheduleType === 'I' ? form.minutes.trim() : undefined,
    nextRun: changed ? fromLocalInput(form.nextRun) || undefined : undefined,
    timeZone: form.timeZone.trim() || undefined,
  };
  const key = query(params);
  useEffect(() => {
    if (form.scheduleType === 'C' && !form.cron.trim()) return setState({});
    const controller = new AbortController();
    const t = setTimeout(() => {
      api(`scheduled/preview${key}`, { signal: controller.signal })
        .then((r) => setState({ runs: r.runs }))
        .catch(
          (e) =>
            e.name !== 'AbortError' &&
            setState({
              error: e.fields
                ? Object.entries(e.fields)
                    .map(([k, v]) => `${label(k)} ${v}`)
                    .join('; ')
                : e.message,
            }),
        );
    }, 300);
    return () => {
      clearTimeout(t);
      controller.abort();
    };
  }, [key]);
  let format;
  try {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium', timeZone: zone });
  } catch {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  }
  // From the answer, not the form: the type may have changed since it was asked for.
  const title = state.runs?.length === 1 ? 'Runs once:' : 'First five runs:';
  return html`<div class="preview" aria-live="polite">
    ${state.runs && html`<p id="run-preview-title">${title} <span class="muted">(${format.resolvedOptions().timeZone})</span></p><ol aria-labelledby="run-preview-title">${state.runs.map((r) => html`<li><time datetime=${r} title=${r}>${format.format(new Date(r))}</time> <span class="rel">${relative(r)}</span></li>`)}</ol>`}
    ${state.error && html`<p class="hint">${state.error}</p>`}
  </div>`;
}

/** @type {Record<string, string>} */
const LABELS = {
  name: 'Name',
  func: 'Func',
  hook: 'Hook',
  args: 'Args',
  kwargs: 'Kwargs',
  scheduleType: 'Schedule type',
  minutes: 'Minutes',
  repeats: 'Repeats',
  nextRun: 'Next run',
  timeZone: 'Time zone',
  cron: 'Cron',
  cluster: 'Cluster',
  priority: 'Priority',
  intendedDateKwarg: 'Intended date kwarg',
};
/** @param {string} field */
const label = (field) => LABELS[field] ?? field;

/**
 * Whether two form values mean the same: JSON fields compare by value, so re-spacing `[1,2]` is no change.
 * @param {string} field @param {string} a @param {string} b
 */
function same(field, a, b) {
  if (field !== 'args' && field !== 'kwargs') return a.trim() === b.trim();
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return a.trim() === b.trim();
  }
}

/**
 * The fields whose values differ between two versions of a schedule. A detail leaves out args or
 * kwargs too large for it: those are not compared.
 * @param {any} a @param {any} b
 */
function differing(a, b) {
  const fa = toForm(a);
  const fb = toForm(b);
  return FIELDS.filter((k) => (k !== 'args' && k !== 'kwargs') || (k in a && k in b)).filter((k) => !same(k, fa[k], fb[k]));
}

/** args or kwargs too large for a detail response are fetched whole, or saving would lose them. @param {any} o @param {string} id */
async function complete(o, id) {
  const whole = { ...o };
  for (const k of ['args', 'kwargs']) if (!(k in whole)) whole[k] = await api(`scheduled/${encodeURIComponent(id)}/field/${k}`);
  return whole;
}

/** @param {{ meta: any, id?: string }} props */
function ScheduleForm({ meta, id }) {
  const loaded = useData(id ? `scheduled/${encodeURIComponent(id)}` : null, { live: false });
  const [original, setOriginal] = useState(/** @type {any} */ (null));
  const [form, setForm] = useState(() => toForm(null));
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [message, setMessage] = useState('');
  const [conflict, setConflict] = useState(/** @type {any} */ (null));
  const [saving, setSaving] = useState(false);
  // the current version the user chose to apply their edits onto, after a conflict
  const [applying, setApplying] = useState(/** @type {any} */ (null));
  const [nextRunTouched, setNextRunTouched] = useState(false);
  const ref = useRef(/** @type {HTMLFormElement | null} */ (null));

  useEffect(() => {
    const d = loaded.data;
    if (!d || original) return;
    (async () => {
      const o = await complete(d.object, String(id));
      setOriginal(o);
      setForm(toForm(o));
    })().catch((e) => setMessage(e.message));
  }, [loaded.data]);

  // A message about Save is beside it and a conflict just above it; either is scrolled to, as is the
  // first invalid field: the user is usually at the bottom of a long form when saving.
  const said = useRef(/** @type {HTMLElement | null} */ (null));
  const conflictRef = useRef(/** @type {HTMLElement | null} */ (null));
  useEffect(() => {
    if (message) said.current?.scrollIntoView({ block: 'nearest' });
  }, [message]);
  useEffect(() => {
    if (conflict) conflictRef.current?.scrollIntoView({ block: 'nearest' });
  }, [conflict]);
  useEffect(() => {
    const first = FIELDS.find((f) => errors[f]);
    const el = /** @type {HTMLElement | null} */ (first ? ref.current?.querySelector(`#f-${first}`) : null);
    if (!el) return;
    // the field's label and error are above and below the control: centre it so both show
    el.scrollIntoView({ block: 'center' });
    el.focus({ preventScroll: true });
  }, [errors]);

  const set = (/** @type {string} */ k) => (/** @type {any} */ e) => {
    if (k === 'nextRun') setNextRunTouched(true);
    setForm({ ...form, [k]: e.currentTarget.value });
  };

  /** The fields the user changed since the form was opened. */
  const edited = () => (original ? FIELDS.filter((k) => !same(k, form[k], toForm(original)[k])) : FIELDS);

  /**
   * Saves the form; with `onto` (the current version after a conflict), only the fields the user
   * edited are sent, so the other change stays wherever the user did not touch it.
   * @param {Event | null} e @param {any} [onto]
   */
  const submit = async (e, onto = applying) => {
    e?.preventDefault();
    setMessage('');
    const { body: full, errors: local } = toBody(form, original, nextRunTouched);
    if (local) return setErrors(local);
    setConflict(null);
    let body = full;
    if (onto) {
      const mine = edited();
      // a changed type brings its own timing fields along, or the current ones would be kept for it
      if (mine.includes('scheduleType')) mine.push('minutes', 'cron');
      body = Object.fromEntries(Object.entries(full).filter(([k]) => mine.includes(k)));
      body.version = onto.version;
      setApplying(onto);
    }
    setErrors({});
    setSaving(true);
    try {
      const r = await api(id ? `scheduled/${encodeURIComponent(id)}` : 'scheduled', { method: id ? 'PUT' : 'POST', body });
      // Without view permission the answer holds only the id: there is no detail to go to.
      const saved = r.object ?? { id: r.id, name: null };
      notify(`Saved ${saved.name ?? `schedule ${saved.id}`}.`);
      navigate(href(r.object ? ['scheduled', String(saved.id)] : []));
    } catch (err) {
      const x = /** @type {ApiError} */ (err);
      if (x.status === 409 && x.body?.current) setConflict(x.body.current);
      else if (x.status === 409) setMessage(`${x.message}. Your changes are kept; copy what you need, then reload the page.`);
      else if (x.fields) {
        setErrors(x.fields);
        const other = Object.keys(x.fields).filter((k) => !FIELDS.includes(k));
        if (other.length) setMessage(other.map((k) => `${k} ${x.fields?.[k]}`).join('; '));
      } else setMessage(x.message);
    } finally {
      setSaving(false);
    }
  };

  if (id && loaded.error) return html`<${ErrorBox} error=${loaded.error} />`;
  if (id && !original) return message ? html`<p class="error" role="alert">${message}</p>` : html`<p class="loading">Loading…</p>`;

  /**
   * A labelled control with its hint and error, tied together for screen readers.
   * @param {string} name @param {string} label @param {any} control @param {string} [hint]
   */
  const field = (name, label, control, hint) => {
    const described = [hint && `h-${name}`, errors[name] && `e-${name}`].filter(Boolean).join(' ') || undefined;
    return html`<div class=${`form-field${errors[name] ? ' invalid' : ''}`}>
      <label for=${`f-${name}`}>${label}</label>
      ${control({ id: `f-${name}`, name, 'aria-describedby': described, 'aria-invalid': errors[name] ? 'true' : undefined, value: form[name], onInput: set(name) })}
      ${hint && html`<span class="hint" id=${`h-${name}`}>${hint}</span>`}
      ${errors[name] && html`<span class="field-error" id=${`e-${name}`}>${label} ${errors[name]}</span>`}
    </div>`;
  };
  const input =
    (/** @type {any} */ extra = {}) =>
    (/** @type {any} */ p) =>
      html`<input ...${p} ...${extra} />`;
  const area = (/** @type {any} */ p) => html`<textarea ...${p} rows="3" spellcheck=${false} />`;
  /** @param {string[]} names @param {string} current @param {string} [none] */
  const picker = (names, current, none) => (/** @type {any} */ p) => html`<select ...${p}>
    ${none !== undefined && html`<option value="">${none}</option>`}
    ${none === undefined && !current && html`<option value="" disabled>Choose a task</option>`}
    ${names.map((n) => html`<option value=${n}>${n}</option>`)}
    ${current && !names.includes(current) && html`<option value=${current}>${current} (not registered)</option>`}
  </select>`;
  const tasks = /** @type {string[] | null} */ (meta.tasks);
  const zone = browserZone();
  const type = form.scheduleType;
  const scheduleZone = form.timeZone.trim() || meta.timeZone || 'UTC';
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  // A new Cron schedule left alone runs at its first match: the pre-filled now would not be one.
  const cronFirst = !id && type === 'C' && !nextRunTouched;

  return html`<article class="detail" aria-labelledby="page-title">
    <p class="back"><a href=${id ? href(['scheduled', id]) : href(['scheduled'])}>← ${id ? 'Back to the schedule' : 'Scheduled tasks'}</a></p>
    <h1 id="page-title">${id ? `Edit ${original?.name ?? `schedule ${id}`}` : 'Add schedule'}</h1>
    <form ref=${ref} class="schedule-form" onSubmit=${submit} novalidate>
      ${field('name', 'Name', input({ maxlength: 100, autocomplete: 'off' }), 'Optional; unique. Its tasks get it as their group.')}
      ${field('func', 'Func', tasks ? picker(tasks, form.func) : input({ required: true, autocomplete: 'off' }), tasks ? undefined : 'The name of a registered task function.')}
      ${field('hook', 'Hook', tasks ? picker(tasks, form.hook, 'None') : input({ autocomplete: 'off' }), 'Optional; called with the saved task.')}
      ${field('args', 'Args', area, 'A JSON array.')}
      ${field('kwargs', 'Kwargs', area, 'A JSON object.')}
      ${field(
        'scheduleType',
        'Schedule type',
        (/** @type {any} */ p) => html`<select ...${p}>
        ${Object.entries(meta.scheduleTypes).map(([code, name]) => html`<option value=${code}>${name}</option>`)}
      </select>`,
      )}
      ${type === 'I' && field('minutes', 'Minutes', input({ type: 'number', min: 1, step: 1, inputmode: 'numeric' }), 'Runs every this many minutes.')}
      ${type === 'C' && field('cron', 'Cron', input({ autocomplete: 'off', spellcheck: false }), 'Five or six fields, e.g. 0 9 * * 1-5.')}
      ${field('repeats', 'Repeats', input({ type: 'number', step: 1, inputmode: 'numeric' }), '−1 runs indefinitely, 0 pauses, N runs N more times.')}
      ${field(
        'nextRun',
        'Next run',
        (/** @type {any} */ p) => html`<input ...${p} type="datetime-local" step="1" value=${cronFirst ? '' : p.value} />`,
        cronFirst
          ? 'Empty: the first cron match after you save.'
          : `In your time zone (${zone})${form.nextRun && fromLocalInput(form.nextRun) ? `; ${relative(/** @type {string} */ (fromLocalInput(form.nextRun)))}` : ''}.${!id && !nextRunTouched ? ' Left as it is: the moment you save.' : ''}`,
      )}
      ${field(
        'timeZone',
        'Time zone',
        input({ list: 'zone-list', autocomplete: 'off', spellcheck: false, maxlength: 64 }),
        `Daily to Yearly keep their wall-clock time in this IANA zone. Empty: the cluster's (${meta.timeZone ?? 'UTC'}).`,
      )}
      <datalist id="zone-list">${zones.map((z) => html`<option value=${z} />`)}</datalist>
      <${RunPreview} form=${form} id=${id} nextRunTouched=${nextRunTouched} original=${original} zone=${scheduleZone} />
      ${field('cluster', 'Cluster', input({ autocomplete: 'off' }), 'Empty: the default cluster.')}
      ${field('priority', 'Priority', input({ inputmode: 'numeric' }), 'Each run is claimed before the packages of lower priority.')}
      ${field('intendedDateKwarg', 'Intended date kwarg', input({ autocomplete: 'off' }), 'If set, the scheduled time is passed to the task under this kwarg.')}
      ${
        conflict &&
        html`<${ConflictBox} boxRef=${conflictRef} original=${original} current=${conflict} form=${form} mine=${edited()} saving=${saving}
        onApply=${() => submit(null, conflict)}
        onDiscard=${async () => {
          try {
            const o = await complete(conflict, String(id));
            setOriginal(o);
            setForm(toForm(o));
            setNextRunTouched(false);
            setConflict(null);
            setApplying(null);
            setErrors({});
          } catch (err) {
            setMessage(/** @type {Error} */ (err).message);
          }
        }} />`
      }
      <div class="buttons">
        <button type="submit" class="primary" disabled=${saving}>${saving ? 'Saving…' : 'Save'}</button>
        <a class="button" href=${id ? href(['scheduled', id]) : href(['scheduled'])}>Cancel</a>
        ${message && html`<p class="error" role="alert" ref=${said}>${message}</p>`}
      </div>
    </form>
  </article>`;
}

/**
 * A stale save: what the other change was, which of the user's edits collide with it, and the two
 * ways on. The form keeps the user's values meanwhile.
 * @param {{ boxRef: any, original: any, current: any, form: Record<string, string>, mine: string[], saving: boolean, onApply: () => void, onDiscard: () => void }} props
 */
function ConflictBox({ boxRef, original, current, form, mine, saving, onApply, onDiscard }) {
  const theirs = differing(original, current);
  const was = toForm(original);
  const now = toForm(current);
  const conflicts = theirs.filter((k) => mine.includes(k) && !same(k, form[k], now[k]));
  const shown = (/** @type {string} */ v) => html`<code>${v.trim() === '' ? '(empty)' : v}</code>`;
  return html`<section class="conflict" role="alert" aria-labelledby="conflict-title" ref=${boxRef}>
    <h2 id="conflict-title">Someone else changed this schedule after you opened it</h2>
    <p>Your changes were not saved; they are still in the form.</p>
    ${
      theirs.length
        ? html`<p>Their change:</p><ul class="their-change">${theirs.map((k) => html`<li><strong>${label(k)}</strong>: ${shown(was[k])} → ${shown(now[k])}</li>`)}</ul>`
        : html`<p>Their change left the fields of this form as they were.</p>`
    }
    ${
      conflicts.length
        ? html`<p>You changed the same ${conflicts.length === 1 ? 'field' : 'fields'}; applying yours overwrites theirs:</p>
        <ul class="conflicting">${conflicts.map((k) => html`<li><strong>${label(k)}</strong>: yours ${shown(form[k])} replaces theirs ${shown(now[k])}</li>`)}</ul>`
        : mine.length > 0 && html`<p>None of the fields you changed was changed by them.</p>`
    }
    <div class="buttons">
      <button type="button" class="primary" disabled=${saving} onClick=${onApply}>Apply my changes to the current version</button>
      <button type="button" disabled=${saving} onClick=${onDiscard}>Discard my changes</button>
    </div>
  </section>`;
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function ScheduleFormPage({ meta, route }) {
  const id = route.path[2] === 'edit' ? route.path[1] : undefined;
  const can = meta.pages.scheduled.can;
  if (!(id ? can.edit : can.create)) return html`<h1>Not allowed</h1><p>You cannot ${id ? 'edit schedules' : 'add schedules'}.</p>`;
  return html`<${ScheduleForm} key=${id ?? 'new'} meta=${meta} id=${id} />`;
}
