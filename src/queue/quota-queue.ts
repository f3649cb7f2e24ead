/**
 * The `quota` queue: the periodic quota sweep, one job per alerts.quotaCheckSeconds for the whole
 * installation. Every process upserts the same BullMQ job scheduler (QUOTA_SWEEP_SCHEDULER), which
 * is one entry in Redis however many processes do so; the scheduler makes the next job when a
 * worker starts the current one. The worker (workers/quota.ts) runs the jobs, and the queue's
 * global concurrency of 1 keeps a second sweep from starting anywhere while one runs (a sweep
 * longer than the period, or a retry meeting the next period's job): the later one waits.
 */
import { Queue, type JobSchedulerTemplateOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errorsLoggedByConnectionOwner } from './redis-connection.js';

export const QUEUE_QUOTA = 'quota';

/** The one scheduler of the queue; its jobs get ids `repeat:quota-sweep:<due time in ms>`. */
export const QUOTA_SWEEP_SCHEDULER = 'quota-sweep';

export const QUOTA_SWEEP_JOB = 'sweep';

/** Tries of one sweep job: the first and two retries, then it is kept as failed. */
export const QUOTA_SWEEP_ATTEMPTS = 3;

export const quotaSweepJobSchema = z.strictObject({
  /** The period the scheduler was set to (alerts.quotaCheckSeconds): for logs and people. */
  everySeconds: z.number().int().min(1).max(86_400),
});
export type QuotaSweepJob = z.infer<typeof quotaSweepJobSchema>;

/**
 * First retry delay of a failed sweep; exponential, so both retries come within 3/4 of the period
 * (a quarter, then half) and do not pile onto the next period's job. At least 250 ms, at most a
 * minute: with the default 900 s, retries after 1 and 3 minutes.
 */
export function quotaSweepBackoffMs(everySeconds: number): number {
  return Math.max(250, Math.min(60_000, Math.round((everySeconds * 1000) / 4)));
}

export function quotaSweepJobOptions(everySeconds: number): JobSchedulerTemplateOptions {
  return {
    attempts: QUOTA_SWEEP_ATTEMPTS,
    backoff: { type: 'exponential', delay: quotaSweepBackoffMs(everySeconds) },
    // Enough finished sweeps to see the recent ones; failed ones longer, to be looked into.
    removeOnComplete: { count: 100 },
    removeOnFail: { count: 1_000 },
  };
}

export class QuotaSweepQueue {
  readonly queue: Queue<QuotaSweepJob>;

  constructor(redis: Redis, prefix: string) {
    this.queue = new Queue<QuotaSweepJob>(QUEUE_QUOTA, { connection: redis, prefix });
    this.queue.on('error', errorsLoggedByConnectionOwner);
  }

  /**
   * Sets the installation's sweep to every `everySeconds`, or removes it for 0. Idempotent: with
   * the same period the next job keeps its time, so a restart neither adds nor moves a sweep. A
   * new scheduler, or a new period, sweeps first one period from now, not at once: a start is busy
   * enough with the initial reconcile of every mailbox, which reads quotas after its APPENDs.
   * Removing also drops sweeps already due or waiting for a retry, so turning the sweep off takes
   * effect now (a running one finishes).
   */
  async schedule(everySeconds: number): Promise<void> {
    if (everySeconds <= 0) {
      await this.queue.removeJobScheduler(QUOTA_SWEEP_SCHEDULER);
      await this.queue.drain(true);
      return;
    }
    await this.queue.setGlobalConcurrency(1);
    const data = quotaSweepJobSchema.parse({ everySeconds });
    const every = everySeconds * 1000;
    // startDate counts only when there is no next sweep to keep (BullMQ's every-scheduler).
    await this.queue.upsertJobScheduler(QUOTA_SWEEP_SCHEDULER, { every, startDate: Date.now() + every }, { name: QUOTA_SWEEP_JOB, data, opts: quotaSweepJobOptions(everySeconds) });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
