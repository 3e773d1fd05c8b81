/** What the Scheduled tasks list and a schedule's detail both show. */
import { html } from 'htm/preact';
import { SuccessIcon } from './detail.js';
import { plural } from '../lib/format.js';
import { href } from '../lib/router.js';
import { localTime, relative } from '../lib/time.js';

/** @param {any} meta @param {string} code */
export const typeName = (meta, code) => meta.scheduleTypes?.[code] ?? code;

/**
 * The last task a schedule created: when it ended and how, linked to its detail on the page its
 * outcome puts it on.
 * @param {{ lastRun: { id: string, success: boolean, stopped?: string } | null }} props
 */
export function LastRun({ lastRun }) {
  if (!lastRun) return html`<span class="muted">—</span>`;
  const id = String(lastRun.id);
  return html`<${SuccessIcon} ok=${lastRun.success} /> <a href=${href([lastRun.success ? 'successful' : 'failed', id])}
    title=${localTime(lastRun.stopped)}>${lastRun.stopped ? relative(lastRun.stopped) : id}</a>`;
}

/** The zone a schedule keeps its wall clock in: its own, else the cluster's. @param {{ meta: any, zone: string | null }} props */
export function Zone({ meta, zone }) {
  const z = zone ?? meta.timeZone ?? 'UTC';
  return html`<span class="tag zone" title=${zone ? 'Time zone of this schedule' : "The cluster's time zone (the schedule has none of its own)"}>${z}</span>`;
}

/** "Every 15 min", "Cron 0 9 * * 1-5", else the type's name. @param {any} meta @param {any} row */
export function timing(meta, row) {
  if (row.scheduleType === 'I' && row.minutes) return `Every ${plural(row.minutes, 'min', 'min')}`;
  if (row.scheduleType === 'C' && row.cron) return html`Cron <code>${row.cron}</code>`;
  return typeName(meta, row.scheduleType);
}
