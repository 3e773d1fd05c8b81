import pg from 'pg';
import * as assert from 'uvu/assert';
import { ACK, COMPLETE, RELEASE } from '../src/cluster/sql.js';
import { sql } from './helpers/db.js';
import { CLEAR_QUEUE, dbSuite } from './helpers/suites.js';

const P = dbSuite('completion statements: plans that stay on the primary key', { clear: CLEAR_QUEUE });

type Node = Record<string, unknown> & { Plans?: Node[] };
const all = (n: Node): Node[] => [n, ...(n.Plans ?? []).flatMap(all)];

// The statistics of a queue analysed while its whole backlog waits say no package is locked by
// anyone, so `locked_by = $process` looks like it matches nothing. A prepared statement's generic
// plan (what a cluster runs from its sixth completion on) must still find the batch through the
// primary key: with the sequential scan that estimate invites, each 500-task completion compared
// every queued row with every result (2.3 s at 4,500 waiting packages).
for (const waiting of [5_000, 100_000]) {
  P(
    `COMPLETE, ACK and RELEASE read ormq_queued by its primary key beside ${waiting.toLocaleString('en')} waiting packages`,
    async ({ orm }) => {
      await sql(
        orm,
        `insert into ormq_queued (key, payload)
       select 'default', jsonb_build_object('id', md5(i::text), 'name', 'n', 'func', 'work', 'args', '[]'::jsonb, 'enqueued', now())
       from generate_series(1, ${waiting}) i`,
      );
      await sql(orm, 'analyze ormq_queued');
      const client = new pg.Client({ connectionString: orm.config.get('clientUrl') });
      await client.connect();
      try {
        await client.query('set plan_cache_mode = force_generic_plan');
        const process = 'p'.repeat(32);
        const input = JSON.stringify(
          Array.from({ length: 500 }, (_, i) => ({
            qid: i + 1,
            lock: 1,
            id: String(i),
            name: 'n',
            func: 'work',
            success: true,
            save: true,
          })),
        );
        const ids = `{${Array.from({ length: 500 }, (_, i) => i + 1).join(',')}}`;
        const statements: [string, string, unknown[]][] = [
          ['COMPLETE', COMPLETE.text, [input, false, 0, '[]', process, 60]],
          ['ACK', ACK.text, [ids, '[]', '{1}', process]],
          ['RELEASE', RELEASE.text, [ids, ids, process]],
        ];
        for (const [name, text, values] of statements) {
          await client.query(`prepare s as ${text}`);
          try {
            const args = values.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ');
            const { rows } = await client.query(`explain (format json) execute s(${args})`);
            const root = rows[0]['QUERY PLAN'][0].Plan as Node;
            const scans = all(root).filter((n) => n['Relation Name'] === 'ormq_queued' && /Scan/.test(n['Node Type'] as string));
            const read = scans.map((s) => `${s['Node Type']} ${s['Index Name'] ?? ''}`.trim());
            assert.ok(read.length > 0, `${name}: no scan of ormq_queued`);
            assert.equal(
              read,
              read.map(() => 'Index Scan ormq_queued_pkey'),
              `${name} reads ormq_queued by ${read.join(', ')}`,
            );
          } finally {
            await client.query('deallocate s');
          }
        }
      } finally {
        await client.end();
      }
    },
  );
}

P.run();
