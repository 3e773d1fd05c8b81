/** What the Queued tasks list and a package's detail share. */
import { html } from 'htm/preact';
import { Time } from '../lib/time.js';

/** A delayed package not yet due. @param {string | null | undefined} iso */
export const waits = (iso) => !!iso && new Date(iso).getTime() > Date.now();
export const Until = (/** @type {{ iso: string }} */ { iso }) => html`waits until <${Time} iso=${iso} rel />`;
