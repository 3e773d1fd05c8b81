/**
 * Runs every uvu suite in test/ (or those whose file names match the arguments) on real PostgreSQL:
 * the server in DATABASE_URL, or an embedded one started here in a temporary folder and stopped at
 * the end. Each suite makes its own databases from a template that holds ormq's schema.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres, type EmbeddedServer } from '../fixtures/embedded-postgres.js';
import { createTemplate, dropTemplate } from './helpers/db.js';
import { TEST_TOKEN } from './helpers/admin.js';

type SuiteRun = () => Promise<[string | true, number, number, number]>;

const here = fileURLToPath(new URL('.', import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => !filters.length || filters.some((p) => f.includes(p)))
  .sort();

// Every admin mounted without authorize asks for this token; the helpers' clients carry it.
process.env.ORMQ_ADMIN_TOKEN = TEST_TOKEN;

let embedded: EmbeddedServer | undefined;
let dir: string | undefined;
if (!process.env.DATABASE_URL) {
  dir = mkdtempSync(join(tmpdir(), 'ormq-test-pg-'));
  chmodSync(dir, 0o755); // run as root, PostgreSQL runs as another user that must reach its folder
  embedded = await startEmbeddedPostgres({
    dir: join(dir, 'data'),
    persistent: false,
    flags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
  });
  process.env.DATABASE_URL = embedded.url;
  console.log(`embedded PostgreSQL at ${embedded.url}`);
}

let passed = 0;
let failed = 0;
let skipped = 0;
process.on('unhandledRejection', (err) => {
  console.error('unhandled rejection:', err);
  process.exit(1);
});
try {
  await createTemplate();
  (globalThis as Record<string, unknown>).UVU_DEFER = 1;
  const queue = ((globalThis as Record<string, unknown>).UVU_QUEUE ??= []) as [string | null, ...SuiteRun[]][];
  for (const [i, file] of files.entries()) {
    (globalThis as Record<string, unknown>).UVU_INDEX = i;
    queue.push([file]);
    await import(join(here, file));
  }
  for (const [name, ...suites] of queue) {
    if (name) process.stdout.write(`\n${name}\n`);
    for (const run of suites) {
      const [errors, ran, skips, total] = await run();
      passed += ran;
      skipped += skips;
      failed += total - ran;
      if (errors !== true) process.stdout.write(`\n${errors}\n`);
    }
  }
} finally {
  await dropTemplate().catch(() => {});
  if (embedded) await embedded.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
// Exit explicitly: embedded-postgres installs an exit hook that ends the process with code 0 on
// 'beforeExit', which would hide every failure from CI.
process.exit(failed || !files.length ? 1 : 0);
