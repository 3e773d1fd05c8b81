#!/usr/bin/env node
/**
 * The `ormq` command: `ormq worker` runs a cluster in its own process, `ormq info` prints what
 * Django Q's qinfo does, `ormq monitor` refreshes that in the terminal. Each loads the host's
 * MikroORM config as the `mikro-orm` CLI finds it.
 */
import { VERSION } from '../version.js';
import { parse } from './args.js';
import { CliError } from './config.js';
import { runInfo, runMonitor } from './inspect.js';
import { runWorker } from './worker.js';

const USAGE = `Usage: ormq <command> [options]

Commands:
  worker    run a cluster: claim and run this key's tasks, run its schedules
  info      print the clusters, the queues, the last hour and the schedules once
  monitor   the same, refreshed until Ctrl-C

Options of every command:
  --config <file>        the MikroORM config (default: as the mikro-orm CLI finds it)
  --schema <name>        the schema of ormq's tables (default: the config's)

worker:
  --tasks <module>       the module exporting the task registry (as \`tasks\` or default);
                         it may also export \`cluster\`, Cluster options the flags override
  --key <key>            the queue key it claims, and the cluster's name (default: default);
                         --name is its former spelling
  --workers <n>          tasks run at once (default 4)
  --timeout <s>          --retry <s>  --max-attempts <n>  --save-limit <n>  --poll <ms>  --bulk <n>
  --stop-timeout <ms>    how long a stop waits for running tasks (default: the timeout)
  --no-scheduler         do not run schedules in this process
  --log text|json        one line per event (default text)
  --verbose              debug lines too

info, monitor:
  --json                 (info) the figures as JSON
  --interval <s>         (monitor) seconds between refreshes (default 2)

SIGTERM or SIGINT stops a worker gracefully: running tasks finish within the stop timeout and the
rest are released; a second signal releases at once.`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, USAGE);
  if (values.version) {
    process.stdout.write(`ormq ${VERSION}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  if (rest.length) throw new CliError(`unexpected argument ${JSON.stringify(rest[0])}\n\n${USAGE}`);
  switch (command) {
    case 'worker':
      return runWorker(values);
    case 'info':
      return runInfo(values);
    case 'monitor':
      return runMonitor(values);
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`ormq: ${e instanceof CliError ? e.message : ((e as Error)?.stack ?? String(e))}\n`);
    process.exitCode = e instanceof CliError ? 2 : 1;
  },
);
