/**
 * The admin client as a browser sees it: the JS + CSS bytes a first visit downloads, and how long
 * headless Chromium takes from navigation start to the first row of the Failed tasks list.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';
import { queueAdmin } from '../src/index.js';
import { seedAdmin } from './admin.js';
import type { BenchContext, Section } from './run.js';

const DIST = fileURLToPath(new URL('../client/dist/', import.meta.url));
const LOADS = 7;

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Set before any page script runs: when the first list row is inserted, the next frame's time. */
const FIRST_ROW_PROBE = `
  new MutationObserver((_, observer) => {
    if (!document.querySelector('tbody tr')) return;
    observer.disconnect();
    requestAnimationFrame(() => { window.__firstRow = performance.now(); });
  }).observe(document, { childList: true, subtree: true });
`;

interface Load {
  ms: number;
  files: string[];
}

async function loadFailed(browser: Browser, url: string): Promise<Load> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.addInitScript(FIRST_ROW_PROBE);
    const files: string[] = [];
    page.on('response', (r) => {
      const name = new URL(r.url()).pathname.split('/').pop() ?? '';
      if (/\.(js|css)$/.test(name)) files.push(name);
    });
    await page.goto(url);
    await page.waitForSelector('tbody tr', { state: 'visible' });
    const ms = await page
      .waitForFunction(() => (window as { __firstRow?: number }).__firstRow)
      .then((h) => h.jsonValue() as Promise<number>);
    return { ms, files };
  } finally {
    await context.close();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function run(ctx: BenchContext): Promise<Section> {
  const rows: Section['rows'] = [];
  const notes: string[] = [];
  const seeded = await seedAdmin(ctx);
  const handler = queueAdmin(seeded.orm, { authorize: () => true });
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  let loadBefore: number | undefined;
  try {
    const size = (files: string[]) => {
      let raw = 0;
      let gz = 0;
      let br = 0;
      for (const f of new Set(files)) {
        const body = readFileSync(join(DIST, f));
        raw += body.length;
        gz += gzipSync(body, { level: 9 }).length;
        br += brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }).length;
      }
      return { bytes: raw, gzip: gz, brotli: br };
    };
    // After a seed of its own (when the admin section did not run), before the first load.
    loadBefore = await ctx.settle();
    // One load to warm the server and the database the way a running admin has them.
    await loadFailed(browser, `${base}#/failed`);
    const loads: Load[] = [];
    for (let i = 0; i < LOADS; i++) loads.push(await loadFailed(browser, `${base}#/failed`));
    // The table takes its columns from the first row: every row has them all.
    const row = (r: Section['rows'][number]) => ({
      measure: '',
      files: null,
      bytes: null,
      gzip: null,
      brotli: null,
      'median ms': null,
      'min ms': null,
      'max ms': null,
      ...r,
    });
    const bytes = (label: string, files: string[]) =>
      row({ measure: `${label}: JS + CSS of a first visit`, files: new Set(files).size, ...size(files) });
    rows.push(bytes('Failed tasks', loads[0]!.files));
    // The overview is the entry page: the shell without a list page's chunk.
    const entry = await browser.newContext();
    const overviewFiles: string[] = [];
    const page = await entry.newPage();
    page.on('response', (r) => {
      const name = new URL(r.url()).pathname.split('/').pop() ?? '';
      if (/\.(js|css)$/.test(name)) overviewFiles.push(name);
    });
    await page.goto(base, { waitUntil: 'networkidle' });
    await entry.close();
    rows.push(bytes('Overview', overviewFiles));
    const ms = loads.map((l) => l.ms);
    rows.push(
      row({
        measure: 'Failed tasks: navigation start → first row painted',
        'median ms': Math.round(median(ms)),
        'min ms': Math.round(Math.min(...ms)),
        'max ms': Math.round(Math.max(...ms)),
      }),
    );
    notes.push(
      `Headless Chromium (${browser.version()}) on loopback, a new browser context (empty cache) per load, ${LOADS} loads after one warm-up; ` +
        `the admin on node:http over the seeded database (${seeded.sizes.failures.toLocaleString('en')} failures). ` +
        'Bytes: the .js and .css files the page fetched, compressed as the server serves them (gzip level 9, brotli 11; Chromium gets brotli). ' +
        "First row: a MutationObserver installed before the page's scripts notes the first table row; the time is taken in the next animation frame, from performance.timeOrigin.",
    );
  } finally {
    await browser.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await seeded.orm.close(true);
  }
  return { title: 'Client', rows, notes, loadBefore };
}
