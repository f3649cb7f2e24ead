/**
 * What the alerting remembers, in Redis so that restarts and several workers on several hosts
 * agree on it:
 *
 *   <prefix>:alert:fired:<scope>          set of fired level ids (scope: quota:<user>:<RESOURCE>,
 *                                         maxmsg:<context>:<mailbox>:<folder>)
 *   <prefix>:quota-block:[<server>:]<context>:<mb> hash: a mailbox whose server refused an APPEND for quota
 *   <prefix>:alert:sent                   sorted set: send times of alert mails (flood cap)
 *   <prefix>:alert:held                   list: alerts held back by the flood cap (JSON)
 *   <prefix>:alert:summary-due            a summary of held-back alerts is scheduled
 *
 * Firing is decided by SADD inside one script: of two workers that see the same crossing at the
 * same moment, exactly one gets the level back as newly fired, and only that one sends the mail.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redisBoxPart, type MailboxRef } from '../spool/types.js';
import { FLOOD_WINDOW_MS, floodDecision, type FloodDecision } from './flood-cap.js';

// ARGV[1] = how many ids to clear, then those ids, then the ids to fire. Returns the ids that
// were newly added (fired by this call).
const APPLY = `
local n = tonumber(ARGV[1])
for i = 2, n + 1 do redis.call('SREM', KEYS[1], ARGV[i]) end
local added = {}
for i = n + 2, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then added[#added + 1] = ARGV[i] end
end
return added`;

// Adds a send time only if the window still holds as many as the caller decided on; otherwise 0
// and the caller decides again. ARGV: oldest time still in the window, expected count, now,
// member, key lifetime in ms.
const ADMIT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if redis.call('ZCARD', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

/** A mailbox whose mail server refused a voicemail for quota. */
export interface QuotaBlock {
  /** When the first refusal was seen (epoch ms). */
  readonly since: number;
  /** Retries scheduled so far. */
  readonly attempts: number;
  /** When the scheduled retry is due (epoch ms; for logs and people, not for decisions). */
  readonly nextRetryAt: number;
  /** The reconcile job of the scheduled retry. */
  readonly retryJob: string;
  /** The fired-state scope of the resource that is full (see quotaScope). */
  readonly scope: string;
  /** The server's words. */
  readonly reason: string;
}

export interface HeldAlert {
  readonly at: string;
  readonly subject: string;
}

/** What the quota watch needs to remember (AlertState in Redis; tests may keep it in memory). */
export interface AlertStore {
  fired(scope: string): Promise<Set<string>>;
  apply(scope: string, fire: readonly string[], rearm: readonly string[]): Promise<string[]>;
  forget(scope: string): Promise<void>;
  block(ref: MailboxRef): Promise<QuotaBlock | undefined>;
  setBlock(ref: MailboxRef, b: QuotaBlock): Promise<void>;
  /** Removes the block and returns it (only one caller gets it for one block). */
  clearBlock(ref: MailboxRef): Promise<QuotaBlock | undefined>;
}

function toBlock(h: Record<string, string>): QuotaBlock | undefined {
  const since = Number(h.since);
  if (!Number.isFinite(since) || since <= 0) return undefined;
  return {
    since,
    attempts: Number(h.attempts) || 0,
    nextRetryAt: Number(h.nextRetryAt) || 0,
    retryJob: h.retryJob ?? '',
    scope: h.scope ?? '',
    reason: h.reason ?? '',
  };
}

export class AlertState implements AlertStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private firedKey(scope: string): string {
    return `${this.prefix}:alert:fired:${scope}`;
  }

  private blockKey(ref: MailboxRef): string {
    return `${this.prefix}:quota-block:${redisBoxPart(ref)}`;
  }

  async fired(scope: string): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.firedKey(scope)));
  }

  /** Clears `rearm`, adds `fire`; returns the ids of `fire` that were not fired before. */
  async apply(scope: string, fire: readonly string[], rearm: readonly string[]): Promise<string[]> {
    if (fire.length === 0 && rearm.length === 0) return [];
    const added = await this.redis.eval(APPLY, 1, this.firedKey(scope), String(rearm.length), ...rearm, ...fire);
    return Array.isArray(added) ? added.map(String) : [];
  }

  async forget(scope: string): Promise<void> {
    await this.redis.del(this.firedKey(scope));
  }

  async block(ref: MailboxRef): Promise<QuotaBlock | undefined> {
    return toBlock(await this.redis.hgetall(this.blockKey(ref)));
  }

  async setBlock(ref: MailboxRef, b: QuotaBlock): Promise<void> {
    await this.redis.hset(this.blockKey(ref), {
      since: String(b.since),
      attempts: String(b.attempts),
      nextRetryAt: String(b.nextRetryAt),
      retryJob: b.retryJob,
      scope: b.scope,
      reason: b.reason,
    });
  }

  async clearBlock(ref: MailboxRef): Promise<QuotaBlock | undefined> {
    const key = this.blockKey(ref);
    const res = await this.redis.multi().hgetall(key).del(key).exec();
    const hash = res?.[0]?.[1];
    const deleted = Number(res?.[1]?.[1] ?? 0);
    if (deleted === 0 || typeof hash !== 'object' || hash === null) return undefined;
    return toBlock(hash as Record<string, string>);
  }

  /**
   * The flood cap, decided by floodDecision on the stored send times and recorded atomically.
   * `release` takes the slot back when the mail could not be sent after all.
   */
  async admit(now: number, cap: number): Promise<FloodDecision & { release: () => Promise<void> }> {
    const key = `${this.prefix}:alert:sent`;
    const member = `${now}-${randomUUID()}`;
    for (let attempt = 0; ; attempt++) {
      const flat = await this.redis.zrangebyscore(key, now - FLOOD_WINDOW_MS + 1, '+inf', 'WITHSCORES');
      const times = flat.filter((_, i) => i % 2 === 1).map(Number);
      const decision = floodDecision(times, now, cap);
      const release = async (): Promise<void> => {
        await this.redis.zrem(key, member);
      };
      if (!decision.admit) return { ...decision, release: async () => undefined };
      const ok = await this.redis.eval(ADMIT, 1, key, String(now - FLOOD_WINDOW_MS + 1), String(decision.inWindow), String(now), member, String(FLOOD_WINDOW_MS * 2));
      if (Number(ok) === 1) return { ...decision, release };
      // Another worker sent a mail in between: decide again on the new count (a few rounds at
      // most; after that, err on the side of sending, as one mail too many beats a lost alert).
      if (attempt >= 5) return { ...decision, release };
    }
  }

  async hold(alert: HeldAlert): Promise<void> {
    await this.redis.rpush(`${this.prefix}:alert:held`, JSON.stringify(alert));
  }

  /** Takes every held-back alert out of the list, atomically. */
  async takeHeld(): Promise<HeldAlert[]> {
    const key = `${this.prefix}:alert:held`;
    const res = await this.redis.multi().lrange(key, 0, -1).del(key).exec();
    const raw = res?.[0]?.[1];
    const out: HeldAlert[] = [];
    for (const line of Array.isArray(raw) ? raw : []) {
      try {
        const v = JSON.parse(String(line)) as Partial<HeldAlert>;
        if (typeof v.at === 'string' && typeof v.subject === 'string') out.push({ at: v.at, subject: v.subject });
      } catch {
        // A line that is not ours: nothing to summarise from it.
      }
    }
    return out;
  }

  /** True for the one caller that should schedule the summary mail (until `ttlMs` or done). */
  async claimSummary(ttlMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}:alert:summary-due`, '1', 'PX', Math.max(1, Math.round(ttlMs)), 'NX')) === 'OK';
  }

  async summaryDone(): Promise<void> {
    await this.redis.del(`${this.prefix}:alert:summary-due`);
  }
}
