/** The levels of the `log` callbacks the cluster and the admin take (one callback can serve both). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
