/**
 * The scaffolding of the test files, in one place:
 * - `dbSuite`: a uvu suite with its own database and ORM, made before its first test and dropped
 *   after its last; the tables it names are emptied before each test.
 * - `adminSuite`: a `dbSuite` with a client build and admins served on real node:http servers,
 *   all closed with the suite; `mount` serves one admin up front as `api`.
 * Cluster helpers (start one, wait for saved tasks, stop) are in ./cluster.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite, type Test } from 'uvu';
import type { MikroORM } from '@mikro-orm/postgresql';
import { queueAdmin, type QueueAdminOptions } from '../../src/index.js';
import { freshOrm, sql, type TestDb } from './db.js';
import { client, close, testClient } from './admin.js';

/** Empties what an admin suite writes; identities restart, so each test sees ids from 1. */
export const CLEAR_ADMIN = 'truncate ormq_task, ormq_schedule, ormq_queued, ormq_admin_log restart identity';
/** Empties what a cluster writes: results and packages. */
export const CLEAR_QUEUE = 'delete from ormq_task; delete from ormq_queued';

export interface DbCtx {
  orm: MikroORM;
  db: TestDb;
  /** Closes the ORM and drops the database. */
  close(): Promise<void>;
}

export interface SuiteOptions<Ctx> {
  /** SQL run before each test; none when omitted. */
  clear?: string;
  /** Runs once the database is ready, before the first test. */
  setup?(ctx: Ctx): Promise<void> | void;
  /** Runs after the last test, before the suite's own servers and database go. */
  teardown?(ctx: Ctx): Promise<void> | void;
}

/** A suite with a fresh database and ORM of its own. */
export function dbSuite<Ctx extends DbCtx = DbCtx>(name: string, options: SuiteOptions<Ctx> = {}): Test<Ctx> {
  const s = suite<Ctx>(name);
  s.before(async (ctx) => {
    Object.assign(ctx, await freshOrm());
    await options.setup?.(ctx);
  });
  s.after(async (ctx) => {
    await options.teardown?.(ctx);
    await ctx.close();
  });
  const clear = options.clear;
  if (clear) s.before.each(async ({ orm }) => void (await sql(orm, clear)));
  return s;
}

export type Api = ReturnType<typeof client>;
type AdminHandler = ReturnType<typeof queueAdmin>;
type Wrap = (admin: AdminHandler) => Parameters<typeof createServer>[1];

interface Served {
  url: string;
  port: number;
  server: Server;
  /** A client for the admin's root (`${url}/`). */
  api: Api;
}

export interface AdminCtx extends DbCtx {
  clientDir: ReturnType<typeof testClient>;
  /** Every server the suite serves; closed after its last test. */
  servers: Server[];
  /** An admin with these options (the suite's client build unless they name one), optionally wrapped. */
  start(options?: QueueAdminOptions, wrap?: Wrap): Promise<Served>;
  /** Serves a host's own server (Express, Koa) on an ephemeral port; resolves with its URL. */
  host(server: Server): Promise<string>;
  /** With `mount`: the admin served before the first test. */
  api: Api;
  server: Server;
  url: string;
}

export interface AdminSuiteOptions<Ctx> extends Omit<SuiteOptions<Ctx>, 'clear'> {
  /** SQL run before each test: `CLEAR_ADMIN` when omitted, nothing when null. */
  clear?: string | null;
  /** Serve one admin with these options before the first test, as `api`, `server` and `url`. */
  mount?: QueueAdminOptions;
  /** The address servers listen on; 0.0.0.0 makes them reachable from a non-loopback address too. */
  address?: string;
  /** The real client build (client/dist) when it has been built, rather than the stand-in. */
  realClient?: boolean;
}

/**
 * A suite with its own database, a client build and admins on real servers. Before each test the
 * admin's tables are emptied (`CLEAR_ADMIN`) unless `clear` says otherwise.
 */
export function adminSuite<Ctx extends AdminCtx = AdminCtx>(name: string, options: AdminSuiteOptions<Ctx> = {}): Test<Ctx> {
  const address = options.address ?? '127.0.0.1';
  return dbSuite<Ctx>(name, {
    clear: options.clear === null ? undefined : (options.clear ?? CLEAR_ADMIN),
    async setup(ctx) {
      ctx.clientDir = testClient({ real: options.realClient });
      ctx.servers = [];
      ctx.host = async (server) => {
        ctx.servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, address, resolve));
        return `http://${address}:${(server.address() as AddressInfo).port}`;
      };
      ctx.start = async (adminOptions = {}, wrap) => {
        const admin = queueAdmin(ctx.orm, { clientDir: ctx.clientDir.dir, ...adminOptions });
        const server = createServer(wrap ? wrap(admin) : (admin as never));
        const url = await ctx.host(server);
        return { url, port: (server.address() as AddressInfo).port, server, api: client(`${url}/`) };
      };
      if (options.mount) {
        const { url, server, api } = await ctx.start(options.mount);
        Object.assign(ctx, { url, server, api });
      }
      await options.setup?.(ctx);
    },
    async teardown(ctx) {
      await options.teardown?.(ctx);
      for (const server of ctx.servers) await close(server);
      ctx.clientDir.cleanup();
    },
  });
}
