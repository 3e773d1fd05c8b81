/**
 * `npm run bench [-- --scale 0.1] [-- --only cluster,admin,client,enqueue]`: benchmarks on real PostgreSQL
 * (DATABASE_URL, or an embedded server started here). Prints a table per section and writes
 * bench/results/latest.json. Not part of `npm test`.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../fixtures/embedded-postgres.js';

export interface BenchContext {
  /** A server URL; sections create their own databases on it with `createDatabase`. */
  serverUrl: string;
  scale: number;
  createDatabase(name: string): Promise<string>;
  log(message: string): void;
}

export interface Section {
  title: string;
  rows: Record<string, string | number | null>[];
  notes: string[];
}

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const scale = Number(arg('scale') ?? 1);
if (!(scale > 0 && scale <= 1)) throw new RangeError('--scale must be a number in (0, 1]');
const only = arg('only')?.split(',');
const sections = ['cluster', 'admin', 'client', 'enqueue'].filter((s) => !only || only.includes(s));

let embedded: EmbeddedServer | undefined;
let dir: string | undefined;
let serverUrl = process.env.DATABASE_URL;
if (!serverUrl) {
  dir = mkdtempSync(join(tmpdir(), 'ormq-bench-pg-'));
  chmodSync(dir, 0o755);
  embedded = await startEmbeddedPostgres({ dir: join(dir, 'data'), persistent: false });
  serverUrl = embedded.url;
}

async function createDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl!);
  url.pathname = `/${name}`;
  return url.toString();
}

function printTable(section: Section): void {
  console.log(`\n## ${section.title}\n`);
  if (section.rows.length) {
    const cols = Object.keys(section.rows[0]!);
    const cell = (v: unknown) => (v === null || v === undefined ? '—' : String(v));
    const widths = cols.map((c) => Math.max(c.length, ...section.rows.map((r) => cell(r[c]).length)));
    console.log(`| ${cols.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of section.rows) console.log(`| ${cols.map((c, i) => cell(r[c]).padEnd(widths[i]!)).join(' | ')} |`);
  }
  for (const n of section.notes) console.log(`\n${n}`);
}

const results: Record<string, Section> = {};
const ctx: BenchContext = { serverUrl, scale, createDatabase, log: (m) => console.error(`  … ${m}`) };
try {
  for (const name of sections) {
    const mod = (await import(`./${name}.js`)) as { run(ctx: BenchContext): Promise<Section> };
    console.error(`[${name}]`);
    results[name] = await mod.run(ctx);
    printTable(results[name]);
  }
} finally {
  if (embedded) await embedded.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

const out = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'latest.json'),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      database: embedded ? 'embedded PostgreSQL' : 'DATABASE_URL',
      scale,
      results,
    },
    null,
    2,
  ),
);
console.log(`\nwrote bench/results/latest.json`);
process.exit(0); // pools of the compared queues keep the event loop alive
