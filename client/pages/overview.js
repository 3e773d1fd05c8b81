/** The first page: how many rows each page holds, and successes and failures per hour. */
import { html } from 'htm/preact';
import { ErrorBox } from '../components/detail.js';
import { useData } from '../lib/data.js';
import { num, PAGES } from '../lib/format.js';
import { href } from '../lib/router.js';


const W = 720;
const H = 220;
const PAD = { top: 12, right: 8, bottom: 28, left: 40 };
const hourFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric' });
const hourMinute = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });

/** A round step for the y axis, so gridlines land on numbers people read at a glance. @param {number} max */
function step(max) {
  const raw = max / 4;
  if (raw <= 1) return 1; // counts are whole: no 0.5 gridline
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
}

/**
 * Stacked bars per hour, drawn by hand: successes at the bottom, failures on top. A series the
 * user may not view comes as null and is left out.
 * @param {{ hourly: { hour: string, success: number | null, failure: number | null }[] }} props
 */
function Chart({ hourly: given }) {
  const shows = { success: given[0]?.success !== null, failure: given[0]?.failure !== null };
  const hourly = given.map((h) => ({ hour: h.hour, success: h.success ?? 0, failure: h.failure ?? 0 }));
  const max = Math.max(1, ...hourly.map((h) => h.success + h.failure));
  const s = step(max);
  const top = Math.ceil(max / s) * s;
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const bw = iw / Math.max(1, hourly.length);
  const y = (/** @type {number} */ v) => PAD.top + ih - (v / top) * ih;
  const ticks = [];
  for (let v = 0; v <= top; v += s) ticks.push(v);
  const totals = hourly.reduce((t, h) => [t[0] + h.success, t[1] + h.failure], [0, 0]);
  const parts = [shows.success && `${num(totals[0])} successes`, shows.failure && `${num(totals[1])} failures`].filter(Boolean);
  const summary = `Results per hour over the last 24 hours: ${parts.join(' and ')} in all.`;
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${summary} preserveAspectRatio="xMidYMid meet">
      ${ticks.map((v) => html`<g class="tick">
        <line x1=${PAD.left} x2=${W - PAD.right} y1=${y(v)} y2=${y(v)} />
        <text x=${PAD.left - 6} y=${y(v) + 4} text-anchor="end">${num(v)}</text>
      </g>`)}
      ${hourly.map((h, i) => {
        const x = PAD.left + i * bw + bw * 0.15;
        const w = bw * 0.7;
        const start = new Date(h.hour);
        const counts = [
          shows.success && `${num(h.success)} ${h.success === 1 ? 'success' : 'successes'}`,
          shows.failure && `${num(h.failure)} ${h.failure === 1 ? 'failure' : 'failures'}`,
        ];
        const label = `${hourMinute.format(start)}: ${counts.filter(Boolean).join(', ')}`;
        return html`<g class="bar">
          <title>${label}</title>
          <rect class="hit" x=${PAD.left + i * bw} y=${PAD.top} width=${bw} height=${ih} />
          ${h.success > 0 && html`<rect class="success" x=${x} y=${y(h.success)} width=${w} height=${y(0) - y(h.success)} />`}
          ${h.failure > 0 && html`<rect class="failure" x=${x} y=${y(h.success + h.failure)} width=${w} height=${y(h.success) - y(h.success + h.failure)} />`}
          ${i % 3 === 0 && html`<text class="x" x=${PAD.left + i * bw + bw / 2} y=${H - 8} text-anchor="middle">${hourFormat.format(start)}</text>`}
        </g>`;
      })}
      <line class="axis" x1=${PAD.left} x2=${W - PAD.right} y1=${y(0)} y2=${y(0)} />
    </svg>
    <figcaption>
      ${shows.success && html`<span class="key success"></span> Successes (${num(totals[0])}) `}
      ${shows.failure && html`<span class="key failure"></span> Failures (${num(totals[1])})`}
      <span class="muted"> · per hour, last 24 hours, your time zone</span>
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
