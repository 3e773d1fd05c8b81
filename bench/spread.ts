/**
 * `node --import tsx bench/spread.ts bench/results/run-*.json`: each target's value in each of the
 * given runs (copies of latest.json that bench/run.ts writes), their median and spread (half the
 * range over the median), and whether that spread is within ±3 %: whether a ratio repeats.
 */
import { readFileSync } from 'node:fs';
import { spread, type Target } from './stats.js';

const files = process.argv.slice(2);
if (files.length < 2) throw new RangeError('give two or more run files, e.g. bench/results/run-*.json');
const runs = files.map(
  (f) =>
    JSON.parse(readFileSync(f, 'utf8')) as {
      date: string;
      loadAverage?: number[];
      targets?: (Target & { section: string; loadBefore?: number })[];
    },
);
const names = [...new Set(runs.flatMap((r) => (r.targets ?? []).map((t) => `${t.section}: ${t.name}`)))];
console.log(
  `| target | ${runs.map((r, i) => `run ${i + 1} (load ${r.targets?.[0]?.loadBefore ?? '?'})`).join(' | ')} | median | spread | within ±3 % |`,
);
console.log(`|---|${runs.map(() => '---|').join('')}---|---|---|`);
for (const name of names) {
  const values = runs.map((r) => r.targets?.find((t) => `${t.section}: ${t.name}` === name)?.value ?? null);
  const measured = values.filter((v): v is number => v !== null);
  const s = spread(measured);
  const half = s.spreadPct / 2;
  console.log(
    `| ${name} | ${values.map((v) => v ?? '—').join(' | ')} | ${measured.length ? s.median.toFixed(3) : '—'} | ±${half.toFixed(1)} % | ${measured.length > 1 ? (half <= 3 ? 'yes' : 'NO') : '—'} |`,
  );
}
console.log(`\nRuns: ${runs.map((r, i) => `${i + 1} ${r.date}`).join(', ')}.`);
