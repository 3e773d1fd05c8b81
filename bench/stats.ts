/**
 * The bench's arithmetic: medians with their spread, percentiles, and targets. A figure that is
 * compared across runs is a median of repeated measurements shown with its min–max and the spread
 * as a share of the median; a target is a ratio read in one run, with what it must reach.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median, in per cent */
  spreadPct: number;
  n: number;
}

export function spread(xs: number[]): Spread {
  if (!xs.length) return { median: 0, min: 0, max: 0, spreadPct: 0, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s.at(-1)!, spreadPct: median ? ((s.at(-1)! - s[0]!) / median) * 100 : 0, n: s.length };
}

/** "12,345 (11,900–12,600, ±2.8 %)": the median, its range and half the range as a share of it */
export const showSpread = (s: Spread, digits = 0) =>
  `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)}, ±${(s.spreadPct / 2).toFixed(1)} %)`;

export const fmt = (x: number, digits = 0) => x.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * The most tasks running at one instant, over all and within any one group, from flat
 * [group, start, end] triples; a task that ends at the instant another starts does not overlap it.
 */
export function peakAtOnce(spans: readonly number[]): { total: number; group: number } {
  const events: [time: number, step: number, group: number][] = [];
  for (let i = 0; i + 2 < spans.length; i += 3) events.push([spans[i + 1]!, 1, spans[i]!], [spans[i + 2]!, -1, spans[i]!]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const open = new Map<number, number>();
  let all = 0;
  const peak = { total: 0, group: 0 };
  for (const [, step, g] of events) {
    all += step;
    const mine = (open.get(g) ?? 0) + step;
    open.set(g, mine);
    peak.total = Math.max(peak.total, all);
    peak.group = Math.max(peak.group, mine);
  }
  return peak;
}

/** One target as latest.json records it: `value` is the ratio (or bound) read in this run. */
export interface Target {
  name: string;
  /** what it must reach, e.g. "≥ 1.5×" or "≤ 2.5 ms" */
  target: string;
  value: number | null;
  met: boolean | null;
  /** what the value was computed from, and the peers' figures beside it */
  detail?: string;
}

/** A ratio `a / b` that must reach `min`; not measured when a side was not run. */
export function ratioTarget(name: string, a: number, b: number, min: number, detail?: string): Target {
  if (!a || !b) return { name, target: `≥ ${min}×`, value: null, met: null, detail: detail ?? 'not measured: a system was not run' };
  const value = Number((a / b).toFixed(3));
  return { name, target: `≥ ${min}×`, value, met: value >= min, ...(detail ? { detail } : {}) };
}

/** The installed version of a package, from its own package.json (its exports may not list the file). */
export function installedVersion(name: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.resolve(name))); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === name) return pkg.version ?? 'unknown';
  }
  return 'unknown';
}
