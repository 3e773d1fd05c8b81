/**
 * The admin's default: without `authorize` it answers only direct requests made on this machine to
 * a loopback name, as Hangfire's dashboard does until an authorization filter is set. The Host check
 * also stops DNS rebinding: a page on another site whose name resolves to 127.0.0.1 is same-origin
 * to the admin as far as the browser knows, but its requests carry that site's name as Host.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, securityHeaders, sendError } from './http.js';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
/** A proxy on this machine makes every visitor's request come from a loopback address: these give it away. */
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip'];

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The name in a Host header, without its port; null when the header is not one host. */
function hostName(host: string | undefined): string | null {
  const m = host === undefined ? null : /^(\[[0-9a-f:.]+\]|[^:[\]\s]+)(?::\d{1,5})?$/i.exec(host);
  return m ? m[1]!.toLowerCase() : null;
}

/** Why a request is not a direct local one, or null when it is. */
export function notLocal(req: IncomingMessage): string | null {
  if (!isLoopbackAddress(req.socket?.remoteAddress)) return 'it does not come from this machine';
  for (const header of PROXY_HEADERS) if (req.headers[header] !== undefined) return `it came through a proxy (${header} header)`;
  const name = hostName(req.headers.host);
  if (name === null || !LOOPBACK_NAMES.has(name)) return 'its Host is not localhost, 127.0.0.1 or [::1]';
  return null;
}

const HOW = 'Pass an authorize option to queueAdmin(orm, { authorize }) to decide who may use it (authorize: () => true opens it to everyone who reaches it).';

/** The 403 for a request the default refuses: JSON for the API, a short page for a browser. */
export function refuseNotLocal(res: ServerResponse, why: string, api: boolean): void {
  const message = `Forbidden: without an authorize option this admin answers only direct requests on this machine to localhost, and ${why}. ${HOW}`;
  if (api) return sendError(res, new HttpError(403, message));
  const page =
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">' +
    '<link rel="icon" href="data:,"><title>Queue admin: local only</title></head><body><h1>This queue admin answers only local requests</h1>' +
    '<p>Without an <code>authorize</code> option it serves only direct requests made on the machine it runs on, ' +
    'to <code>localhost</code>, <code>127.0.0.1</code> or <code>[::1]</code>.</p>' +
    '<p>To open it to others, pass <code>authorize</code> when mounting it, e.g. ' +
    '<code>queueAdmin(orm, { authorize: (req, { page, action }) =&gt; req.user?.isAdmin === true })</code>, ' +
    'behind your own login.</p></body></html>';
  securityHeaders(res);
  res.statusCode = 403;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(page));
  res.end(page);
}
