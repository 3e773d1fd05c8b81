/**
 * Metrics: per func, over 1 hour to 30 days, runs, failures, throughput, runtime and wait, and a
 * chart of successes and failures. Every figure counts every attempt (the rollups), whatever
 * saveLimit kept; a func, a count or a bar opens the tasks behind it.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { BarChart } from '../components/chart.js';
import { ErrorBox } from '../components/detail.js';
import { FilterSelect } from '../components/filters.js';
import { Limits } from '../components/limits.js';
import { query } from '../lib/api.js';
import { useData } from '../lib/data.js';
import { num } from '../lib/format.js';
import { href, navigate } from '../lib/router.js';

/** @type {[string, string, string][]} id, button text, chart note */
const RANGES = [
  ['1h', '1 hour', 'per minute, last hour'],
  ['24h', '24 hours', 'per hour, last 24 hours'],
  ['7d', '7 days', 'per 6 hours, last 7 days'],
  ['30d', '30 days', 'per day (UTC), last 30 days'],
];

/** A func name that a narrow table may wrap after its dots, never inside a part of it. */
const dotted = (/** @type {string} */ func) => func.split(/(?<=\.)/).map((part, i) => (i ? [html`<wbr />`, part] : part));

const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayTime = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const hour = new Intl.DateTimeFormat(undefined, { hour: 'numeric' });
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** Ticks per range: [every n-th bar, its label]. @type {Record<string, [number, (d: Date) => string]>} */
const TICKS = {
  '1h': [10, (d) => time.format(d)],
  '24h': [3, (d) => hour.format(d)],
  '7d': [4, (d) => day.format(d)],
  '30d': [5, (d) => day.format(d)],
};

/** ms to text, from fractions of a millisecond to days. @param {number | null} ms */
function dur(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** @param {number} perMinute */
function rate(perMinute) {
  if (perMinute >= 1) return `${num(Math.round(perMinute * 10) / 10)}/min`;
  if (perMinute * 60 >= 1) return `${num(Math.round(perMinute * 600) / 10)}/h`;
  return `${num(Math.round(perMinute * 14_400) / 10)}/day`;
}

/** @param {number} r 0..1 */
const percent = (r) => `${r > 0 && r < 0.1 ? (r * 100).toFixed(1) : Math.round(r * 100)} %`;

/**
 * The per-func table's columns: a header's click sorts by it (numbers largest first, names A to Z),
 * a second click the other way. @type {[string, (f: any) => number | string | null][]}
 */
const COLUMNS = [
  ['Func', (f) => f.func],
  ['Runs', (f) => f.runs],
  ['Failures', (f) => f.failures],
  ['Failure rate', (f) => f.failureRate],
  ['Throughput', (f) => f.perMinute],
  ['Runtime p50', (f) => f.runtime.p50],
  ['p95', (f) => f.runtime.p95],
  ['max', (f) => f.runtime.max],
  ['Wait p95', (f) => f.wait.p95],
];

/**
 * @param {any[]} funcs @param {[number, number] | null} sort column and direction (1 ascending, -1 descending); null: as the server orders them
 */
function sorted(funcs, sort) {
  if (!sort) return funcs;
  const [col, dir] = sort;
  const get = COLUMNS[col][1];
  // a figure with no value (no run to measure) goes last either way
  return [...funcs].sort((a, b) => {
    const x = get(a);
    const y = get(b);
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    return (typeof x === 'string' ? x.localeCompare(/** @type {string} */ (y)) : x - /** @type {number} */ (y)) * dir;
  });
}

/** @param {{ meta: any, route: import('../lib/router.js').Route }} props */
export function Metrics({ meta, route }) {
  const [sort, setSort] = useState(/** @type {[number, number] | null} */ (null));
  const p = route.params;
  const range = RANGES.some(([id]) => id === p.get('range')) ? /** @type {string} */ (p.get('range')) : '24h';
  const func = p.get('func') ?? '';
  const key = p.get('key') ?? '';
  const { data, error, reload, loading, stale } = useData(`metrics${query({ range, func, key })}`);
  // another range or filter is loading: the figures shown are the old ones, dimmed
  const old = stale && loading && !!data;
  const can = (/** @type {string} */ page) => !!meta.pages[page]?.can.view;
  /** @param {'successful' | 'failed'} page @param {string} f @param {string} from @param {string} to */
  const tasks = (page, f, from, to) => href([page], { func: f || null, cluster: key || null, from, to });
  /** @param {Record<string, string>} changes */
  const go = (changes) => navigate(href(['metrics'], { range, func, key, ...changes }));
  const note = RANGES.find(([id]) => id === range)?.[2] ?? '';
  const [every, label] = TICKS[range] ?? TICKS['24h'];
  const totals = (data?.funcs ?? []).reduce(
    (/** @type {number[]} */ t, /** @type {any} */ f) => [t[0] + f.runs, t[1] + f.failures],
    [0, 0],
  );

  return html`<section class=${old ? 'metrics stale' : 'metrics'} aria-labelledby="page-title" aria-busy=${old}>
    <div class="page-head"><h1 id="page-title">Metrics</h1>
      <span class="count">every attempt, whatever saveLimit keeps</span>${old && html`<span class="busy" role="status">Loading…</span>`}</div>
    <div class="toolbar">
      <nav class="ranges" aria-label="Time range">
        ${RANGES.map(([id, text]) => html`<a class="button" href=${href(['metrics'], { range: id, func, key })} aria-current=${id === range ? 'true' : undefined}>${text}</a>`)}
      </nav>
      <${FilterSelect} name="func" label="Func" value=${func} onChange=${(/** @type {string} */ v) => go({ func: v })}
        options=${(data?.funcs ?? []).map((/** @type {any} */ f) => ({ value: f.func, label: f.func }))} />
      <${FilterSelect} name="key" label="Cluster" value=${key} onChange=${(/** @type {string} */ v) => go({ key: v })}
        options=${(data?.keys ?? []).map((/** @type {string} */ k) => ({ value: k, label: k }))} />
    </div>
    <${ErrorBox} error=${error} retry=${reload} busy=${loading} />
    ${!data && !error && html`<p class="loading">Loading…</p>`}
    ${
      data &&
      html`
      <p class="totals">${num(totals[0])} ${totals[0] === 1 ? 'run' : 'runs'} · ${num(totals[1])} ${totals[1] === 1 ? 'failure' : 'failures'}${totals[0] ? ` (${percent(totals[1] / totals[0])})` : ''}${func ? ` of ${func}` : ''}${key ? ` on ${key}` : ''}</p>
      <${BarChart} bars=${data.series} note=${`${note}, your time zone`}
        summary=${`Successes and failures ${note}: ${num(totals[0] - totals[1])} successes and ${num(totals[1])} failures.`}
        when=${(/** @type {Date} */ d) => (range === '1h' || range === '24h' ? time : dayTime).format(d)}
        tick=${(/** @type {Date} */ d, /** @type {number} */ i) => (i % every === 0 ? label(d) : null)}
        link=${
          can('successful') && can('failed')
            ? (/** @type {any} */ b, /** @type {'successful' | 'failed'} */ page) =>
                tasks(page, func, b.at, new Date(Date.parse(b.at) + data.step).toISOString())
            : undefined
        } />
      <h2>Per func</h2>
      ${
        data.funcs.length === 0
          ? html`<p class="empty">No task ran in this range.</p>`
          : html`<div class="sort-by filter"><label for="sort-by">Sort by</label>
          <select id="sort-by" value=${sort ? String(sort[0]) : ''} onChange=${(/** @type {any} */ e) => setSort(e.currentTarget.value ? [+e.currentTarget.value, e.currentTarget.value === '0' ? 1 : -1] : null)}>
            <option value="">As listed</option>${COLUMNS.map(([name], i) => html`<option value=${String(i)}>${name}</option>`)}
          </select></div>
        <div class="table-wrap per-func"><table>
        <caption class="sr-only">Per func, ${note}</caption>
        <thead><tr>
          ${COLUMNS.map(
            (
              [name],
              i,
            ) => html`<th scope="col" class=${i ? 'num' : undefined} aria-sort=${sort?.[0] === i ? (sort[1] > 0 ? 'ascending' : 'descending') : undefined}>
            <button type="button" class="sort" onClick=${() => setSort([i, sort?.[0] === i ? -sort[1] : i ? -1 : 1])}>${name}</button></th>`,
          )}
        </tr></thead>
        <tbody>${sorted(data.funcs, sort).map(
          (/** @type {any} */ f) => html`<tr>
          <th scope="row">${can('successful') ? html`<a href=${tasks('successful', f.func, data.from, data.to)}>${dotted(f.func)}</a>` : dotted(f.func)}</th>
          ${[
            num(f.runs),
            f.failures && can('failed')
              ? html`<a href=${tasks('failed', f.func, data.from, data.to)}>${num(f.failures)}</a>`
              : num(f.failures),
            percent(f.failureRate),
            rate(f.perMinute),
            dur(f.runtime.p50),
            dur(f.runtime.p95),
            dur(f.runtime.max),
            dur(f.wait.p95),
          ].map((v, i) => html`<td class=${i === 2 && f.failures ? 'num bad' : 'num'} data-label=${COLUMNS[i + 1][0]}>${v}</td>`)}
        </tr>`,
        )}</tbody>
      </table></div>
      <p class="hint">Percentiles come from log-scale histograms: within about 40 % of the exact value. A func opens its successful tasks, a failure count its failed tasks, over this range; only the tasks saveLimit kept are listed.</p>`
      }
    `
    }
    ${meta.pages.clusters?.can.view && html`<${Limits} can=${meta.pages.clusters.can} />`}
  </section>`;
}
