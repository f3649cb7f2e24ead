/**
 * MWI publishing state and queues, one queue per target (`mwi-<name>`), so a target that is down
 * or slow delays no other target and never a reconcile.
 *
 * Redis holds, per mailbox, the counts vmbridge wants shown (`desired`, written after each
 * reconcile), and per target and mailbox the counts last delivered there (`published`). A job
 * carries only the mailbox: the target's worker reads the latest desired counts when it runs, so
 * a burst of changes becomes one publication of the newest value, and a value older than one
 * already sent is never sent.
 *
 * Jobs are coalesced per target and mailbox by BullMQ's own deduplication with keepLastIfActive:
 * while a job for (target, mailbox) waits, or waits for its retry, a request adds nothing (that
 * job will read the newest counts); while it runs, a request makes exactly one more job, created
 * when the running one ends. So at most one job runs and one waits, and no change is lost. (The
 * reconcile queue keeps its own rule, ./coalesce.ts: docs/libraries.md says why.)
 * Payloads and stored counts are validated on both ends: they are data from Redis.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { isValidCounts, type MwiCounts } from '../mwi/counts.js';
import { mailboxKey, redisBoxPart, type MailboxRef } from '../spool/types.js';
import { boxFields, jobBox } from './box-fields.js';
import { errorsLoggedByConnectionOwner } from './redis-connection.js';

export const mwiJobSchema = z.strictObject({
  ...boxFields,
});
export type MwiJob = z.infer<typeof mwiJobSchema>;

const countsSchema = z
  .strictObject({
    new: z.number().int().nonnegative(),
    old: z.number().int().nonnegative(),
    urgent: z.number().int().nonnegative(),
  })
  .refine(isValidCounts, 'urgent cannot exceed new');

/** A target name as the settings allow it; also what makes a queue name safe. */
const TARGET_NAME = /^[A-Za-z0-9_-]{1,32}$/;

export function mwiQueueName(target: string): string {
  if (!TARGET_NAME.test(target)) throw new Error(`MWI target name ${JSON.stringify(target)} is not valid`);
  return `mwi-${target}`;
}

const boxField = (ref: MailboxRef): string => redisBoxPart(ref);
export const mwiDesiredKey = (prefix: string): string => `${prefix}:mwi:desired`;
export const mwiPublishedKey = (prefix: string, target: string): string => `${prefix}:mwi:published:${target}`;
export const mwiLockKey = (prefix: string, target: string, ref: MailboxRef): string => `${prefix}:mwi:lock:${target}:${boxField(ref)}`;
/** The deduplication id of (target, mailbox) jobs; the queue is the target's own, so the mailbox names it. */
export const mwiDeduplicationId = (ref: MailboxRef): string => boxField(ref);

function parseCounts(raw: string | null): MwiCounts | undefined {
  if (raw === null) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const parsed = countsSchema.safeParse(data);
  // Something unreadable is unknown, never zero: it is treated as absent.
  return parsed.success ? parsed.data : undefined;
}

function encodeCounts(c: MwiCounts): string {
  return JSON.stringify(countsSchema.parse({ new: c.new, old: c.old, urgent: c.urgent }));
}

/** The desired and published counts in Redis (hashes keyed `context:mailbox`, `server:context:mailbox` for a named server). */
export class MwiStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async setDesired(ref: MailboxRef, counts: MwiCounts): Promise<void> {
    mwiJobSchema.parse(jobBox(ref));
    await this.redis.hset(mwiDesiredKey(this.prefix), boxField(ref), encodeCounts(counts));
  }

  async desired(ref: MailboxRef): Promise<MwiCounts | undefined> {
    return parseCounts(await this.redis.hget(mwiDesiredKey(this.prefix), boxField(ref)));
  }

  async setPublished(target: string, ref: MailboxRef, counts: MwiCounts): Promise<void> {
    await this.redis.hset(mwiPublishedKey(this.prefix, target), boxField(ref), encodeCounts(counts));
  }

  async published(target: string, ref: MailboxRef): Promise<MwiCounts | undefined> {
    return parseCounts(await this.redis.hget(mwiPublishedKey(this.prefix, target), boxField(ref)));
  }
}

export interface MwiRetryOptions {
  /** First retry after this many ms; doubles per attempt... */
  readonly initialMs: number;
  /** ...up to this. */
  readonly maxMs: number;
}

/** Attempts per job. With the default 30 s cap, about 8 hours; after that the job is kept as failed. */
export const MWI_ATTEMPTS = 1_000;

/** Capped exponential backoff: attempt n waits min(max, initial × 2^(n-1)). */
export function mwiBackoffMs(attemptsMade: number, retry: MwiRetryOptions): number {
  const n = Math.max(1, attemptsMade);
  return Math.min(retry.maxMs, retry.initialMs * 2 ** Math.min(n - 1, 30));
}

/** Queues "publish mailbox X" for one target. */
export class MwiRequester {
  readonly queue: Queue<MwiJob>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly target: string,
  ) {
    this.queue = new Queue<MwiJob>(mwiQueueName(target), {
      connection: redis,
      prefix,
      defaultJobOptions: {
        attempts: MWI_ATTEMPTS,
        // The worker's backoffStrategy caps the delay (BullMQ's own exponential has no cap).
        backoff: { type: 'capped' },
        removeOnComplete: { count: 1_000 },
        removeOnFail: { count: 5_000 },
      },
    });
    this.queue.on('error', errorsLoggedByConnectionOwner);
  }

  /**
   * True when a job was queued now; false when a job that will read the latest counts already
   * covers the request (one waiting, or one created when the running one ends).
   */
  async request(ref: MailboxRef): Promise<boolean> {
    const data = mwiJobSchema.parse(jobBox(ref));
    // An id of our own tells a new job from the one BullMQ hands back when it deduplicates.
    const jobId = randomUUID();
    const job = await this.queue.add(mailboxKey(ref), data, { jobId, deduplication: { id: mwiDeduplicationId(ref), keepLastIfActive: true } });
    return job.id === jobId;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
