/**
 * The quota worker: runs the periodic quota sweep when the `quota` queue's scheduler says so
 * (src/queue/quota-queue.ts). One job at a time here, and one in all processes together (the
 * queue's global concurrency). A sweep that could read no account fails its job, which BullMQ
 * retries with backoff and then keeps as failed.
 */
import type { Job, Worker } from 'bullmq';
import { createRedis, describeRedisError } from '../src/queue/redis-connection.js';
import { sweepFailed, type SweepResult } from '../src/alerts/sweep.js';
import type { Settings } from '../src/config/schema.js';
import type { Logger } from '../src/log.js';
import { QUEUE_QUOTA, quotaSweepJobSchema, type QuotaSweepJob } from '../src/queue/quota-queue.js';
import { startWorker } from '../src/queue/worker-close.js';

export interface QuotaWorkerDeps {
  readonly settings: Settings;
  readonly log: Logger;
  /** One sweep of every account; it stops starting accounts once `signal` is aborted. */
  readonly sweep: (signal: AbortSignal) => Promise<SweepResult>;
}

export interface QuotaWorker {
  readonly worker: Worker<QuotaSweepJob, SweepResult>;
  close(): Promise<void>;
}

export function createQuotaWorker(deps: QuotaWorkerDeps): QuotaWorker {
  const { settings, log } = deps;
  const prefix = settings.redis.prefix;
  // Aborted by close(): a sweep of many accounts would otherwise hold up shutdown until its end.
  const stopping = new AbortController();
  // BullMQ blocks on this connection waiting for jobs, so it cannot be shared with other commands.
  const connection = createRedis(settings.redis, 'quota-worker', { maxRetriesPerRequest: null });

  const handle = async (job: Job<QuotaSweepJob, SweepResult>): Promise<SweepResult> => {
    const data = quotaSweepJobSchema.parse(job.data);
    const started = performance.now();
    const result = await deps.sweep(stopping.signal);
    const ms = Math.round(performance.now() - started);
    // Thrown, so the job is tried again by a process that is still running.
    const tried = result.read + result.unreadable + result.failed;
    if (stopping.signal.aborted && tried < result.accounts) throw new Error(`quota sweep interrupted by shutdown after ${tried} of ${result.accounts} accounts`);
    if (sweepFailed(result)) throw new Error(`quota sweep read no account: all ${result.failed} tried failed`);
    log.debug({ ...result, ms, job: job.id, attempt: job.attemptsMade + 1, everySeconds: data.everySeconds }, 'quota sweep done');
    return result;
  };

  const started = startWorker(QUEUE_QUOTA, handle, connection, { prefix, concurrency: 1, autorun: true });
  const { worker } = started;
  worker.on('failed', (job, err) => {
    const final = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
    log[final ? 'error' : 'warn']({ job: job?.id, attempt: job?.attemptsMade, err: err.message }, final ? 'quota sweep failed for good; the job is kept as failed' : 'quota sweep failed; retried with backoff');
  });
  worker.on('error', (err) => log.error({ err: describeRedisError(err, settings.redis) }, 'quota worker error'));
  return {
    worker,
    async close() {
      stopping.abort();
      // A job waiting on a mail server or a Redis that went away must not hold shutdown forever.
      if (!(await started.close(settings.sync.stopTimeoutSeconds * 1000))) log.warn({ timeoutSeconds: settings.sync.stopTimeoutSeconds }, 'quota sweep in progress did not finish in time; closed without waiting (the job is retried)');
    },
  };
}
