/**
 * What wakes the cluster's loops: a timer (the poll, the next due schedule), or a nudge from a
 * notification heard on the LISTEN connection, a freed worker, a resume or a stop.
 */
import { CONTROL_CHANNEL, QUEUE_CHANNEL, SCHEDULE_CHANNEL } from '../db/channels.js';
import { Listener, listenConfig, type ListenConnection } from '../db/listener.js';

/** One loop's sleep. A nudge while the loop is awake is kept, so its next sleep returns at once. */
export class Wake {
  #nudged = false;
  #wake: (() => void) | null = null;

  nudge(): void {
    this.#nudged = true;
    this.#wake?.();
  }

  /** Forgets earlier nudges: the loop is about to look anyway. */
  clear(): void {
    this.#nudged = false;
  }

  /** Sleeps up to ms, or until nudged. */
  sleep(ms: number): Promise<void> {
    if (this.#nudged) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

export interface ClusterListen {
  /** The ORM's connection, whose settings the LISTEN connection copies unless `override` is given. */
  connection: Parameters<typeof listenConfig>[0];
  override?: ListenConnection;
  /** The cluster's name: the queue notifications it wakes for. */
  name: string;
  worker: Wake;
  scheduler: Wake;
  control(payload: string): void;
  warn(message: string): void;
}

/**
 * The cluster's LISTEN connection: new packages of its key wake the claim loop, schedule changes the
 * scheduler, control messages go to the heartbeat. A (re)connection wakes both loops: what was
 * sent while it was down was not heard.
 */
export async function listenForCluster(o: ClusterListen): Promise<Listener> {
  const listener = new Listener({
    connection: await listenConfig(o.connection, o.override),
    channels: [QUEUE_CHANNEL, SCHEDULE_CHANNEL, CONTROL_CHANNEL],
    onNotify: (channel, payload) => {
      if (channel === QUEUE_CHANNEL && payload === o.name) o.worker.nudge();
      if (channel === SCHEDULE_CHANNEL) o.scheduler.nudge();
      if (channel === CONTROL_CHANNEL) o.control(payload);
    },
    onConnect: () => {
      o.worker.nudge();
      o.scheduler.nudge();
    },
    onError: (err) => o.warn(`LISTEN connection lost, reconnecting: ${err.message}`),
  });
  await listener.start();
  return listener;
}
