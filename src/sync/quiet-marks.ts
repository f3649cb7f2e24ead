/**
 * Quiet marks: what a mailbox looked like, on both sides, the last time a background reconcile
 * found nothing to do (docs/sync.md, "A quiet mailbox in a sweep"). Kept in Redis, one hash
 * field per mailbox, so every process and a restart can use them:
 *
 *   <prefix>:quiet   hash mailbox → { store, records, account, imapTotal, folders: { path: status } }
 *
 * A mark is only ever compared for equality: a mark that does not match, or does not parse, is no
 * mark (the reconcile looks in full), so a stale one costs a full look, never a missed change.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { mailboxKey, type MailboxRef } from '../spool/types.js';

const markSchema = z.strictObject({
  store: z.string(),
  records: z.string(),
  account: z.string(),
  imapTotal: z.number().int().nonnegative(),
  folders: z.record(z.string(), z.string()),
});
export type QuietMark = z.infer<typeof markSchema>;

export class QuietMarks {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = `${prefix}:quiet`;
  }

  async get(ref: MailboxRef): Promise<QuietMark | undefined> {
    const raw = await this.redis.hget(this.key, mailboxKey(ref));
    if (raw === null) return undefined;
    try {
      const parsed = markSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  async set(ref: MailboxRef, mark: QuietMark): Promise<void> {
    await this.redis.hset(this.key, mailboxKey(ref), JSON.stringify(markSchema.parse(mark)));
  }

  async forget(ref: MailboxRef): Promise<void> {
    await this.redis.hdel(this.key, mailboxKey(ref));
  }
}
