/**
 * Koa 2 and 3: `app.use(koa(queueAdmin(orm), { prefix: '/queue-admin' }))`, or without a prefix
 * under koa-mount. Only the context's Node request and response are used, so Koa itself is not a
 * dependency.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { QueueAdminHandler } from '../handler.js';

/** The part of a Koa context the adapter touches (the same in Koa 2 and 3). */
export interface KoaContextLike {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  originalUrl: string;
  querystring: string;
  respond?: boolean;
  /** Where koa-bodyparser and its kind leave a body they have read from the stream. */
  request?: { body?: unknown };
}

export interface KoaAdapterOptions {
  /** Where the admin lives, e.g. '/queue-admin'. Leave it out under koa-mount. */
  prefix?: string;
}

export function koa(handler: QueueAdminHandler, options: KoaAdapterOptions = {}) {
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  if (prefix && !prefix.startsWith('/')) throw new TypeError('koa adapter: prefix must start with "/"');

  return function ormqAdminKoa(ctx: KoaContextLike, next: () => Promise<unknown>): Promise<unknown> {
    const path = ctx.path;
    if (prefix && path !== prefix && !path.startsWith(`${prefix}/`)) return next();
    const { req, res } = ctx;
    const url = req.url;
    const originalUrl = (req as { originalUrl?: string }).originalUrl;
    req.url = (path.slice(prefix.length) || '/') + (ctx.querystring ? `?${ctx.querystring}` : '');
    // The handler redirects "<mount>" to "<mount>/" by looking at the path as the client sent it.
    (req as { originalUrl?: string }).originalUrl = ctx.originalUrl;
    // A body parser in front has consumed the stream: the handler finds its result where Express keeps it.
    const bodyReq = req as { body?: unknown };
    if (ctx.request?.body !== undefined && bodyReq.body === undefined) bodyReq.body = ctx.request.body;

    return new Promise((resolve, reject) => {
      let passed = false;
      const restore = () => {
        req.url = url;
        (req as { originalUrl?: string }).originalUrl = originalUrl;
      };
      handler(req, res, (err) => {
        passed = true;
        restore();
        if (err) reject(err);
        else next().then(resolve, reject);
      });
      if (passed) return;
      // The handler took the request and writes the response itself: Koa must not touch it.
      ctx.respond = false;
      const done = () => {
        restore();
        resolve(undefined);
      };
      if (res.writableFinished) done();
      else {
        res.once('finish', done);
        res.once('close', done);
      }
    });
  };
}
