/**
 * The queue key of a task or a schedule is `key`, as in `pauseKey` and `ormq_queued.key`; `cluster`,
 * its former name, is accepted as a deprecated alias through 0.1.x.
 */

/** Which of the two options holds the key, so that an error names the option the caller wrote. */
export interface KeyOption {
  field: 'key' | 'cluster';
  given: boolean;
  value: unknown;
}

/** `key`, else its alias `cluster`; both given and different is an error on `key`. */
export function keyOption(o: { key?: unknown; cluster?: unknown }, errors: Record<string, string>): KeyOption {
  if (o.cluster === undefined) return { field: 'key', given: o.key !== undefined, value: o.key };
  if (o.key === undefined) return { field: 'cluster', given: true, value: o.cluster };
  if (o.key !== o.cluster) {
    errors.key = `and cluster (its deprecated name) differ (${JSON.stringify(o.key)?.slice(0, 120)} and ${JSON.stringify(o.cluster)?.slice(0, 120)}): give key alone`;
  }
  return { field: 'key', given: true, value: o.key };
}
