/** Stacked bars of successes and failures, drawn by hand in SVG: the overview's and the Metrics page's chart. */
import { html } from 'htm/preact';
import { num } from '../lib/format.js';

const W = 720;
const H = 220;
const PAD = { top: 12, right: 8, bottom: 28, left: 40 };

/** A round step for the y axis, so gridlines land on numbers people read at a glance. @param {number} max */
function step(max) {
  const raw = max / 4;
  if (raw <= 1) return 1; // counts are whole: no 0.5 gridline
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
}

/**
 * @typedef {{ at: string, success: number, failure: number }} Bar
 * @param {{
 *   bars: Bar[],
 *   summary: string,
 *   note: string,
 *   when: (start: Date) => string,
 *   tick: (start: Date, i: number) => string | null,
 *   link?: (bar: Bar, outcome: 'successful' | 'failed') => string,
 *   shows?: { success: boolean, failure: boolean },
 * }} props
 * `when` names a bar's time in its tooltip; `tick` labels the x axis (null: no label);
 * `link` makes each part of a bar a link (successes and failures apart); `shows` leaves out a
 * series the user may not view (its counts come as 0).
 */
export function BarChart({ bars, summary, note, when, tick, link, shows = { success: true, failure: true } }) {
  const max = Math.max(1, ...bars.map((h) => h.success + h.failure));
  const s = step(max);
  const top = Math.ceil(max / s) * s;
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const bw = iw / Math.max(1, bars.length);
  const y = (/** @type {number} */ v) => PAD.top + ih - (v / top) * ih;
  const ticks = [];
  for (let v = 0; v <= top; v += s) ticks.push(v);
  const totals = bars.reduce((t, h) => [t[0] + h.success, t[1] + h.failure], [0, 0]);
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${W} ${H}`} role=${link ? 'group' : 'img'} aria-label=${summary} preserveAspectRatio="xMidYMid meet">
      ${ticks.map((v) => html`<g class="tick">
        <line x1=${PAD.left} x2=${W - PAD.right} y1=${y(v)} y2=${y(v)} />
        <text x=${PAD.left - 6} y=${y(v) + 4} text-anchor="end">${num(v)}</text>
      </g>`)}
      ${bars.map((h, i) => {
        const x = PAD.left + i * bw + bw * 0.15;
        const w = bw * 0.7;
        const start = new Date(h.at);
        const counts = [
          shows.success && `${num(h.success)} ${h.success === 1 ? 'success' : 'successes'}`,
          shows.failure && `${num(h.failure)} ${h.failure === 1 ? 'failure' : 'failures'}`,
        ];
        const label = `${when(start)}: ${counts.filter(Boolean).join(', ')}`;
        const text = tick(start, i);
        const hit = html`<rect class="hit" x=${PAD.left + i * bw} y=${PAD.top} width=${bw} height=${ih} />`;
        const ok = h.success > 0 && html`<rect class="success" x=${x} y=${y(h.success)} width=${w} height=${y(0) - y(h.success)} />`;
        const bad = h.failure > 0 && html`<rect class="failure" x=${x} y=${y(h.success + h.failure)} width=${w} height=${y(h.success) - y(h.success + h.failure)} />`;
        const count = (/** @type {number} */ n, /** @type {string} */ one, /** @type {string} */ many) => `${when(start)}: ${num(n)} ${n === 1 ? one : many}`;
        let parts;
        if (!link || h.success + h.failure === 0) parts = html`<title>${label}</title>${hit}${ok}${bad}`;
        // the column and its successes open Successful tasks, the failures on top Failed tasks
        else if (h.success === 0) parts = html`<a href=${link(h, 'failed')} aria-label=${count(h.failure, 'failure', 'failures')}><title>${label}</title>${hit}${bad}</a>`;
        else {
          parts = html`<a href=${link(h, 'successful')} aria-label=${count(h.success, 'success', 'successes')}><title>${label}</title>${hit}${ok}</a>
            ${bad && html`<a href=${link(h, 'failed')} aria-label=${count(h.failure, 'failure', 'failures')}><title>${label}</title>${bad}</a>`}`;
        }
        return html`<g class="bar">
          ${parts}
          ${text && html`<text class="x" x=${PAD.left + i * bw + bw / 2} y=${H - 8} text-anchor="middle">${text}</text>`}
        </g>`;
      })}
      <line class="axis" x1=${PAD.left} x2=${W - PAD.right} y1=${y(0)} y2=${y(0)} />
    </svg>
    <figcaption>
      ${shows.success && html`<span class="key success"></span> Successes (${num(totals[0])}) `}
      ${shows.failure && html`<span class="key failure"></span> Failures (${num(totals[1])})`}
      <span class="muted"> · ${note}</span>
    </figcaption>
  </figure>`;
}
