/**
 * Clusters: what needs attention first (processes that stopped answering, stuck packages, keys
 * nobody serves, processes of one key that disagree), then each queue key with its backlog and
 * pause switch, then each process with the tasks it runs now and its configuration.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { ask } from '../components/bulk.js';
import { ErrorBox } from '../components/detail.js';
import { api } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { num, plural } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href } from '../lib/router.js';
import { duration, relative, Time } from '../lib/time.js';
import { styles } from '../lib/styles.js';

// the built file's name, set by client/build.ts
await styles(STYLES_CLUSTERS);

/** Uptimes and waits run to days; the shared `duration` stops at minutes. @param {number | null} ms */
function span(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 3_600_000) return duration(ms);
  const h = Math.floor(ms / 3_600_000);
  return h < 48 ? `${h} h ${Math.floor((ms % 3_600_000) / 60_000)} min` : `${Math.floor(h / 24)} days ${h % 24} h`;
}

const STATE_CLASS = /** @type {Record<string, string>} */ ({ running: 'tag ok', stopping: 'tag', 'not responding': 'tag bad' });

/** How long a pause lasts: seconds, or null until resumed. */
const PAUSE_FOR = /** @type {const} */ ([
  [900, '15 min'],
  [3600, '1 h'],
  [null, 'until resumed'],
]);

/** @typedef {{ can: any, busy: boolean, act: (verb: string, body: any, done: string, finished?: string) => void, ask: any }} Acts */

/** @param {{ k: any } & Acts} props */
function KeyRow({ k, can, busy, act }) {
  const others = k.clusters.length - k.live;
  // Pausing is undone by Resume: the length is the only question, asked by the buttons themselves.
  const pauseFor = (/** @type {number | null} */ seconds, /** @type {string} */ label) =>
    act(
      'pause',
      { key: k.key, for: seconds },
      `Paused ${k.key} ${seconds ? `for ${label}` : label}: its clusters claim nothing meanwhile; running tasks finish.`,
    );
  const trouble = k.flagged || k.stuck > 0 || k.drift;
  return html`<tr class=${trouble ? 'flagged' : undefined}>
    <th scope="row" class="key-name">${k.key}</th>
    <td class="num" data-label="Waiting"><a href=${href(['queued'], { key: k.key })}>${num(k.waiting)}${k.capped ? '+' : ''}</a></td>
    <td class="num" data-label="Running">${num(k.running)}</td>
    <td class="num" data-label="Claimed" title="Claimed by a live process, not started yet">${num(k.claimed)}</td>
    <td class="num" data-label="Stuck">${k.stuck ? html`<a class="bad" href=${href(['queued'], { key: k.key, stuck: 'yes' })}>${num(k.stuck)}</a>` : html`<span class="muted">0</span>`}</td>
    <td data-label="Oldest waiting">${k.waiting ? span(k.oldestWaiting) : html`<span class="muted">—</span>`}</td>
    <td data-label="Clusters">${k.live ? plural(k.live, 'live') : html`<span class="muted">none live</span>`}${others ? html` <span class="muted">· ${num(others)} other</span>` : ''}</td>
    <td class="wrap" data-label="State">
      ${
        k.paused
          ? html`<span class="tag warn">paused</span> <span class="muted pause-info">since <${Time} iso=${k.pausedAt} />${k.pausedBy ? ` by ${k.pausedBy}` : ''}${k.pausedUntil ? `, ends ${relative(k.pausedUntil)}` : ', until resumed'}</span>`
          : k.live
            ? html`<span class="tag ok">served</span>`
            : html`<span class=${k.flagged ? 'tag bad' : 'tag'}>no live cluster</span>`
      }
      ${
        k.drift &&
        html` <span class="tag bad" title=${Object.entries(k.drift)
          .map(([f, v]) => `${f}: ${/** @type {any[]} */ (v).join(' vs ')}`)
          .join('; ')}>config differs</span>`
      }
    </td>
    <td class="row-actions">
      ${
        k.paused
          ? can.resume &&
            html`<button type="button" disabled=${busy} onClick=${() => act('resume', { key: k.key }, `Resumed ${k.key}.`)}>Resume<span class="sr-only"> ${k.key}</span></button>`
          : can.pause &&
            html`<details class="pause-menu"><summary>Pause<span class="sr-only"> ${k.key}</span></summary>
            <div role="group" aria-label=${`Pause ${k.key}`}>${PAUSE_FOR.map(([s, label]) => html`<button type="button" disabled=${busy} onClick=${() => pauseFor(s, label)}>${s ? `for ${label}` : label}</button>`)}</div>
          </details>`
      }
    </td>
  </tr>`;
}

/** The options shown of each process, with their units. */
const CONFIG = /** @type {const} */ ([
  ['workers', ''],
  ['saveLimit', ''],
  ['retry', ' s'],
  ['timeout', ' s'],
  ['maxAttempts', ''],
]);

/** @param {{ c: any } & Acts} props */
function Process({ c, can, busy, act, ask }) {
  const dead = c.state === 'not responding';
  const label = `${c.name} (${c.host} pid ${c.pid})`;
  const stop = async (/** @type {any} */ t) => {
    const ok = await ask(
      `Stop ${t.name}?`,
      `Cluster ${c.name} aborts the task's signal; it is saved as failed (CancelledError) and not retried.`,
      'Stop task',
      true,
    );
    if (ok)
      act(
        'stop',
        { cluster: c.id, package: t.package },
        `Asked ${c.name} to stop ${t.name}.`,
        `${t.name} finished before the stop arrived.`,
      );
  };
  const release = async () => {
    const ok = await ask(
      `Release the packages of ${label}?`,
      `Live clusters of ${c.name} claim its ${plural(c.held, 'package')} now.`,
      'Release',
    );
    if (ok) act('release', { cluster: c.id }, `Released the packages of ${label}.`);
  };
  const forget = async () => {
    const ok = await ask(
      `Forget ${label}?`,
      c.held ? `Its ${plural(c.held, 'package')} stay locked until released.` : 'It leaves this page.',
      'Forget',
      true,
    );
    if (ok) act('forget', { cluster: c.id }, `Forgot ${label}.`);
  };
  return html`<article class=${`process${dead ? ' dead' : ''}`} aria-labelledby=${`p-${c.id}`}>
    <header>
      <h3 id=${`p-${c.id}`}>${c.name}</h3>
      <span class=${STATE_CLASS[c.state] ?? 'tag'}>${c.state}</span>
      <span class="muted mono">${c.host} · pid ${c.pid} · v${c.version}</span>
    </header>
    <dl class="stats">
      ${
        dead
          ? html`<div><dt>Last seen</dt><dd title=${c.heartbeat}>${span(c.heartbeatAge)} ago</dd></div><div><dt>Ran for</dt><dd>${span(c.uptime)}</dd></div>`
          : html`<div><dt>Uptime</dt><dd>${span(c.uptime)}</dd></div><div><dt>Heartbeat</dt><dd title=${c.heartbeat}>${span(c.heartbeatAge)} ago</dd></div>`
      }
      <div><dt>${dead ? 'Were running' : 'Running'}</dt><dd>${num(c.tasks.length)} / ${num(c.workers)}</dd></div>
      ${dead ? html`<div><dt>Stuck</dt><dd class=${c.held ? 'fail' : undefined}>${num(c.held)}</dd></div>` : html`<div><dt>Claimed</dt><dd title="Claimed, not started yet">${num(c.claimed)}</dd></div>`}
      <div><dt>Done</dt><dd>${num(c.done)}</dd></div>
      <div><dt>Failed</dt><dd class=${c.failed ? 'fail' : undefined}>${num(c.failed)}</dd></div>
    </dl>
    ${
      c.config &&
      html`<p class="config muted">${CONFIG.map(([f, unit]) => html`<span class=${c.drift.includes(f) ? 'drift' : undefined}>${f} ${c.config[f] === null ? '—' : `${num(c.config[f])}${unit}`}${c.drift.includes(f) ? html` <span class="tag bad">differs</span>` : ''}</span>`)}</p>`
    }
    ${
      dead &&
      html`<div class="note dead-note"><p>${c.held ? `The ${plural(c.held, 'package')} it held stay locked until released or their retry expires.` : 'It held no package.'}</p>
      <div class="row-actions">
        ${can.release && c.held > 0 && html`<button type="button" disabled=${busy} onClick=${release}>Release ${plural(c.held, 'package')}<span class="sr-only"> of ${label}</span></button>`}
        ${can.forget && html`<button type="button" class="danger" disabled=${busy} onClick=${forget}>Forget<span class="sr-only"> ${label}</span></button>`}
      </div></div>`
    }
    ${
      c.tasks.length > 0 &&
      html`<div class="table-wrap stacked"><table class="tasks">
      <caption class=${dead ? 'were' : 'sr-only'}>${dead ? `Were running at its last heartbeat` : `Tasks running in ${label}`}</caption>
      <thead><tr><th scope="col">Task</th><th scope="col">Func</th><th scope="col">Started</th><th scope="col">Elapsed</th>${can.stop && !dead && html`<th scope="col"><span class="sr-only">Actions</span></th>`}</tr></thead>
      <tbody>
        ${c.tasks.map(
          (/** @type {any} */ t) => html`<tr>
            <td data-label="Task"><a href=${href(['queued', String(t.package)])}>${t.name || t.taskId}</a></td>
            <td class="mono" data-label="Func">${t.func}</td>
            <td data-label="Started"><${Time} iso=${t.started} /></td>
            <td data-label="Elapsed">${span(t.elapsed)}</td>
            ${can.stop && !dead && html`<td class="row-actions"><button type="button" class="danger" disabled=${busy} onClick=${() => stop(t)}>Stop<span class="sr-only"> ${t.name}</span></button></td>`}
          </tr>`,
        )}
      </tbody>
    </table></div>`
    }
    ${c.tasks.length === 0 && !dead && html`<p class="muted idle">No task running.</p>`}
  </article>`;
}

/** What needs attention, each a sentence. @param {any} data */
function problems(data) {
  /** @type {string[]} */
  const out = [];
  const dead = data.clusters.filter((/** @type {any} */ c) => c.state === 'not responding');
  if (dead.length) out.push(`${plural(dead.length, 'process has', 'processes have')} stopped answering.`);
  const stuck = data.keys.reduce((/** @type {number} */ n, /** @type {any} */ k) => n + k.stuck, 0);
  if (stuck) out.push(`${plural(stuck, 'package is', 'packages are')} stuck with a process that stopped answering.`);
  const flagged = data.keys.filter((/** @type {any} */ k) => k.flagged).length;
  if (flagged) out.push(`${plural(flagged, 'queue key has', 'queue keys have')} waiting packages and no live cluster.`);
  for (const k of data.keys.filter((/** @type {any} */ k) => k.drift)) {
    out.push(
      `The processes of ${k.key} disagree on ${Object.entries(k.drift)
        .map(([f, v]) => `${f} (${/** @type {any[]} */ (v).join(' vs ')})`)
        .join(', ')}.`,
    );
  }
  return out;
}

/** @param {{ meta: any }} props */
export function Clusters({ meta }) {
  const { data, error, reload, loading } = useData('clusters');
  const can = meta.pages.clusters.can;
  const [busy, setBusy] = useState(false);
  const act = async (
    /** @type {string} */ verb,
    /** @type {any} */ body,
    /** @type {string} */ done,
    /** @type {string} */ finished = done,
  ) => {
    setBusy(true);
    try {
      const r = await api(`clusters/actions/${verb}`, { method: 'POST', body });
      // a stop that found the task already ended says so, naming it
      notify(r?.finished ? finished : done);
    } catch (e) {
      notify(/** @type {Error} */ (e).message, 'error');
    } finally {
      setBusy(false);
      reload();
    }
  };
  const said = data ? problems(data) : [];
  const acts = { can, busy, act, ask };
  const dead = data?.clusters.filter((/** @type {any} */ c) => c.state === 'not responding') ?? [];
  const live = data?.clusters.filter((/** @type {any} */ c) => c.state !== 'not responding') ?? [];
  return html`<section aria-labelledby="page-title">
    <div class="page-head">
      <h1 id="page-title">Clusters</h1>
      ${data && html`<span class="count">${plural(data.clusters.length, 'process', 'processes')} · ${plural(data.keys.length, 'queue key')}</span>`}
    </div>
    <${ErrorBox} error=${error} retry=${reload} busy=${loading} />
    ${!data && !error && html`<p class="loading">Loading…</p>`}
    ${
      data &&
      html`
      ${said.length > 0 && html`<div class="note problems" role="alert"><ul aria-label="Needs attention">${said.map((s) => html`<li>${s}</li>`)}</ul></div>`}
      ${dead.length > 0 && html`<h2>Not responding</h2><div class="processes">${dead.map((/** @type {any} */ c) => html`<${Process} key=${c.id} c=${c} ...${acts} />`)}</div>`}
      <h2>Queue keys</h2>
      ${
        data.keys.length === 0
          ? html`<p class="empty">No queue key has packages or clusters.</p>`
          : html`<div class="table-wrap stacked"><table class="keys">
            <caption class="sr-only">Queue keys</caption>
            <thead><tr><th scope="col">Key</th><th scope="col" class="num">Waiting</th><th scope="col" class="num">Running</th><th scope="col" class="num">Claimed</th><th scope="col" class="num">Stuck</th><th scope="col">Oldest waiting</th><th scope="col">Clusters</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>${data.keys.map((/** @type {any} */ k) => html`<${KeyRow} key=${k.key} k=${k} ...${acts} />`)}</tbody>
          </table></div>`
      }
      <h2>Processes</h2>
      ${
        data.clusters.length === 0
          ? html`<p class="empty">No cluster process is running. Start one with <code>new Cluster(orm, options).start()</code>.</p>`
          : live.length === 0
            ? html`<p class="empty">No process is answering.</p>`
            : html`<div class="processes">${live.map((/** @type {any} */ c) => html`<${Process} key=${c.id} c=${c} ...${acts} />`)}</div>`
      }
      ${data.truncated && html`<p class="muted">Only the first 500 processes and keys are shown.</p>`}
    `
    }
  </section>`;
}
