/**
 * The status of every user's folders as Dovecot's doveadm API last gave it (src/imap/doveadm.ts),
 * kept in Redis so that the reconcile workers of every process can use it:
 *
 *   <prefix>:folder-status   hash  @at -> epoch ms of the call; <user> -> { path: status }
 *
 * A background reconcile compares it with the mailbox's quiet mark instead of logging in
 * (src/sync/reconcile/quick-look.ts). It is never newer than what it describes, so a mark it
 * matches is a mailbox that was quiet when the snapshot was taken; a change since is found by
 * the events, or by the next sweep's snapshot.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { FolderStatuses } from '../imap/doveadm.js';

const AT = '@at';
const foldersSchema = z.record(z.string(), z.string());

export class FolderStatusSnapshot {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = `${prefix}:folder-status`;
  }

  /** Replaces the snapshot at once (no reader sees half of one); it lapses after `ttlMs`. */
  async write(byUser: ReadonlyMap<string, ReadonlyMap<string, string>>, at: number, ttlMs: number): Promise<void> {
    const next = `${this.key}:next`;
    const fields: string[] = [AT, String(at)];
    for (const [user, folders] of byUser) fields.push(user, JSON.stringify(Object.fromEntries(folders)));
    await this.redis.multi().del(next).hset(next, ...fields).pexpire(next, ttlMs).rename(next, this.key).exec();
  }

  /** Drops it: the next background reconciles log in, as without doveadm. */
  async clear(): Promise<void> {
    await this.redis.del(this.key);
  }

  /**
   * The folders of `user`, undefined when the snapshot does not name that user (then the reconcile
   * logs in as without doveadm). Dovecot folds user names to lower case by default, so the
   * lower-case name is asked too.
   */
  async of(user: string): Promise<FolderStatuses | undefined> {
    const [at, exact, lower] = await this.redis.hmget(this.key, AT, user, user.toLowerCase());
    if (at === null) return undefined;
    const raw = exact ?? lower;
    if (raw === null || raw === undefined) return undefined;
    try {
      const parsed = foldersSchema.safeParse(JSON.parse(raw));
      return parsed.success ? new Map(Object.entries(parsed.data)) : undefined;
    } catch {
      return undefined;
    }
  }
}
