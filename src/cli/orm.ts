/** The host's ORM, opened from its config with ormq's entities registered beside its own. */
import { MikroORM } from '@mikro-orm/postgresql';
import { queueEntities } from '../entities.js';
import { CliError, loadConfig } from './config.js';
import { db } from '../db/run.js';

export async function openOrm(cwd: string, config: string | undefined): Promise<MikroORM> {
  const { file, options } = await loadConfig(cwd, config);
  const entities = Array.isArray(options.entities) ? [...(options.entities as unknown[])] : [];
  for (const e of queueEntities) if (!entities.includes(e)) entities.push(e);
  try {
    const orm = (await MikroORM.init({ ...options, entities } as never)) as MikroORM;
    // A config that names an unreachable server fails here, with its own message, not at the first task.
    await db(orm.em.fork()).query('select 1');
    return orm;
  } catch (e) {
    throw new CliError(`could not open the database with ${file}: ${(e as Error).message}`);
  }
}
