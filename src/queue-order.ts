/**
 * A package's place in the claim order: its priority (higher first, enqueue order within one) and
 * its serial key (packages sharing one run one at a time, in enqueue order). Checked here for
 * `enqueue`, `enqueueMany`, schedules and the admin alike.
 */
import { isStorableText, UNSTORABLE_MESSAGE } from './storable.js';

const MIN_PRIORITY = -2147483648;
const MAX_PRIORITY = 2147483647;
export const PRIORITY_MESSAGE = `must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}`;
const SERIAL_MAX = 100;

/** The problem with a priority, or null: an integer in PostgreSQL's int range. */
export function priorityError(v: unknown): string | null {
  return Number.isInteger(v) && (v as number) >= MIN_PRIORITY && (v as number) <= MAX_PRIORITY ? null : PRIORITY_MESSAGE;
}

/** The problem with a serial key, or null: a non-empty string of at most 100 characters PostgreSQL can store. */
function serialError(v: unknown): string | null {
  if (typeof v !== 'string' || v.trim() === '') return 'must be a non-empty string';
  if (v.length > SERIAL_MAX) return `must be at most ${SERIAL_MAX} characters`;
  return isStorableText(v) ? null : UNSTORABLE_MESSAGE;
}

/** Checks the options' priority and serial into `errors`; returns what the package carries. */
export function orderOf(
  options: { priority?: unknown; serial?: unknown },
  errors: Record<string, string>,
): { priority?: number; serial?: string } {
  const out: { priority?: number; serial?: string } = {};
  if (options.priority !== undefined && options.priority !== null) {
    const e = priorityError(options.priority);
    if (e) errors.priority = e;
    else if (options.priority !== 0) out.priority = options.priority as number;
  }
  if (options.serial !== undefined && options.serial !== null) {
    const e = serialError(options.serial);
    if (e) errors.serial = e;
    else out.serial = options.serial as string;
  }
  return out;
}
