/** `ormq info` once, `ormq monitor` until Ctrl-C: the queue as Django Q's qinfo and qmonitor show it. */
import type { MikroORM } from '@mikro-orm/postgresql';
import { schemaOf } from '../table-names.js';
import { CliError } from './config.js';
import { formatInfo, queueInfo } from './info.js';
import type { CliValues } from './args.js';
import { openOrm } from './orm.js';

async function withOrm<T>(values: CliValues, fn: (orm: MikroORM, schema: string | null) => Promise<T>): Promise<T> {
  const orm = await openOrm(process.cwd(), values.config);
  try {
    return await fn(orm, schemaOf(orm, values.schema));
  } finally {
    await orm.close();
  }
}

export async function runInfo(values: CliValues): Promise<number> {
  return withOrm(values, async (orm, schema) => {
    const info = await queueInfo(orm.em, schema);
    process.stdout.write(values.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatInfo(info)}\n`);
    return 0;
  });
}

export async function runMonitor(values: CliValues): Promise<number> {
  const interval = values.interval === undefined ? 2 : Number(values.interval);
  if (!(interval >= 0.2 && interval <= 3600))
    throw new CliError(`--interval must be a number of seconds from 0.2 to 3600, got ${JSON.stringify(values.interval)}`);
  return withOrm(values, async (orm, schema) => {
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const tty = process.stdout.isTTY === true;
    for (;;) {
      const text = formatInfo(await queueInfo(orm.em, schema));
      // A terminal is redrawn in place; a pipe gets one block per refresh.
      process.stdout.write(
        tty ? `\x1b[2J\x1b[H${text}\n\n(every ${interval} s; Ctrl-C quits)\n` : `${new Date().toISOString()}\n${text}\n\n`,
      );
      const timer = new Promise<'tick'>((resolve) => setTimeout(() => resolve('tick'), interval * 1000).unref());
      if ((await Promise.race([timer, stopped.then(() => 'stop' as const)])) === 'stop') return 0;
    }
  });
}
