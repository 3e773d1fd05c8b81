/** The `ormq` command's flags, parsed once for every command. */
import { parseArgs } from 'node:util';
import { CliError } from './config.js';

const OPTIONS = {
  config: { type: 'string' },
  schema: { type: 'string' },
  tasks: { type: 'string' },
  key: { type: 'string' },
  name: { type: 'string' },
  workers: { type: 'string' },
  timeout: { type: 'string' },
  retry: { type: 'string' },
  'max-attempts': { type: 'string' },
  'save-limit': { type: 'string' },
  poll: { type: 'string' },
  bulk: { type: 'string' },
  'stop-timeout': { type: 'string' },
  'no-scheduler': { type: 'boolean' },
  log: { type: 'string' },
  verbose: { type: 'boolean' },
  json: { type: 'boolean' },
  interval: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type CliValues = ReturnType<typeof parse>['values'];

export function parse(argv: string[], usage: string) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${usage}`);
  }
}
