/**
 * A PostgreSQL primary and a streaming read replica made from it with `pg_basebackup`, in a
 * temporary folder, from the machine's PostgreSQL binaries (/usr/lib/postgresql/<version>/bin;
 * test/setup.ts installs them on Debian). As root (CI), each server runs as the `postgres` user:
 * PostgreSQL refuses to run as root.
 */
import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../fixtures/embedded-postgres.js';

const PROGRAMS = ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup'];

/** The newest of the machine's PostgreSQL versions that has every program needed, or null. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (PROGRAMS.every((p) => existsSync(join(bin, p)))) return bin;
  }
  return null;
}

export interface ReplicaPair {
  primaryUrl: string;
  replicaUrl: string;
  replicaPort: number;
  stop(): void;
}

/** Starts both servers (a few seconds); `stop` stops them and deletes the folder. */
export async function startReplicaPair(): Promise<ReplicaPair> {
  const bin = postgresBin();
  if (!bin)
    throw new Error(
      'the read-replica test needs PostgreSQL server binaries in /usr/lib/postgresql/<version>/bin (Debian: apt-get install postgresql)',
    );
  const dir = mkdtempSync(join(tmpdir(), 'ormq-replica-'));
  chmodSync(dir, 0o777);
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot
    ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) }
    : {};
  const run = (program: string, args: string[], options: SpawnSyncOptions = {}) => {
    const r = spawnSync(join(bin, program), args, { ...ids, cwd: dir, encoding: 'utf8', timeout: 60_000, ...options });
    if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error?.message}`);
  };
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const primary = join(dir, 'primary');
  const replica = join(dir, 'replica');
  const started: string[] = [];
  const stop = () => {
    for (const data of started.reverse())
      spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], { ...ids, timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
  };
  const start = (data: string, port: number) => {
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c wal_keep_size=256MB`;
    run('pg_ctl', ['-D', data, '-l', `${data}.log`, '-o', options, '-w', '-t', '60', 'start']);
    started.push(data);
  };
  try {
    // initdb's pg_hba.conf lets local and 127.0.0.1 connections replicate; wal_level is replica by default.
    run('initdb', ['-D', primary, '-U', 'postgres', '--auth=trust', '--no-sync']);
    start(primary, primaryPort);
    // -R: standby.signal and the primary's address, so the copy starts as a streaming replica.
    run('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      replica,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
    start(replica, replicaPort);
  } catch (err) {
    stop();
    throw err;
  }
  return {
    primaryUrl: `postgres://postgres@127.0.0.1:${primaryPort}/postgres`,
    replicaUrl: `postgres://postgres@127.0.0.1:${replicaPort}/postgres`,
    replicaPort,
    stop,
  };
}
