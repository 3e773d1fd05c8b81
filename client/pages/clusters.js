/** Clusters: each queue key with its backlog and pause switch, then each cluster process with its running tasks. */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { useConfirm } from '../components/bulk.js';
import { ErrorBox } from '../components/detail.js';
import { api } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { num, plural } from '../lib/format.js';
import { notify } from '../lib/notice.js';
import { href } from '../lib/router.js';
import { duration, Time } from '../lib/time.js';
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

/** @param {{ k: any, can: any, busy: boolean, act: (verb: string, body: any, done: string) => void, ask: any }} props */
function KeyRow({ k, can, busy, act, ask }) {
  const others = k.clusters.length - k.live;
  const toggle = async () => {
    if (k.paused) return act('resume', { key: k.key }, `Resumed ${k.key}.`);
    const ok = await ask(`Pause ${k.key}?`, `Its clusters stop claiming within a second; running tasks finish. ${plural(k.waiting, 'package')} keep waiting until you resume.`, 'Pause');
    if (ok) act('pause', { key: k.key }, `Paused ${k.key}: its clusters claim nothing until resumed.`);
  };
  const canToggle = k.paused ? can.resume : can.pause;
  return html`<tr class=${k.flagged ? 'flagged' : undefined}>
    <th scope="row" class="key-name">${k.key}</th>
    <td class="num"><a href=${href(['queued'], { key: k.key })}>${num(k.waiting)}${k.capped ? '+' : ''}</a></td>
    <td class="num">${num(k.running)}</td>
    <td>${k.waiting ? span(k.oldestWaiting) : html`<span class="muted">—</span>`}</td>
    <td>${k.live ? plural(k.live, 'live') : html`<span class="muted">none live</span>`}${others ? html` <span class="muted">· ${num(others)} other</span>` : ''}</td>
    <td>
      ${k.paused
        ? html`<span class="tag warn">paused</span>`
        : k.live
          ? html`<span class="tag ok">served</span>`
          : html`<span class=${k.flagged ? 'tag bad' : 'tag'}>no live cluster</span>`}
    </td>
    <td class="row-actions">${canToggle && html`<button type="button" disabled=${busy} onClick=${toggle}>${k.paused ? 'Resume' : 'Pause'}<span class="sr-only"> ${k.key}</span></button>`}</td>
  </tr>`;
}

/** @param {{ c: any, can: any, busy: boolean, act: (verb: string, body: any, done: string) => void, ask: any }} props */
function Process({ c, can, busy, act, ask }) {
  const stop = async (/** @type {any} */ t) => {
    const ok = await ask(`Stop ${t.name}?`, `Cluster ${c.name} aborts the task's signal; it is saved as failed (CancelledError) and not retried.`, 'Stop task', true);
    if (ok) act('stop', { cluster: c.id, package: t.package }, `Asked ${c.name} to stop ${t.name}.`);
  };
  const dead = c.state === 'not responding';
  return html`<article class=${`process${dead ? ' dead' : ''}`} aria-labelledby=${`p-${c.id}`}>
    <header>
      <h3 id=${`p-${c.id}`}>${c.name}</h3>
      <span class=${STATE_CLASS[c.state] ?? 'tag'}>${c.state}</span>
      <span class="muted mono">${c.host} · pid ${c.pid} · v${c.version}</span>
    </header>
    <dl class="stats">
      <div><dt>Uptime</dt><dd>${span(c.uptime)}</dd></div>
      <div><dt>Heartbeat</dt><dd title=${c.heartbeat}>${span(c.heartbeatAge)} ago</dd></div>
      <div><dt>Busy</dt><dd>${num(c.busy)} / ${num(c.workers)}</dd></div>
      <div><dt>Done</dt><dd>${num(c.done)}</dd></div>
      <div><dt>Failed</dt><dd class=${c.failed ? 'fail' : undefined}>${num(c.failed)}</dd></div>
    </dl>
    ${dead &&
    html`<p class="note">No heartbeat for ${span(c.heartbeatAge)}: the packages it held stay locked until its key's retry expires.${' '}
      <a href=${href(['queued'], { stuck: 'yes' })}>Stuck packages</a></p>`}
    ${c.tasks.length > 0 &&
    html`<div class="table-wrap"><table>
      <caption class="sr-only">Tasks running in ${c.name} (${c.host} pid ${c.pid})</caption>
      <thead><tr><th scope="col">Task</th><th scope="col">Func</th><th scope="col">Started</th><th scope="col">Elapsed</th>${can.stop && !dead && html`<th scope="col"><span class="sr-only">Actions</span></th>`}</tr></thead>
      <tbody>
        ${c.tasks.map(
          (/** @type {any} */ t) => html`<tr>
            <td><a href=${href(['queued', String(t.package)])}>${t.name || t.taskId}</a></td>
            <td class="mono">${t.func}</td>
            <td><${Time} iso=${t.started} /></td>
            <td>${span(t.elapsed)}</td>
            ${can.stop && !dead && html`<td class="row-actions"><button type="button" class="danger" disabled=${busy} onClick=${() => stop(t)}>Stop<span class="sr-only"> ${t.name}</span></button></td>`}
          </tr>`,
        )}
      </tbody>
    </table></div>`}
    ${c.tasks.length === 0 && !dead && html`<p class="muted idle">No task running.</p>`}
  </article>`;
}

/** @param {{ meta: any }} props */
export function Clusters({ meta }) {
  const { data, error, reload } = useData('clusters');
  const can = meta.pages.clusters.can;
  const [busy, setBusy] = useState(false);
  const [dialog, ask] = useConfirm();
  const act = async (/** @type {string} */ verb, /** @type {any} */ body, /** @type {string} */ done) => {
    setBusy(true);
    try {
      await api(`clusters/actions/${verb}`, { method: 'POST', body });
      notify(done);
    } catch (e) {
      notify(/** @type {Error} */ (e).message, 'error');
    } finally {
      setBusy(false);
      reload();
    }
  };
  const flagged = data?.keys.filter((/** @type {any} */ k) => k.flagged).length ?? 0;
  return html`<section aria-labelledby="page-title">
    <div class="page-head">
      <h1 id="page-title">Clusters</h1>
      ${data && html`<span class="count">${plural(data.clusters.length, 'process', 'processes')} · ${plural(data.keys.length, 'queue key')}</span>`}
    </div>
    <${ErrorBox} error=${error} />
    ${!data && !error && html`<p class="loading">Loading…</p>`}
    ${data &&
    html`
      ${flagged > 0 && html`<p class="note" role="alert">${plural(flagged, 'queue key has', 'queue keys have')} waiting packages and no live cluster.</p>`}
      <h2>Queue keys</h2>
      ${data.keys.length === 0
        ? html`<p class="empty">No queue key has packages or clusters.</p>`
        : html`<div class="table-wrap"><table class="keys">
            <caption class="sr-only">Queue keys</caption>
            <thead><tr><th scope="col">Key</th><th scope="col" class="num">Waiting</th><th scope="col" class="num">Running</th><th scope="col">Oldest waiting</th><th scope="col">Clusters</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>${data.keys.map((/** @type {any} */ k) => html`<${KeyRow} key=${k.key} k=${k} can=${can} busy=${busy} act=${act} ask=${ask} />`)}</tbody>
          </table></div>`}
      <h2>Processes</h2>
      ${data.clusters.length === 0
        ? html`<p class="empty">No cluster process is running. Start one with <code>new Cluster(orm, options).start()</code>.</p>`
        : html`<div class="processes">${data.clusters.map((/** @type {any} */ c) => html`<${Process} key=${c.id} c=${c} can=${can} busy=${busy} act=${act} ask=${ask} />`)}</div>`}
      ${data.truncated && html`<p class="muted">Only the first 500 processes and keys are shown.</p>`}
    `}
    ${dialog}
  </section>`;
}
