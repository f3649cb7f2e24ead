/**
 * Everything the alerting needs in a running service, in one call: the Redis state, the quota
 * watch that reconciles report to, the alert queue and its worker (only when mail is configured),
 * and the periodic quota sweep (the `quota` queue's scheduler and its worker).
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Settings } from '../config/schema.js';
import type { ImapPool } from '../imap/pool.js';
import type { Logger } from '../log.js';
import { AlertProducer } from '../queue/alert-queue.js';
import type { BreakerState } from '../queue/delete-breaker.js';
import { reconcileJobSchema, type ReconcileJob } from '../queue/jobs.js';
import { QuotaSweepQueue } from '../queue/quota-queue.js';
import { mailboxKey, redisBoxPart } from '../spool/types.js';
import { jobBox } from '../queue/box-fields.js';
import type { Directory } from '../sync/directory.js';
import { createAlertWorker, type AlertWorker } from '../../workers/alert.js';
import { createQuotaWorker, type QuotaWorker } from '../../workers/quota.js';
import { mailConfigured, type AlertTransport } from './admin-mail.js';
import { AlertState } from './state.js';
import { sweepQuotas, type SweepResult } from './sweep.js';
import { QuotaWatch, type RetryScheduler } from './watch.js';
import type { QuotaReading } from '../imap/quota.js';

export interface AlertsDeps {
  readonly settings: Settings;
  /** Shared command connection (not used for blocking reads). */
  readonly redis: Redis;
  readonly imap: ImapPool;
  readonly log: Logger;
  readonly directory: () => Directory;
  /** Where the delayed retry of a mailbox refused for quota goes. */
  readonly reconcileQueue: Queue<ReconcileJob>;
  /** Told every quota reading of an account (the status page). */
  readonly onQuotaReadings?: (imapUser: string, readings: readonly QuotaReading[]) => Promise<void>;
  /** Tests only: a transport instead of one made from alerts.smtp. */
  readonly transport?: AlertTransport;
}

export interface Alerts {
  readonly watch: QuotaWatch;
  readonly state: AlertState;
  /** The deletion breaker opened: logged, and mailed to the admins once. */
  breakerOpened(state: BreakerState, mailbox: string): Promise<void>;
  /** One sweep now, in this process and outside the queue (the queued sweep runs the same). */
  sweepNow(): Promise<SweepResult>;
  /**
   * Settles once the `quota` queue's scheduler is set to alerts.quotaCheckSeconds (or removed, for
   * 0). Never rejects: a failure is logged.
   */
  readonly scheduled: Promise<void>;
  close(): Promise<void>;
}

/**
 * Delayed reconcile jobs added straight to the queue, bypassing the pending key: the key
 * coalesces requests that should run soon, and holding it for minutes would swallow them.
 */
export function retryScheduler(queue: Queue<ReconcileJob>): RetryScheduler {
  return {
    async schedule(ref, delayMs, attempt) {
      const data = reconcileJobSchema.parse({ ...jobBox(ref), reason: 'quota-retry' });
      // BullMQ refuses ':' in job ids; context and mailbox are safe spool names without one.
      const jobId = `quota-retry-${redisBoxPart(ref).replaceAll(':', '-')}-${attempt}-${randomUUID()}`;
      await queue.add(mailboxKey(ref), data, { delay: delayMs, jobId });
      return jobId;
    },
    async isPending(jobId) {
      const state = await queue.getJobState(jobId);
      return state === 'delayed' || state === 'waiting' || state === 'prioritized' || state === 'waiting-children';
    },
  };
}

export function startAlerts(deps: AlertsDeps): Alerts {
  const { settings, redis, log } = deps;
  const alerts = settings.alerts;
  const state = new AlertState(redis, settings.redis.prefix);
  const mail = mailConfigured(alerts);
  const producer = mail ? new AlertProducer(redis, settings.redis.prefix) : undefined;
  let worker: AlertWorker | undefined;
  if (producer) {
    worker = createAlertWorker({ settings, state, producer, log, ...(deps.transport ? { transport: deps.transport } : {}) });
  } else {
    log.info('alerts.to/alerts.smtp not set: quota and maxmsg alerts are logged, not mailed');
  }
  const watch = new QuotaWatch({
    settings: alerts,
    state,
    producer,
    retries: retryScheduler(deps.reconcileQueue),
    directory: deps.directory,
    log,
    ...(deps.onQuotaReadings ? { onReadings: deps.onQuotaReadings } : {}),
  });
  const sweep = (signal?: AbortSignal): Promise<SweepResult> =>
    sweepQuotas({ directory: deps.directory(), imap: deps.imap, watch, folders: settings.imap.folders, log, concurrency: Math.min(4, settings.sync.concurrency), ...(signal ? { signal } : {}) });
  // Every process sets the same one scheduler, so the installation sweeps once per period
  // whichever processes are up; with 0 it is removed, so turning the sweep off takes effect.
  const sweepQueue = new QuotaSweepQueue(redis, settings.redis.prefix);
  const scheduled = sweepQueue.schedule(alerts.quotaCheckSeconds).catch((err: unknown) => {
    log.error({ err: err instanceof Error ? err.message : String(err), quotaCheckSeconds: alerts.quotaCheckSeconds }, 'quota sweep schedule not updated');
  });
  const quotaWorker: QuotaWorker | undefined = alerts.quotaCheckSeconds > 0 ? createQuotaWorker({ settings, log, sweep }) : undefined;

  return {
    watch,
    state,
    async breakerOpened(opened, mailbox) {
      const job = { kind: 'breaker' as const, since: opened.since, deletions: opened.deletions, max: settings.sync.deleteBreaker.max, windowSeconds: settings.sync.deleteBreaker.windowSeconds, mailbox, at: new Date().toISOString() };
      log.error({ ...job, mailed: producer !== undefined }, 'deletion breaker open: every deletion is held until vmbridge sync --release-deletes');
      await producer?.send(job);
    },
    sweepNow: () => sweep(),
    scheduled,
    async close() {
      await quotaWorker?.close();
      await scheduled;
      await sweepQueue.close();
      await worker?.close();
      await producer?.close();
    },
  };
}
