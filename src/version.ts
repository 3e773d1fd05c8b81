/** ormq's own version, from its package.json: the heartbeat writes it, the CLI prints it. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** ormq's own version, read once: from src or dist/src the package root is a folder or two up. */
function ownVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ormq' && typeof pkg.version === 'string') return pkg.version.slice(0, 50);
    } catch {
      // not here: one folder up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

export const VERSION = ownVersion();
