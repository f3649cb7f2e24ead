/**
 * The reconcile queue's coalescing rule: a request sets a pending key (with a time to live) and
 * adds a job only if the key was not set yet; the worker deletes the key when it starts reading
 * what the job is about. A burst of requests thus becomes one job, and a request made while that
 * job runs becomes exactly one more. Claiming the key and adding the job are two steps; a claim
 * never confirmed (its client died between them) is taken over after CLAIM_LOST_MS instead of
 * swallowing requests until the key expires.
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

/**
 * A claim whose job was never confirmed added after this long was made by a client that died
 * between the two steps (a process killed mid-request): the next request claims again instead
 * of counting on it until the key's time to live runs out. Adding a job takes milliseconds.
 */
export const CLAIM_LOST_MS = 10_000;

// KEYS[1] pending key; ARGV: lane, reason, ttl ms, force, lost-after ms. The value is
// `<lane>:claimed@<ms>:<reason>` until the job is added, then `<lane>:queued:<reason>`; the
// time is Redis's own, so that clients on several hosts agree on it. Returns the claim's value
// when the caller must add a job, else 0.
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local had = redis.call('GET', KEYS[1])
if had and ARGV[4] ~= '1' then
  local at = string.match(had, '^%a+:claimed@(%d+):')
  local lost = at ~= nil and now - tonumber(at) > tonumber(ARGV[5])
  if not lost and not (ARGV[1] == 'event' and string.sub(had, 1, 11) == 'background:') then return 0 end
end
local value = ARGV[1] .. ':claimed@' .. now .. ':' .. ARGV[2]
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return value`;

// KEYS[1] pending key; ARGV: the claim's value, the queued value. Only the claim this caller made.
const CONFIRM = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end
return 0`;

/**
 * Returns true when `addJob` was called and succeeded, false when a queued job already covers
 * the request. If adding the job fails the key is taken back, so the next request tries again.
 */
export async function requestCoalesced(redis: Redis, req: CoalescedRequest, addJob: () => Promise<unknown>): Promise<boolean> {
  const claimed = await redis.eval(CLAIM, 1, req.key, req.lane, req.reason, String(req.ttlMs), req.force ? '1' : '0', String(CLAIM_LOST_MS));
  if (typeof claimed !== 'string') return false;
  try {
    await addJob();
  } catch (err) {
    await redis.del(req.key).catch(() => undefined);
    throw err;
  }
  await redis.eval(CONFIRM, 1, req.key, claimed, `${req.lane}:queued:${req.reason}`);
  return true;
}
