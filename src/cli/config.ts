/**
 * Finds and loads the host's MikroORM configuration the way the `mikro-orm` CLI does: `--config`,
 * then MIKRO_ORM_CLI_CONFIG, then the `mikro-orm.configPaths` of the host's package.json, then the
 * usual file names. A config file exports the options (default or `config`), or a function or
 * promise that gives them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const DEFAULT_CONFIG_PATHS = [
  './src/mikro-orm.config.ts',
  './mikro-orm.config.ts',
  './dist/mikro-orm.config.js',
  './build/mikro-orm.config.js',
  './mikro-orm.config.js',
];

/** What went wrong, for the user: printed as it is, with no stack. */
export class CliError extends Error {
  override name = 'CliError';
}

function packagePaths(cwd: string): string[] {
  const file = resolve(cwd, 'package.json');
  if (!existsSync(file)) return [];
  let pkg: unknown;
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  const paths = (pkg as { 'mikro-orm'?: { configPaths?: unknown } })['mikro-orm']?.configPaths;
  if (paths === undefined) return [];
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) {
    throw new CliError(`${file}: "mikro-orm.configPaths" must be an array of paths`);
  }
  return paths;
}

/** The config file to load: the first candidate that exists; an explicit one must exist. */
function findConfig(cwd: string, explicit?: string): string {
  const given = explicit ?? process.env.MIKRO_ORM_CLI_CONFIG;
  if (given) {
    const file = isAbsolute(given) ? given : resolve(cwd, given);
    if (!existsSync(file)) throw new CliError(`MikroORM config ${file} does not exist`);
    return file;
  }
  const candidates = [...packagePaths(cwd), ...DEFAULT_CONFIG_PATHS];
  for (const p of candidates) {
    const file = resolve(cwd, p);
    if (existsSync(file)) return file;
  }
  throw new CliError(
    `no MikroORM config found: pass --config <file>, set MIKRO_ORM_CLI_CONFIG, or add "mikro-orm": { "configPaths": [...] } to package.json (looked for ${candidates.join(', ')})`,
  );
}

/** Imports a module by path; a TypeScript file needs a loader Node has (22.18+ strips types) or one given with --import. */
export async function importFile(file: string, what: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (/\.[cm]?ts$/.test(file) && (err.code === 'ERR_UNKNOWN_FILE_EXTENSION' || err instanceof SyntaxError)) {
      throw new CliError(
        `${what} ${file} is TypeScript and this Node cannot load it: run with a loader (node --import tsx …) or point at the compiled .js`,
      );
    }
    throw new CliError(`${what} ${file} could not be loaded: ${err.message}`);
  }
}

export async function loadConfig(cwd: string, explicit?: string): Promise<{ file: string; options: Record<string, unknown> }> {
  const file = findConfig(cwd, explicit);
  const mod = await importFile(file, 'MikroORM config');
  let value: unknown = mod.default ?? mod.config;
  if (typeof value === 'function') value = await (value as () => unknown)();
  value = await value;
  if (typeof value !== 'object' || value === null) {
    throw new CliError(`MikroORM config ${file} must export its options as default (an object, or a function or promise that gives one)`);
  }
  return { file, options: value as Record<string, unknown> };
}
