/** The first page: how many rows each page holds, and successes and failures per hour. */
import { html } from 'htm/preact';
import { BarChart } from '../components/chart.js';
import { ErrorBox } from '../components/detail.js';
import { useData } from '../lib/data.js';
import { num, plural } from '../lib/format.js';
import { href } from '../lib/router.js';
import { styles } from '../lib/styles.js';
import { duration, relative } from '../lib/time.js';

await styles(STYLES_TRIAGE);

const hourFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric' });
const hourMinute = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });

/**
 * Successes and failures per hour: every attempt, from the metrics rollups. A series the user may
 * not view comes as null and is left out.
 * @param {{ hourly: { hour: string, success: number | null, failure: number | null }[] }} props
 */
function Chart({ hourly }) {
  const shows = { success: hourly[0]?.success !== null, failure: hourly[0]?.failure !== null };
  const bars = hourly.map((h) => ({ at: h.hour, success: h.success ?? 0, failure: h.failure ?? 0 }));
  const totals = bars.reduce((t, h) => [t[0] + h.success, t[1] + h.failure], [0, 0]);
  const parts = [shows.success && `${num(totals[0])} successes`, shows.failure && `${num(totals[1])} failures`].filter(Boolean);
  return html`<${BarChart} bars=${bars} shows=${shows} note="per hour, last 24 hours, your time zone; choose a bar for that hour's tasks"
    summary=${`Results per hour over the last 24 hours: ${parts.join(' and ')} in all.`}
    when=${(/** @type {Date} */ d) => hourMinute.format(d)} tick=${(/** @type {Date} */ d, /** @type {number} */ i) => (i % 3 === 0 ? hourFormat.format(d) : null)}
    link=${(/** @type {{ at: string }} */ b, /** @type {'successful' | 'failed'} */ page) => href([page], { hour: b.at })} />`;
}

/**
 * What each kind of problem is called, with the few things named that have it.
 * @type {Record<string, (a: any) => [string, string]>}
 */
const SAYS = {
  not_responding: (a) => [
    `${plural(a.count, 'process', 'processes')} not responding`,
    a.items.map((/** @type {any} */ p) => `${p.name} on ${p.host} (pid ${p.pid}), last seen ${relative(p.lastSeen)}`).join('; '),
  ],
  stuck: (a) => [`${a.estimated ? 'about ' : ''}${plural(a.count, 'package')} stuck`, 'held by processes that stopped answering'],
  failing: (a) => [
    `${plural(a.count, 'func')} failing`,
    a.items
      .map(
        (/** @type {any} */ f) =>
          `${f.func}: ${num(f.failures)} of ${num(f.attempts)} attempts failed in the last hour (${Math.round(f.rate * 100)} %)`,
      )
      .join('; '),
  ],
  slow_wait: (a) => [
    `${plural(a.count, 'queue key')} waiting too long`,
    a.items
      .map((/** @type {any} */ k) => `${k.key}: oldest waiting ${duration(k.waited)}${k.served ? '' : ', no live cluster'}`)
      .join('; '),
  ],
  paused_waiting: (a) => [
    `${plural(a.count, 'paused key')} with work waiting`,
    a.items
      .map((/** @type {any} */ k) => `${k.key}: ${num(k.waiting)} waiting, paused ${relative(k.since)}${k.by ? ` by ${k.by}` : ''}`)
      .join('; '),
  ],
  retrying: (a) => [`${a.estimated ? 'about ' : ''}${plural(a.count, 'failure')} still retrying`, ''],
  drift: (a) => [
    `${plural(a.count, 'queue key')} whose processes disagree`,
    a.items.map((/** @type {any} */ k) => `${k.key}: ${k.fields.join(', ')} differ across ${k.processes} processes`).join('; '),
  ],
};
const WARN = ['slow_wait', 'paused_waiting', 'retrying', 'drift'];

/** What needs attention, worst first, each linked to the page that shows it. @param {{ items: any[] }} props */
function Attention({ items }) {
  if (!items.length) return html`<p class="all-well">Nothing needs attention.</p>`;
  return html`<ul class="attention" aria-label="Needs attention">${items.map((a) => {
    const [what, which] = SAYS[a.kind]?.(a) ?? [`${a.kind}: ${a.count}`, ''];
    return html`<li class=${WARN.includes(a.kind) ? 'warn' : 'bad'}>
      <a class="what" href=${href([a.link.page], a.link.query)}>${what}</a>
      ${which && html`<span class="which">${which}</span>`}
      <span class="fix">${a.action}</span>
    </li>`;
  })}</ul>`;
}

/** @param {{ meta: any }} props */
export function Overview({ meta }) {
  const { data, error, reload, loading } = useData('overview');
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Overview</h1>
    <${ErrorBox} error=${error} retry=${reload} busy=${loading} />
    ${data?.replica && html`<p class="replica">Read from a replica, ${data.replica.lagSeconds === null ? 'lag unknown' : data.replica.lagSeconds < 1 ? 'up to date' : `${num(Math.round(data.replica.lagSeconds))} s behind the primary`}.</p>`}
    ${data?.attention && html`<${Attention} items=${data.attention} />`}
    <ul class="cards">
      ${meta.listPages
        .filter((/** @type {string} */ p) => meta.pages[p]?.can.view && data?.counts?.[p] !== null)
        .map((/** @type {string} */ p) => {
          const c = data?.counts?.[p];
          return html`<li class=${`card card-${p}`}>
          <a href=${href([p])}>
            <span class="card-label">${meta.pages[p].title}</span>
            <span class="card-value">${c ? `${c.estimated ? '≈ ' : ''}${num(c.value)}` : '…'}</span>
            ${c?.estimated && html`<span class="card-note">estimated</span>`}
          </a>
        </li>`;
        })}
      ${
        meta.pages.clusters?.can.view &&
        data?.clusters !== null &&
        html`<li class="card card-clusters">
        <a href=${href(['clusters'])}>
          <span class="card-label">Clusters</span>
          <span class="card-value">${data ? num(data.clusters.running) : '…'}</span>
          ${data && html`<span class=${`card-note${data.clusters.notResponding ? ' bad' : ''}`}>running · ${num(data.clusters.notResponding)} not responding</span>`}
        </a>
      </li>`
      }
    </ul>
    ${data?.hourly !== null && html`<h2>Last 24 hours</h2>`}
    ${data ? data.hourly && html`<${Chart} hourly=${data.hourly} />` : !error && html`<p class="loading">Loading…</p>`}
  </section>`;
}
