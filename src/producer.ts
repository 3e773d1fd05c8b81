/**
 * The host's way into the queue: `enqueue` and `enqueueMany`, in the host's transaction when given
 * one, and the one checker of a batch of task specs, for enqueueMany, chains and iterations.
 */
import type { EntityManager } from '@mikro-orm/core';
import { isStorableJson, UNSTORABLE_MESSAGE } from './storable.js';
import { isPlainObject, ValidationError } from './validate.js';
import type { TaskArgs, TaskName } from './registry.js';
import { inSchema, schemaOf } from './table-names.js';
import { assemble, buildPackage, checkJson, type BuiltPackage, type EnqueueOptions } from './package.js';
import { insertPackages, serialize } from './insert.js';

export { buildPackage, type BuiltPackage, type EnqueueOptions } from './package.js';
export { insertPackages, wakeKeys } from './insert.js';

/**
 * Adds a task to the queue and returns its id. Given the host's transactional `em`, the package is
 * written in that transaction: it commits, and wakes the clusters, only if the host's work commits.
 * With a registry declared (see `TaskRegistry`), `func` and `args` are checked at compile time.
 */
export async function enqueue<F extends TaskName>(
  em: EntityManager,
  func: F,
  args?: TaskArgs<F>,
  options: EnqueueOptions = {},
): Promise<string> {
  const built = buildPackage(func, args ?? [], options);
  await insertPackages(inSchema(em, schemaOf(em, options.schema)), [built]);
  return built.payload.id;
}

/** One task of `enqueueMany`: enqueue's func and args with its options beside them. */
export type TaskSpec<F extends TaskName = TaskName> = F extends TaskName ? { func: F; args?: TaskArgs<F> } & EnqueueOptions : never;

/**
 * Adds many tasks in one statement and returns their ids, in order. Every task is checked first:
 * one bad task throws a ValidationError naming it (`tasks[3].func`) and nothing is written.
 */
export async function enqueueMany(em: EntityManager, tasks: readonly TaskSpec[], options: { schema?: string } = {}): Promise<string[]> {
  const { built, text } = buildTasks(tasks);
  await insertPackages(inSchema(em, schemaOf(em, options.schema)), built, text);
  return built.map((b) => b.payload.id);
}

/**
 * Checks and builds a batch of task specs, with their payloads as one JSON array; a bad one throws
 * a ValidationError naming it as `${field}[3].func`. Shared by enqueueMany, chains and iterations.
 */
export function buildTasks(tasks: readonly unknown[], field = 'tasks'): { built: BuiltPackage[]; text: string } {
  if (!Array.isArray(tasks)) throw new ValidationError({ [field]: 'must be an array' }, field);
  const built: BuiltPackage[] = [];
  const errors: Record<string, string> = {};
  const fail = (i: number, e: unknown) => {
    if (!(e instanceof ValidationError)) throw e;
    for (const [f, message] of Object.entries(e.errors)) errors[f === 'task' ? `${field}[${i}]` : `${field}[${i}].${f}`] = message;
  };
  const enqueued = new Date().toISOString();
  tasks.forEach((task, i) => {
    try {
      if (!isPlainObject(task)) throw new ValidationError({ task: 'must be an object with func' }, 'task');
      // The task is its own options object: assemble reads only the options' fields.
      const t = task as unknown as { func: unknown; args?: unknown };
      built.push(assemble(t.func, t.args ?? [], task, enqueued));
    } catch (e) {
      fail(i, e);
    }
  });
  if (Object.keys(errors).length) throw new ValidationError(errors, field);
  // One JSON pass for the whole batch; only when it is refused is each task checked to name it.
  let text: string | null = null;
  try {
    text = serialize(built);
  } catch {
    text = null;
  }
  if (text === null || !isStorableJson(text)) {
    built.forEach((b, i) => {
      try {
        checkJson(b.payload);
      } catch (e) {
        fail(i, e);
      }
    });
    throw new ValidationError(Object.keys(errors).length ? errors : { [field]: UNSTORABLE_MESSAGE }, field);
  }
  return { built, text };
}
