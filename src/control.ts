/**
 * Requests to running clusters: pause and resume a queue key, stop one running task. The state of
 * a pause is a row of ormq_paused_key, read by every claim, so it outlives restarts; the NOTIFY on
 * CONTROL_CHANNEL only makes clusters act on it at once (drop what they claimed, or claim again).
 */
import { CONTROL_CHANNEL } from './db/channels.js';
import { inSchema, schemaOf } from './table-names.js';
import type { EntityManager } from '@mikro-orm/core';
import { isStorableJson, UNSTORABLE_MESSAGE } from './storable.js';
import { ValidationError } from './validate.js';
import { db } from './db/run.js';

/** SQL: the ormq_paused_key row in scope is in force (not past its end). */
export const PAUSE_IN_FORCE = '(until is null or until > now())';

export type ControlMessage =
  { op: 'pause' | 'resume'; key: string } | { op: 'stop'; cluster: string; package: number; by?: string; code?: boolean };

/** Longest pause with an end: a year. */
const PAUSE_MAX_SECONDS = 366 * 86_400;

/** Who paused or stopped something, as kept: its first 150 characters, never half of a surrogate pair. */
export function clipBy(by: unknown): string | null {
  if (typeof by !== 'string' || by === '') return null;
  const end = by.length > 150 && /[\ud800-\udbff]/.test(by[149]!) ? 149 : 150;
  return by.slice(0, end);
}

/**
 * The error a stopped task is saved with: it says who stopped it (the admin, or `cancel` from
 * code), and its stack is that sentence alone (where ormq aborted the task says nothing about the task).
 */
export class CancelledError extends Error {
  constructor(by?: string | null, fromCode = false) {
    super(
      fromCode ? `Task cancelled${by ? ` by ${by}` : ''}` : by ? `Task stopped from the admin by ${by}` : 'Task stopped from the admin',
    );
    this.name = 'CancelledError';
    this.stack = `${this.name}: ${this.message}`;
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
    const by = clipBy(o.by) ?? undefined;
    return { op: 'stop', cluster: o.cluster, package: o.package as number, ...(by ? { by } : {}), ...(o.code === true && { code: true }) };
  }
  return null;
}

/** The schema of ormq's tables; default the ORM's `schema` option. */
interface SchemaOption {
  schema?: string;
}

/** Sends a control message; inside a transaction it is delivered at commit, with the change it announces. */
async function sendControl(em: EntityManager, message: ControlMessage): Promise<void> {
  await db(em).query('select pg_notify(?, ?)', [CONTROL_CHANNEL, JSON.stringify(message)]);
}

export interface PauseOptions extends SchemaOption {
  /** Seconds until the pause ends by itself (at the next heartbeat of any cluster after that); default: until resumed. */
  for?: number;
  /** Who paused it, shown beside the pause (the admin passes its actor); at most 150 characters are kept. */
  by?: string | null;
}

function pauseSeconds(seconds: unknown): number | null {
  if (seconds === undefined || seconds === null) return null;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds > PAUSE_MAX_SECONDS) {
    throw new ValidationError({ for: `must be a number of seconds above 0 and at most ${PAUSE_MAX_SECONDS} (a year)` }, 'pause');
  }
  return seconds;
}

/**
 * Pauses a queue key: its clusters stop claiming within a second and hand back packages they
 * claimed but had not started; running tasks finish. With `for`, the pause ends by itself.
 * Returns false when it was already paused (its end and author are left as they were).
 */
export async function pauseKey(em: EntityManager, key: string, options: PauseOptions = {}): Promise<boolean> {
  checkKey(key);
  const seconds = pauseSeconds(options.for);
  const by = clipBy(options.by);
  const rows = await db(inSchema(em, schemaOf(em, options.schema))).query(
    `with p as (insert into ormq_paused_key (key, until, paused_by) values (?, now() + ? * interval '1 second', ?)
       on conflict (key) do update set until = excluded.until, paused_by = excluded.paused_by, at = now()
       where ormq_paused_key.until <= now() returning key)
     select (select count(*) from p)::int as n, pg_notify(?, ?)`,
    [key, seconds, by, CONTROL_CHANNEL, JSON.stringify({ op: 'pause', key })],
  );
  return Number(rows[0]!.n) > 0;
}

/** Resumes a paused key: its clusters claim again at once. Returns false when it was not paused. */
export async function resumeKey(em: EntityManager, key: string, options: SchemaOption = {}): Promise<boolean> {
  checkKey(key);
  const rows = await db(inSchema(em, schemaOf(em, options.schema))).query(
    `with d as (delete from ormq_paused_key where key = ? returning key)
     select (select count(*) from d)::int as n, pg_notify(?, ?)`,
    [key, CONTROL_CHANNEL, JSON.stringify({ op: 'resume', key })],
  );
  return Number(rows[0]!.n) > 0;
}

/** Keys paused right now (a pause whose time is up is not, though its row waits for the next heartbeat). */
export async function pausedKeys(em: EntityManager, options: SchemaOption = {}): Promise<string[]> {
  const rows = await db(inSchema(em, schemaOf(em, options.schema))).query(
    `select key from ormq_paused_key where ${PAUSE_IN_FORCE} order by key`,
  );
  return rows.map((r) => r.key as string);
}

/** A package a live process runs, and that process. */
export interface HeldPackage {
  id: number;
  lockedBy: string;
}

/** Asks the process holding package `p` to stop it; delivered at the commit of `tx`. */
export async function stopPackage(tx: EntityManager, p: HeldPackage, by: string | null, fromCode: boolean): Promise<void> {
  await sendControl(tx, {
    op: 'stop',
    cluster: p.lockedBy,
    package: p.id,
    ...(by ? { by: clipBy(by)! } : {}),
    ...(fromCode && { code: true }),
  });
}
