/**
 * When a cluster process counts as alive: the cluster writes a beat to its ormq_cluster row every
 * beat_ms; the admin and the CLI read the rows with `responding`.
 */

/** Beats a row may miss before its process counts as not responding. */
export const MISSED_BEATS = 3;

/** SQL: the ormq_cluster row `alias` has beaten within MISSED_BEATS of its interval, on the database's clock. */
export const responding = (alias: string) => `${alias}.heartbeat >= now() - ${alias}.beat_ms * ${MISSED_BEATS} * interval '1 ms'`;
