/**
 * The coalescing rule shared by the reconcile and MWI queues: a request sets a pending key
 * (SET NX with a time to live) and adds a job only if the key was not set yet; the worker deletes
 * the key when it starts reading what the job is about. A burst of requests thus becomes one job,
 * and a request made while that job runs becomes exactly one more.
 */
import type { Redis } from 'ioredis';

export interface CoalescedRequest {
  /** The pending key of what is asked for (one mailbox, or one target and mailbox). */
  readonly key: string;
  /** Stored in the key, for whoever looks at Redis. */
  readonly value: string;
  /** How long the key outlives a job lost with a crashed client before a request queues again. */
  readonly ttlMs: number;
  /** Queue a job whatever the key says (and set the key). */
  readonly force?: boolean;
}

/**
 * Returns true when `addJob` was called and succeeded, false when a queued job already covers
 * the request. If adding the job fails the key is taken back, so the next request tries again.
 */
export async function requestCoalesced(redis: Redis, req: CoalescedRequest, addJob: () => Promise<unknown>): Promise<boolean> {
  if (req.force) await redis.set(req.key, req.value, 'PX', req.ttlMs);
  else if ((await redis.set(req.key, req.value, 'PX', req.ttlMs, 'NX')) !== 'OK') return false;
  try {
    await addJob();
  } catch (err) {
    await redis.del(req.key).catch(() => undefined);
    throw err;
  }
  return true;
}
