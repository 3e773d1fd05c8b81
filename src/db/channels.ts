/** The LISTEN/NOTIFY channels ormq uses, each with the payload its notifications carry. */

/** New packages: the payload is their queue key. */
export const QUEUE_CHANNEL = 'ormq_queued';
/** A schedule was created, edited or removed: the payload is the cluster whose scheduler should look again. */
export const SCHEDULE_CHANNEL = 'ormq_schedule';
/** Saved tasks: the payload is their ids, comma-separated. */
export const SAVED_CHANNEL = 'ormq_saved';
/** Requests to running clusters (pause, resume, stop a task): the payload is a JSON message. */
export const CONTROL_CHANNEL = 'ormq_control';
