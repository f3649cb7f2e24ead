/**
 * Progress as log lines, for a pass nobody watches on a terminal: the service's start-up pass, and
 * `vmbridge sync` with its output going to a file or a pipe.
 */
import type { Logger } from './log.js';
import { ProgressMeter, progressFields } from './progress.js';
import { mailboxKey, type MailboxRef } from './spool/types.js';
import type { ReconcileResult } from './sync/reconcile.js';

/** Emails appended by a reconcile: its plan's appends less those skipped (none on a dry run). */
export function appendedBy(result: ReconcileResult): number {
  if (result.applied === 0) return 0;
  const planned = result.plan.ops.filter((op) => op.kind === 'append').length;
  return planned - result.skipped.filter((s) => s.op.kind === 'append').length;
}

/** Writes a `progress` line when one is due. */
export function logProgress(meter: ProgressMeter, log: Logger, extra: Record<string, string> = {}): void {
  if (meter.due()) log.info({ ...extra, ...progressFields(meter.snapshot()) }, 'progress');
}

/**
 * The service's first pass over every mailbox: each mailbox of the start-up list counts once, at
 * its first finished reconcile whatever asked for it, and the tracker goes quiet when all are done.
 */
export class StartupProgress {
  private readonly waiting: Set<string>;
  private readonly meter: ProgressMeter;

  constructor(refs: Iterable<MailboxRef>, private readonly log: Logger, now: () => number = Date.now) {
    this.waiting = new Set([...refs].map(mailboxKey));
    this.meter = new ProgressMeter(this.waiting.size, now);
  }

  reconciled(ref: MailboxRef, result: ReconcileResult): void {
    if (this.waiting.delete(mailboxKey(ref))) this.record(appendedBy(result), false);
  }

  /** A reconcile that is not retried (the safety stop): the mailbox is done for this pass. */
  gaveUp(ref: MailboxRef): void {
    if (this.waiting.delete(mailboxKey(ref))) this.record(0, true);
  }

  /**
   * voicemail.conf was read again: a mailbox of the pass no longer in it will never be reconciled,
   * so it counts as done, lest the pass never end.
   */
  keepOnly(refs: Iterable<MailboxRef>): void {
    const still = new Set([...refs].map(mailboxKey));
    for (const key of [...this.waiting]) {
      if (still.has(key)) continue;
      this.waiting.delete(key);
      this.record(0, false);
    }
  }

  private record(appended: number, failed: boolean): void {
    this.meter.mailboxDone(appended, failed);
    logProgress(this.meter, this.log, { phase: 'start' });
  }
}
