/**
 * Requests to running clusters: pause and resume a queue key, stop one running task. The state of
 * a pause is a row of ormq_paused_key, read by every claim, so it outlives restarts; the NOTIFY on
 * CONTROL_CHANNEL only makes clusters act on it at once (drop what they claimed, or claim again).
 */
import { inSchema, schemaOf } from './table-names.js';
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { isStorableJson, UNSTORABLE_MESSAGE } from './storable.js';
import { ValidationError } from './validate.js';

export const CONTROL_CHANNEL = 'ormq_control';

export type ControlMessage =
  | { op: 'pause' | 'resume'; key: string }
  | { op: 'stop'; cluster: string; package: number };

/** The error a stopped task is saved with. */
export class CancelledError extends Error {
  constructor(message = 'Task stopped from the admin') {
    super(message);
    this.name = 'CancelledError';
  }
}

/** A queue key as clusters are named: non-empty text of at most 100 characters that PostgreSQL can store. */
export function checkKey(key: unknown): string {
  let problem: string | null = null;
  if (typeof key !== 'string' || key.trim() === '') problem = 'must be a non-empty string';
  else if (key.length > 100) problem = 'must be at most 100 characters';
  else if (!isStorableJson(JSON.stringify(key))) problem = UNSTORABLE_MESSAGE;
  if (problem) throw new ValidationError({ key: problem }, 'key');
  return key as string;
}

/** Reads a control message; anything else on the channel is ignored. */
export function parseControl(payload: string): ControlMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  if ((o.op === 'pause' || o.op === 'resume') && typeof o.key === 'string') return { op: o.op, key: o.key };
  if (o.op === 'stop' && typeof o.cluster === 'string' && Number.isSafeInteger(o.package)) {
    return { op: 'stop', cluster: o.cluster, package: o.package as number };
  }
  return null;
}

/** The schema of ormq's tables; default the ORM's `schema` option. */
interface SchemaOption {
  schema?: string;
}

/** Sends a control message; inside a transaction it is delivered at commit, with the change it announces. */
export async function sendControl(em: EntityManager, message: ControlMessage): Promise<void> {
  await (em as SqlEntityManager).execute('select pg_notify(?, ?)', [CONTROL_CHANNEL, JSON.stringify(message)]);
}

/**
 * Pauses a queue key: its clusters stop claiming within a second and hand back packages they
 * claimed but had not started; running tasks finish. Returns false when it was already paused.
 */
export async function pauseKey(em: EntityManager, key: string, options: SchemaOption = {}): Promise<boolean> {
  checkKey(key);
  const rows = await (inSchema(em, schemaOf(em, options.schema)) as SqlEntityManager).execute(
    `with p as (insert into ormq_paused_key (key) values (?) on conflict (key) do nothing returning key)
     select (select count(*) from p)::int as n, pg_notify(?, ?)`,
    [key, CONTROL_CHANNEL, JSON.stringify({ op: 'pause', key })],
  );
  return Number(rows[0]!.n) > 0;
}

/** Resumes a paused key: its clusters claim again at once. Returns false when it was not paused. */
export async function resumeKey(em: EntityManager, key: string, options: SchemaOption = {}): Promise<boolean> {
  checkKey(key);
  const rows = await (inSchema(em, schemaOf(em, options.schema)) as SqlEntityManager).execute(
    `with d as (delete from ormq_paused_key where key = ? returning key)
     select (select count(*) from d)::int as n, pg_notify(?, ?)`,
    [key, CONTROL_CHANNEL, JSON.stringify({ op: 'resume', key })],
  );
  return Number(rows[0]!.n) > 0;
}

/** Keys paused right now. */
export async function pausedKeys(em: EntityManager, options: SchemaOption = {}): Promise<string[]> {
  const rows = await (inSchema(em, schemaOf(em, options.schema)) as SqlEntityManager).execute('select key from ormq_paused_key order by key');
  return rows.map((r) => r.key as string);
}
