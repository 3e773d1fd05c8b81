/** What the published package says about itself and ships, as npm and a host see it. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const json = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8'));
const npm = (args: string[]) =>
  new Promise<string>((resolve, reject) =>
    execFile('npm', args, { cwd: root, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout))),
  );
const minimum = (range: string) =>
  range
    .match(/>=\s*(\d+)\.(\d+)/)!
    .slice(1)
    .map(Number) as [number, number];

const Pkg = suite('package facts');

Pkg('engines is no lower than what MikroORM declares', () => {
  const ours = minimum(json('package.json').engines.node);
  for (const dep of ['@mikro-orm/core', '@mikro-orm/postgresql']) {
    const theirs = minimum(json(`node_modules/${dep}/package.json`).engines.node);
    assert.ok(ours[0] > theirs[0] || (ours[0] === theirs[0] && ours[1] >= theirs[1]), `${ours} ≥ ${dep}'s ${theirs}`);
  }
});

Pkg('license, repository and homepage are declared; preact and htm are build-time only', () => {
  const pkg = json('package.json');
  assert.is(pkg.license, 'MIT');
  assert.match(readFileSync(join(root, 'LICENSE'), 'utf8'), /MIT License[\s\S]*Copyright \(c\) 2026 ormq contributors/);
  assert.match(pkg.repository.url, /^git\+https:\/\//);
  assert.match(pkg.homepage, /^https:\/\//);
  for (const dep of ['preact', 'htm']) {
    assert.not.ok(pkg.dependencies?.[dep], `${dep} is not a runtime dependency`);
    assert.ok(pkg.devDependencies[dep], `${dep} builds the client`);
  }
});

Pkg('the tarball ships the license, the built client and the README image the README points to', async () => {
  const [packed] = JSON.parse(await npm(['pack', '--dry-run', '--json', '--ignore-scripts']));
  const files = new Set((packed.files as { path: string }[]).map((f) => f.path));
  for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'client/screenshot.png']) assert.ok(files.has(f), f);
  assert.not.ok(
    [...files].some((f) => f.startsWith('test/') || f.startsWith('client/pages/')),
    'no tests or client sources',
  );
  const images = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
  assert.ok(images.length > 0);
  for (const src of images) {
    // npm's page shows only absolute images; this one is the shipped file, served from the registry's CDN.
    const m = src.match(/^https:\/\/cdn\.jsdelivr\.net\/npm\/ormq\/(.+)$/);
    assert.ok(m, `${src} is an absolute URL into the published package`);
    assert.ok(files.has(m![1]!), `${m![1]} is in the tarball`);
  }
});

const BENCH_ONLY = new Set(['pg-boss']);

Pkg('one copy of pg: the one MikroORM uses', async () => {
  const tree = JSON.parse(await npm(['ls', 'pg', '--all', '--json']));
  const versions = new Set<string>();
  const walk = (node: { dependencies?: Record<string, { version: string; dependencies?: unknown }> }) => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      // pg-boss 12, a peer the bench runs in its own processes, asks for a newer pg than MikroORM pins.
      if (BENCH_ONLY.has(name)) continue;
      if (name === 'pg') versions.add(child.version);
      walk(child as never);
    }
  };
  walk(tree);
  assert.equal([...versions], [json('node_modules/@mikro-orm/postgresql/package.json').dependencies.pg]);
});

Pkg.run();
