/**
 * Stacked bars of successes and failures, the overview's and the Metrics page's chart. Drawn in
 * HTML, not SVG, so its text keeps the page's size at any width; hovering or focusing a bar shows
 * its counts, and each part of a bar can link to the tasks behind it.
 */
import { html } from 'htm/preact';
import { num } from '../lib/format.js';
import { styles } from '../lib/styles.js';

// the built file's name, set by client/build.ts
await styles(STYLES_CHART);

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
 * `when` names a bar's time in its counts; `tick` labels the x axis (null: no label);
 * `link` makes each part of a bar a link (successes and failures apart); `shows` leaves out a
 * series the user may not view (its counts come as 0).
 */
export function BarChart({ bars, summary, note, when, tick, link, shows = { success: true, failure: true } }) {
  const max = Math.max(1, ...bars.map((h) => h.success + h.failure));
  const s = step(max);
  const top = Math.ceil(max / s) * s;
  const ticks = [];
  for (let v = top; v >= 0; v -= s) ticks.push(v);
  const pct = (/** @type {number} */ v) => `${(v / top) * 100}%`;
  const totals = bars.reduce((t, h) => [t[0] + h.success, t[1] + h.failure], [0, 0]);
  return html`<figure class="chart">
    <div class="plot">
      <ol class="y" aria-hidden="true">${ticks.map((v) => html`<li style=${{ bottom: pct(v) }}><span>${num(v)}</span></li>`)}</ol>
      <ol class="bars" aria-label=${summary}>
        ${bars.map((h, i) => {
          const start = new Date(h.at);
          const counts = [
            shows.success && count(h.success, 'success', 'successes'),
            shows.failure && count(h.failure, 'failure', 'failures'),
          ];
          const tip = `${when(start)}: ${counts.filter(Boolean).join(', ')}`;
          /** @param {'successful' | 'failed'} page @param {number} n @param {string} one @param {string} many */
          const part = (page, n, one, many) => {
            if (n <= 0) return null;
            const cls = page === 'failed' ? 'failure' : 'success';
            return link
              ? html`<a class=${cls} style=${{ height: pct(n) }} href=${link(h, page)} aria-label=${`${when(start)}: ${count(n, one, many)}`}></a>`
              : html`<span class=${cls} style=${{ height: pct(n) }}></span>`;
          };
          const label = tick(start, i);
          // without links the bar itself takes the focus, so its counts can be read from the keyboard
          const focusable = !link && h.success + h.failure > 0;
          return html`<li class=${i >= bars.length / 2 ? 'bar late' : 'bar'} tabindex=${focusable ? 0 : undefined} aria-label=${link ? undefined : tip}>
            <span class="tip" aria-hidden="true">${tip}</span>
            <span class="parts">${part('failed', h.failure, 'failure', 'failures')}${part('successful', h.success, 'success', 'successes')}</span>
            ${label && html`<span class="x" aria-hidden="true">${label}</span>`}
          </li>`;
        })}
      </ol>
    </div>
    <figcaption>
      ${shows.success && html`<span class="key success"></span> Successes (${num(totals[0])}) `}
      ${shows.failure && html`<span class="key failure"></span> Failures (${num(totals[1])})`}
      <span class="muted"> · ${note}</span>
    </figcaption>
  </figure>`;
}
