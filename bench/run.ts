/**
 * `npm run bench [-- --scale 0.1] [-- --only cluster,admin,client,enqueue,scale] [-- --settle 60] [-- --reuse]`:
 * benchmarks on real PostgreSQL (DATABASE_URL, or an embedded server started here). Prints a table
 * per section, each with the 1-minute load average before it, and its targets (each a ratio or a
 * bound read in this run), and writes bench/results/latest.json. The scale run (1–8 cluster
 * processes) runs only when --only names it. Not part of `npm test`.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../fixtures/embedded-postgres.js';
import type { Target } from './stats.js';

export interface BenchContext {
  /** A server URL; sections create their own databases on it with `createDatabase`. */
  serverUrl: string;
  scale: number;
  createDatabase(name: string): Promise<string>;
  /** The URL of a database on the server by name, whether or not it exists. */
  databaseUrl(name: string): string;
  /** --reuse: a section may keep a database an earlier run seeded at the same scale instead of seeding again. */
  reuse: boolean;
  log(message: string): void;
  /**
   * Waits (up to --settle seconds) for the 1-minute load average to fall to 1.0 and returns it:
   * called just before a table's measurements, after any seeding of its own.
   */
  settle(): Promise<number>;
}

export interface Section {
  title: string;
  rows: Record<string, string | number | null>[];
  notes: string[];
  /** the 1-minute load average when the measurements began (set by run.ts unless the section does) */
  loadBefore?: number;
  /** each target's ratio or bound as read in this run */
  targets?: Target[];
}

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
/**
 * The largest scale per section: the admin (and the client, which reuses its seed) go to ten million
 * successes; the cluster stays at its full size, which already takes minutes per system.
 */
const MAX_SCALE: Record<string, number> = { cluster: 1, admin: 10, client: 10, enqueue: 1, scale: 1 };
/** sections that run only when --only names them */
const OPT_IN = ['scale'];
const scale = Number(arg('scale') ?? 1);
const only = arg('only')?.split(',');
const unknown = only?.filter((s) => !(s in MAX_SCALE)) ?? [];
if (unknown.length)
  throw new RangeError(`--only: unknown section ${unknown.join(', ')} (the sections are ${Object.keys(MAX_SCALE).join(', ')})`);
const sections = Object.keys(MAX_SCALE).filter((s) => (only ? only.includes(s) : !OPT_IN.includes(s)));
if (!(scale > 0)) throw new RangeError(`--scale must be a number above 0, not ${arg('scale')}`);
for (const s of sections) {
  if (scale > MAX_SCALE[s]!) {
    throw new RangeError(
      `--scale ${scale} is above the ${s} section's limit of ${MAX_SCALE[s]}: pick sections with --only (e.g. --only admin,client)`,
    );
  }
}
const settleSeconds = Number(arg('settle') ?? 60);
if (!(settleSeconds >= 0 && settleSeconds <= 3600)) throw new RangeError(`--settle must be seconds in [0, 3600], not ${arg('settle')}`);
const QUIET = 1.0;

let embedded: EmbeddedServer | undefined;
let dir: string | undefined;
let serverUrl = process.env.DATABASE_URL;
if (!serverUrl) {
  dir = mkdtempSync(join(tmpdir(), 'ormq-bench-pg-'));
  chmodSync(dir, 0o755);
  embedded = await startEmbeddedPostgres({ dir: join(dir, 'data'), persistent: false });
  serverUrl = embedded.url;
}

function databaseUrl(name: string): string {
  const url = new URL(serverUrl!);
  url.pathname = `/${name}`;
  return url.toString();
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
  return databaseUrl(name);
}

const load1 = () => Number(loadavg()[0]!.toFixed(2));

async function settle(): Promise<number> {
  const deadline = Date.now() + settleSeconds * 1000;
  if (load1() > QUIET && settleSeconds > 0)
    ctx.log(`waiting up to ${settleSeconds} s for the 1-minute load average (${load1()}) to fall to ${QUIET}`);
  while (load1() > QUIET && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
  return load1();
}

function loadLines(section: Section): string[] {
  if (section.loadBefore === undefined) return [];
  const lines = [`Load average (1 min) before this table: ${section.loadBefore}`];
  if (section.loadBefore > QUIET) {
    lines.push(
      `WARNING: the load average was above ${QUIET.toFixed(1)} before this table: the machine was busy and these figures are lower than a quiet machine gives.`,
    );
  }
  return lines;
}

function printTable(section: Section): void {
  console.log(`\n## ${section.title}\n`);
  for (const line of loadLines(section)) console.log(`${line}\n`);
  if (section.rows.length) {
    const cols = Object.keys(section.rows[0]!);
    const cell = (v: unknown) => (v === null || v === undefined ? '—' : String(v));
    const widths = cols.map((c) => Math.max(c.length, ...section.rows.map((r) => cell(r[c]).length)));
    console.log(`| ${cols.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of section.rows) console.log(`| ${cols.map((c, i) => cell(r[c]).padEnd(widths[i]!)).join(' | ')} |`);
  }
  for (const n of section.notes) console.log(`\n${n}`);
  if (section.targets?.length) {
    console.log('\nTargets (each read in this run):\n');
    for (const t of section.targets) {
      const status = t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED';
      console.log(`- ${t.name}: ${t.value ?? '—'} (target ${t.target}: ${status})${t.detail ? `; ${t.detail}` : ''}`);
    }
  }
}

const results: Record<string, Section> = {};
const ctx: BenchContext = {
  serverUrl,
  scale,
  createDatabase,
  databaseUrl,
  reuse: args.includes('--reuse'),
  log: (m) => console.error(`  … ${m}`),
  settle,
};
try {
  for (const name of sections) {
    const mod = (await import(`./${name}.js`)) as { run(ctx: BenchContext): Promise<Section> };
    console.error(`[${name}]`);
    const loadBefore = await settle();
    const section = await mod.run(ctx);
    results[name] = { ...section, loadBefore: section.loadBefore ?? loadBefore };
    for (const line of loadLines(results[name])) ctx.log(line);
    printTable(results[name]);
  }
} finally {
  if (embedded) await embedded.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

const out = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(out, { recursive: true });
const written = JSON.stringify(
  {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    database: embedded ? 'embedded PostgreSQL' : 'DATABASE_URL',
    scale,
    settleSeconds,
    loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    targets: Object.entries(results).flatMap(([name, r]) =>
      (r.targets ?? []).map((t) => ({ section: name, loadBefore: r.loadBefore, ...t })),
    ),
    results,
  },
  null,
  2,
);
// latest.json for the last run; a copy per run, so that `bench/spread.ts` can compare runs' targets.
const stamp = `run-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(join(out, 'latest.json'), written);
writeFileSync(join(out, stamp), written);
console.log(`\nwrote bench/results/latest.json and bench/results/${stamp}`);
process.exit(0); // pools of the compared queues keep the event loop alive
