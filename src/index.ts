export { queueEntities, Task, Schedule, Queued, AdminLog, Metric } from './entities.js';
export { ensureSchema, type EnsureSchemaResult } from './schema.js';
export { enqueue, schedule, type EnqueueOptions, type ScheduleOptions } from './producer.js';
export { nextRun, upcomingRuns, parseCron, SCHEDULE_TYPES, type ScheduleType, type ScheduleTiming, type NextRunOptions } from './schedule-rules.js';
export { validateSchedule, ValidationError, type ScheduleInput, type ScheduleValues } from './validate.js';
export type { TaskRecord, ScheduleRecord, QueuedRecord, TaskPackage } from './rows.js';
export { Cluster, type ClusterOptions, type TaskFunction, type TaskContext, type LogLevel } from './cluster/cluster.js';
export { queueAdmin, type QueueAdminHandler, type NextFunction } from './admin/handler.js';
export type { QueueAdminOptions, AuthorizeRequest, PageId } from './admin/options.js';
