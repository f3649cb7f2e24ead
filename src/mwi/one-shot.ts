/**
 * MWI from a one-shot command (`vmbridge sync`): the counts a reconcile left are sent straight to
 * each target, not through the queues, because no worker may be running to take a job.
 *
 * It follows the same protocol as the service's per-target workers (workers/mwi.ts), so the two
 * can run at the same time without a lamp ever going back to an older value:
 * - the desired counts are written while the mailbox's reconcile lock is still held (the caller
 *   does that with `record`), so they land in the order the spool changed;
 * - each (target, mailbox) is published under the same Redis lock the workers take, and what is
 *   sent is the newest desired value read under that lock, never the caller's own copy;
 * - a target is told only when that value differs from what it last got (`published`), which is
 *   recorded after it confirmed; so a sync after the service already published sends nothing.
 *
 * A target that fails is not retried here: a job is queued on its queue (coalesced like any other
 * request), so `vmbridge run` retries it with backoff, now or when it next starts; and the rest of
 * this run skips that target (a dead SIP peer costs a 32 s transaction timeout per NOTIFY).
 */
import type { Redis } from 'ioredis';
import type { MwiTarget } from '../config/schema.js';
import type { Logger } from '../log.js';
import { acquireMailboxLock } from '../queue/mailbox-lock.js';
import { mwiLockKey, MwiRequester, type MwiStore } from '../queue/mwi-queue.js';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import { isValidCounts, MwiCountsError, sameAsShown, type MwiCounts } from './counts.js';
import { createSender, type MwiSender } from './targets.js';
import { MAIN_SERVER, targetServes } from '../config/servers.js';

export type OneShotStatus = 'published' | 'unchanged' | 'failed' | 'skipped';

export interface OneShotResult {
  readonly target: string;
  readonly status: OneShotStatus;
  /** The desired counts: what the target was sent (published), already has (unchanged), or would have got (failed, skipped). */
  readonly counts?: MwiCounts;
  /** failed: why; skipped: the earlier failure of this target in this run. */
  readonly error?: string;
  /** failed or skipped: a job was queued for `vmbridge run` to retry. */
  readonly queued?: boolean;
}

export interface OneShotDeps {
  readonly targets: readonly MwiTarget[];
  readonly redis: Redis;
  readonly prefix: string;
  readonly store: MwiStore;
  readonly log: Logger;
  /** Longest AMI reconnect wait (mwi.retryMaxSeconds in ms). */
  readonly reconnectMaxMs: number;
  /** Tests may hand in senders by target name; otherwise one is made from the settings. */
  readonly senders?: ReadonlyMap<string, MwiSender>;
}

export class OneShotMwiPublisher {
  private readonly senders = new Map<string, MwiSender>();
  private readonly owned: MwiSender[] = [];
  private readonly failed = new Map<string, string>();
  private readonly requesters = new Map<string, MwiRequester>();

  constructor(private readonly deps: OneShotDeps) {}

  get enabled(): boolean {
    return this.deps.targets.length > 0;
  }

  /**
   * Records `counts` as what `ref` should show. Call it while the mailbox's reconcile lock is
   * held. Refuses invalid counts (MwiCountsError) before touching Redis.
   */
  async record(ref: MailboxRef, counts: MwiCounts): Promise<void> {
    if (!isValidCounts(counts)) throw new MwiCountsError(`${mailboxKey(ref)}: counts ${JSON.stringify(counts)} are not whole numbers ≥ 0 with urgent ≤ new`);
    if (!this.enabled) return;
    await this.deps.store.setDesired(ref, counts);
  }

  /** Sends the newest desired counts of `ref` to every target whose last published counts differ. */
  async publish(ref: MailboxRef): Promise<OneShotResult[]> {
    const out: OneShotResult[] = [];
    for (const target of this.deps.targets) if (targetServes(target, ref.server ?? MAIN_SERVER)) out.push(await this.publishTo(target, ref));
    return out;
  }

  private async publishTo(target: MwiTarget, ref: MailboxRef): Promise<OneShotResult> {
    const { redis, prefix, store } = this.deps;
    const earlier = this.failed.get(target.name);
    if (earlier !== undefined) {
      const desired = await store.desired(ref);
      if (desired === undefined) return { target: target.name, status: 'unchanged' };
      if (sameAsShown(target.kind, await store.published(target.name, ref), desired)) return { target: target.name, status: 'unchanged', counts: desired };
      return { target: target.name, status: 'skipped', counts: desired, error: earlier, queued: await this.queue(target.name, ref) };
    }
    const lock = await acquireMailboxLock(redis, mwiLockKey(prefix, target.name, ref));
    let desired: MwiCounts | undefined;
    try {
      desired = await store.desired(ref);
      // Never counted: unknown, not zero.
      if (desired === undefined) return { target: target.name, status: 'unchanged' };
      if (sameAsShown(target.kind, await store.published(target.name, ref), desired)) return { target: target.name, status: 'unchanged', counts: desired };
      await this.sender(target).publish(ref, desired);
      await store.setPublished(target.name, ref, desired);
      this.deps.log.info({ mwiTarget: target.name, mailbox: mailboxKey(ref), new: desired.new, old: desired.old, urgent: desired.urgent, kind: target.kind }, 'MWI published');
      return { target: target.name, status: 'published', counts: desired };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.failed.set(target.name, why);
      this.deps.log.warn({ mwiTarget: target.name, mailbox: mailboxKey(ref), err: why }, 'MWI publish failed; queued for vmbridge run to retry');
      return { target: target.name, status: 'failed', ...(desired ? { counts: desired } : {}), error: why, queued: await this.queue(target.name, ref) };
    } finally {
      await lock.release().catch(() => undefined);
    }
  }

  /** Queues a retry on the target's own queue; false if that could not be done either. */
  private async queue(target: string, ref: MailboxRef): Promise<boolean> {
    try {
      let requester = this.requesters.get(target);
      if (!requester) {
        requester = new MwiRequester(this.deps.redis, this.deps.prefix, target);
        this.requesters.set(target, requester);
      }
      await requester.request(ref);
      return true;
    } catch (err) {
      this.deps.log.warn({ mwiTarget: target, mailbox: mailboxKey(ref), err: err instanceof Error ? err.message : String(err) }, 'MWI retry could not be queued');
      return false;
    }
  }

  private sender(target: MwiTarget): MwiSender {
    let s = this.senders.get(target.name) ?? this.deps.senders?.get(target.name);
    if (!s) {
      s = createSender(target, { log: this.deps.log, reconnectMaxMs: this.deps.reconnectMaxMs });
      this.owned.push(s);
    }
    this.senders.set(target.name, s);
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.owned) await s.close().catch(() => undefined);
    for (const r of this.requesters.values()) await r.close().catch(() => undefined);
  }
}
