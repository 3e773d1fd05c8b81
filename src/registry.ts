/** What a task function sees as `this`. */
export interface TaskContext {
  id: string;
  name: string;
  cluster: string;
  /** Aborted when the task runs past its timeout, is stopped from the admin, or the cluster stops past its deadline. */
  signal: AbortSignal;
}

// Task functions take any arguments; the registry cannot know their types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskFunction = (this: TaskContext, ...args: any[]) => unknown;

/** A registry object: task and hook names → functions (the Cluster's `tasks` option). */
export type Tasks = Record<string, TaskFunction>;

/**
 * Compile-time types for the task registry. A host declares its task functions once:
 *
 *   const tasks = { 'email.send': async (to: string, subject: string) => … } satisfies Tasks;
 *   declare module 'ormq' { interface TaskRegistry extends TasksOf<typeof tasks> {} }
 *
 * and from then on `enqueue`, `enqueueMany` and `schedule`-style callers get `func` checked against
 * the names and `args` against each function's parameters. Without a declaration any name and any
 * args are accepted, as before.
 */

/**
 * The registry as types: task name → function. Empty until the host augments it. Its members are
 * only read through `keyof` and `Parameters`, so any function type fits.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface TaskRegistry {}

/** A registry object's type as `TaskRegistry` wants it (the functions themselves). */
export type TasksOf<T> = { [K in keyof T & string]: T[K] };

type Declared = keyof TaskRegistry extends never ? false : true;

/** A registered task name, or any string while nothing is declared. */
export type TaskName = Declared extends true ? keyof TaskRegistry & string : string;

/**
 * The args array of a task: the function's parameters. kwargs, when given, arrive as one more
 * argument after these, so a trailing options parameter may be left out here.
 */
export type TaskArgs<F extends string> = F extends keyof TaskRegistry
  ? TaskRegistry[F] extends (...args: infer A) => unknown
    ? A
    : unknown[]
  : unknown[];
