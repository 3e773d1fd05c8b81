import pg from 'pg';

/** What a LISTEN connection is opened with: a URL, a pg client config, or (default) the ORM's own settings. */
export type ListenConnection = string | pg.ClientConfig;

interface OrmConnection {
  getNativeClient(): unknown;
  getConnectionOptions(): { host?: string; port?: number; user?: string; password?: unknown; database?: string };
}

/**
 * The LISTEN client's settings: `override` when given (e.g. a direct connection past a pooler that
 * cannot LISTEN), else the host pool's own settings (ssl, keepalive, …) less its pool-only ones.
 */
export async function listenConfig(connection: OrmConnection, override?: ListenConnection): Promise<pg.ClientConfig> {
  if (typeof override === 'string') return { connectionString: override };
  if (override) return override;
  const pool = (await connection.getNativeClient()) as { options?: Record<string, unknown> };
  const { max: _max, min: _min, idleTimeoutMillis: _idle, maxUses: _uses, log: _log, Promise: _p, ...clientOptions } = pool.options ?? {};
  const opts = connection.getConnectionOptions();
  return {
    host: opts.host,
    port: opts.port,
    user: opts.user,
    password: opts.password as string | undefined,
    database: opts.database,
    ...clientOptions,
  };
}

export interface ListenerOptions {
  connection: pg.ClientConfig;
  channels: string[];
  onNotify(channel: string, payload: string): void;
  /** Called after every (re)connection: notifications sent while disconnected were lost. */
  onConnect(): void;
  onError(error: Error): void;
}

/**
 * LISTEN on a dedicated connection, not one of the host's pool slots. When the connection drops
 * (database restart, network), it reconnects with backoff and LISTENs again; polling in the cluster
 * covers the gap.
 */
export class Listener {
  #client: pg.Client | null = null;
  #stopped = false;
  #retryMs = 100;
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: ListenerOptions) {}

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client(this.options.connection);
    this.#client = client;
    client.on('notification', (msg) => this.options.onNotify(msg.channel, msg.payload ?? ''));
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, null));
    try {
      await client.connect();
      for (const channel of this.options.channels) await client.query(`listen "${channel.replaceAll('"', '""')}"`);
      if (this.#stopped) {
        await client.end().catch(() => {});
        return;
      }
      this.#retryMs = 100;
      this.options.onConnect();
    } catch (err) {
      this.#lost(client, err as Error);
    }
  }

  #lost(client: pg.Client, err: Error | null): void {
    if (this.#client !== client) return;
    this.#client = null;
    client.removeAllListeners('end');
    client.on('error', () => {});
    client.end().catch(() => {});
    if (this.#stopped) return;
    if (err) this.options.onError(err);
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, 5_000);
    this.#timer = setTimeout(() => void this.#connect(), delay);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners('end');
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
