/**
 * Bundles the admin client into client/dist/: index.html plus content-hashed app-<HASH>.js and
 * app-<HASH>.css files that the server caches forever. No inline script or style, so the admin
 * runs under a CSP of script-src 'self'; style-src 'self'. Pages are separate chunks loaded on
 * demand; the build prints the gzipped first load (shell + the largest page) against its budget.
 */
import { build, type Metafile } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 20 * 1024;
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

/**
 * Styles only some pages use, built first so that the pages' code can name the hashed files
 * (client/lib/styles.js loads them); STYLES_CHART and the like are those names.
 */
const PAGE_STYLES: Record<string, string> = {
  STYLES_CHART: 'components/chart.css',
  STYLES_CLUSTERS: 'pages/clusters.css',
  STYLES_FORM: 'components/form.css',
  STYLES_DETAIL: 'components/detail.css',
  STYLES_TRIAGE: 'pages/triage.css',
};
const styled = await build({
  entryPoints: Object.values(PAGE_STYLES).map((f) => join(here, f)),
  bundle: true,
  minify: true,
  target: ['chrome109', 'firefox115', 'safari16'],
  entryNames: 'app-[hash]',
  outdir: out,
  metafile: true,
  logLevel: 'warning',
});
const styleOutputs = Object.keys(styled.metafile.outputs);
const define: Record<string, string> = {};
for (const [name, file] of Object.entries(PAGE_STYLES)) {
  const built = styleOutputs.find((p) => styled.metafile.outputs[p]!.entryPoint?.endsWith(`client/${file}`));
  if (!built) throw new Error(`${file} was not built`);
  define[name] = JSON.stringify(`./${basename(built)}`);
}

const result = await build({
  entryPoints: [join(here, 'main.js')],
  define,
  bundle: true,
  minify: true,
  format: 'esm',
  splitting: true,
  target: ['chrome109', 'firefox115', 'safari16'],
  entryNames: 'app-[hash]',
  // chunks share the pattern, so the server caches them as immutable like the entry
  chunkNames: 'app-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs: Metafile['outputs'] = result.metafile.outputs;
// pages loaded with import() are entry points too: the entry is the one built from main.js
const entryPath = Object.keys(outputs).find((p) => outputs[p].entryPoint?.endsWith('client/main.js'));
const cssPath = entryPath && outputs[entryPath].cssBundle;
const files = [...Object.keys(outputs), ...styleOutputs].map((p) => basename(p));
const bad = files.filter((f) => !/^app-[A-Z0-9]{8}\.(js|css)$/.test(f));
if (!entryPath || !cssPath || bad.length) throw new Error(`unexpected build output: ${files.join(', ')}`);

/** A chunk and every chunk it imports statically: what loading it fetches. */
function closure(path: string, seen = new Set<string>()): Set<string> {
  if (seen.has(path)) return seen;
  seen.add(path);
  for (const i of outputs[path]?.imports ?? []) if (i.kind === 'import-statement') closure(i.path, seen);
  return seen;
}

const shell = closure(entryPath);
const js = basename(entryPath);
const css = basename(cssPath);
const preload = [...shell]
  .filter((p) => p !== entryPath)
  .map((p) => `<link rel="modulepreload" href="./${basename(p)}">\n`)
  .join('');

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Queue admin</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="./${css}">
<script type="module" src="./${js}"></script>
${preload}</head>
<body>
<div id="app"></div>
<noscript>The queue admin needs JavaScript.</noscript>
</body>
</html>
`;
writeFileSync(join(out, 'index.html'), html);

const gz = new Map<string, number>();
for (const p of [...Object.keys(outputs), ...styleOutputs]) gz.set(p, gzipSync(readFileSync(p)).length);
const sum = (paths: Iterable<string>) => [...paths].reduce((n, p) => n + (gz.get(p) ?? 0), 0);
/** The page styles a set of chunks loads: those whose names their code holds. */
const stylesOf = (chunks: Iterable<string>) => {
  const code = [...chunks].map((p) => readFileSync(p, 'utf8')).join('');
  return styleOutputs.filter((p) => code.includes(basename(p)));
};

for (const p of styleOutputs)
  console.log(
    `${basename(p)}  ${String(styled.metafile.outputs[p]!.bytes).padStart(6)} B  gzip ${String(gz.get(p)).padStart(5)} B  page styles`,
  );
for (const p of Object.keys(outputs)) {
  const what = p === entryPath ? 'entry' : p === cssPath ? 'styles' : shell.has(p) ? 'shared' : outputs[p].exports.join(', ') || 'chunk';
  console.log(`${basename(p)}  ${String(outputs[p].bytes).padStart(6)} B  gzip ${String(gz.get(p)).padStart(5)} B  ${what}`);
}
// the largest first load: the shell, the styles and the heaviest page with what it imports
const pages = Object.keys(outputs).filter((p) => !shell.has(p) && p !== cssPath);
let worst = sum(shell) + sum([cssPath]);
let worstPage = 'shell only';
for (const p of pages) {
  const chunks = new Set([...shell, ...closure(p)]);
  const total = sum(new Set([...chunks, cssPath, ...stylesOf(chunks)]));
  if (total > worst) [worst, worstPage] = [total, outputs[p].exports.join(', ')];
}
console.log(
  `first load, JS + CSS gzipped: shell ${((sum(shell) + sum([cssPath])) / 1024).toFixed(1)} KB; largest page (${worstPage}) ${(worst / 1024).toFixed(1)} KB; budget ${BUDGET / 1024} KB`,
);
if (worst > BUDGET) {
  console.error('over the 20 KB budget');
  process.exitCode = 1;
}
