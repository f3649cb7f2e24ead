/**
 * Asking for a reconcile. Events only say "mailbox X may have changed"; this turns any burst of them
 * into one job, and a request made while X is being reconciled into exactly one more job after it:
 *
 *   - a request sets X's pending key (SET NX) and adds a job only if the key was not set yet;
 *   - the worker takes X's lock, then clears the pending key, then looks at spool and IMAP.
 *
 * So a change that lands before the pending key is cleared is seen by the running reconcile, and a
 * change after it sets the key again and queues the next one. The key expires on its own so a job
 * lost with a crashed Redis client cannot block a mailbox for long.
 *
 * Two lanes: a request caused by an event (new voicemail, externnotify, push, IDLE, an AMI event)
 * is a job without priority, which BullMQ always runs before prioritized ones; the start-up pass,
 * the sweep and a reload are background jobs with a priority, run when no event waits. So a
 * backlog of thousands of background jobs never stands between an event and its reconcile.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import { requestCoalesced, type Lane } from './coalesce.js';
import { QUEUE_RECONCILE, reconcileJobSchema, type ReconcileJob } from './jobs.js';
import { errorsLoggedByConnectionOwner } from './redis-connection.js';

export const PENDING_TTL_MS = 60_000;

/** Reasons whose reconciles may wait for every event's: passes over all mailboxes. */
export const BACKGROUND_REASONS: ReadonlySet<string> = new Set(['start', 'sweep', 'reload']);
/** BullMQ priority of background jobs (jobs without one, the events, always run first). */
export const BACKGROUND_PRIORITY = 10;

export function laneOf(reason: string): Lane {
  return BACKGROUND_REASONS.has(reason) ? 'background' : 'event';
}

export function pendingKey(prefix: string, ref: MailboxRef): string {
  return `${prefix}:pending:${ref.context}:${ref.mailbox}`;
}

export function lockKey(prefix: string, ref: MailboxRef): string {
  return `${prefix}:lock:${ref.context}:${ref.mailbox}`;
}

export class ReconcileRequester {
  readonly queue: Queue<ReconcileJob>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.queue = new Queue<ReconcileJob>(QUEUE_RECONCILE, {
      connection: redis,
      prefix,
      defaultJobOptions: {
        attempts: 12,
        backoff: { type: 'exponential', delay: 1_000 },
        removeOnComplete: { count: 1_000 },
        removeOnFail: { count: 5_000 },
      },
    });
    this.queue.on('error', errorsLoggedByConnectionOwner);
  }

  /**
   * Returns true when a job was queued, false when an earlier request already covers this one.
   * `force` queues a job whatever the pending key says: at start, a pending key may belong to a
   * job that a killed process was running, which only comes back once BullMQ sees it stalled.
   */
  async request(ref: MailboxRef, reason: string, opts: { force?: boolean } = {}): Promise<boolean> {
    const data = reconcileJobSchema.parse({ context: ref.context, mailbox: ref.mailbox, reason });
    const lane = laneOf(reason);
    return requestCoalesced(
      this.redis,
      { key: pendingKey(this.prefix, ref), reason, lane, ttlMs: PENDING_TTL_MS, force: opts.force === true },
      () => this.queue.add(mailboxKey(ref), data, lane === 'background' ? { priority: BACKGROUND_PRIORITY } : {}),
    );
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
