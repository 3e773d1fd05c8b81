/**
 * The registry's types and the admin's request type, as a host sees them: a small host app and the
 * README's auth example compiled by the real tsc with --strict. The host's deliberate mistakes
 * (misspelled func, wrong args) must each be a compile error, and nothing else may be.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const host = join(root, 'test', 'typed-host');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function compile(project: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', project], { cwd: root }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const Types = suite('typed registry and admin request type under tsc --strict');

Types('the host compiles; each misspelled func or wrong args is an error at its line; the README auth example compiles', async () => {
  const dir = mkdtempSync(join(host, '.run-'));
  try {
    // The host as written, less its @ts-expect-error markers: the marked lines must now fail.
    const source = readFileSync(join(host, 'host.ts'), 'utf8').split('\n');
    const expected: number[] = [];
    const lines: string[] = [];
    for (const line of source) {
      if (line.trim().startsWith('// @ts-expect-error')) {
        expected.push(lines.length + 1);
        lines.push('// (expected to fail below)');
      } else lines.push(line);
    }
    writeFileSync(join(dir, 'host.ts'), lines.join('\n'));
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = readme.split('<!-- auth-example')[1]?.match(/```ts\n([\s\S]*?)```/)?.[1];
    assert.ok(block, 'README has the auth example');
    writeFileSync(
      join(dir, 'readme-auth.ts'),
      `import type { MikroORM } from '@mikro-orm/postgresql';
import type { Express, RequestHandler } from 'express';
declare const orm: MikroORM;
declare const app: Express;
declare const requireLogin: RequestHandler;
${block}
export {};
`,
    );
    const base = JSON.parse(readFileSync(join(host, 'tsconfig.json'), 'utf8'));
    base.compilerOptions.paths = Object.fromEntries(
      Object.entries(base.compilerOptions.paths as Record<string, string[]>).map(([k, v]) => [k, v.map((p) => `../${p}`)]),
    );
    base.files = ['host.ts', 'readme-auth.ts'];
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(base));
    const { code, out } = await compile(join(dir, 'tsconfig.json'));
    assert.is.not(code, 0, 'the mistakes fail to compile');
    const errors = [...out.matchAll(/^(\S+)\((\d+),\d+\): error (TS\d+)/gm)].map((m) => ({
      file: m[1]!.split('/').at(-1),
      line: Number(m[2]),
    }));
    assert.equal(
      [...new Set(errors.map((e) => `${e.file}:${e.line}`))],
      expected.map((l) => `host.ts:${l + 1}`),
      out,
    );
    assert.match(out, /email\.sned/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Types.run();
