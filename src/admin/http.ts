import type { IncomingMessage, ServerResponse } from 'node:http';
import { isStorableText, scrub, UNSTORABLE_MESSAGE } from '../storable.js';
import { isPlainObject, ValidationError } from '../validate.js';
import { MAX_DEPTH } from '../json-field.js';

/** A request that failed on purpose: its status and message go to the client as JSON. */
export class HttpError extends Error {
  readonly status: number;
  readonly fields?: Record<string, string>;
  readonly extra?: Record<string, unknown>;
  /** The connection is closed after this answer: the rest of the request is never read. */
  close = false;
  /** Headers the answer carries besides the JSON body's (a 405's Allow). */
  headers: Record<string, string> = {};
  constructor(status: number, message: string, fields?: Record<string, string>, extra?: Record<string, unknown>) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.fields = fields;
    this.extra = extra;
  }
}

/** Bad input: with the fields at fault it is a ValidationError (a 400 naming them), as everywhere in ormq. */
export function badRequest(message: string, fields?: Record<string, string>): HttpError | ValidationError {
  return fields ? new ValidationError(fields, 'request', message) : new HttpError(400, message);
}
export const notFound = (message = 'Not found') => new HttpError(404, message);

export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join('; ');

/** Set on every response, whatever it is: the page, an asset, JSON, a redirect or an error. */
export function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'same-origin');
  // Another site's window cannot script this one, and its pages cannot embed these answers.
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  securityHeaders(res);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  // Lists and details change with every action: a cached copy would show deleted rows again.
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error.close) res.setHeader('Connection', 'close');
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  const body: Record<string, unknown> = { status: error.status, message: error.message };
  if (error.fields) body.fields = error.fields;
  sendJson(res, error.status, { error: body, ...error.extra });
}

export const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The host[:port] of a header value; the first of a proxy chain's comma-separated list. */
function hostOf(value: string | string[] | undefined): string | null {
  const first = (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim().toLowerCase();
  return first ? first : null;
}

/**
 * Refuses a mutation another site triggered. Browsers send `Sec-Fetch-Site` on every request and
 * a page cannot set it, so `same-origin` settles it, whatever Host a reverse proxy passed on (nginx
 * sends its upstream's name by default). Without it (older browsers, other clients), `Origin` —
 * sent on every cross-origin and every non-GET request — must name this host as the client saw
 * it: `Host`, or `X-Forwarded-Host` from a proxy. A page cannot add that header to a cross-site
 * request without a CORS preflight, which this server never grants.
 */
export function assertSameOrigin(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site === 'same-origin') return;
  if (site !== undefined) {
    throw new HttpError(403, `Cross-site request refused (Sec-Fetch-Site: ${String(site)})`);
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string | null = null;
  try {
    host = new URL(origin).host.toLowerCase();
  } catch {
    host = null;
  }
  const served = [hostOf(req.headers.host), hostOf(req.headers['x-forwarded-host'])];
  if (!host || !served.includes(host)) {
    throw new HttpError(403, 'Cross-site request refused (Origin matches neither Host nor X-Forwarded-Host)');
  }
}

/** 1 MB: a schedule form or a selection of 1,000 ids is far below it. */
export const BODY_LIMIT = 1024 * 1024;

function isJsonType(value: string | undefined): boolean {
  if (!value) return false;
  const type = value.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json';
}

/** The first string (or key) in a JSON value that PostgreSQL would refuse, or the first too deep. */
function bodyProblem(value: unknown): { path: string; message: string } | null {
  const stack: [unknown, string, number][] = [[value, '', 0]];
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (!isStorableText(v)) return { path, message: UNSTORABLE_MESSAGE };
    } else if (typeof v === 'object' && v !== null) {
      if (depth >= MAX_DEPTH) return { path, message: `nests deeper than ${MAX_DEPTH} levels` };
      if (Array.isArray(v)) {
        v.forEach((item, i) => stack.push([item, `${path}[${i}]`, depth + 1]));
      } else {
        for (const [k, item] of Object.entries(v)) {
          const at = path ? `${path}.${k}` : k;
          if (!isStorableText(k)) return { path: at, message: UNSTORABLE_MESSAGE };
          stack.push([item, at, depth + 1]);
        }
      }
    }
  }
  return null;
}

/** Refused here as a 400 naming the field; the database (or JSON.stringify) would otherwise fail the request (a 500). */
function assertStorable(value: unknown): unknown {
  const problem = bodyProblem(value);
  if (problem === null) return value;
  const { path, message } = problem;
  const field = path.match(/^[^.[]+/)?.[0];
  throw badRequest(`Request body ${path ? `field ${path.slice(0, 200)} ` : ''}${message}`, field ? { [field]: message } : undefined);
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `Request body is larger than ${limit} bytes`);
}

/** The size of a body a host parser has already read, as the JSON it came from (near enough). */
function parsedSize(parsed: unknown): number {
  if (typeof parsed === 'string') return Buffer.byteLength(parsed);
  if (Buffer.isBuffer(parsed)) return parsed.length;
  try {
    return Buffer.byteLength(JSON.stringify(parsed) ?? '');
  } catch {
    throw badRequest(`Request body nests deeper than ${MAX_DEPTH} levels or cannot be read as JSON`);
  }
}

/**
 * Reads a mutation's JSON body. A JSON content type is required: an HTML form cannot send one
 * cross-site without a CORS preflight, which this server never grants. A body over `limit` is
 * refused whoever read it: from the stream, reading stops at the limit and the connection is
 * closed after the 413, so a client cannot make the server take in more than that.
 */
export async function readJson(req: IncomingMessage, limit = BODY_LIMIT): Promise<unknown> {
  if (!isJsonType(req.headers['content-type'])) {
    throw new HttpError(415, 'Content-Type must be application/json');
  }
  // A host's body parser (express.json, koa-bodyparser) may have read the stream already: waiting
  // for data that will never come again would hang the request.
  if (alreadyRead(req)) {
    const parsed = (req as IncomingMessage & { body?: unknown }).body;
    if (parsed === undefined) {
      throw badRequest('The request body was already read by another middleware; mount the admin before body parsers');
    }
    // The host's parser may allow far more (express.json({ limit: '20mb' })): the admin's limit still holds.
    if (parsedSize(parsed) > limit) throw tooLarge(limit);
    return assertStorable(typeof parsed === 'string' || Buffer.isBuffer(parsed) ? parseJson(String(parsed)) : parsed);
  }

  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw cutOff(req, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  const complete = await new Promise<boolean>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        chunks.length = 0;
        resolve(false);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(true);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
  if (!complete) throw cutOff(req, limit);
  return assertStorable(parseJson(Buffer.concat(chunks).toString('utf8')));
}

/** Stops reading the request: the 413 goes out with `Connection: close`, and the rest is never taken in. */
function cutOff(req: IncomingMessage, limit: number): HttpError {
  req.pause();
  const error = tooLarge(limit);
  error.close = true;
  return error;
}

/**
 * The stream has ended, or it arrived whole and someone else has started consuming it and left
 * nothing buffered. A stream nobody has touched (`readableFlowing` null) is still ours to read.
 */
function alreadyRead(req: IncomingMessage): boolean {
  return req.readableEnded || (req.complete && req.readableLength === 0 && req.readableFlowing !== null);
}

function parseJson(text: string): unknown {
  if (text.trim() === '') throw badRequest('Request body must be JSON; it is empty');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`Request body is not valid JSON: ${(e as Error).message}`);
  }
}

export { isPlainObject };

/** The parsed query string as a plain map; repeated keys keep the last value. */
export function queryOf(search: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(search)) {
    if (!isStorableText(v))
      throw badRequest(`Query parameter ${scrub(k, '?')} ${UNSTORABLE_MESSAGE}`, { [scrub(k, '?')]: UNSTORABLE_MESSAGE });
    out[k] = v;
  }
  return out;
}
