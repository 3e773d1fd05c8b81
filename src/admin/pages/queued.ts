/**
 * Queued tasks: the ORM broker's packages, newest first. For development and for unsticking a
 * queue: edit a package's key (which cluster runs it), its lock (release it) and when it may run
 * (delay it), or delete it.
 * Each change wakes the clusters listening for the package's key.
 */
import type { SqlEntityManager } from '@mikro-orm/postgresql';
import { responding } from '../../liveness.js';
import { wakeKeys } from '../../producer.js';
import { cancelPackages } from '../../cancel.js';
import { parseDate } from '../../validate.js';
import { PRIORITY_MESSAGE, priorityError } from '../../queue-order.js';
import { badRequest, isPlainObject, notFound } from '../http.js';
import { likePattern, textFilter, Where } from '../filters.js';
import { distinctValues, iso, keysetList, type Keyset } from '../list.js';
import { headFields, jsonHead } from '../fields.js';
import { searchBound, withinNewest } from '../search.js';
import { writeLog } from '../log.js';
import { changed, DELETE, type Action, type Page, type RequestContext } from '../page.js';
import { db } from '../../db/run.js';
import { priorities, waitsBehind } from '../claim-order.js';

const KEYSET: Keyset = { id: 'id', dir: 'desc', idKind: 'int' };
const JSON_FIELDS = ['payload'] as const;
/**
 * Locked by a cluster process that no longer beats (killed, or its machine gone): nothing runs it
 * until its lock expires and a live cluster of its key claims it again, or it is released here.
 */
const STUCK = `(lock is not null and locked_by is not null and not exists (
  select 1 from ormq_cluster c where c.id = ormq_queued.locked_by and ${responding('c')}))`;
/** The process holding a package's lock, and the retry after which its lock expires. */
const HOLDER = `(select jsonb_build_object('name', c.name, 'host', c.host, 'pid', c.pid, 'retry', c.config->'retry')
  from ormq_cluster c where c.id = ormq_queued.locked_by) as holder`;
const LIST_COLUMNS = `id, key, priority, serial, lock, run_at, payload->>'id' as task_id, payload->>'name' as name, payload->>'func' as func, payload->>'group' as "group",
  left(payload->>'enqueued', 40) as enqueued, ${HOLDER}, ${STUCK} as stuck`;

type Row = Record<string, unknown>;

/**
 * `retry`: the admin's, for a lock no known process holds (one set by hand, or its process
 * forgotten); a claim's lock expires after its process's own retry.
 */
function toListRow(r: Row, retry: number): Row {
  const holder = r.holder as { name: string; host: string; pid: number; retry: unknown } | null;
  const enqueued = typeof r.enqueued === 'string' ? Date.parse(r.enqueued) : NaN;
  const lock = iso(r.lock);
  const seconds = typeof holder?.retry === 'number' && holder.retry > 0 ? holder.retry : retry;
  return {
    id: Number(r.id),
    key: r.key,
    priority: Number(r.priority ?? 0),
    serial: r.serial ?? null,
    lock,
    lockExpires: lock && new Date(Date.parse(lock) + seconds * 1000).toISOString(),
    lockedBy: holder && `${holder.name} (${holder.host} pid ${holder.pid})`,
    runAt: iso(r.run_at),
    enqueued: Number.isNaN(enqueued) ? null : new Date(enqueued).toISOString(),
    taskId: r.task_id ?? null,
    name: r.name ?? null,
    func: r.func ?? null,
    group: r.group ?? null,
    stuck: r.stuck === true,
  };
}

function parseQueuedId(raw: unknown): number | null {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

function where(filter: Record<string, unknown>): Where {
  const w = new Where();
  const key = textFilter(filter, 'key', 100);
  const search = textFilter(filter, 'search');
  const stuck = textFilter(filter, 'stuck', 3);
  if (stuck !== null && stuck !== 'yes') throw badRequest('stuck must be "yes" (or absent)', { stuck: 'must be "yes"' });
  if (key !== null) w.add('key = ?', key);
  const priority = textFilter(filter, 'priority', 11);
  if (priority !== null) {
    if (priorityError(Number(priority)) || !/^-?\d+$/.test(priority))
      throw badRequest(`priority ${PRIORITY_MESSAGE}`, { priority: PRIORITY_MESSAGE });
    w.add('priority = ?', Number(priority));
  }
  if (stuck !== null) w.add(STUCK);
  if (search !== null) {
    // No index serves it: every search is looked for in the newest packages.
    const p = likePattern(search);
    w.search(
      ...withinNewest('ormq_queued', KEYSET, new Where(), 'payload', [`(n.payload->>'name' ilike ? or n.payload->>'func' ilike ?)`, p, p]),
    );
  }
  return w;
}

const describe = (r: Row) => JSON.stringify(r.name ?? r.id);

/** What the actions read: the name alone out of a payload that may be large. */
const ACTION_COLUMNS = `id, key, lock, left(payload->>'name', 100) as name`;

const actions: Record<string, Action> = {
  release: {
    label: 'Release',
    past: 'Released',
    pending: 'lock is not null',
    converges: true,
    columns: ACTION_COLUMNS,
    async apply(tx, rows) {
      await db(tx).query('update ormq_queued set lock = null where id in (?)', [rows.map((r) => Number(r.id))]);
      await wakeKeys(
        tx,
        rows.map((r) => r.key),
      );
      return rows.map((r) => ({
        action: 'release',
        page: 'queued',
        objectId: Number(r.id),
        summary: `Released ${describe(r)} (lock was ${iso(r.lock)})`,
      }));
    },
  },
  delete: {
    ...DELETE,
    converges: true,
    columns: ACTION_COLUMNS,
    async apply(tx, rows, ctx) {
      // A package a live process runs is stopped there too, as `cancel` stops it: its work ends with it.
      const { stopping } = await cancelPackages(
        tx,
        rows.map((r) => Number(r.id)),
        { by: await ctx.actor(), fromCode: false, deleteRunning: true },
      );
      const stopped = new Set(stopping.map((p) => p.id));
      return rows.map((r) => ({
        action: 'delete',
        page: 'queued',
        objectId: Number(r.id),
        summary: `Deleted package ${describe(r)} from queue ${JSON.stringify(r.key)}${stopped.has(Number(r.id)) ? ' and asked the process running it to stop it' : ''}`,
      }));
    },
  },
};

async function findOne(em: SqlEntityManager, id: number): Promise<Row | undefined> {
  return (await db(em).query(`select ${LIST_COLUMNS}, ${jsonHead('payload', 'payload')} from ormq_queued where id = ?`, [id]))[0];
}

/** The package with its payload, cut to a preview when it is large. */
function toDetail(r: Row, retry: number) {
  const { values, truncated } = headFields(r, JSON_FIELDS);
  return { object: { ...toListRow(r, retry), ...values }, truncated };
}

/**
 * The permissions a PATCH needs: clearing the lock releases the package, and so does a lock set to
 * a time already past (the claim takes it at once); anything else edits it.
 */
function queuedEditActions(body: unknown): ('edit' | 'release')[] {
  if (!isPlainObject(body)) return ['edit'];
  const actions = new Set<'edit' | 'release'>();
  if (body.lock === null || (typeof body.lock === 'string' && Date.parse(body.lock) <= Date.now())) actions.add('release');
  for (const k of Object.keys(body)) if (!(k === 'lock' && body.lock === null)) actions.add('edit');
  return actions.size ? [...actions] : ['edit'];
}

export const queued: Page = {
  id: 'queued',
  labels: { ...actions, edit: { label: 'Edit', past: 'Saved' } },
  routes: {
    ':id': {
      method: 'PATCH',
      // Clearing a lock is a release, whoever asks for it through an edit.
      access: ({ body }) => queuedEditActions(body).map((action) => ({ page: 'queued', action })),
      accessReadsBody: [
        { page: 'queued', action: 'edit' },
        { page: 'queued', action: 'release' },
      ],
      run: async (ctx, { id, body }) => ({ status: 200, body: await changed(ctx, 'queued', await editQueued(ctx, id as number, body)) }),
    },
  },
  table: 'ormq_queued',
  keyset: KEYSET,
  actionColumns: ACTION_COLUMNS,
  parseId: parseQueuedId,
  where,
  jsonFields: JSON_FIELDS,

  async list(ctx, query) {
    const page = await keysetList(ctx.em, query, {
      table: 'ormq_queued',
      keyset: KEYSET,
      select: `select ${LIST_COLUMNS} from ormq_queued`,
      where: () => where(query),
      toRow: (r) => toListRow(r, ctx.options.retry),
    });
    return textFilter(query, 'search') === null
      ? page
      : { ...page, searchBound: searchBound('queued tasks', 'queued tasks have no search index') };
  },

  async filters(ctx) {
    return { key: await distinctValues(ctx.em, 'ormq_queued', 'key', new Where()), priority: await priorities(ctx.em) };
  },

  async detail(ctx, id) {
    const r = await findOne(ctx.em, Number(id));
    if (!r) return null;
    const detail = toDetail(r, ctx.options.retry);
    // a failure the cluster is retrying: its row on Failed tasks, with the attempts so far
    const [failure] =
      r.task_id && (await ctx.can('failed', 'view'))
        ? await db(ctx.em).query('select name, attempt_count from ormq_task where id = ? and not success', [r.task_id])
        : [];
    const retrying = failure ? { taskId: r.task_id, name: failure.name, attempts: Number(failure.attempt_count) } : null;
    return { ...detail, extra: { retrying, waitsBehind: await waitsBehind(ctx.em, r) } };
  },

  actions,
};

/**
 * PATCH: `key` (non-empty, ≤ 100), `lock` (an ISO date, or null to release) and `runAt` (an ISO
 * date: not claimed before then, the field `enqueue`'s runAt and delay set; null: at once).
 */
async function editQueued(ctx: RequestContext, id: number, body: unknown): Promise<Row> {
  if (!isPlainObject(body)) throw badRequest('Body must be an object with key, lock and/or runAt', { body: 'must be an object' });
  const fields: Record<string, string> = {};
  for (const k of Object.keys(body))
    if (!['key', 'lock', 'runAt', 'priority'].includes(k)) fields[k] = 'cannot be edited (only key, lock, runAt and priority)';
  const priority = body.priority;
  if (priority !== undefined && priorityError(priority)) fields.priority = PRIORITY_MESSAGE;
  let key: string | undefined;
  if (body.key !== undefined) {
    if (typeof body.key !== 'string' || body.key.trim() === '') fields.key = 'must be a non-empty string';
    else if (body.key.trim().length > 100) fields.key = 'must be at most 100 characters';
    else key = body.key.trim();
  }
  /** A date, or null to clear it; undefined when absent or wrong (then `fields` says why). */
  const dateOrNull = (name: 'lock' | 'runAt', cleared: string): Date | null | undefined => {
    const v = body[name];
    if (v === undefined || v === null) return v;
    const d = typeof v === 'string' ? parseDate(v) : null;
    if (!d) fields[name] = `must be an ISO date and time from year 1 to 9999, or null to ${cleared}`;
    return d ?? undefined;
  };
  const lock = dateOrNull('lock', 'release');
  const runAt = dateOrNull('runAt', 'run at once');
  if (Object.keys(fields).length)
    throw badRequest(
      `Invalid package: ${Object.entries(fields)
        .map(([f, m]) => `${f}: ${m}`)
        .join('; ')}`,
      fields,
    );
  if (key === undefined && lock === undefined && runAt === undefined && priority === undefined) {
    throw badRequest('Nothing to change: give key, lock, runAt and/or priority', { key: 'or lock, runAt or priority is required' });
  }
  const actor = await ctx.actor();
  return ctx.em.transactional(async (em) => {
    const tx = em as SqlEntityManager;
    const before = (await db(tx).query(`select ${ACTION_COLUMNS} from ormq_queued where id = ? for update`, [id]))[0];
    if (!before) throw notFound(`Queued package ${id} does not exist`);
    const sets: string[] = [];
    const params: unknown[] = [];
    const said: string[] = [];
    if (key !== undefined) {
      sets.push('key = ?');
      params.push(key);
      said.push(`key ${JSON.stringify(before.key)} → ${JSON.stringify(key)}`);
    }
    if (lock !== undefined) {
      // A lock set by hand is a delay, not a claim: no process holds it.
      sets.push('lock = ?, locked_by = null');
      params.push(lock === null ? null : lock.toISOString());
      said.push(lock === null ? 'released (lock cleared)' : `lock → ${lock.toISOString()}`);
    }
    if (runAt !== undefined) {
      sets.push('run_at = ?');
      params.push(runAt === null ? null : runAt.toISOString());
      said.push(runAt === null ? 'runs at once (delay cleared)' : `waits until ${runAt.toISOString()}`);
    }
    if (priority !== undefined) {
      sets.push('priority = ?');
      params.push(priority);
      said.push(`priority → ${priority}`);
    }
    await db(tx).query(`update ormq_queued set ${sets.join(', ')} where id = ?`, [...params, id]);
    await wakeKeys(tx, [key ?? before.key]);
    await writeLog(tx, actor, [
      {
        action: lock === null && key === undefined && runAt === undefined ? 'release' : 'edit',
        page: 'queued',
        objectId: id,
        summary: `${describe(before)}: ${said.join(', ')}`,
      },
    ]);
    return toDetail((await findOne(tx, id))!, ctx.options.retry).object;
  });
}
