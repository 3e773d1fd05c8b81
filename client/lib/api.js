/**
 * The admin's JSON API, relative to the page so the admin works under any mount path.
 */

export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   * @param {Record<string, string> | undefined} fields
   * @param {any} body
   * @param {number | null} [retryAfter] seconds the server asked the client to wait (a busy admin's 503)
   */
  constructor(message, status, fields, body, retryAfter = null) {
    super(message);
    this.status = status;
    this.fields = fields;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

const base = () => new URL('api/', document.baseURI);

/**
 * @param {string} path relative to api/
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [options]
 */
export async function api(path, options = {}) {
  const { method = 'GET', body, signal } = options;
  /** @type {RequestInit} */
  const init = { method, signal, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { accept: 'application/json', 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(path, base()), init);
  } catch (e) {
    if (/** @type {Error} */ (e).name === 'AbortError') throw e;
    throw new ApiError('The server could not be reached.', 0, undefined, null);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // a proxy's HTML error page: reported below by status
  }
  if (!response.ok) {
    const error = data && data.error;
    const message = (error && error.message) || `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status, error && error.fields, data, Number(response.headers.get('retry-after')) || null);
  }
  return data;
}

/** @param {Record<string, string | null | undefined>} params */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
