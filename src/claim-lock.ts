/**
 * A claim's lock in microseconds since the epoch, exact (a timestamptz read into a JS Date keeps
 * milliseconds only): what the claim returns and records as a limit's holder, and what COMPLETE,
 * ACK, RELEASE and `limits` compare.
 */
export const lockOf = (row: string) => `(extract(epoch from ${row}.lock) * 1000000)::bigint`;
