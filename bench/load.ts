/**
 * The admin bench's load generator, in a process of its own so that autocannon does not share the
 * server's event loop. Reads one JSON request per line on stdin ({ url, seconds, connections }) and
 * answers each with one JSON line on stdout: p50/p95/p99 in ms, requests per second, failures.
 */
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

export interface LoadRequest {
  url: string;
  seconds: number;
  connections: number;
}

export interface LoadResult {
  p50: number;
  p95: number;
  p99: number;
  rps: number;
  failed: number;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function load({ url, seconds, connections }: LoadRequest): Promise<LoadResult> {
  const times: number[] = [];
  const instance = autocannon({ url, connections, duration: seconds });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => times.push(ms));
  const result = await instance;
  times.sort((a, b) => a - b);
  return {
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    p99: percentile(times, 99),
    rps: times.length / seconds,
    failed: result.non2xx + result.errors + result.timeouts,
  };
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  process.stdout.write(`${JSON.stringify(await load(JSON.parse(line) as LoadRequest))}\n`);
}
