/**
 * The last-synced records of each mailbox, in Redis: one hash per mailbox, one field per message
 * identity. It is a cache that can be rebuilt (plan() adopts pairs it finds on both sides), so a
 * lost Redis loses no voicemail; it only forgets which side changed last.
 *
 * Records are written one by one, right after the op they describe, so a crash leaves at most the
 * op in flight unrecorded, and that op is safe to repeat.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { redisBoxPart, SYNCED_SPOOL_FOLDERS, type MailboxRef } from '../spool/types.js';
import { IMAP_ROLES } from './placement.js';
import type { SyncRecord } from './plan.js';

const recordSchema = z.object({
  folder: z.enum(SYNCED_SPOOL_FOLDERS),
  role: z.enum(IMAP_ROLES),
  uid: z.number().int().positive(),
  uidValidity: z.string(),
});

export class StateStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  key(ref: MailboxRef): string {
    return `${this.prefix}:state:${redisBoxPart(ref)}`;
  }

  /** Loads every record; a field that does not parse is dropped (and re-learnt by adoption). */
  async load(ref: MailboxRef): Promise<{ records: Map<string, SyncRecord>; dropped: string[] }> {
    const raw = await this.redis.hgetall(this.key(ref));
    const records = new Map<string, SyncRecord>();
    const dropped: string[] = [];
    for (const [id, json] of Object.entries(raw)) {
      try {
        records.set(id, recordSchema.parse(JSON.parse(json)));
      } catch {
        dropped.push(id);
      }
    }
    return { records, dropped };
  }

  async put(ref: MailboxRef, id: string, record: SyncRecord): Promise<void> {
    await this.redis.hset(this.key(ref), id, JSON.stringify(record));
  }

  async remove(ref: MailboxRef, id: string): Promise<void> {
    await this.redis.hdel(this.key(ref), id);
  }

  async clear(ref: MailboxRef): Promise<void> {
    await this.redis.del(this.key(ref));
  }

  /**
   * The IMAP account the records were made with. A record says "this voicemail's email was in
   * that folder of that account": read against another account, every email looks deleted.
   */
  async account(ref: MailboxRef): Promise<string | undefined> {
    return (await this.redis.get(this.accountKey(ref))) ?? undefined;
  }

  async setAccount(ref: MailboxRef, account: string): Promise<void> {
    await this.redis.set(this.accountKey(ref), account);
  }

  /**
   * Which mailbox took each of these emails of Asterisk's IMAP storage, where several mailboxes
   * share their X-Asterisk-VM-Extension (src/sync/shared-extension.ts): msg_id -> mailbox.
   */
  async sharedClaims(account: string, context: string, extension: string, ids: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (ids.length === 0) return out;
    const values = await this.redis.hmget(this.claimsKey(), ...ids.map((id) => claimField(account, context, extension, id)));
    ids.forEach((id, i) => {
      const v = values[i];
      if (typeof v === 'string') out.set(id, v);
    });
    return out;
  }

  /** Takes the email for `mailbox` unless a mailbox took it first; returns the mailbox that has it. */
  async claimShared(account: string, context: string, extension: string, id: string, mailbox: string): Promise<string> {
    const field = claimField(account, context, extension, id);
    // HSETNX: of two reconciles deciding at once, exactly one wins.
    if ((await this.redis.hsetnx(this.claimsKey(), field, mailbox)) === 1) return mailbox;
    return (await this.redis.hget(this.claimsKey(), field)) ?? mailbox;
  }

  private claimsKey(): string {
    return `${this.prefix}:asterisk-claims`;
  }

  private accountKey(ref: MailboxRef): string {
    return `${this.prefix}:state-account:${redisBoxPart(ref)}`;
  }
}

/** One hash field per email: JSON keeps an account, context or share id holding ':' from meeting another's field. */
function claimField(account: string, context: string, extension: string, id: string): string {
  return JSON.stringify([account, context, extension, id]);
}
