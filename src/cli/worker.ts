/**
 * `ormq worker`: one cluster in its own process. SIGTERM or SIGINT (every deploy, Ctrl-C) stops it
 * gracefully: no new claims, running tasks get the stop timeout, then what is left is released; a
 * second signal releases at once. Either way every package it held is unlocked before it exits 0.
 */
import { Cluster } from '../cluster/cluster.js';
import type { ClusterOptions } from '../cluster/options.js';
import type { TaskFunction } from '../registry.js';
import { CliError, importFile } from './config.js';
import { lineLog, type LogFormat } from './log.js';
import type { CliValues } from './args.js';
import { openOrm } from './orm.js';
import { resolve } from 'node:path';

function number(values: CliValues, flag: keyof CliValues): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n))
    throw new CliError(`--${flag} must be a number, got ${JSON.stringify(raw)}`);
  return n;
}

/** The registry (and any Cluster options) a tasks module exports. */
async function loadTasks(
  cwd: string,
  module: string | undefined,
): Promise<{ tasks: Record<string, TaskFunction>; cluster: ClusterOptions }> {
  if (!module) throw new CliError('worker needs --tasks <module>: the module that exports the task registry');
  const file = resolve(cwd, module);
  const mod = await importFile(file, 'tasks module');
  const tasks = mod.tasks ?? mod.default;
  if (typeof tasks !== 'object' || tasks === null || Array.isArray(tasks)) {
    throw new CliError(`tasks module ${file} must export the registry, an object of task name → function, as \`tasks\` or default`);
  }
  const cluster = mod.cluster ?? {};
  if (typeof cluster !== 'object' || cluster === null)
    throw new CliError(`tasks module ${file}: \`cluster\` must be an object of Cluster options`);
  return { tasks: tasks as Record<string, TaskFunction>, cluster: cluster as ClusterOptions };
}

export async function runWorker(values: CliValues): Promise<number> {
  const cwd = process.cwd();
  const format = (values.log ?? 'text') as LogFormat;
  if (format !== 'text' && format !== 'json') throw new CliError(`--log must be text or json, got ${JSON.stringify(values.log)}`);
  const log = lineLog(format, values.verbose === true);
  const { tasks, cluster: fromModule } = await loadTasks(cwd, values.tasks);
  // --name is --key's former spelling, accepted through 0.1.x.
  if (values.key !== undefined && values.name !== undefined && values.key !== values.name) {
    throw new CliError(
      `--key and --name (its former name) differ (${JSON.stringify(values.key)} and ${JSON.stringify(values.name)}): give --key alone`,
    );
  }
  const flags: ClusterOptions = {
    name: values.key ?? values.name,
    workers: number(values, 'workers'),
    timeout: number(values, 'timeout'),
    retry: number(values, 'retry'),
    maxAttempts: number(values, 'max-attempts'),
    saveLimit: number(values, 'save-limit'),
    poll: number(values, 'poll'),
    bulk: number(values, 'bulk'),
    stopTimeout: number(values, 'stop-timeout'),
    scheduler: values['no-scheduler'] ? false : undefined,
    schema: values.schema,
  };
  const options: ClusterOptions = { ...fromModule, tasks, log };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) (options as Record<string, unknown>)[k] = v;
  const orm = await openOrm(cwd, values.config);
  let cluster: Cluster;
  try {
    cluster = new Cluster(orm, options);
  } catch (e) {
    await orm.close();
    throw new CliError((e as Error).message);
  }
  let signals = 0;
  const stopped = new Promise<void>((done) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        log('info', `${signal}: stopping; running tasks get ${cluster.options.stopTimeout} ms, a second signal releases them at once`);
        void cluster.stop().then(done, done);
      } else {
        log('warn', `${signal} again: releasing running tasks now`);
        void cluster.stop({ now: true });
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  try {
    await cluster.start();
  } catch (e) {
    await cluster.stop({ now: true }).catch(() => {});
    await orm.close();
    throw new CliError(`the cluster could not start: ${(e as Error).message}`);
  }
  await stopped;
  await orm.close();
  return 0;
}
