/**
 * When each Dovecot last POSTed to /dovecot-push, by the address it sent from, kept in Redis so
 * that every vmbridge process and `vmbridge doctor` see the same record. Only accepted POSTs
 * count (a refused one says nothing about whether push works). Written at most once per sender
 * every few seconds: Dovecot POSTs at every mail command.
 */
import type { Redis } from 'ioredis';

export interface PushSeen {
  /** The address the POSTs came from (a Dovecot server, or its proxy). */
  readonly sender: string;
  /** The last one (ISO time). */
  readonly at: string;
}

/** Senders one process records at most; more are not (that many Dovecot hosts is unusual). */
export const MAX_SENDERS = 32;
const WRITE_EVERY_MS = 5_000;

const key = (prefix: string): string => `${prefix}:push:seen`;

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) as `127.0.0.1`. */
export function senderName(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}

/** Records POSTs; keeps the last write per sender in memory to write at most every 5 s. */
export class PushSeenRecorder {
  private readonly written = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async seen(sender: string, now = Date.now()): Promise<void> {
    const last = this.written.get(sender);
    if (last !== undefined && now - last < WRITE_EVERY_MS) return;
    if (last === undefined && this.written.size >= MAX_SENDERS) return;
    this.written.set(sender, now);
    await this.redis.hset(key(this.prefix), sender, new Date(now).toISOString());
  }
}

export async function listPushSeen(redis: Redis, prefix: string): Promise<PushSeen[]> {
  const all = await redis.hgetall(key(prefix));
  return Object.entries(all).map(([sender, at]) => ({ sender, at })).sort((a, b) => (a.at < b.at ? 1 : -1));
}
