/**
 * Every TypeScript block in README.md, CONTRIBUTING.md and docs/*.md compiles with the real tsc
 * --strict, as a reader would paste it into a host. Each block becomes a module of its own with a
 * preamble declaring only the names it uses without defining them (`orm`, `em`, `app`, the host's
 * login middleware, ormq's functions), so a block that misnames an option or a function fails here.
 * A block that declares the task registry (`declare module 'ormq'`) changes every module's types,
 * so it compiles in a program of its own. A deliberate fragment is preceded by
 * `<!-- not-compiled: why -->`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const host = join(root, 'test', 'typed-host');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

interface Block {
  doc: string;
  /** The line of the block's first code line in its document, 1-based. */
  line: number;
  code: string;
}

/** The ```ts blocks of a Markdown file, less those marked not-compiled (with a reason). */
export function tsBlocks(doc: string, text: string): { blocks: Block[]; skipped: Block[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const skipped: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)(```+)\s*(\S*)/.exec(lines[i]!);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.trim().startsWith(fence[2]!) && l.trim().replace(/`/g, '') === '');
    if (end < 0) throw new Error(`${doc}:${i + 1}: a code block is never closed`);
    if (['ts', 'typescript'].includes(fence[3]!)) {
      let before = i - 1;
      while (before >= 0 && lines[before]!.trim() === '') before--;
      const block = { doc, line: i + 2, code: lines.slice(i + 1, end).join('\n') };
      const mark = before >= 0 ? /^<!--\s*not-compiled:\s*(.*?)\s*-->$/.exec(lines[before]!.trim()) : null;
      if (mark) {
        if (!mark[1]) throw new Error(`${doc}:${before + 1}: not-compiled needs a reason`);
        skipped.push(block);
      } else blocks.push(block);
    }
    i = end;
  }
  return { blocks, skipped };
}

const ORMQ_VALUES = [
  'enqueue',
  'enqueueMany',
  'result',
  'fetchTask',
  'resultGroup',
  'countGroup',
  'deleteGroup',
  'schedule',
  'nextRun',
  'upcomingRuns',
  'pauseKey',
  'resumeKey',
  'pausedKeys',
  'Cluster',
  'queueAdmin',
  'ensureSchema',
  'queueEntities',
  'ValidationError',
  'CancelledError',
];

const uses = (code: string, name: string) => new RegExp(`(?<![\\w.'"-])${name}\\b`).test(code);
const defines = (code: string, name: string) =>
  new RegExp(`\\b(?:const|let|var|function|class|type|interface)\\s+${name}\\b|\\bimport\\b[^;]*?\\b${name}\\b[^;]*?\\bfrom\\b`).test(code);

/** The declarations a block relies on from its surroundings: only names it uses and does not define. */
export function preamble(code: string): string {
  const koa = /\bkoa\(|new Koa\(/.test(code);
  const stubs: Record<string, string> = {
    orm: "import('@mikro-orm/postgresql').MikroORM",
    em: "import('@mikro-orm/postgresql').EntityManager",
    id: 'string',
    tasks: "import('ormq').Tasks",
    app: koa ? "import('koa')" : "import('express').Express",
    requireLogin: koa ? "import('koa').Middleware" : "import('express').RequestHandler",
    requireStaff: koa ? "import('koa').Middleware" : "import('express').RequestHandler",
  };
  const out: string[] = [];
  const missing = ORMQ_VALUES.filter((n) => uses(code, n) && !defines(code, n));
  if (missing.length) out.push(`import { ${missing.join(', ')} } from 'ormq';`);
  if (koa && uses(code, 'koa') && !defines(code, 'koa')) out.push("import { koa } from 'ormq/koa';");
  for (const [name, type] of Object.entries(stubs))
    if (uses(code, name) && !defines(code, name)) out.push(`declare const ${name}: ${type};`);
  return out.join('\n');
}

function compile(project: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', project], { cwd: root, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

function docs(): string[] {
  const inDocs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`)
    : [];
  return ['README.md', 'CONTRIBUTING.md', ...inDocs.sort()].filter((f) => existsSync(join(root, f)));
}

const Docs = suite('docs: every TypeScript block in README and docs/ compiles under tsc --strict');

Docs('the blocks are found, marked fragments say why, and the marked README examples are among them', () => {
  const sample = [
    '# t',
    '```ts',
    'const a = 1;',
    '```',
    '',
    '<!-- not-compiled: a fragment -->',
    '',
    '```ts',
    'a +',
    '```',
    '```sh',
    'npm test',
    '```',
  ].join('\n');
  const { blocks, skipped } = tsBlocks('t.md', sample);
  assert.equal(blocks, [{ doc: 't.md', line: 3, code: 'const a = 1;' }]);
  assert.equal(
    skipped.map((b) => b.line),
    [9],
  );
  assert.throws(() => tsBlocks('t.md', '<!-- not-compiled: -->\n```ts\nx\n```'), /needs a reason/);
  assert.throws(() => tsBlocks('t.md', '```ts\nx\n'), /never closed/);

  const readme = tsBlocks('README.md', readFileSync(join(root, 'README.md'), 'utf8')).blocks.map((b) => b.code);
  for (const marker of ['usage-example', 'auth-example']) {
    const marked = readFileSync(join(root, 'README.md'), 'utf8')
      .split(`<!-- ${marker}`)[1]
      ?.match(/```ts\n([\s\S]*?)\n```/)?.[1];
    assert.ok(marked && readme.includes(marked), `README's ${marker} is compiled here`);
  }
});

Docs('the preamble declares what a block uses and does not define, nothing else', () => {
  assert.is(preamble('const x = 1;'), '');
  const express = preamble("app.use('/a', requireStaff, queueAdmin(orm, { authorize: () => true }));");
  assert.match(express, "import { queueAdmin } from 'ormq';");
  assert.match(express, "declare const app: import('express').Express;");
  assert.match(express, "declare const requireStaff: import('express').RequestHandler;");
  assert.match(express, 'declare const orm:');
  const own = preamble("import { queueAdmin } from 'ormq';\nconst orm = await init();\nqueueAdmin(orm);");
  assert.not.match(own, /queueAdmin|orm/);
  assert.match(preamble("app.use(koa(queueAdmin(orm), { prefix: '/q' }));"), "declare const app: import('koa');");
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
export const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchors(text: string): Set<string> {
  const fenced = text.replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...fenced.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1]!)));
}

Docs('every link between the documents reaches a file, and a heading when it names one', () => {
  assert.is(slug("The admin's access token"), 'the-admins-access-token');
  assert.is(slug('No result (`null`)'), 'no-result-null');
  const broken: string[] = [];
  for (const doc of docs()) {
    const text = readFileSync(join(root, doc), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue;
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const file = path ? normalize(join(dirname(doc), path)) : doc;
      if (!existsSync(join(root, file))) broken.push(`${doc}: ${target} (no file ${file})`);
      else if (anchor && file.endsWith('.md') && !anchors(readFileSync(join(root, file), 'utf8')).has(anchor))
        broken.push(`${doc}: ${target} (no heading #${anchor})`);
    }
  }
  assert.equal(broken, []);
});

Docs('every block compiles', async () => {
  const all = docs().flatMap((doc) => tsBlocks(doc, readFileSync(join(root, doc), 'utf8')).blocks);
  assert.ok(all.length >= 10, `${all.length} blocks`);
  const dir = mkdtempSync(join(host, '.docs-'));
  try {
    const base = JSON.parse(readFileSync(join(host, 'tsconfig.json'), 'utf8'));
    base.compilerOptions.paths = Object.fromEntries(
      Object.entries(base.compilerOptions.paths as Record<string, string[]>).map(([k, v]) => [k, v.map((p) => `../${p}`)]),
    );
    const where = new Map<string, { block: Block; offset: number }>();
    const shared: string[] = [];
    const alone: string[] = [];
    all.forEach((block, n) => {
      const file = `${block.doc.replace(/\W+/g, '-')}-${block.line}-${n}.mts`;
      const head = preamble(block.code);
      const offset = head ? head.split('\n').length : 0;
      writeFileSync(join(dir, file), `${head}${head ? '\n' : ''}${block.code}\nexport {};\n`);
      where.set(file, { block, offset });
      (/\bdeclare module\b/.test(block.code) ? alone : shared).push(file);
    });
    const programs = [shared, ...alone.map((f) => [f])];
    const results = await Promise.all(
      programs.map(async (files, i) => {
        const project = join(dir, `tsconfig.${i}.json`);
        writeFileSync(project, JSON.stringify({ ...base, files }));
        return compile(project);
      }),
    );
    // Each error, at its line in the document.
    const errors = results.flatMap(({ out }) =>
      out.split('\n').flatMap((line) => {
        const m = /^(?:.*[\\/])?([^\\/(]+\.mts)\((\d+),(\d+)\): (error TS\d+: .*)$/.exec(line);
        if (!m) return /error TS\d+/.test(line) ? [line] : [];
        const at = where.get(m[1]!);
        if (!at) return [line];
        return [`${at.block.doc}:${at.block.line + Number(m[2]) - 1 - at.offset}:${m[3]} ${m[4]}`];
      }),
    );
    assert.equal(errors, [], errors.join('\n'));
    for (const r of results) assert.is(r.code, 0, r.out.slice(0, 4000));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Docs.run();
