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
 * goes to the `reconcile` queue; the start-up pass, the sweep and a reload go to
 * `reconcile-background`, whose worker runs fewer at once. So a backlog of thousands of
 * background jobs never stands between an event and its reconcile, and always leaves the event
 * worker its slots and the machine some room.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { mailboxKey, redisBoxPart, type MailboxRef } from '../spool/types.js';
import { jobBox } from './box-fields.js';
import { requestCoalesced, type FollowUp, type Lane } from './coalesce.js';
import { QUEUE_RECONCILE, QUEUE_RECONCILE_BACKGROUND, reconcileJobSchema, type ReconcileJob } from './jobs.js';
import { errorsLoggedByConnectionOwner } from './redis-connection.js';

export const PENDING_TTL_MS = 60_000;

/** Reasons whose reconciles may wait for every event's: passes over all mailboxes. */
export const BACKGROUND_REASONS: ReadonlySet<string> = new Set(['start', 'sweep', 'reload']);
export function laneOf(reason: string): Lane {
  return BACKGROUND_REASONS.has(reason) ? 'background' : 'event';
}

export function pendingKey(prefix: string, ref: MailboxRef): string {
  return `${prefix}:pending:${redisBoxPart(ref)}`;
}

export function lockKey(prefix: string, ref: MailboxRef): string {
  return `${prefix}:lock:${redisBoxPart(ref)}`;
}

const JOB_OPTIONS = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { count: 1_000 },
  removeOnFail: { count: 5_000 },
} as const;

export class ReconcileRequester {
  /** The event lane; also where quota retries are scheduled. */
  readonly queue: Queue<ReconcileJob>;
  readonly background: Queue<ReconcileJob>;
  /** Follow-ups of requests covered by another client's unconfirmed claim (see coalesce.ts). */
  private readonly followUps = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.queue = new Queue<ReconcileJob>(QUEUE_RECONCILE, { connection: redis, prefix, defaultJobOptions: JOB_OPTIONS });
    this.background = new Queue<ReconcileJob>(QUEUE_RECONCILE_BACKGROUND, { connection: redis, prefix, defaultJobOptions: JOB_OPTIONS });
    this.queue.on('error', errorsLoggedByConnectionOwner);
    this.background.on('error', errorsLoggedByConnectionOwner);
  }

  /**
   * Returns true when a job was queued, false when an earlier request already covers this one.
   * `force` queues a job whatever the pending key says: at start, a pending key may belong to a
   * job that a killed process was running, which only comes back once BullMQ sees it stalled.
   */
  async request(ref: MailboxRef, reason: string, opts: { force?: boolean } = {}): Promise<boolean> {
    const data = reconcileJobSchema.parse({ ...jobBox(ref), reason });
    const lane = laneOf(reason);
    return requestCoalesced(
      this.redis,
      { key: pendingKey(this.prefix, ref), reason, lane, ttlMs: PENDING_TTL_MS, force: opts.force === true },
      () => (lane === 'background' ? this.background : this.queue).add(mailboxKey(ref), data),
      this.followUp,
    );
  }

  private readonly followUp: FollowUp = (afterMs, retry) => {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.followUps.delete(timer);
      if (this.closed) return;
      // A follow-up that fails (Redis gone) leaves the mailbox to the next request or the sweep,
      // as a failed first request would; the connection's owner logs Redis's errors.
      retry().catch(() => undefined);
    }, afterMs);
    timer.unref();
    this.followUps.add(timer);
  };

  /** Jobs not yet finished in both lanes (waiting, active, delayed). */
  async unfinished(): Promise<number> {
    const counts = await Promise.all([this.queue, this.background].map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')));
    return counts.reduce((sum, c) => sum + Object.values(c).reduce((a, b) => a + b, 0), 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.followUps) clearTimeout(t);
    this.followUps.clear();
    await Promise.all([this.queue.close(), this.background.close()]);
  }
}
