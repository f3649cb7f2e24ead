/**
 * When BullMQ is done with a failed job. The reconcile queue's pending key (src/queue/coalesce.ts)
 * stands for a job that will still run; a job that will not (its attempts used up, a safety stop,
 * or stalled more often than maxStalledCount allows) must not leave the key behind, or requests
 * for its mailbox are swallowed until the key expires.
 */

/** What of a BullMQ job the rule reads, as it is when the worker's `failed` event fires. */
export interface FailedJobView {
  /** Already counts the attempt that just failed. */
  readonly attemptsMade: number;
  readonly opts: { readonly attempts?: number | undefined };
}

/** True when BullMQ will not run the job again. */
export function failedForGood(job: FailedJobView, err: Error): boolean {
  if (err.name === 'UnrecoverableError') return true;
  return job.attemptsMade >= (job.opts.attempts ?? 1);
}

/**
 * How often a reconcile job may be found stalled (its process died or hung while it was active)
 * and still be run again. A reconcile is idempotent and runs under the mailbox's lock, so running
 * it again is always safe; the limit is only there for a job that itself takes its process down.
 * BullMQ's default of 1 would fail a job for good after its second stall, which a rolling
 * restart of several processes can cause.
 */
export const RECONCILE_MAX_STALLED = 5;
