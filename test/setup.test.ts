/**
 * test/setup.ts, `npm test`'s first step, run as a real child process where it cannot install:
 * an unprivileged user, on a machine where PgBouncer is missing. The machine is this one, seen
 * through a mount namespace of the child's own with an empty folder over /usr/sbin (where
 * PgBouncer is), and a user namespace that makes the child `nobody`; nothing outside it changes.
 * Both namespaces need no privileges (Debian allows unprivileged user namespaces), so this runs as
 * root, as CI does, or as anyone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));
const NOBODY = '65534';

const Setup = suite('npm test set-up (test/setup.ts)');

Setup('where something is missing and it cannot install, it names what to install and exits 1', () => {
  const hideSbin =
    'mount -t tmpfs tmpfs /usr/sbin && exec unshare --user --map-user=$NOBODY --map-group=$NOBODY "$NODE" --import tsx test/setup.ts';
  const run = spawnSync('unshare', ['--user', '--map-root-user', '--mount', '--propagation', 'private', 'sh', '-c', hideSbin], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', HOME: '/tmp', NOBODY, NODE: process.execPath },
    timeout: 60_000,
  });
  assert.is(run.error, undefined, `could not start the child: ${run.error?.message}`);
  assert.is(run.status, 1, `exit code; stdout: ${run.stdout}; stderr: ${run.stderr}`);
  assert.match(run.stderr, 'pgbouncer (the pooling tests), which this machine lacks');
  assert.match(run.stderr, /Install (it|them) \(Debian, Ubuntu: sudo apt-get install (chromium )?pgbouncer\) and run npm test again\./);
  if (existsSync('/usr/bin/chromium')) assert.not.match(run.stderr, 'chromium', 'only what is missing is named');
  assert.not.match(run.stdout, 'Installing', 'it did not try to install');
});

Setup.run();
