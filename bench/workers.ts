/**
 * Worker processes (bench/cluster-worker.ts) driven from the bench: spawned and connected before
 * any clock starts, then told to go, halt (workers stopped, connections kept, so the same
 * processes drain again) and finally stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { WorkerConfig } from './cluster-worker.js';

const workerScript = fileURLToPath(new URL('./cluster-worker.ts', import.meta.url));

export interface Workers {
  go(): void;
  /** stops every process's workers; resolves with each process's CPU (user + system ms) since its go */
  halt(): Promise<number[]>;
  stop(): Promise<void>;
  nextLatency(): Promise<number>;
  /** a limited drain's tasks since the last call, from every process: [group, start µs, end µs] flat */
  takeSpans(): number[];
  pids: number[];
}

/** A line each process must print within `ms`, or the bench fails instead of hanging. */
const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`bench worker: no ${what} within ${ms / 1000} s`)), ms).unref()),
  ]);

export async function spawnWorkers(cfg: WorkerConfig, processes: number): Promise<Workers> {
  const children: ChildProcess[] = [];
  const latencies: number[] = [];
  let spans: number[] = [];
  let waiting: ((ms: number) => void) | null = null;
  const ready: Promise<void>[] = [];
  const stopped: Promise<void>[] = [];
  const haltWaiters: ((cpu: number) => void)[][] = [];
  for (let i = 0; i < processes; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    const lines = createInterface({ input: child.stdout! });
    let onReady!: () => void;
    let onStopped!: () => void;
    let failed!: (e: Error) => void;
    ready.push(new Promise((r, j) => ((onReady = r), (failed = j))));
    stopped.push(new Promise((r) => (onStopped = r)));
    haltWaiters.push([]);
    lines.on('line', (line) => {
      if (line === 'ready') onReady();
      else if (line === 'stopped') onStopped();
      else if (line.startsWith('spans ')) spans = spans.concat(JSON.parse(line.slice(6)) as number[]);
      else if (line.startsWith('halted cpu ')) {
        const [user, system] = line.slice(11).split(' ').map(Number);
        haltWaiters[i]!.shift()?.(user! + system!);
      } else if (line.startsWith('lat ')) {
        const ms = Number(line.slice(4));
        if (waiting) {
          const w = waiting;
          waiting = null;
          w(ms);
        } else latencies.push(ms);
      }
    });
    child.once('exit', (code) => {
      failed(new Error(`bench worker (${cfg.system}) exited with ${code} before it was ready`));
      onStopped();
      for (const w of haltWaiters[i]!.splice(0)) w(0);
    });
  }
  await within(Promise.all(ready), 120_000, 'ready');
  return {
    pids: children.map((c) => c.pid!),
    go: () => children.forEach((c) => c.stdin!.write('go\n')),
    halt: () =>
      within(
        Promise.all(
          children.map((c, i) => {
            const p = new Promise<number>((r) => haltWaiters[i]!.push(r));
            c.stdin!.write('halt\n');
            return p;
          }),
        ),
        60_000,
        'halt',
      ),
    async stop() {
      children.forEach((c) => c.exitCode === null && c.stdin!.write('stop\n'));
      await Promise.race([Promise.all(stopped), new Promise((r) => setTimeout(r, 15_000))]);
      children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
    },
    takeSpans() {
      const taken = spans;
      spans = [];
      return taken;
    },
    nextLatency: () =>
      latencies.length ? Promise.resolve(latencies.shift()!) : within(new Promise<number>((r) => (waiting = r)), 30_000, 'latency probe'),
  };
}
