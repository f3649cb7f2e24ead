/**
 * The reconcile queue's coalescing rule: a request sets a pending key (with a time to live) and
 * adds a job only if the key was not set yet; the worker deletes the key when it starts reading
 * what the job is about. A burst of requests thus becomes one job, and a request made while that
 * job runs becomes exactly one more. Claiming the key and adding the job are two steps; a claim
 * never confirmed (its client died between them) is taken over after CLAIM_LOST_MS instead of
 * swallowing requests until the key expires: by the next request, or, when none comes, by a
 * request it covered, which looks again once the claim would count as lost.
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
 * between the two steps (a process killed mid-request): it is taken over instead of swallowing
 * requests until the key's time to live runs out. Adding a job takes milliseconds.
 */
export const CLAIM_LOST_MS = 10_000;

/** Slack past CLAIM_LOST_MS before a request covered by an unconfirmed claim looks again. */
const FOLLOW_UP_SLACK_MS = 250;

// KEYS[1] pending key; ARGV: lane, reason, ttl ms, force, lost-after ms, and the value a
// follow-up expects (empty for a first request). The value is `<lane>:claimed@<ms>:<reason>`
// until the job is added, then `<lane>:queued:<reason>`; the time is Redis's own, so that
// clients on several hosts agree on it. Returns {1, claim} when the caller must add a job,
// {0} when a queued job covers the request, {2, claim, age ms} when an unconfirmed claim of
// another client covers it for now.
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local had = redis.call('GET', KEYS[1])
if ARGV[6] ~= '' and had ~= ARGV[6] then return {0} end
if had and ARGV[4] ~= '1' then
  local at = string.match(had, '^%a+:claimed@(%d+):')
  local lost = at ~= nil and now - tonumber(at) > tonumber(ARGV[5])
  if not lost and not (ARGV[1] == 'event' and string.sub(had, 1, 11) == 'background:') then
    if at ~= nil then return {2, had, now - tonumber(at)} end
    return {0}
  end
end
local value = ARGV[1] .. ':claimed@' .. now .. ':' .. ARGV[2]
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return {1, value}`;

// KEYS[1] pending key; ARGV: the claim's value, the queued value. Only the claim this caller made.
const CONFIRM = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end
return 0`;

/**
 * Where a request covered only by another client's unconfirmed claim is looked at again: that
 * client may have died before adding its job, and when no later request comes nothing else would
 * ask for the mailbox until the sweep. `retry` claims again only if the same claim is still there
 * unconfirmed; a worker that cleared the key, or a confirmed job, covers the request.
 */
export type FollowUp = (afterMs: number, retry: () => Promise<boolean>) => void;

/**
 * Returns true when `addJob` was called and succeeded, false when a queued job (or, until
 * `followUp` looks again, another client's claim) covers the request. If adding the job fails
 * the key is taken back, so the next request tries again.
 */
export async function requestCoalesced(redis: Redis, req: CoalescedRequest, addJob: () => Promise<unknown>, followUp?: FollowUp): Promise<boolean> {
  return claimAndAdd(redis, req, addJob, followUp, '');
}

async function claimAndAdd(redis: Redis, req: CoalescedRequest, addJob: () => Promise<unknown>, followUp: FollowUp | undefined, expect: string): Promise<boolean> {
  const answer = (await redis.eval(CLAIM, 1, req.key, req.lane, req.reason, String(req.ttlMs), req.force ? '1' : '0', String(CLAIM_LOST_MS), expect)) as [number, string?, number?];
  if (answer[0] === 2) {
    const [, other, age] = answer;
    if (followUp && other !== undefined) {
      followUp(Math.max(0, CLAIM_LOST_MS - (age ?? 0)) + FOLLOW_UP_SLACK_MS, () => claimAndAdd(redis, req, addJob, followUp, other));
    }
    return false;
  }
  if (answer[0] !== 1 || answer[1] === undefined) return false;
  const claimed = answer[1];
  try {
    await addJob();
  } catch (err) {
    await redis.del(req.key).catch(() => undefined);
    throw err;
  }
  await redis.eval(CONFIRM, 1, req.key, claimed, `${req.lane}:queued:${req.reason}`);
  return true;
}
