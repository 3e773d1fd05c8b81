import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTestDb } from './helpers/db.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const R = suite('README');

R('the usage example runs as it is written', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = readme.split('<!-- usage-example')[1]?.match(/```ts\n([\s\S]*?)```/)?.[1];
  assert.ok(block, 'README has a marked usage example');
  const db = await createTestDb({ empty: true });
  // The example imports the published name; inside this checkout that is src/index.ts.
  const dir = mkdtempSync(join(root, 'test', '.readme-'));
  const file = join(dir, 'example.mts');
  writeFileSync(file, block!.replace("from 'ormq'", `from '${join(root, 'src', 'index.ts')}'`));
  try {
    const run = spawnSync(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url, NODE_V8_COVERAGE: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.is(run.status, 0, run.stderr);
    assert.match(run.stdout, /sent: true/);
    assert.match(run.stdout, /ada@example\.com/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
});

R.run();
