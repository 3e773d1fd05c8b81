import type { MikroORM } from '@mikro-orm/core';
import { Cluster, type ClusterOptions } from '../../src/index.js';

export interface Started {
  cluster: Cluster;
  logs: { level: string; message: string }[];
}

/** A cluster with a short poll that records what it logs; stop it at the end of the test. */
export async function startCluster(orm: MikroORM, options: ClusterOptions = {}): Promise<Started> {
  const logs: Started['logs'] = [];
  const cluster = new Cluster(orm, { poll: 50, log: (level, message) => logs.push({ level, message }), ...options });
  await cluster.start();
  return { cluster, logs };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
