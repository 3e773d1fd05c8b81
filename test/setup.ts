/**
 * Before `npm test`: the programs the suites drive besides Node's packages, Debian's Chromium (the
 * browser tests), PgBouncer (the pooling tests) and PostgreSQL's server programs with
 * pg_basebackup (the read-replica test, which makes a primary and a replica of its own). A missing
 * one is installed with apt-get when this runs as root on Debian; otherwise it names what to
 * install and fails, so no suite is ever skipped for want of it. The other suites' PostgreSQL needs
 * nothing here: without DATABASE_URL the runner starts an embedded one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { postgresBin } from './helpers/replica.js';

const NEEDED = [
  { pkg: 'chromium', found: () => existsSync('/usr/bin/chromium'), for: 'the browser tests' },
  { pkg: 'pgbouncer', found: () => ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].some((p) => existsSync(p)), for: 'the pooling tests' },
  { pkg: 'postgresql', found: () => postgresBin() !== null, for: 'the read-replica test' },
];

const missing = NEEDED.filter((n) => !n.found());
if (missing.length) {
  const names = missing.map((m) => m.pkg);
  const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (!canInstall) {
    console.error(
      `npm test needs ${missing.map((m) => `${m.pkg} (${m.for})`).join(' and ')}, which this machine lacks.\n` +
        `Install ${names.length > 1 ? 'them' : 'it'} (Debian, Ubuntu: sudo apt-get install ${names.join(' ')}) and run npm test again.`,
    );
    process.exit(1);
  }
  console.log(`Installing ${names.join(' and ')} with apt-get for ${missing.map((m) => m.for).join(' and ')}…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const install = spawnSync('apt-get', ['install', '-y', '-qq', ...names], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const still = missing.filter((n) => !n.found());
  if (install.status !== 0 || still.length) {
    console.error(
      `apt-get could not install ${still.map((m) => m.pkg).join(' and ') || names.join(' and ')}; npm test cannot run every suite without them.`,
    );
    process.exit(1);
  }
}
