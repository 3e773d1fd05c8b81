/**
 * JSON fields given as a value or as JSON text (a schedule's args and kwargs, a request body), under
 * one nesting limit: past it JSON.stringify overflows its stack, so depth is checked before parsing.
 */
import { isStorableJson, UNSTORABLE_MESSAGE } from './storable.js';

/** Deeper than this, a value is refused: JSON.stringify recurses, and 10,000 levels overflow its stack. */
export const MAX_DEPTH = 100;

/** Whether JSON text opens more than `max` arrays or objects inside one another: one pass, no parsing. */
function textNestsDeeper(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // a backslash escapes the next character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

/** Whether a value holds more than `max` arrays or objects inside one another, walked without recursion. */
function nestsDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push([item, depth + 1]);
  }
  return false;
}

/**
 * A JSON field given as a value or as JSON text, under the same limits either way: the schedule is
 * the first level, as the request body is in the admin, so the field nests at most MAX_DEPTH - 1.
 */
export function jsonField<T>(
  errors: Record<string, string>,
  field: string,
  value: unknown,
  check: (v: unknown) => v is T,
  kind: string,
  fallback: T,
): T {
  if (value === undefined || value === null || value === '') return fallback;
  const deep = `nests deeper than ${MAX_DEPTH} levels`;
  let parsed = value;
  if (typeof value === 'string') {
    // Checked before parsing: JSON.parse builds any depth, and JSON.stringify overflows on it later.
    if (textNestsDeeper(value, MAX_DEPTH - 1)) {
      errors[field] = deep;
      return fallback;
    }
    if (!isStorableJson(value)) {
      errors[field] = UNSTORABLE_MESSAGE;
      return fallback;
    }
    try {
      parsed = JSON.parse(value);
    } catch {
      errors[field] = `must be ${kind} in JSON`;
      return fallback;
    }
  } else if (nestsDeeper(value, MAX_DEPTH - 1)) {
    errors[field] = deep;
    return fallback;
  }
  if (!check(parsed)) {
    errors[field] = `must be ${kind}`;
    return fallback;
  }
  return parsed;
}
