import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import { securityHeaders } from './http.js';

interface Asset {
  body: Buffer;
  gzip?: Buffer;
  br?: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  map: 'application/json; charset=utf-8',
  json: 'application/json; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
  txt: 'text/plain; charset=utf-8',
};

const COMPRESSIBLE = new Set(['html', 'js', 'mjs', 'css', 'map', 'json', 'svg', 'txt']);
/** `app-3F2K9QXA.js`: the build puts a content hash in every name but index.html. */
const HASHED = /-[A-Z0-9]{8}\.[a-z0-9]+$/;

/** Where the built client lives, from this module in src/admin/ or in dist/src/admin/. */
export function defaultClientDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [join(here, '../../client/dist'), join(here, '../../../client/dist')];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[0]!;
}

function walk(dir: string, root: string, out: string[]): void {
  for (const entry of readdirSync(dir)) {
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) walk(full, root, out);
    else out.push(relative(root, full).split(sep).join('/'));
  }
}

/**
 * Reads the built client once, at start-up, into memory with its compressed variants. Requests
 * are then answered from this map by exact name: a path that is not a key (`..`, encoded slashes)
 * simply is not found, so nothing outside the folder can ever be read.
 */
export function loadClient(dir: string): Map<string, Asset> {
  if (!existsSync(join(dir, 'index.html'))) {
    throw new Error('ormq admin client is not built: run npm run build');
  }
  const names: string[] = [];
  walk(dir, dir, names);
  const assets = new Map<string, Asset>();
  for (const name of names) {
    const body = readFileSync(join(dir, name));
    const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
    const asset: Asset = {
      body,
      type: TYPES[ext] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      cacheControl: HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
    if (COMPRESSIBLE.has(ext) && body.length > 256) {
      const gz = gzipSync(body, { level: 9 });
      const br = brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } });
      if (gz.length < body.length) asset.gzip = gz;
      if (br.length < body.length) asset.br = br;
    }
    assets.set(name, asset);
  }
  return assets;
}

function accepts(header: string | string[] | undefined, coding: string): boolean {
  if (!header) return false;
  for (const part of String(header).split(',')) {
    const [token, ...params] = part.trim().split(';');
    if (token!.trim().toLowerCase() !== coding) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return !q || Number(q.slice(2)) > 0;
  }
  return false;
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** Answers a GET/HEAD for one file of the client; false when there is no such file. */
export function serveAsset(assets: Map<string, Asset>, name: string, req: IncomingMessage, res: ServerResponse): boolean {
  const asset = assets.get(name);
  if (!asset) return false;
  securityHeaders(res);
  res.setHeader('Cache-Control', asset.cacheControl);
  res.setHeader('ETag', asset.etag);
  res.setHeader('Vary', 'Accept-Encoding');
  if (matchesEtag(req.headers['if-none-match'], asset.etag)) {
    res.statusCode = 304;
    res.end();
    return true;
  }
  let body = asset.body;
  const encoding = req.headers['accept-encoding'];
  if (asset.br && accepts(encoding, 'br')) {
    body = asset.br;
    res.setHeader('Content-Encoding', 'br');
  } else if (asset.gzip && accepts(encoding, 'gzip')) {
    body = asset.gzip;
    res.setHeader('Content-Encoding', 'gzip');
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', asset.type);
  res.setHeader('Content-Length', body.length);
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
