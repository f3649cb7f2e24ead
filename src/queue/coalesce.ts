/**
 * The reconcile queue's coalescing rule: a request sets a pending key (with a time to live) and
 * adds a job only if the key was not set yet; the worker deletes the key when it starts reading
 * what the job is about. A burst of requests thus becomes one job, and a request made while that
 * job runs becomes exactly one more.
 *
 * With two lanes: the key remembers the lane of the job it stands for. An event's request that
 * finds only a background job pending adds an event job all the same, which runs ahead of the
 * background backlog (the background job then finds nothing left to do); a background request is
 * always covered by any pending job.
 */
import type { Redis } from 'ioredis';

export type Lane = 'event' | 'background';

export interface CoalescedRequest {
  /** The pending key of what is asked for (one mailbox). */
  readonly key: string;
  /** Why, stored in the key for whoever looks at Redis. */
  readonly reason: string;
  readonly lane: Lane;
  /** How long the key outlives a job lost with a crashed client before a request queues again. */
  readonly ttlMs: number;
  /** Queue a job whatever the key says (and set the key). */
  readonly force?: boolean;
}

// KEYS[1] pending key; ARGV: value, ttl ms, lane, force. Returns 1 when the caller must add a job.
const CLAIM = `
local had = redis.call('GET', KEYS[1])
if had and ARGV[4] ~= '1' then
  if not (ARGV[3] == 'event' and string.sub(had, 1, 11) == 'background:') then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * Returns true when `addJob` was called and succeeded, false when a queued job already covers
 * the request. If adding the job fails the key is taken back, so the next request tries again.
 */
export async function requestCoalesced(redis: Redis, req: CoalescedRequest, addJob: () => Promise<unknown>): Promise<boolean> {
  const claimed = await redis.eval(CLAIM, 1, req.key, `${req.lane}:${req.reason}`, String(req.ttlMs), req.lane, req.force ? '1' : '0');
  if (claimed !== 1) return false;
  try {
    await addJob();
  } catch (err) {
    await redis.del(req.key).catch(() => undefined);
    throw err;
  }
  return true;
}
