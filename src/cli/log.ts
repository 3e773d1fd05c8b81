/** The worker command's log lines: one per event, as text or as JSON (one object per line). */
import type { LogLevel } from '../log.js';

export type LogFormat = 'text' | 'json';
export type LineLog = (level: LogLevel, message: string, detail?: unknown) => void;

/** What a JSON line can carry of a detail: an error's name and message, or a plain object's fields. */
function fields(detail: unknown): Record<string, unknown> {
  if (detail === undefined || detail === null) return {};
  if (detail instanceof Error) return { error: detail.name, errorMessage: detail.message };
  if (typeof detail === 'object' && !Array.isArray(detail)) return detail as Record<string, unknown>;
  return { detail };
}

function text(detail: unknown): string {
  if (detail === undefined || detail === null) return '';
  if (detail instanceof Error) return ` (${detail.name}: ${detail.message})`;
  return '';
}

/** Writes info and above to stdout (warn and error to stderr); debug only with `verbose`. */
export function lineLog(format: LogFormat, verbose = false, out = process.stdout, err = process.stderr): LineLog {
  return (level, message, detail) => {
    if (level === 'debug' && !verbose) return;
    const stream = level === 'warn' || level === 'error' ? err : out;
    const at = new Date().toISOString();
    if (format === 'json') stream.write(`${JSON.stringify({ at, level, message, ...fields(detail) })}\n`);
    else stream.write(`${at} ${level.padEnd(5)} ${message}${text(detail)}\n`);
  };
}
