/**
 * No import circle in client/ or src/: every relative import (static, re-export or dynamic)
 * read from the source with a regex, comments and type-only imports left out. And layers that
 * point one way: there type-only imports count too, since a type ties a layer to another as well.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'dist' || name === 'node_modules' ? [] : sources(path);
    return /\.(ts|js)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const SPECIFIER =
  /(?:^|[\s;}])(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
const WITH_TYPES =
  /(?:^|[\s;}])(?:import|export)\s+(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** The relative imports of a file, as the files they name (a `.js` specifier may be a `.ts` file). */
export function importsOf(file: string, text: string, types = false): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of code.matchAll(types ? WITH_TYPES : SPECIFIER)) {
    const target = resolve(dirname(file), m[1] ?? m[2]!);
    const ts = target.replace(/\.js$/, '.ts');
    out.push(target.endsWith('.js') && !exists(target) && exists(ts) ? ts : target);
  }
  return out;
}

function exists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** One circle of the graph, as a path of files that returns to its first, or null. */
export function findCircle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of graph.keys()) {
    if (state.has(node)) continue;
    const found = visit(node);
    if (found) return found;
  }
  return null;
}

const graphOf = (dir: string, types = false) =>
  new Map(sources(join(root, dir)).map((f) => [f, importsOf(f, readFileSync(f, 'utf8'), types)]));

const I = suite('imports');

I('the checker finds a circle through a dynamic import and ignores comments and type-only imports', () => {
  const a = join(root, 'x', 'a.js');
  const b = join(root, 'x', 'b.js');
  assert.equal(
    importsOf(a, "import { x } from './b.js';\n// import './c.js'\n/** @type {import('./d.js').T} */\nimport type { T } from './e.js';"),
    [b],
  );
  assert.equal(importsOf(a, "const load = () => import('../y/c.js');\nexport { z } from './b.js';"), [join(root, 'y', 'c.js'), b]);
  assert.equal(
    findCircle(
      new Map([
        [a, [b]],
        [b, [a]],
      ]),
    ),
    [a, b, a],
  );
  assert.is(
    findCircle(
      new Map([
        [a, [b]],
        [b, []],
      ]),
    ),
    null,
  );
});

for (const dir of ['client', 'src']) {
  I(`${dir}/ has no import circle`, () => {
    const graph = graphOf(dir);
    assert.ok(graph.size > 10, `read ${graph.size} files`);
    const circle = findCircle(graph);
    assert.is(circle, null, circle ? `circle: ${circle.map((f) => relative(root, f)).join(' → ')}` : '');
  });
}

I('only the shell imports the page registry', () => {
  const registry = join(root, 'client', 'lib', 'pages.js');
  const importers = [...graphOf('client')].filter(([, deps]) => deps.includes(registry)).map(([f]) => relative(root, f));
  assert.equal(importers, ['client/app.js']);
});

/**
 * Layers that point one way: the host's API and the admin stand on their own, the cluster builds on
 * the host's API but never on the admin, and the browser's client is served, never linked to the server.
 */
const HOST_API = [
  'producer',
  'chains',
  'iterations',
  'cancel',
  'results',
  'registry',
  'schedules',
  'schedule-actions',
  'limits',
  'control',
].map((f) => `src/${f}.ts`);
const LAYERS: { from: (file: string) => boolean; to: string; who: string }[] = [
  { who: 'the admin', from: (f) => f.startsWith('src/admin/'), to: 'src/cluster/' },
  { who: "the host's API", from: (f) => HOST_API.includes(f), to: 'src/cluster/' },
  { who: 'the cluster', from: (f) => f.startsWith('src/cluster/'), to: 'src/admin/' },
  { who: 'the client', from: (f) => f.startsWith('client/'), to: 'src/' },
];

/** Each import, type-only ones included, that crosses into a layer its file must not import. */
export function wrongWay(graph: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [file, deps] of graph) {
    const from = relative(root, file);
    for (const dep of deps.map((d) => relative(root, d))) {
      for (const layer of LAYERS)
        if (layer.from(from) && dep.startsWith(layer.to)) out.push(`${from} → ${dep} (${layer.who} must not import ${layer.to})`);
    }
  }
  return out;
}

const bothGraphs = () => new Map([...graphOf('src', true), ...graphOf('client', true)]);

I('the layer check counts a type-only import and names the file and the layer', () => {
  const admin = join(root, 'src', 'admin', 'x.ts');
  const graph = new Map([
    [admin, importsOf(admin, "import type { T } from '../cluster/options.js';\nimport { y } from '../liveness.js';", true)],
  ]);
  assert.equal(wrongWay(graph), ['src/admin/x.ts → src/cluster/options.ts (the admin must not import src/cluster/)']);
});

I('no layer imports one it must not', () => {
  const graph = bothGraphs();
  for (const file of HOST_API) assert.ok(graph.has(join(root, file)), `${file} is read`);
  const files = [...graph.keys()].map((f) => relative(root, f));
  for (const dir of ['src/admin/', 'src/cluster/', 'client/'])
    assert.ok(
      files.some((f) => f.startsWith(dir)),
      `${dir} is read`,
    );
  assert.equal(wrongWay(graph), []);
});

I.run();
