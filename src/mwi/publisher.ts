/**
 * After a reconcile: stores the mailbox's counts as the ones to show, and queues a publication on
 * every target whose last published counts differ. The per-target workers (workers/mwi.ts) do the
 * sending. Counts come only from a settled spool read (ReconcileResult.counts); a reconcile
 * without them publishes nothing: unknown is not zero.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { mwiJobSchema, MwiRequester, MwiStore } from '../queue/mwi-queue.js';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import { jobBox } from '../queue/box-fields.js';
import { isValidCounts, MwiCountsError, sameCounts, type MwiCounts } from './counts.js';

export interface MwiPublisherDeps {
  readonly redis: Redis;
  readonly prefix: string;
  /** Target names, as in mwi.targets. */
  readonly targets: readonly string[];
  /** Whether a target shows this mailbox's lamp (mwi.targets[].servers); unset: every target does. */
  readonly serves?: (target: string, ref: MailboxRef) => boolean;
  readonly store: MwiStore;
  readonly log: Logger;
  /**
   * Told when the counts wanted for a mailbox change, with when that change was first heard
   * (the status page measures change-to-lamp from it).
   */
  readonly onChanged?: (ref: MailboxRef, heardAt: number) => Promise<void>;
}

export class MwiPublisher {
  private readonly requesters = new Map<string, MwiRequester>();

  constructor(private readonly deps: MwiPublisherDeps) {
    for (const name of deps.targets) this.requesters.set(name, new MwiRequester(deps.redis, deps.prefix, name));
  }

  /** The reconcile worker's hook. Awaited under the mailbox's lock, so desired counts land in order. */
  async afterReconcile(ref: MailboxRef, result: { readonly counts?: MwiCounts | undefined }, heardAt?: number): Promise<void> {
    if (result.counts === undefined) {
      this.deps.log.debug({ mailbox: mailboxKey(ref) }, 'no settled spool counts after this reconcile; MWI left as it is');
      return;
    }
    await this.publish(ref, result.counts, heardAt);
  }

  /**
   * Records `counts` as what `ref` should show and queues it where it differs from what was last
   * published. Refuses (throws) an unsafe mailbox name or invalid counts before touching Redis.
   */
  async publish(ref: MailboxRef, counts: MwiCounts, heardAt?: number): Promise<number> {
    mwiJobSchema.parse(jobBox(ref));
    if (!isValidCounts(counts)) throw new MwiCountsError(`${mailboxKey(ref)}: counts ${JSON.stringify(counts)} are not whole numbers ≥ 0 with urgent ≤ new`);
    if (this.requesters.size === 0) return 0;
    const onChanged = heardAt !== undefined ? this.deps.onChanged : undefined;
    const before = onChanged ? await this.deps.store.desired(ref) : undefined;
    await this.deps.store.setDesired(ref, counts);
    if (onChanged && heardAt !== undefined && !sameCounts(before, counts)) await onChanged(ref, heardAt);
    let queued = 0;
    for (const [name, requester] of this.requesters) {
      if (this.deps.serves && !this.deps.serves(name, ref)) continue;
      // Only an optimisation: the worker compares again after it publishes, so a race here
      // cannot leave a stale value shown.
      if (sameCounts(await this.deps.store.published(name, ref), counts)) continue;
      if (await requester.request(ref)) queued++;
    }
    return queued;
  }

  /** Queues `ref` on one target (the worker uses it when counts kept changing under it). */
  async request(target: string, ref: MailboxRef): Promise<boolean> {
    const requester = this.requesters.get(target);
    return requester ? requester.request(ref) : false;
  }

  async close(): Promise<void> {
    for (const r of this.requesters.values()) await r.close();
  }
}
