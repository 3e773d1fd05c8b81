/** The first page: how many rows each page holds, and successes and failures per hour. */
import { html } from 'htm/preact';
import { ErrorBox } from '../components/detail.js';
import { useData } from '../lib/data.js';
import { num, PAGES } from '../lib/format.js';
import { href } from '../lib/router.js';


const hourFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric' });
const hourMinute = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });

/** A round step for the y axis, so gridlines land on numbers people read at a glance. @param {number} max */
function step(max) {
  const raw = max / 4;
  if (raw <= 1) return 1; // counts are whole: no 0.5 gridline
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
}

/** @param {number} n @param {string} one @param {string} many */
const count = (n, one, many) => `${num(n)} ${n === 1 ? one : many}`;

/**
 * Stacked bars per hour, successes at the bottom and failures on top, drawn in HTML so its text
 * keeps the page's size at any width. Each part of a bar links to that hour's list; hovering or
 * focusing it shows the hour's counts.
 * @param {{ hourly: { hour: string, success: number, failure: number }[] }} props
 */
function Chart({ hourly }) {
  const max = Math.max(1, ...hourly.map((h) => h.success + h.failure));
  const s = step(max);
  const top = Math.ceil(max / s) * s;
  const ticks = [];
  for (let v = top; v >= 0; v -= s) ticks.push(v);
  const pct = (/** @type {number} */ v) => `${(v / top) * 100}%`;
  const totals = hourly.reduce((t, h) => [t[0] + h.success, t[1] + h.failure], [0, 0]);
  return html`<figure class="chart" aria-labelledby="chart-caption">
    <div class="plot">
      <ol class="y" aria-hidden="true">${ticks.map((v) => html`<li style=${{ bottom: pct(v) }}><span>${num(v)}</span></li>`)}</ol>
      <ol class="bars">
        ${hourly.map((h, i) => {
          const start = new Date(h.hour);
          const tip = `${hourMinute.format(start)}: ${count(h.success, 'success', 'successes')}, ${count(h.failure, 'failure', 'failures')}`;
          /** @param {'successful' | 'failed'} page @param {number} n @param {string} cls */
          const part = (page, n, cls) =>
            n > 0 && html`<a class=${cls} style=${{ height: pct(n) }} href=${href([page], { hour: h.hour })}
              aria-label=${`${tip}. Show the ${page === 'failed' ? 'failures' : 'successes'} of this hour`}></a>`;
          return html`<li class="bar">
            <span class="tip" aria-hidden="true">${tip}</span>
            <span class="parts">${part('failed', h.failure, 'failure')}${part('successful', h.success, 'success')}</span>
            ${i % 3 === 0 && html`<span class="x" aria-hidden="true">${hourFormat.format(start)}</span>`}
          </li>`;
        })}
      </ol>
    </div>
    <figcaption id="chart-caption">
      <span class="key success"></span> Successes (${num(totals[0])})
      <span class="key failure"></span> Failures (${num(totals[1])})
      <span class="muted"> · per hour, last 24 hours, your time zone; choose a bar for that hour's tasks</span>
    </figcaption>
  </figure>`;
}

/** @param {{ meta: any }} props */
export function Overview({ meta }) {
  const { data, error } = useData('overview');
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title">Overview</h1>
    <${ErrorBox} error=${error} />
    <ul class="cards">
      ${PAGES.filter(([p]) => meta.pages[p]?.can.view && data?.counts?.[p] !== null).map(([p, name]) => {
        const c = data?.counts?.[p];
        return html`<li class=${`card card-${p}`}>
          <a href=${href([p])}>
            <span class="card-label">${name}</span>
            <span class="card-value">${c ? `${c.estimated ? '≈ ' : ''}${num(c.value)}` : '…'}</span>
            ${c?.estimated && html`<span class="card-note">estimated</span>`}
          </a>
        </li>`;
      })}
    </ul>
    ${data?.hourly !== null && html`<h2>Last 24 hours</h2>`}
    ${data ? data.hourly && html`<${Chart} hourly=${data.hourly} />` : !error && html`<p class="loading">Loading…</p>`}
  </section>`;
}
