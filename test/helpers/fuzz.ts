/**
 * Random and malformed HTTP requests for the admin, from a seeded generator so a failure can be
 * replayed: methods, paths (routes, ids, traversal, encodings), query strings, JSON and broken
 * bodies, hostile origins and oversized values. Sent with node:http so nothing normalises them.
 */
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { TEST_TOKEN } from './admin.js';

/** mulberry32: small, fast and reproducible from one 32-bit seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Ids {
  tasks: string[];
  schedules: number[];
  queued: number[];
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** A mutation another site could have sent: the admin must refuse it with 403. */
  hostile: boolean;
  /** Headers past Node's 16 KB limit: node:http itself answers 431 before the admin sees it. */
  oversized: boolean;
  /** A body over the 1 MB limit, which the server may cut off while it is still being sent. */
  large: boolean;
  /**
   * No access token, or a wrong one (among them what a same-host forwarder sends on: a loopback
   * Host and no forwarding header): an admin without authorize must refuse it with 403.
   */
  tokenless: boolean;
}

export interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const PAGES = ['successful', 'failed', 'scheduled', 'queued'];
const ACTIONS = ['delete', 'resubmit', 'pause', 'resume', 'run', 'release', 'edit', 'create', 'view'];
const FIELDS = ['args', 'kwargs', 'result', 'payload', 'name', 'lock', '__proto__'];
const QUERY_KEYS = [
  'search',
  'group',
  'cluster',
  'key',
  'type',
  'nextRun',
  'cursor',
  'limit',
  'scheduleType',
  'cron',
  'minutes',
  'repeats',
  'columns',
  'x',
  '__proto__',
];
const BODY_KEYS = [
  'ids',
  'all',
  'filter',
  'name',
  'func',
  'hook',
  'args',
  'kwargs',
  'scheduleType',
  'minutes',
  'repeats',
  'nextRun',
  'cron',
  'cluster',
  'intendedDateKwarg',
  'version',
  'key',
  'lock',
  'search',
  'group',
  'cursor',
  'type',
  'limit',
  'concurrency',
  'rate',
  '__proto__',
  'constructor',
];
/** The host[:port] an Origin header names, as the admin reads it; null when it is no URL. */
function originHost(origin: string): string | null {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return null;
  }
}

const HOSTILE_ORIGINS = [
  'http://evil.example',
  'null',
  'https://127.0.0.1.evil.example',
  'http://127.0.0.1:1',
  'http://localhost',
  'file://',
  'http://user@evil.example',
  'not a url',
  '',
  'http://[::1]',
  'http://127.0.0.1:{port}.evil.example',
  'http://127.0.0.1:{port}@evil.example',
];
/** Host headers a rebinding page or a remote visitor would send; each is a valid header value. */
const SPOOFED_HOSTS = [
  'evil.example',
  'evil.example:{port}',
  '127.0.0.1.evil.example:{port}',
  'localhost.evil.example',
  '127.0.0.2:{port}',
  '0.0.0.0:{port}',
  '[::2]:{port}',
  'admin.example.com',
  'localhost:{port}.evil.example',
  '192.0.2.1',
];
const PROXY_HEADERS: Record<string, string>[] = [
  { forwarded: 'for=203.0.113.9;proto=https' },
  { 'x-forwarded-for': '203.0.113.9' },
  { 'x-forwarded-for': '127.0.0.1' },
  { 'x-real-ip': '203.0.113.9' },
  { 'x-forwarded-host': 'admin.example.com' },
  { forwarded: 'for=127.0.0.1' },
];
const HOSTILE_SITES = ['cross-site', 'same-site', 'none', 'SAME-ORIGIN', '', 'same-origin, cross-site'];
const WORDS = [
  '',
  ' ',
  'x',
  'default',
  'mail',
  '%',
  '_',
  '\\',
  "'",
  '"',
  "it's",
  '%_\\',
  "' or 1=1 --",
  '"; drop table ormq_task; --',
  '*',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  '{{7*7}}',
  '${7*7}',
  '../../etc/passwd',
  '..\\..\\windows',
  '日本語',
  'Ωμέγα',
  '🙂🙃',
  'e\u0301',
  '\u202etxt.exe',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\uffff',
  '\t\n\r',
  'null',
  'undefined',
  'true',
  'NaN',
  '-1',
  '0',
  '1',
  '1.5',
  '1e3',
  '501',
  '99999999999999999999',
  '-9223372036854775809',
  '0x10',
  '2147483648',
  'O',
  'I',
  'H',
  'D',
  'W',
  'BW',
  'M',
  'BM',
  'Q',
  'Y',
  'C',
  'ZZ',
  'past',
  'today',
  'next7',
  'later',
  '* * * * *',
  '*/5 * * * *',
  '61 * * * *',
  '@yearly',
  '* * * * * * *',
  'L W # ?',
  '2024-02-30T00:00:00Z',
  '2030-01-01T00:00:00.000Z',
  'not-a-date',
  '+275760-09-13T00:00:00.000Z',
  '-271821-04-20T00:00:00Z',
  '1970-01-01',
  'eyJ0IjoiMjAyNC0wMS0wMSIsImkiOiJ4In0',
  'AAAA',
  '!!!!',
  '__proto__',
  'constructor',
  'toString',
];

export class FuzzGenerator {
  readonly random: () => number;
  constructor(
    seed: number,
    private readonly host: string,
    private ids: () => Ids,
  ) {
    this.random = prng(seed);
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)]!;
  }
  chance(p: number): boolean {
    return this.random() < p;
  }

  /** A string from the pools, sometimes stretched to a huge value. */
  word(): string {
    const r = this.random();
    // A long run of backslashes, with or without an escape after it: what made a backtracking check take seconds.
    if (r < 0.01) return '\\'.repeat(this.int(10_000, 300_000)) + this.pick(['x', 'u0000', 'ud800', '\u0000', '']);
    if (r < 0.03) return this.pick(['a', 'é', '日', '%']).repeat(this.int(1_000, 6_000));
    if (r < 0.06) return Array.from({ length: this.int(1, 40) }, () => String.fromCharCode(this.int(1, 0x2fff))).join('');
    return this.pick(WORDS);
  }

  id(page?: string): string {
    const ids = this.ids();
    const r = this.random();
    if (r < 0.55) {
      const p = page ?? this.pick(PAGES);
      if (p === 'scheduled' && ids.schedules.length) return String(this.pick(ids.schedules));
      if (p === 'queued' && ids.queued.length) return String(this.pick(ids.queued));
      if (ids.tasks.length) return this.pick(ids.tasks);
    }
    if (r < 0.65) return Array.from({ length: 32 }, () => this.pick([...'0123456789abcdef'])).join('');
    if (r < 0.7) return Array.from({ length: 32 }, () => this.pick([...'0123456789ABCDEFG'])).join('');
    return this.word();
  }

  /** Percent-encoded, except now and then a deliberately broken escape. */
  enc(s: string): string {
    if (this.chance(0.03)) return this.pick(['%', '%Z', '%E0%A4%A', '%C0%AF', '%FF', '%00', '%ZZ%2']);
    try {
      return encodeURIComponent(s);
    } catch {
      return '%ED%A0%80'; // a lone surrogate cannot be encoded: send its UTF-8-looking bytes instead
    }
  }

  path(): string {
    const r = this.random();
    let segments: string[];
    if (r < 0.1) {
      segments = [this.pick(['', 'index.html', 'app-AAAAAAAA.js', 'app-ZZZZZZZZ.css', 'favicon.ico', '.env', 'secret.txt', 'dist', 'api'])];
      if (this.chance(0.5)) {
        return this.pick([
          '/../secret.txt',
          '/..%2fsecret.txt',
          '/%2e%2e%2fsecret.txt',
          '/..%252fsecret.txt',
          '/..\\secret.txt',
          '/..%5csecret.txt',
          '/app-AAAAAAAA.js/../../secret.txt',
          '//secret.txt',
          '/./../secret.txt',
          '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
          '/index.html%00.js',
          '/....//secret.txt',
          '/%c0%ae%c0%ae/secret.txt',
          '/api/../../secret.txt',
          '/api/..%2f..%2fsecret.txt',
          '/;/../secret.txt',
          '/app-AAAAAAAA.js%3f../secret.txt',
          '/%C3%A9',
          '/%E2%80%AE',
        ]);
      }
    } else {
      const page = this.chance(0.9) ? this.pick(PAGES) : this.word();
      segments = ['api', page];
      const shape = this.random();
      if (shape < 0.1) segments = ['api', this.pick(['meta', 'overview', '', 'META', 'meta/', this.word()])];
      else if (shape < 0.15) segments = ['api', 'clusters', ...(this.chance(0.5) ? ['limits'] : ['actions', 'limits'])];
      else if (shape < 0.35) {
        // the list itself
      } else if (shape < 0.45) segments.push(this.pick(['filters', 'count', 'preview']));
      else if (shape < 0.65) segments.push('actions', this.chance(0.9) ? this.pick(ACTIONS) : this.word());
      else if (shape < 0.85) segments.push(this.id(page));
      else segments.push(this.id(page), 'field', this.chance(0.9) ? this.pick(FIELDS) : this.word());
      if (this.chance(0.03)) segments.push(this.word());
    }
    let path = `/${segments.map((s) => this.enc(s)).join('/')}`;
    if (this.chance(0.02)) path = path.replace('/', '//');
    if (this.chance(0.02)) path += '/';
    if (this.chance(0.3)) {
      const n = this.int(1, 5);
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(`${this.enc(this.pick(QUERY_KEYS))}=${this.enc(this.word())}`);
      path += `?${parts.join('&')}`;
    } else if (this.chance(0.01)) path += this.pick(['?', '?&&', '?=', '?limit', '?search=%', '#frag']);
    return path;
  }

  json(depth = 0): unknown {
    const r = this.random();
    if (depth > 3 || r < 0.35) {
      return this.pick<() => unknown>([
        () => null,
        () => true,
        () => false,
        () => this.int(-5, 5),
        () => this.pick([1.5, -0, 1e308, 2 ** 53 + 1, -2147483649, 4294967296]),
        () => this.word(),
        () => this.id(),
        () => new Date(Date.now() + this.int(-1e9, 1e9)).toISOString(),
      ])();
    }
    if (r < 0.55) return Array.from({ length: this.int(0, 6) }, () => this.json(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = this.int(0, 6); i > 0; i--) o[this.chance(0.85) ? this.pick(BODY_KEYS) : this.word()] = this.json(depth + 1);
    return o;
  }

  /** A body the API accepts for this path, so that writes really happen under the fuzz. */
  valid(path: string, page: string): unknown {
    const ids = this.ids();
    const known = (): (string | number)[] => {
      const pool: readonly (string | number)[] = page === 'scheduled' ? ids.schedules : page === 'queued' ? ids.queued : ids.tasks;
      return Array.from({ length: this.int(1, 3) }, () => this.pick(pool)).filter((x) => x !== undefined);
    };
    if (path.startsWith('/api/clusters/actions/')) {
      if (path.endsWith('/stop'))
        return { cluster: this.pick([this.id('successful'), this.word()]), package: this.pick([1, 2, -1, 2 ** 53, this.word()]) };
      return { key: this.pick([...WORDS.slice(0, 30), 'default']) };
    }
    if (path.includes('/actions/')) {
      if (this.chance(0.7)) return { ids: known() };
      return { all: true, cursor: null, filter: this.chance(0.5) ? {} : { search: this.pick(WORDS.slice(0, 30)) } };
    }
    if (path.startsWith('/api/queued/')) return this.pick([{ lock: null }, { key: 'default' }, { lock: new Date().toISOString() }]);
    const type = this.pick(['D', 'I', 'C', 'O', 'M']);
    return {
      name: this.chance(0.5) ? `${this.pick(WORDS.slice(0, 30))}-${this.int(0, 1e6)}` : null,
      func: 'work',
      args: [this.pick(WORDS)],
      kwargs: { note: this.pick(WORDS) },
      scheduleType: type,
      minutes: type === 'I' ? this.int(1, 60) : null,
      cron: type === 'C' ? this.pick(['*/5 * * * *', '0 3 * * 1', '@daily']) : null,
      nextRun: new Date(Date.now() + this.int(-1e8, 1e8)).toISOString(),
      repeats: this.pick([-1, 0, 5]),
      version: this.int(1, 3),
    };
  }

  /** Bodies shaped like the API's (so they reach the actions) or not shaped at all. */
  body(path: string): { text: string | Buffer; large: boolean } {
    const r = this.random();
    const page = PAGES.find((p) => path.includes(`/${p}`)) ?? 'failed';
    if (r < 0.01) return { text: `{"ids":["${'x'.repeat(1024 * 1024 + this.int(1, 5000))}"]}`, large: true };
    if (r < 0.03)
      return {
        text: JSON.stringify({
          name: 'big',
          args: ['y'.repeat(this.int(100_000, 900_000))],
          func: 'work',
          scheduleType: 'D',
          nextRun: new Date().toISOString(),
        }),
        large: false,
      };
    if (r < 0.04) return { text: `${'['.repeat(5_000)}${']'.repeat(5_000)}`, large: false };
    if (r < 0.05) {
      // JSON nested 10,000 deep where the API reads it: JSON.stringify would overflow its stack on it.
      const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
      return {
        text: this.pick([
          `{"name":"deep","func":"work","scheduleType":"D","nextRun":"${new Date().toISOString()}","args":${deep}}`,
          `{"all":true,"cursor":null,"filter":{"search":${deep}}}`,
          `{"ids":${deep}}`,
          `{"key":"default","lock":${deep}}`,
          // The same depth as JSON text, which a schedule's args and kwargs may also be given as.
          `{"name":"deep","func":"work","scheduleType":"D","nextRun":"${new Date().toISOString()}","args":"${deep}"}`,
          `{"name":"deep","func":"work","scheduleType":"D","nextRun":"${new Date().toISOString()}","kwargs":"{\\"a\\":${'['.repeat(5_000)}${']'.repeat(5_000)}}"}`,
        ]),
        large: false,
      };
    }
    if (r < 0.06) {
      // args or kwargs just past the 64 KB argsLimit, in an otherwise valid schedule.
      const big = 'z'.repeat(64 * 1024 + this.int(1, 200_000));
      const field = this.pick(['args', 'kwargs']);
      return {
        text: JSON.stringify({ ...(this.valid('/api/scheduled', 'scheduled') as object), [field]: field === 'args' ? [big] : { big } }),
        large: false,
      };
    }
    if (r < 0.1) {
      return {
        text: this.pick<string | Buffer>([
          '',
          '{',
          '{"ids": [',
          "{'ids': []}",
          'undefined',
          'null',
          '[]',
          '"str"',
          '1',
          '{"ids": [1,]}',
          '\ufeff{}',
          '{"a":1}{"b":2}',
          Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
          Buffer.from('{"name":"\xff"}', 'latin1'),
          '{"__proto__": {"admin": true}}',
        ]),
        large: false,
      };
    }
    if (r < 0.3) return { text: JSON.stringify(this.json()), large: false };
    if (r < 0.6) return { text: JSON.stringify(this.valid(path, page)), large: false };
    let shaped: unknown;
    const s = this.random();
    if (s < 0.35) shaped = { ids: Array.from({ length: this.int(0, 8) }, () => (this.chance(0.8) ? this.id(page) : this.json(3))) };
    else if (s < 0.5)
      shaped = {
        ids: Array.from({ length: this.pick([1_000, 1_001, 5_000]) }, (_, i) =>
          page === 'scheduled' || page === 'queued' ? i : this.id(page),
        ),
      };
    else if (s < 0.7)
      shaped = { all: this.pick([true, true, 'true', 1, false]), filter: this.json(2), cursor: this.chance(0.2) ? this.word() : undefined };
    else if (s < 0.9) {
      shaped = {
        name: this.chance(0.7) ? this.word().slice(0, 120) : this.json(3),
        func: this.pick(['work', 'mail.send', this.word()]),
        args: this.chance(0.8) ? [this.json(2)] : this.json(2),
        kwargs: this.chance(0.8) ? { k: this.json(2) } : this.json(2),
        scheduleType: this.pick(['O', 'I', 'D', 'M', 'C', 'ZZ', this.word()]),
        minutes: this.pick([1, 0, -1, 5, 32768, 1.5, '5', null]),
        repeats: this.pick([-1, 0, 3, 2 ** 31, -(2 ** 31) - 1, 'x', null]),
        nextRun: this.pick([new Date().toISOString(), this.word(), null, 0, 8.64e15 + 1]),
        cron: this.pick([null, '* * * * *', this.word()]),
        cluster: this.pick([null, 'default', this.word()]),
        intendedDateKwarg: this.pick([null, 'at', this.word()]),
        version: this.pick([1, 2, 0, -1, 2 ** 31, '1', null]),
      };
    } else
      shaped = {
        key: this.pick(['default', this.word(), null, 5]),
        lock: this.pick([null, new Date().toISOString(), this.word(), 0, '9999-12-31T23:59:59Z']),
      };
    return { text: JSON.stringify(shaped), large: false };
  }

  query(keys: string[]): string {
    const parts: string[] = [];
    for (const k of keys) {
      if (!this.chance(0.5)) continue;
      const forged = k === 'cursor' ? this.forgedCursor() : ['hour', 'from', 'to'].includes(k) ? this.forgedTime() : null;
      parts.push(`${k}=${this.enc(forged !== null && this.chance(0.6) ? forged : this.word())}`);
    }
    return parts.length ? `?${parts.join('&')}` : '';
  }

  /** A time a list's cursor or date filter could carry: right in shape, wrong on the calendar or past PostgreSQL's range. */
  forgedTime(): string {
    return this.pick([
      '2024-13-45T00:00:00.000000Z',
      '0000-01-01T00:00:00.000000Z',
      '2024-02-30T12:00:00.000000Z',
      '2023-02-29T00:00:00.000000Z',
      '-000001-01-01T00:00:00.000000Z',
      '+275760-09-13T00:00:00.000000Z',
      '9999-12-31T23:30:00.000000Z',
      '2024-01-01T24:00:00.000000Z',
      '2024-01-01T23:60:00.000000Z',
      '2024-01-01T00:00:00.000000+16:00',
      '2024-04-31T00:00:00Z',
      '1970-01-01T00:00:00.000000Z',
    ]);
  }

  /** A cursor as the lists make them (base64url of [time, id] or [id]) around a forged time or id. */
  forgedCursor(): string {
    const id = this.pick([Array.from({ length: 32 }, () => this.pick([...'0123456789abcdef'])).join(''), 7, -1, 2 ** 53, 'x', '']);
    const value = this.chance(0.7) ? [this.forgedTime(), id] : [id];
    return Buffer.from(JSON.stringify(value)).toString('base64url');
  }

  /** A request the client could send, with one or more values gone wrong: it reaches the real work. */
  plausible(): { method: string; path: string } {
    const page = this.pick(PAGES);
    const filters: Record<string, string[]> = {
      successful: ['search', 'group', 'cluster', 'cursor', 'limit', 'hour', 'from', 'to'],
      failed: ['search', 'group', 'cluster', 'cursor', 'limit', 'hour', 'from', 'to'],
      scheduled: ['search', 'type', 'nextRun', 'cluster', 'cursor', 'limit'],
      queued: ['search', 'key', 'cursor', 'limit'],
    };
    const actions: Record<string, string[]> = {
      successful: ['delete', 'resubmit'],
      failed: ['delete', 'resubmit'],
      scheduled: ['delete', 'pause', 'resume', 'run'],
      queued: ['delete', 'release'],
    };
    const r = this.random();
    if (r < 0.25) return { method: 'GET', path: `/api/${page}${this.query(filters[page]!)}` };
    if (r < 0.3) return { method: 'GET', path: `/api/${page}/${this.pick(['count', 'filters'])}${this.query(filters[page]!)}` };
    if (r < 0.35) return { method: 'GET', path: `/api/scheduled/preview${this.query(['scheduleType', 'cron', 'minutes', 'nextRun'])}` };
    if (r < 0.45) return { method: 'GET', path: `/api/${page}/${this.enc(this.id(page))}` };
    if (r < 0.5) return { method: 'GET', path: `/api/${page}/${this.enc(this.id(page))}/field/${this.pick(FIELDS)}` };
    if (r < 0.75) return { method: 'POST', path: `/api/${page}/actions/${this.pick(actions[page]!)}` };
    if (r < 0.85) return { method: 'POST', path: '/api/scheduled' };
    if (r < 0.93) return { method: 'PUT', path: `/api/scheduled/${this.enc(this.id('scheduled'))}` };
    if (r < 0.97) {
      if (this.chance(0.3)) return { method: 'GET', path: this.pick(['/api/clusters', '/api/health']) };
      return { method: 'POST', path: `/api/clusters/actions/${this.pick(['pause', 'resume', 'stop'])}` };
    }
    return { method: 'PATCH', path: `/api/queued/${this.enc(this.id('queued'))}` };
  }

  next(): FuzzRequest {
    const shaped = this.chance(0.5) ? this.plausible() : null;
    const method =
      shaped?.method ??
      this.pick(['GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE']);
    const path = shaped?.path ?? this.path();
    const headers: Record<string, string> = {};
    const mutation = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method);
    let hostile = false;
    const o = this.random() * (shaped ? 0.6 : 1);
    if (o < 0.2) headers.origin = `http://${this.host}`;
    else if (o < 0.22) headers.origin = `HTTP://${this.host.toUpperCase()}`;
    else if (o < 0.32) {
      headers.origin = this.pick(HOSTILE_ORIGINS).replace('{port}', this.host.split(':')[1]!);
      hostile = true;
    }
    const f = this.random() * (shaped ? 0.5 : 1);
    if (f < 0.2) {
      // Browsers set Sec-Fetch-Site and pages cannot forge it: same-origin is trusted whatever
      // Origin says, since a proxy that rewrites Host makes a same-origin Origin look foreign.
      headers['sec-fetch-site'] = 'same-origin';
      hostile = false;
    } else if (f < 0.3) {
      headers['sec-fetch-site'] = this.pick(HOSTILE_SITES);
      hostile = true;
    }
    const t = this.random() * (shaped ? 0.8 : 1);
    if (t < 0.7) headers['content-type'] = 'application/json';
    else if (t < 0.75) headers['content-type'] = 'application/json; charset=utf-8';
    else if (t < 0.8)
      headers['content-type'] = this.pick([
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'APPLICATION/JSON',
        'application/json, text/html',
        'application/jsonx',
        '',
      ]);
    if (this.chance(0.2))
      headers['accept-encoding'] = this.pick(['gzip', 'br', 'gzip, br', 'identity', '*', 'br;q=0', 'deflate', 'x'.repeat(200)]);
    if (this.chance(0.05)) headers['if-none-match'] = this.pick(['*', '"x"', 'W/"abc"', 'x'.repeat(500), '""']);
    if (this.chance(0.05)) headers['x-forwarded-prefix'] = this.pick(['/../', '/admin', '%2e%2e']);
    const port = this.host.split(':')[1]!;
    let tokenless = false;
    const k = this.random();
    if (k < 0.75) headers.authorization = `Bearer ${TEST_TOKEN}`;
    else if (k < 0.85) headers.cookie = `${this.pick(['', 'theme=dark; '])}ormq_admin=${TEST_TOKEN}`;
    else {
      tokenless = true;
      if (k < 0.9)
        headers.authorization = this.pick([
          'Bearer',
          'Bearer ',
          `Bearer ${TEST_TOKEN}x`,
          `Basic ${TEST_TOKEN}`,
          `Bearer ${TEST_TOKEN.slice(1)}`,
          `Bearer ${TEST_TOKEN} ${TEST_TOKEN}`,
        ]);
      else if (k < 0.93)
        headers.cookie = this.pick([
          `ormq_admin=${TEST_TOKEN.toUpperCase()}`,
          'ormq_admin=',
          `xormq_admin=${TEST_TOKEN}`,
          `ormq_admin="${TEST_TOKEN}"`,
        ]);
      // A forwarder on this machine (nginx's plain proxy_pass, socat, an ssh tunnel): a loopback Host, no forwarding header.
      else headers.host = this.pick([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
    }
    if (this.chance(0.03)) headers.cookie = `${headers.cookie ? `${headers.cookie}; ` : ''}session=${'z'.repeat(this.int(10, 4000))}`;
    if (this.chance(0.06)) {
      headers.host = this.pick(SPOOFED_HOSTS).replace('{port}', port);
      // An Origin naming the Host the request itself sends is what a browser sends to a page served
      // under that name (DNS rebinding): same-origin by its headers, and refusing the foreign Host
      // is the token's part (the locked admin: no cookie is sent to that name), or authorize's, or
      // allowedHosts'.
      if (
        headers.origin !== undefined &&
        headers['sec-fetch-site'] === undefined &&
        originHost(headers.origin) === headers.host.toLowerCase()
      )
        hostile = false;
    }
    // A proxy's headers prove nothing either way: with the token the request is served.
    if (this.chance(0.04)) Object.assign(headers, this.pick(PROXY_HEADERS));
    let oversized = false;
    if (this.chance(0.005)) {
      headers['x-huge'] = 'h'.repeat(20_000);
      oversized = true;
    }
    let body: Buffer | undefined;
    let large = false;
    if (mutation || this.chance(0.05)) {
      const b = this.body(path);
      body = typeof b.text === 'string' ? Buffer.from(b.text) : b.text;
      large = b.large;
      // node:http sends a DELETE or GET body unframed unless told its length.
      if (this.chance(0.95)) headers['content-length'] = String(body.length);
      else headers['transfer-encoding'] = 'chunked';
    }
    // Node refuses a request whose head passes 16 KB (431) before the admin sees it.
    const head = path.length + Object.entries(headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
    // The origin check comes before everything else the admin does, on every path.
    return { method, path, headers, body, hostile: hostile && mutation, oversized: oversized || head > 15_000, large, tokenless };
  }
}

/** Sends one request exactly as built; resolves with the answer or rejects with the socket error. */
export function send(base: URL, agent: Agent, r: FuzzRequest, timeoutMs = 60_000): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: base.hostname, port: base.port, path: r.path, method: r.method, headers: r.headers, agent, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

/**
 * How long the event loop was held up, by monitorEventLoopDelay, and how much of each hold-up this
 * process spent computing (its CPU time over the same interval): a synchronous check that runs for
 * 200 ms shows as 200 ms of both, while a process waiting for a core on a busy machine shows a long
 * delay with little CPU time in it.
 */
export class LoopMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private timer: NodeJS.Timeout | undefined;
  private loads: number[] = [];
  /** The most CPU time, in ms, spent within one interval that was late by more than 20 ms. */
  busiest = 0;
  /** Time this process spent making requests (not serving them) since the last tick. */
  private own = 0;
  /** The longest a tick was late, less the time spent making requests meanwhile. */
  private worst = 0;

  start(): void {
    this.histogram.enable();
    this.own = 0;
    const every = 10;
    let at = performance.now();
    let cpu = process.cpuUsage();
    this.timer = setInterval(() => {
      const now = performance.now();
      const used = process.cpuUsage(cpu);
      const late = now - at - every;
      if (late > 20) this.busiest = Math.max(this.busiest, Math.min(late, (used.user + used.system) / 1000) - this.own);
      this.worst = Math.max(this.worst, late - this.own);
      this.own = 0;
      at = now;
      cpu = process.cpuUsage();
      if (this.loads.length < 1000 && Math.random() < 0.01) this.loads.push(loadavg()[0]!);
    }, every);
  }

  /**
   * Makes a request outside the measure: building a megabyte of random body is the load generator's
   * computing, which shares this loop with the handlers but is not theirs.
   */
  generate<T>(make: () => T): T {
    const start = performance.now();
    try {
      return make();
    } finally {
      this.own += performance.now() - start;
    }
  }

  stop(): void {
    this.histogram.disable();
    clearInterval(this.timer);
    this.loads.push(loadavg()[0]!);
  }

  get p99(): number {
    return this.histogram.percentile(99) / 1e6;
  }
  /** The longest hold-up of the loop by anything but making requests, to the monitor's 10 ms resolution. */
  get max(): number {
    return this.worst;
  }
  /** The highest 1-minute load average seen during the run. */
  get load(): number {
    return Math.max(...this.loads);
  }
  /** More runnable processes than cores at some point of the run. */
  get oversubscribed(): boolean {
    return this.load > availableParallelism();
  }
}
