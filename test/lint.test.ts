/**
 * Lint: no export that nothing imports, no file that nothing reaches (knip, configured in
 * knip.json), and every source file as the formatter writes it (prettier, .prettierrc.json;
 * `npm run format` rewrites them). Each check fails with the tool's own report.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(bin: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'node_modules', bin), ...args],
      { cwd: root, maxBuffer: 16 * 1024 * 1024, timeout: 180_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const Lint = suite('lint');

Lint('knip: every export is imported somewhere, every file is reached from an entry point', async () => {
  const { code, out } = await run('knip/bin/knip.js', ['--no-progress', '--no-config-hints']);
  assert.is(code, 0, `knip found unused code (remove it, or drop the export):\n${out}`);
});

Lint('prettier: every source file is formatted (npm run format)', async () => {
  const { code, out } = await run('prettier/bin/prettier.cjs', ['--check', '.']);
  assert.is(code, 0, `files not formatted; run npm run format:\n${out}`);
});

Lint.run();
