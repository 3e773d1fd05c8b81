import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { ensureSchema, queueEntities } from '../../src/index.js';

let counter = 0;

/** The server the suite runner chose: DATABASE_URL, or the embedded one it started. */
export function serverUrl(database?: string): string {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  if (database) url.pathname = `/${database}`;
  return url.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const templateName = () => `ormq_tpl_${process.pid}`;

/** Creates the template database every test database is copied from (schema included). */
export async function createTemplate(): Promise<void> {
  const name = templateName();
  await admin(async (c) => {
    await c.query(`drop database if exists ${name}`);
    await c.query(`create database ${name}`);
  });
  const orm = await MikroORM.init({ clientUrl: serverUrl(name), entities: queueEntities, pool: { min: 0, max: 2 } });
  await ensureSchema(orm);
  await orm.close(true);
}

export async function dropTemplate(): Promise<void> {
  await admin((c) => c.query(`drop database if exists ${templateName()} with (force)`));
}

export interface TestDb {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A fresh database with ormq's schema, copied from the template (a few ms). */
export async function createTestDb(options: { empty?: boolean } = {}): Promise<TestDb> {
  const name = `ormq_t_${process.pid}_${++counter}`;
  await admin((c) => c.query(`create database ${name}${options.empty ? '' : ` template ${templateName()}`}`));
  return {
    name,
    url: serverUrl(name),
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

export async function initOrm(url: string, entities: unknown[] = queueEntities): Promise<MikroORM> {
  return MikroORM.init({ clientUrl: url, entities: entities as never[], pool: { min: 0, max: 6 } });
}

/** A fresh database and an ORM on it; `close` drops both. */
export async function freshOrm(): Promise<{ orm: MikroORM; db: TestDb; close(): Promise<void> }> {
  const db = await createTestDb();
  const orm = await initOrm(db.url);
  return {
    orm,
    db,
    async close() {
      await orm.close(true);
      await db.drop();
    },
  };
}

/** Runs SQL on a database with ?-placeholders, through a fork. */
export async function sql<T = Record<string, unknown>>(orm: MikroORM, query: string, params: unknown[] = []): Promise<T[]> {
  return (await orm.em.fork().execute(query, params)) as T[];
}

/** Polls until `check` returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  what: string,
  timeoutMs = 10_000,
): Promise<Exclude<T, null | undefined | false | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, null | undefined | false | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
