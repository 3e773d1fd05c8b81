/**
 * Who may reach the admin before `authorize` is asked.
 *
 * - `allowedHosts`: a request whose Host is not listed is refused on every route, whatever
 *   `authorize` says. It stops DNS rebinding (a page on another site whose name resolves to this
 *   server carries that site's name as Host) and requests that reach the admin through a name it
 *   was not meant to be served under.
 * - Without `authorize`, the admin answers only requests that carry its access token: the
 *   `Authorization: Bearer` header, or the cookie a browser got by opening the link with
 *   `?token=`. The peer's address proves nothing: a reverse proxy, a tunnel or a sidecar on this
 *   machine makes every visitor's request come from loopback with a loopback Host.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, securityHeaders, sendError } from './http.js';

/** Characters that survive a URL, a cookie and a header unescaped. */
const TOKEN_SHAPE = /^[A-Za-z0-9._~-]{16,256}$/;
const TOKEN_COOKIE = 'ormq_admin';
/** A week: the link is needed again after that, or when a generated token changes with a restart. */
const COOKIE_MAX_AGE = 7 * 24 * 3600;

export function checkToken(token: unknown, where: string): string {
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) {
    throw new TypeError(`${where} must be 16 to 256 characters of letters, digits and . _ ~ - (it goes into a URL and a cookie)`);
  }
  return token;
}

export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares in time independent of where the two differ. */
function sameToken(given: string | null | undefined, token: string): boolean {
  return typeof given === 'string' && given.length <= 256 && timingSafeEqual(digest(given), digest(token));
}

/** One `allowedHosts` entry: a name (any port), a name with a port, or `.example.com` (it and its subdomains). */
export interface HostRule {
  name: string;
  port: string | null;
  subdomains: boolean;
}

const HOST_SHAPE = /^(\[[0-9a-f:.]+\]|[^:[\]\s/@,]+)(?::(\d{1,5}))?$/i;

export function parseAllowedHosts(list: unknown): HostRule[] {
  if (!Array.isArray(list) || list.length === 0 || list.length > 1000) {
    throw new TypeError('queueAdmin: allowedHosts must be a non-empty array of host names, e.g. ["admin.example.com", "localhost:3000"]');
  }
  return list.map((entry) => {
    const m = typeof entry === 'string' ? HOST_SHAPE.exec(entry) : null;
    if (!m)
      throw new TypeError(`queueAdmin: allowedHosts: ${JSON.stringify(entry)?.slice(0, 100)} is not a host name with an optional :port`);
    const name = m[1]!.toLowerCase();
    const subdomains = name.startsWith('.');
    return { name: subdomains ? name.slice(1) : name, port: m[2] ?? null, subdomains };
  });
}

/** The name and port of a Host header; null when it is not exactly one host. */
function hostOf(host: string | undefined): { name: string; port: string | null } | null {
  const m = host === undefined || host.length > 300 ? null : HOST_SHAPE.exec(host);
  return m ? { name: m[1]!.toLowerCase().replace(/\.$/, ''), port: m[2] ?? null } : null;
}

export function hostAllowed(rules: HostRule[], header: string | undefined): boolean {
  const host = hostOf(header);
  if (!host) return false;
  return rules.some(
    (r) => (host.name === r.name || (r.subdomains && host.name.endsWith(`.${r.name}`))) && (r.port === null || r.port === host.port),
  );
}

export function refuseHost(res: ServerResponse, header: string | undefined): void {
  const shown = JSON.stringify(String(header ?? '').slice(0, 100));
  sendError(res, new HttpError(403, `Forbidden: Host ${shown} is not one of this admin's allowedHosts`));
}

/**
 * Every value of one cookie: a browser sends each cookie of that name whose path matches (another
 * admin's on this host name, whatever its port, or one a sibling subdomain planted), longest path
 * first. The header is read once, left to right, so its cost is linear in its size.
 */
/** A browser sends a handful at most; each is hashed to be compared, so a header padded with more costs nothing. */
const MAX_SAME_COOKIES = 16;

function cookies(req: IncomingMessage, name: string): string[] {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name && values.push(part.slice(eq + 1).trim()) === MAX_SAME_COOKIES) break;
  }
  return values;
}

function bearer(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

/** The request carries the token, in the header or the cookie. */
export function hasToken(req: IncomingMessage, token: string): boolean {
  return sameToken(bearer(req), token) || cookies(req, TOKEN_COOKIE).some((value) => sameToken(value, token));
}

/** The `token` of a page request's query when it is this admin's token; the exchange takes it. */
export function linkToken(search: string, token: string): boolean {
  return search.length <= 4096 && sameToken(new URLSearchParams(search).get('token'), token);
}

const attribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function sendPage(res: ServerResponse, status: number, title: string, body: string, head = ''): void {
  const page =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">${head}` +
    `<link rel="icon" href="data:,"><title>${title}</title></head><body>${body}</body></html>`;
  securityHeaders(res);
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  // The link's token must not leave in a Referer header.
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Content-Length', Buffer.byteLength(page));
  res.end(page);
}

/**
 * Opening the link: the token becomes an HttpOnly, SameSite=Strict cookie and the page loads again
 * without it in the URL. The cookie has no Path attribute, so the browser scopes it to the folder
 * of the URL it opened, the admin's mount path as the browser sees it, even behind a proxy that
 * adds or strips a prefix. The page is reloaded by a meta refresh rather than a redirect: a link
 * opened from another site (a chat, a wiki) would carry no Strict cookie through a redirect.
 */
export function exchangeToken(req: IncomingMessage, res: ServerResponse, token: string, search: string): void {
  const rest = new URLSearchParams(search);
  rest.delete('token');
  const query = rest.toString();
  const target = `./${query ? `?${query}` : ''}`;
  const https =
    (req.socket as { encrypted?: boolean }).encrypted === true || /^https\b/i.test(String(req.headers['x-forwarded-proto'] ?? ''));
  res.setHeader('Set-Cookie', `${TOKEN_COOKIE}=${token}; Max-Age=${COOKIE_MAX_AGE}; HttpOnly; SameSite=Strict${https ? '; Secure' : ''}`);
  const href = attribute(target);
  sendPage(
    res,
    200,
    'Queue admin: signed in',
    `<p>Signed in to the queue admin. <a href="${href}">Open it</a>.</p>`,
    `<meta http-equiv="refresh" content="0;url=${href}">`,
  );
}

const HOW_API =
  'Send the access token as "Authorization: Bearer <token>" (ORMQ_ADMIN_TOKEN, or the token in the link the server logged when the admin was mounted), ' +
  'or pass an authorize option to queueAdmin(orm, { authorize }) to decide who may use it.';

/**
 * The 403 for a request without the token: JSON for the API, a short page for a browser. The entry
 * page reached by a link on another site is loaded once more from here: the browser withholds a
 * SameSite=Strict cookie from a cross-site navigation, and from a reload of it, but sends it when
 * this page navigates (the link's #fragment is lost on the way).
 */
export function refuseWithoutToken(req: IncomingMessage, res: ServerResponse, api: boolean, entry: boolean, search: string): void {
  if (api) return sendError(res, new HttpError(403, `Forbidden: this admin needs its access token. ${HOW_API}`));
  const crossSite = entry && req.headers['sec-fetch-site'] === 'cross-site' && req.headers['sec-fetch-mode'] === 'navigate';
  sendPage(
    res,
    403,
    'Queue admin: access link needed',
    '<h1>This queue admin needs its access link</h1>' +
      '<p>Open its link with <code>?token=…</code>: the server writes it to its log when the admin starts ' +
      '(<code>ormq admin: open …/?token=…</code>). The token is then kept in a cookie for this browser. ' +
      'With <code>ORMQ_ADMIN_TOKEN</code> set, the token is that value.</p>' +
      '<p>To use your own login instead, pass <code>authorize</code> when mounting it, e.g. ' +
      '<code>queueAdmin(orm, { authorize: (req, { page, action }) =&gt; req.user?.isAdmin === true })</code>.</p>',
    crossSite ? `<meta http-equiv="refresh" content="0;url=${attribute(`./${search.length <= 4096 ? search : ''}`)}">` : '',
  );
}
