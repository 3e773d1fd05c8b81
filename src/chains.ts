/**
 * Chains (Django Q's `async_chain`): tasks that run one after another, each enqueued only when the
 * one before it has succeeded. The first step's package carries the steps after it
 * (`TaskPackage.chain`), so the whole chain is written by one insert and nothing else: there is no
 * chain row to keep in step with the queue. When a step succeeds, the cluster enqueues the next
 * one through `insertPackages` in the transaction that saves and acks the step
 * (src/cluster/flows.ts); when a step fails for good, the chain stops there and the saved failure
 * says so. Every step's id is made up front, so each step's task row can link to the others.
 */
import type { EntityManager } from '@mikro-orm/core';
import { buildTasks, insertPackages, type BuiltPackage, type TaskSpec } from './producer.js';
import type { ChainPlace, NextStep, StoredPackage } from './rows.js';
import { inSchema, schemaOf } from './table-names.js';
import { isPlainObject, ValidationError } from './validate.js';

/** Longest chain: each step's package carries the ones after it, and each saved step lists every id. */
export const MAX_CHAIN_STEPS = 100;

export interface ChainOptions {
  /** The group of every step that names none of its own. */
  group?: string;
  /** The schema of ormq's tables; default the ORM's `schema` option. */
  schema?: string;
}

/** A step not enqueued yet, as the package before it carries it. */
function nextStepOf(b: BuiltPackage): NextStep {
  const step: NextStep = { key: b.key, payload: b.payload };
  if (b.runAt instanceof Date) step.runAt = b.runAt.toISOString();
  else if (typeof b.runAt === 'number') step.delay = b.runAt;
  if (b.priority !== undefined) step.priority = b.priority;
  if (b.serial !== undefined) step.serial = b.serial;
  return step;
}

/**
 * The package of step `place.step`, carrying the steps after it. Keyed by its id, which ormq made or
 * the caller gave: the admin finds a chain's queued step by it, and a step is never queued twice.
 */
export function chainStep(step: NextStep, place: Omit<ChainPlace, 'stopped'>, rest: NextStep[]): BuiltPackage {
  const payload: StoredPackage = { ...step.payload, chain: { ...place, rest } };
  const runAt = step.runAt !== undefined ? new Date(step.runAt) : (step.delay ?? null);
  const order = {
    ...(step.priority !== undefined && { priority: step.priority }),
    ...(step.serial !== undefined && { serial: step.serial }),
  };
  return { key: step.key, payload, runAt, keyed: true, ...order };
}

/** "chain stopped at step 2 of 5", as the failed step's result and the admin say it. */
export const stoppedAt = (place: Pick<ChainPlace, 'step' | 'steps'>) => `chain stopped at step ${place.step} of ${place.steps}`;

/**
 * Enqueues a chain: step 1 now, each later step once the one before it has succeeded. Each step is
 * `{ func, args?, …enqueue's options }` (its `delay` counts from when it is enqueued; its `priority`
 * and `serial` order its claim as enqueue's do, once it is enqueued). Returns the
 * steps' task ids, in order. A final failure (its retries spent) stops the chain: the steps after
 * it are never enqueued, and the failed step's result gets `chain: "chain stopped at step 2 of 5"`.
 * Every step is checked first: a bad one throws a ValidationError naming it (`steps[2].func`), and
 * nothing is written.
 */
export async function enqueueChain(em: EntityManager, steps: readonly TaskSpec[], options: ChainOptions = {}): Promise<string[]> {
  if (!Array.isArray(steps) || steps.length === 0)
    throw new ValidationError({ steps: 'must be a non-empty array of { func, args?, …options }' }, 'chain');
  if (steps.length > MAX_CHAIN_STEPS)
    throw new ValidationError({ steps: `must hold at most ${MAX_CHAIN_STEPS} steps, got ${steps.length}` }, 'chain');
  if (!isPlainObject(options as unknown)) throw new ValidationError({ options: 'must be an object' }, 'chain');
  const group: unknown = options.group;
  if (group !== undefined && (typeof group !== 'string' || group === '' || group.length > 100)) {
    throw new ValidationError({ group: 'must be a non-empty string of at most 100 characters' }, 'chain');
  }
  const specs = group === undefined ? steps : steps.map((s) => (isPlainObject(s) && s.group == null ? { ...s, group } : s));
  const { built } = buildTasks(specs, 'steps');
  const ids = built.map((b) => b.payload.id);
  if (new Set(ids).size !== ids.length) throw new ValidationError({ steps: 'must not give two steps the same id' }, 'chain');
  const [first, ...rest] = built.map(nextStepOf);
  const pkg = chainStep(first!, { id: ids[0]!, step: 1, steps: ids.length, ids }, rest);
  await insertPackages(inSchema(em, schemaOf(em, options.schema)), [pkg]);
  return ids;
}
