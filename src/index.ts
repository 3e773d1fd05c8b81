export {
  queueEntities,
  Task,
  Schedule,
  Queued,
  AdminLog,
  ClusterProcess,
  PausedKey,
  Metric,
  Iter,
  IterResult,
  FuncLimit,
} from './entities.js';
export { ensureSchema, SCHEMA_VERSION, type EnsureSchemaResult } from './schema.js';
export { enqueue, enqueueMany, type EnqueueOptions, type TaskSpec } from './producer.js';
export { enqueueChain, MAX_CHAIN_STEPS, type ChainOptions } from './chains.js';
export { enqueueIter, MAX_ITER_RUNS } from './iterations.js';
export { schedule, type ScheduleOptions, type ScheduleSpec } from './schedules.js';
export { fetchTask, result, resultGroup, countGroup, deleteGroup, type WaitOptions, type GroupOptions } from './results.js';
export type { TaskRegistry, Tasks, TasksOf, TaskName, TaskArgs } from './registry.js';
export type { ListenConnection } from './db/listener.js';
export {
  nextRun,
  upcomingRuns,
  parseCron,
  SCHEDULE_TYPES,
  type ScheduleType,
  type ScheduleTiming,
  type NextRunOptions,
} from './schedule-rules.js';
export { DEFAULT_MAX_CATCH_UP, type ScheduleTypeName } from './schedule-rules.js';
export { validateSchedule, ValidationError, type ScheduleInput, type ScheduleValues } from './validate.js';
export type { TaskRecord, ScheduleRecord, QueuedRecord, TaskPackage } from './rows.js';
export { pauseKey, resumeKey, pausedKeys, CancelledError, type PauseOptions } from './control.js';
export { cancel, type CancelOptions, type CancelOutcome } from './cancel.js';
export { Cluster } from './cluster/cluster.js';
export type { ClusterOptions } from './cluster/options.js';
export type { LogLevel } from './log.js';
export type { RetryBackoff } from './retries.js';
export type { TaskFunction, TaskContext } from './registry.js';
export { queueAdmin, type QueueAdminHandler, type NextFunction } from './admin/handler.js';
export type { QueueAdminOptions, AuthorizeRequest, PageId, AdminLogger } from './admin/options.js';
export { setLimit, limits, type Limit, type LimitRecord } from './limits.js';
