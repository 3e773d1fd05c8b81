/** Cluster processes (test/helpers/cluster-child.ts) that a test can SIGKILL and start again. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './db.js';

const childScript = fileURLToPath(new URL('./cluster-child.ts', import.meta.url));

export interface ChildCluster {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

export function spawnCluster(url: string, options: object): ChildCluster {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
    env: { ...process.env, DATABASE_URL: url, CLUSTER_OPTIONS: JSON.stringify(options), NODE_V8_COVERAGE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  // A killed cluster's half-finished saves are expected noise; anything else is kept for the report.
  child.stderr!.on('data', (chunk: Buffer) => lines.push(`stderr: ${chunk.toString().trimEnd()}`));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

/** N cluster processes on one database, each replaced by a fresh one when killed. */
export class Fleet {
  readonly members: ChildCluster[] = [];
  kills = 0;
  restarts = 0;

  constructor(
    readonly url: string,
    readonly options: object,
  ) {}

  async start(n: number): Promise<void> {
    for (let i = 0; i < n; i++) this.members.push(spawnCluster(this.url, this.options));
    await Promise.all(this.members.map((m) => this.#ready(m)));
  }

  #ready(m: ChildCluster): Promise<unknown> {
    return Promise.race([
      waitFor(() => m.lines.includes('ready'), 'a cluster process to start', 60_000),
      m.exited.then((code) => {
        throw new Error(`a cluster process exited with ${code} before it was ready: ${m.lines.join('\n')}`);
      }),
    ]);
  }

  readonly #restarting = new Set<number>();

  /** Members that are up: not being restarted after a kill. */
  get up(): number[] {
    return this.members.map((_, i) => i).filter((i) => !this.#restarting.has(i));
  }

  /**
   * SIGKILLs member i (no graceful stop: its claimed packages stay locked) and starts a new one in
   * its place; resolves once the old one is dead, while the new one may still be starting.
   */
  async kill(i: number): Promise<void> {
    const m = this.members[i]!;
    this.#restarting.add(i);
    m.child.kill('SIGKILL');
    await m.exited;
    this.kills++;
    const next = spawnCluster(this.url, this.options);
    this.members[i] = next;
    this.#pending.push(
      this.#ready(next).then(() => {
        this.restarts++;
        this.#restarting.delete(i);
      }),
    );
  }

  readonly #pending: Promise<unknown>[] = [];

  /** Waits for every restarted member to be up again. */
  async settled(): Promise<void> {
    await Promise.all(this.#pending);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        if (m.child.exitCode !== null || m.child.signalCode !== null) return;
        m.child.kill('SIGTERM');
        const timer = setTimeout(() => m.child.kill('SIGKILL'), 15_000);
        await m.exited;
        clearTimeout(timer);
      }),
    );
  }
}
