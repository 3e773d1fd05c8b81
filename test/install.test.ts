/**
 * The package as a host gets it: packed, installed into a fresh folder with only what it declares
 * beside the peers, the README's usage example compiled by tsc --strict without skipLibCheck and
 * run, and `require('ormq')` where Node can require ES modules (20.19+, 22.12+).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDb } from './helpers/db.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

function run(
  file: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, env: { ...process.env, NODE_V8_COVERAGE: '', ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}`, stdout }),
    );
  });
}

const Install = suite('install: the packed package in a fresh host');

Install(
  'installs from its tarball, compiles under tsc --strict without skipLibCheck, runs the usage example and the migration path, and ships no dangling source map',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ormq-install-'));
    const db = await createTestDb({ empty: true });
    try {
      // `npm pack` builds through `prepare`, as installing from a git URL does.
      const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], root);
      assert.is(packed.code, 0, packed.out.slice(-2000));
      const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
      const files = (info.files as { path: string }[]).map((f) => f.path);
      assert.ok(files.includes('dist/src/index.js') && files.includes('dist/src/index.d.ts'), 'the build ships');
      assert.equal(
        files.filter((f) => f.endsWith('.map')),
        [],
        'no source map pointing at sources that are not shipped',
      );

      const mine = json(join(root, 'package.json'));
      const version = (name: string) => json(join(root, 'node_modules', name, 'package.json')).version as string;
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'host', private: true, type: 'module' }));
      const peers = Object.keys(mine.peerDependencies).map((name) => `${name}@${version(name)}`);
      const tools = ['typescript', '@types/node', '@mikro-orm/migrations'].map((name) => `${name}@${version(name)}`);
      const installed = await run(
        'npm',
        ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, info.filename), ...peers, ...tools],
        dir,
      );
      assert.is(installed.code, 0, installed.out.slice(-2000));

      const readme = readFileSync(join(root, 'README.md'), 'utf8');
      const block = readme.split('<!-- usage-example')[1]?.match(/```ts\n([\s\S]*?)```/)?.[1];
      assert.ok(block, 'README has a marked usage example');
      writeFileSync(join(dir, 'example.ts'), block!);
      // The migration path: ormq's tables through the host's own MikroORM migrator. Its 'js' files are
      // CommonJS, so in an ES module package their folder says so.
      mkdirSync(join(dir, 'migrations'));
      writeFileSync(join(dir, 'migrations', 'package.json'), JSON.stringify({ type: 'commonjs' }));
      writeFileSync(
        join(dir, 'migrate.ts'),
        `import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { ensureSchema, queueEntities, SCHEMA_VERSION } from 'ormq';

const orm = await MikroORM.init({
  clientUrl: process.env.DATABASE_URL,
  entities: [...queueEntities],
  extensions: [Migrator],
  migrations: { path: './migrations', emit: 'js', snapshot: false, silent: true },
});
await orm.migrator.create();
await orm.migrator.up();
await ensureSchema(orm);
const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
const [row] = await orm.em.fork().execute("select obj_description('ormq_queued'::regclass, 'pg_class') as c");
console.log(JSON.stringify({ diff: diff.trim(), version: row?.c, expected: \`ormq schema \${SCHEMA_VERSION}\` }));
await orm.close();
`,
      );
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            skipLibCheck: false,
            types: ['node'],
            outDir: 'out',
          },
          files: ['example.ts', 'migrate.ts'],
        }),
      );
      const compiled = await run(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir);
      // postgres-interval 4.1 (a dependency of @mikro-orm/postgresql) names the Temporal API, which
      // TypeScript 5.9 does not declare: any host of MikroORM 7.2 meets that one without skipLibCheck.
      // Every other declaration, ormq's and what it depends on (pg's types), must check.
      const errors = compiled.out.split('\n').filter((l) => /error TS\d+/.test(l));
      const elsewhere = errors.filter(
        (l) => !/^node_modules\/postgres-interval\/index\.d\.ts\(\d+,\d+\): error TS2503: Cannot find namespace 'Temporal'/.test(l),
      );
      assert.equal(elsewhere, [], compiled.out.slice(0, 4000));
      if (errors.length === 0) assert.is(compiled.code, 0);

      const example = await run(process.execPath, [join(dir, 'out', 'example.js')], dir, { DATABASE_URL: db.url });
      assert.is(example.code, 0, example.out.slice(-2000));
      assert.match(example.stdout, /sent: true/);
      assert.match(example.stdout, /ada@example\.com/);

      // The bin npm links for the host.
      const bin = await run(join(dir, 'node_modules', '.bin', 'ormq'), ['--version'], dir);
      assert.is(bin.code, 0, bin.out);
      assert.is(bin.stdout.trim(), `ormq ${mine.version}`);

      const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
      // @mikro-orm/migrations reads folders with fs.globSync, which Node has from 22.
      if (major >= 22) {
        const migrationsDb = await createTestDb({ empty: true });
        try {
          const migrated = await run(process.execPath, [join(dir, 'out', 'migrate.js')], dir, { DATABASE_URL: migrationsDb.url });
          assert.is(migrated.code, 0, migrated.out.slice(-3000));
          const outcome = JSON.parse(migrated.stdout.trim().split('\n').at(-1)!);
          assert.is(outcome.diff, '', 'the migrated schema has no diff');
          assert.is(outcome.version, outcome.expected, 'the migration records the schema version');
        } finally {
          await migrationsDb.drop();
        }
      }
      const required = await run(
        process.execPath,
        [
          '-e',
          "const q = require('ormq'); const k = require('ormq/koa'); if (typeof q.enqueue !== 'function' || typeof k.koa !== 'function') process.exit(3)",
        ],
        dir,
      );
      // require() of an ES module is on by default from Node 20.19 and 22.12.
      const canRequire = major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19);
      if (canRequire) assert.is(required.code, 0, required.out.slice(-2000));
      else assert.is.not(required.code, 0, `Node ${process.versions.node} cannot require an ES module`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await db.drop();
    }
  },
);

Install.run();
