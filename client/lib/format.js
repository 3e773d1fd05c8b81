/** Column and field labels, for every page's fields as the API names them. */
const LABELS = {
  id: 'ID',
  name: 'Name',
  func: 'Func',
  hook: 'Hook',
  args: 'Args',
  kwargs: 'Kwargs',
  result: 'Result',
  group: 'Group',
  cluster: 'Cluster',
  enqueued: 'Enqueued',
  started: 'Started',
  stopped: 'Stopped',
  timeTaken: 'Time taken',
  success: 'Success',
  attemptCount: 'Attempts',
  shortResult: 'Short result',
  scheduleType: 'Schedule type',
  minutes: 'Minutes',
  repeats: 'Repeats',
  nextRun: 'Next run',
  cron: 'Cron',
  task: 'Last task id',
  lastRun: 'Last run',
  intendedDateKwarg: 'Intended date kwarg',
  version: 'Version',
  key: 'Key',
  lock: 'Lock',
  lockedBy: 'Locked by',
  taskId: 'Task id',
  payload: 'Payload',
  stuck: 'Stuck',
};

/** @param {string} field */
export const label = (field) =>
  /** @type {Record<string, string>} */ (LABELS)[field] ?? field.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase());

const numbers = new Intl.NumberFormat();
/** @param {number} n */
export const num = (n) => numbers.format(n);

/** @param {number} n @param {string} one @param {string} [many] */
export const plural = (n, one, many = `${one}s`) => `${num(n)} ${n === 1 ? one : many}`;

/** @param {number} bytes */
export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Any value as display text: objects as compact JSON. @param {unknown} v */
export function text(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
