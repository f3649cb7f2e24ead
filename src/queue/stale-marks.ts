/**
 * Mailboxes whose email side is behind: the last reconcile could not finish (IMAP unreachable, a
 * login in back-off, spool changes deferred). Kept in Redis so that every process and
 * `vmbridge doctor` see the same list; a reconcile that finishes clears its mailbox.
 */
import type { Redis } from 'ioredis';
import { mailboxKey, type MailboxRef } from '../spool/types.js';

export interface StaleMark {
  readonly mailbox: string;
  readonly since: string;
  readonly reason: string;
}

const key = (prefix: string): string => `${prefix}:stale`;

/** Marks `ref` stale; keeps the first `since` of a run of failures. */
export async function markStale(redis: Redis, prefix: string, ref: MailboxRef, reason: string, now = new Date()): Promise<void> {
  const field = mailboxKey(ref);
  const had = await redis.hget(key(prefix), field);
  const since = had ? (JSON.parse(had) as { since?: string }).since ?? now.toISOString() : now.toISOString();
  await redis.hset(key(prefix), field, JSON.stringify({ since, reason: reason.slice(0, 300) }));
}

export async function clearStale(redis: Redis, prefix: string, ref: MailboxRef): Promise<boolean> {
  return (await redis.hdel(key(prefix), mailboxKey(ref))) > 0;
}

export async function listStale(redis: Redis, prefix: string): Promise<StaleMark[]> {
  const all = await redis.hgetall(key(prefix));
  return Object.entries(all).map(([mailbox, v]) => {
    const parsed = JSON.parse(v) as { since?: string; reason?: string };
    return { mailbox, since: parsed.since ?? '', reason: parsed.reason ?? '' };
  }).sort((a, b) => (a.since < b.since ? -1 : 1));
}
