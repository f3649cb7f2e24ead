/**
 * A bounded close for BullMQ workers whose jobs can wait on a server that went away (an IMAP
 * server, an MWI target, a Redis behind a cut link).
 *
 * BullMQ's own close() waits for the jobs in progress without a bound, and once it has started it
 * cannot be turned into a forced close: a second close(true) returns the first, unforced promise.
 * Abandoning that promise after a timeout leaves the worker's lock-renewal timer running, which
 * keeps the process alive after everything else has stopped. So the worker is closed forced, and
 * the wait for its jobs is done here, where it can be bounded.
 */
import { Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/** A started worker and its bounded close, as every worker module hands it out. */
export interface ClosableWorker<T> {
  readonly worker: Worker<T>;
  /**
   * Stops taking jobs and waits for those in progress, at most `graceMs` (default: as long as they
   * take); then the worker's connection is dropped either way. True when the work finished.
   */
  close(graceMs?: number): Promise<boolean>;
}

/**
 * Starts a BullMQ worker on its own connection (BullMQ blocks on it waiting for jobs, so it cannot
 * be shared), counting its jobs for the bounded close; close() ends with the connection dropped.
 * The one way workers/ start a worker.
 */
export function startWorker<T, R>(
  name: string,
  processor: (job: Job<T, R>) => Promise<R>,
  connection: Redis,
  opts: Omit<WorkerOptions, 'connection'>,
): ClosableWorker<T> {
  const jobs = new JobsInProgress();
  const worker = new Worker<T, R>(name, jobs.track(processor), { ...opts, connection });
  return {
    worker,
    async close(graceMs?: number) {
      const finished = await closeWorker(worker, jobs, graceMs);
      connection.disconnect();
      return finished;
    },
  };
}

/** How long the forced close itself may take (it only drops connections and stops timers). */
const FORCED_CLOSE_MS = 2_000;

/** Counts the jobs a worker's processor is running, so that shutdown can wait for them. */
class JobsInProgress {
  private running = 0;
  private waiters: Array<() => void> = [];

  /** The processor, counted while it runs. */
  track<A extends unknown[], R>(processor: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return async (...args: A) => {
      this.running += 1;
      try {
        return await processor(...args);
      } finally {
        this.running -= 1;
        if (this.running === 0) for (const wake of this.waiters.splice(0)) wake();
      }
    };
  }

  /** Settles once no job is running. */
  idle(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * Stops taking jobs, waits for those in progress at most `graceMs` (without it: as long as they
 * take), then closes the worker forced: its locks are no longer renewed, and a job left unfinished
 * is taken up again as stalled by the next worker. True when no job was left running.
 */
async function closeWorker(worker: Worker, jobs: JobsInProgress, graceMs?: number): Promise<boolean> {
  await worker.pause(true);
  const finished = await settlesWithin(jobs.idle(), graceMs);
  await settlesWithin(worker.close(true), FORCED_CLOSE_MS);
  return finished;
}

/** Whether `p` settles within `ms` (without `ms`: waits for it). A late `p` is left to settle. */
async function settlesWithin(p: Promise<unknown>, ms?: number): Promise<boolean> {
  const settled = p.then(() => true, () => true);
  if (ms === undefined) return settled;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const inTime = await Promise.race([settled, late]);
  clearTimeout(timer);
  return inTime;
}
