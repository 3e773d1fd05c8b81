/**
 * The admin's share of the host's pool: at most `maxConcurrentReads` requests of one admin work on
 * the database at a time. The rest wait their turn, first come first served, for a short moment,
 * then get a 503 with Retry-After. Without it 20 concurrent searches that scan ormq_task held as
 * many of the host's connections, and the host's own `select 1` waited 2.9 s (p50) for one.
 */
import { HttpError } from './http.js';

/** How long a request waits for its turn before it gets a 503: long enough for a quick read ahead of it to finish. */
const GATE_WAIT_MS = 1_000;
/** Requests waiting beyond this are answered at once: each holds its socket and request until its turn. */
const MAX_WAITING = 100;
/** Distinct shared requests under way at most (`share`): each is a route and its query string, up to a URL's length. */
const MAX_FLIGHTS = 64;
/** Seconds a refused caller is asked to wait: the live refresh doubles it while refusals go on. */
const RETRY_AFTER = '2';

function busy(): HttpError {
  const err = new HttpError(503, 'The admin is busy with other requests (maxConcurrentReads); try again in a moment');
  err.headers['Retry-After'] = RETRY_AFTER;
  return err;
}

export class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly flights = new Map<string, Promise<unknown>>();

  constructor(
    private readonly size: number,
    private readonly waitMs = GATE_WAIT_MS,
  ) {}

  /**
   * `run`, except that a request identical to one under way (the same `key`) waits for that one's
   * answer instead of taking a place of its own: ten people watching one page cost one read at a
   * time, and no answer is older than the read it waited for. Past MAX_FLIGHTS distinct requests
   * under way, a request runs on its own.
   */
  share<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const under = this.flights.get(key) as Promise<T> | undefined;
    if (under) return under;
    const flight = this.run(fn);
    if (this.flights.size < MAX_FLIGHTS) {
      this.flights.set(key, flight);
      const done = () => void this.flights.delete(key);
      flight.then(done, done);
    }
    return flight;
  }

  /** Runs `fn` once a place is free; throws a 503 if none frees within the wait. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await fn();
    } finally {
      this.leave();
    }
  }

  private enter(): Promise<void> {
    if (this.running < this.size) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= MAX_WAITING) return Promise.reject(busy());
    return new Promise((resolve, reject) => {
      const turn = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(turn);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(busy());
      }, this.waitMs);
      this.waiting.push(turn);
    });
  }

  /** The place passes to the first in line, if any. */
  private leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
