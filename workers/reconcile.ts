/**
 * The reconcile worker: takes "mailbox X may have changed" jobs and runs the reconcile loop for X,
 * never twice at once for one mailbox on any host (a Redis lock), several mailboxes in parallel.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis, describeRedisError } from '../src/queue/redis-connection.js';
import { ImapAuthBackoffError, SafetyStopError, SpoolBusyError, SpoolChangeDeferredError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { QUEUE_RECONCILE, QUEUE_RECONCILE_BACKGROUND, reconcileJobSchema, type ReconcileJob } from '../src/queue/jobs.js';
import { acquireMailboxLock, MailboxLockTimeout } from '../src/queue/mailbox-lock.js';
import { laneOf, lockKey, pendingKey } from '../src/queue/reconcile-queue.js';
import { mwiCounts, type MwiCounts } from '../src/mwi/counts.js';
import { mailboxKey, type MailboxRef } from '../src/spool/types.js';
import { refOfJob } from '../src/queue/box-fields.js';
import type { BoxInfo, Directory } from '../src/sync/directory.js';
import { reconcileIfKnownQuiet, reconcileMailbox, type ReconcileDeps, type ReconcileResult } from '../src/sync/reconcile.js';
import { startWorker, type ClosableWorker } from '../src/queue/worker-close.js';
import { failedForGood, RECONCILE_MAX_STALLED } from '../src/queue/job-end.js';
import { BackgroundPace } from '../src/queue/background-pace.js';

export interface ReconcileWorkerDeps extends ReconcileDeps {
  readonly redis: Redis;
  readonly directory: () => Directory;
  /**
   * Told after each finished reconcile (metrics, MWI, tests). Awaited while the mailbox's lock is
   * still held, so what it records (MWI counts) lands in reconcile order; if it throws, the
   * reconcile is retried.
   */
  readonly onReconciled?: (ref: MailboxRef, result: ReconcileResult, ms: number, heardAt: number) => void | Promise<void>;
  /** Told when a reconcile attempt failed (it is retried with backoff); `ref` when the job could be read. */
  readonly onFailed?: (err: Error, ref?: MailboxRef) => void;
  /** Told when a mailbox's plan was refused by the safety stop (metrics); it is not retried. */
  readonly onSafetyStop?: (ref: MailboxRef) => void;
  /**
   * Told the spool's counts when a reconcile could not finish (IMAP unreachable, a login in
   * back-off, spool changes deferred): the lamps follow the spool whatever IMAP does. Awaited
   * under the mailbox's lock, like onReconciled.
   */
  readonly onSpoolCounts?: (ref: MailboxRef, counts: MwiCounts, err: Error, heardAt: number) => void | Promise<void>;
}

/** The two lanes' workers (docs/sync.md, "Two lanes"), closed together. */
export interface ReconcileWorker {
  /** True when the work in progress of both finished within `graceMs`. */
  close(graceMs?: number): Promise<boolean>;
}

/** Background reconciles at once while events are around: half the event lane's unless set. */
export function backgroundConcurrency(sync: { readonly concurrency: number; readonly backgroundConcurrency?: number | undefined }): number {
  return sync.backgroundConcurrency ?? Math.max(1, Math.floor(sync.concurrency / 2));
}

/**
 * Background reconciles at once while no event has been reconciled for CALM_MS: twice the event
 * lane's unless set. Unset, it leaves the event lane its IMAP connections (imap.maxConnections
 * less sync.concurrency), so that an event arriving in a calm pass finds a connection free.
 */
export function backgroundCalmConcurrency(
  sync: { readonly concurrency: number; readonly backgroundConcurrency?: number | undefined; readonly backgroundCalmConcurrency?: number | undefined },
  imapMaxConnections = Number.POSITIVE_INFINITY,
): number {
  const calm = sync.backgroundCalmConcurrency ?? Math.min(sync.concurrency * 2, imapMaxConnections - sync.concurrency);
  return Math.max(backgroundConcurrency(sync), calm);
}

/** How long after an event's reconcile the background lane stays at its low pace. */
export const CALM_MS = 5_000;

export function createReconcileWorker(deps: ReconcileWorkerDeps): ReconcileWorker {
  const sync = deps.settings.sync;
  const pace = new BackgroundPace({ busy: backgroundConcurrency(sync), calm: backgroundCalmConcurrency(sync, deps.settings.imap.maxConnections), calmMs: CALM_MS });
  const background = startLane(deps, QUEUE_RECONCILE_BACKGROUND, pace.concurrency(), 'worker-background');
  // The pace changes as an event's job starts and when the calm window after the last one ends:
  // the lane is set then, and nothing looks in between.
  let calmEnds: NodeJS.Timeout | undefined;
  const follow = (): void => {
    const want = pace.concurrency();
    if (background.worker.concurrency !== want) background.worker.concurrency = want;
    clearTimeout(calmEnds);
    const wait = pace.calmInMs();
    if (wait === undefined || wait === 0) return;
    calmEnds = setTimeout(follow, wait);
    calmEnds.unref();
  };
  const event = startLane(deps, QUEUE_RECONCILE, sync.concurrency, 'worker', {
    started: () => {
      pace.eventStarted();
      follow();
    },
    ended: () => {
      pace.eventEnded();
      follow();
    },
  });
  const lanes = [event, background];
  return {
    async close(graceMs) {
      clearTimeout(calmEnds);
      const done = await Promise.all(lanes.map((l) => l.close(graceMs)));
      return done.every(Boolean);
    },
  };
}

/** Told when a job of the lane starts and ends (the event lane's, for the background pace). */
interface LaneHooks {
  readonly started: () => void;
  readonly ended: () => void;
}

function startLane(deps: ReconcileWorkerDeps, queue: string, concurrency: number, connectionName: string, hooks?: LaneHooks): ClosableWorker<ReconcileJob> {
  const { settings, log } = deps;
  const prefix = settings.redis.prefix;
  // BullMQ blocks on this connection waiting for jobs, so it cannot be shared with other commands.
  const connection = createRedis(settings.redis, connectionName, { maxRetriesPerRequest: null });
  const started = startWorker(
    queue,
    async (job: Job<ReconcileJob>) => {
      hooks?.started();
      try {
        return await reconcileJobRun(deps, queue, job);
      } finally {
        hooks?.ended();
      }
    },
    connection,
    { prefix, concurrency, autorun: true, maxStalledCount: RECONCILE_MAX_STALLED },
  );
  const { worker } = started;
  worker.on('failed', (job, err) => {
    const parsed = job ? reconcileJobSchema.safeParse(job.data) : undefined;
    const ref = parsed?.success ? refOfJob(parsed.data) : undefined;
    deps.onFailed?.(err, ref);
    if (job && failedForGood(job, err)) {
      // The job may have died before its run cleared the pending key (a process killed while it
      // waited for the mailbox's lock): without this, the next requests would count on it.
      if (ref) deps.redis.del(pendingKey(prefix, ref)).catch(() => undefined);
      log.warn({ mailbox: ref ? mailboxKey(ref) : undefined, attempt: job.attemptsMade, err: err.message }, 'reconcile failed for good; the next change or sweep asks again');
      return;
    }
    // A busy spool is expected while Asterisk renumbers, and a caller in VoiceMailMain defers
    // spool changes until they hang up; both are only worth a quiet line. A login in back-off was
    // already logged once by the pool.
    const quiet = err instanceof SpoolBusyError || err instanceof SpoolChangeDeferredError;
    log[quiet ? 'info' : err instanceof ImapAuthBackoffError ? 'debug' : 'warn']({ mailbox: ref ? mailboxKey(ref) : undefined, attempt: job?.attemptsMade, err: err.message }, 'reconcile failed; retried with backoff');
  });
  worker.on('error', (err) => log.error({ err: describeRedisError(err, settings.redis) }, 'reconcile worker error'));
  return started;
}

/** One reconcile job: the mailbox's lock, the pending key cleared, the reconcile, what follows it. */
async function reconcileJobRun(deps: ReconcileWorkerDeps, queue: string, job: Job<ReconcileJob>): Promise<unknown> {
  const { settings, log } = deps;
  const prefix = settings.redis.prefix;
  const data = reconcileJobSchema.parse(job.data);
  const ref: MailboxRef = refOfJob(data);
  const box = deps.directory().boxes.get(mailboxKey(ref));
  if (!box) {
    log.warn({ mailbox: mailboxKey(ref), reason: data.reason }, 'mailbox is not in voicemail.conf (or has no IMAP account): not synced');
    return { skipped: true };
  }
  const lock = await acquireMailboxLock(deps.redis, lockKey(prefix, ref));
  const started = performance.now();
  // Epoch times, so that the lines of several processes on one Redis can be laid side by side
  // (docs/scale-out.md): no two spans of one mailbox may overlap.
  const heldFrom = Date.now();
  log.debug({ mailbox: mailboxKey(ref), reason: data.reason, queue, job: job.id, heldFrom }, 'reconcile started');
  // From the request (the job's creation) to now: queueing, and waiting for the mailbox's lock.
  const waitedMs = Math.max(0, Date.now() - job.timestamp);
  try {
    // Cleared only once the lock is ours: a request arriving from here on queues one more run.
    await deps.redis.del(pendingKey(prefix, ref));
    // A pass over every mailbox first looks whether anything changed since it was last quiet.
    const result = await reconcileMailbox(deps, box, { quickLook: laneOf(data.reason) === 'background' });
    const ms = performance.now() - started;
    if (result.applied > 0 || result.skipped.length > 0) {
      log.info({ mailbox: mailboxKey(ref), reason: data.reason, ops: result.applied, skipped: result.skipped.length, held: result.plan.held.length, ms: Math.round(ms), waitedMs, phases: result.phases }, 'reconciled');
    }
    // The job's creation is when the change it is about was first heard (requests coalesce into it).
    await deps.onReconciled?.(ref, result, ms, job.timestamp);
    return { ops: result.applied };
  } catch (err) {
    await publishSpoolCounts(deps, ref, err, job.timestamp);
    if (err instanceof SafetyStopError) {
      deps.onSafetyStop?.(ref);
      log.error({ mailbox: mailboxKey(ref), err: err.message }, 'reconcile stopped for safety');
      throw new UnrecoverableError(err.message);
    }
    throw err;
  } finally {
    log.debug({ mailbox: mailboxKey(ref), reason: data.reason, queue, job: job.id, heldFrom, heldUntil: Date.now() }, 'reconcile ended');
    await lock.release().catch(() => undefined);
  }
}

/**
 * For a pass over every mailbox beside Dovecot's doveadm API: a mailbox that the API's snapshot
 * shows quiet is settled here, as its background job would settle it (the same quick look, then
 * onReconciled under the mailbox's lock), without a job. At 10,000 mailboxes most are quiet, and
 * a job each, two at a time, cost more than the looks themselves. False: queue a job as usual
 * (not known quiet, the lock held by a running reconcile, or the look failed).
 */
export async function settleIfKnownQuiet(deps: ReconcileWorkerDeps, box: BoxInfo): Promise<boolean> {
  if (!deps.knownFolderStatus) return false;
  let lock;
  try {
    lock = await acquireMailboxLock(deps.redis, lockKey(deps.settings.redis.prefix, box.ref), { waitMs: 0 });
  } catch (err) {
    if (err instanceof MailboxLockTimeout) return false;
    throw err;
  }
  try {
    const started = performance.now();
    const heardAt = Date.now();
    const result = await reconcileIfKnownQuiet(deps, box);
    if (!result) return false;
    await deps.onReconciled?.(box.ref, result, performance.now() - started, heardAt);
    return true;
  } catch (err) {
    // The job will look again, and report what is wrong if it still is.
    deps.log.debug({ mailbox: mailboxKey(box.ref), err: err instanceof Error ? err.message : String(err) }, 'quiet check before queueing failed; queued');
    return false;
  } finally {
    await lock.release().catch(() => undefined);
  }
}

/**
 * The spool's counts after a failed reconcile, for the lamps. A spool that does not hold still
 * (Asterisk mid-change) or cannot be read gives none: the retry will.
 */
async function publishSpoolCounts(deps: ReconcileWorkerDeps, ref: MailboxRef, err: unknown, heardAt: number): Promise<void> {
  if (!deps.onSpoolCounts || err instanceof SpoolBusyError) return;
  try {
    const snapshot = await deps.store.readMailbox(ref);
    if (!snapshot.settled) return;
    await deps.onSpoolCounts(ref, mwiCounts(snapshot), err instanceof Error ? err : new Error(String(err)), heardAt);
  } catch (publishErr) {
    deps.log.warn({ mailbox: mailboxKey(ref), err: publishErr instanceof Error ? publishErr.message : String(publishErr) }, 'spool counts not published after a failed reconcile');
  }
}
