/**
 * No import circle in client/ or src/: every relative import (static, re-export or dynamic)
 * read from the source with a regex, comments and type-only imports left out.
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

const SPECIFIER = /(?:^|[\s;}])(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** The relative imports of a file, as the files they name (a `.js` specifier may be a `.ts` file). */
export function importsOf(file: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of code.matchAll(SPECIFIER)) {
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

const graphOf = (dir: string) => new Map(sources(join(root, dir)).map((f) => [f, importsOf(f, readFileSync(f, 'utf8'))]));

const I = suite('imports');

I('the checker finds a circle through a dynamic import and ignores comments and type-only imports', () => {
  const a = join(root, 'x', 'a.js');
  const b = join(root, 'x', 'b.js');
  assert.equal(importsOf(a, "import { x } from './b.js';\n// import './c.js'\n/** @type {import('./d.js').T} */\nimport type { T } from './e.js';"), [b]);
  assert.equal(importsOf(a, "const load = () => import('../y/c.js');\nexport { z } from './b.js';"), [join(root, 'y', 'c.js'), b]);
  assert.equal(findCircle(new Map([[a, [b]], [b, [a]]])), [a, b, a]);
  assert.is(findCircle(new Map([[a, [b]], [b, []]])), null);
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

I.run();
