/** Counters for /metrics, kept in the process (each worker process reports its own). */
import { lockStats } from '../spool/lock.js';
import type { Op } from '../sync/plan.js';

export const PUSH_OUTCOMES = ['queued', 'unknown-user', 'refused'] as const;
export type PushOutcome = (typeof PUSH_OUTCOMES)[number];

export class Metrics {
  private reconciles = 0;
  private failures = 0;
  private readonly ops = new Map<string, number>();
  private lastMs = 0;
  private readonly pushNotices = new Map<PushOutcome, number>();
  private readonly started = Date.now();
  /** Mailboxes this process last saw fail to reconcile (cleared when one finishes). */
  private readonly stale = new Set<string>();

  reconciled(ops: readonly Op[], ms: number): void {
    this.reconciles++;
    this.lastMs = ms;
    for (const op of ops) {
      const key = `${op.kind}|${op.reason}`;
      this.ops.set(key, (this.ops.get(key) ?? 0) + 1);
    }
  }

  failed(): void {
    this.failures++;
  }

  /** Whether `mailbox`'s email side is behind (its last reconcile here did not finish). */
  staleness(mailbox: string, isStale: boolean): void {
    if (isStale) this.stale.add(mailbox);
    else this.stale.delete(mailbox);
  }

  /** A POST to /dovecot-push, by what came of it. */
  push(outcome: PushOutcome): void {
    this.pushNotices.set(outcome, (this.pushNotices.get(outcome) ?? 0) + 1);
  }

  render(): string {
    const lines = [
      '# HELP vmbridge_reconciles_total Reconciles finished.',
      '# TYPE vmbridge_reconciles_total counter',
      `vmbridge_reconciles_total ${this.reconciles}`,
      '# HELP vmbridge_reconcile_failures_total Reconciles that failed (retried with backoff).',
      '# TYPE vmbridge_reconcile_failures_total counter',
      `vmbridge_reconcile_failures_total ${this.failures}`,
      '# HELP vmbridge_ops_total Changes applied, by kind and decision-table row.',
      '# TYPE vmbridge_ops_total counter',
      ...[...this.ops].map(([key, n]) => {
        const [kind, reason] = key.split('|');
        return `vmbridge_ops_total{kind="${kind}",reason="${reason}"} ${n}`;
      }),
      '# HELP vmbridge_last_reconcile_seconds Duration of the last reconcile.',
      '# TYPE vmbridge_last_reconcile_seconds gauge',
      `vmbridge_last_reconcile_seconds ${(this.lastMs / 1000).toFixed(3)}`,
      ...spoolLockLines(),
      '# HELP vmbridge_push_notices_total POSTs from Dovecot to /dovecot-push: queued (a reconcile was asked for), unknown-user (no voicemail box), refused (token or body).',
      '# TYPE vmbridge_push_notices_total counter',
      ...PUSH_OUTCOMES.map((o) => `vmbridge_push_notices_total{outcome="${o}"} ${this.pushNotices.get(o) ?? 0}`),
      '# HELP vmbridge_stale_mailboxes Mailboxes whose last reconcile in this process did not finish; their lamps follow the spool, their emails catch up once it does.',
      '# TYPE vmbridge_stale_mailboxes gauge',
      `vmbridge_stale_mailboxes ${this.stale.size}`,
      '# HELP vmbridge_uptime_seconds Seconds since the process started.',
      '# TYPE vmbridge_uptime_seconds gauge',
      `vmbridge_uptime_seconds ${Math.round((Date.now() - this.started) / 1000)}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}

/** Asterisk gives up on a folder lock after 5 s: how close vmbridge's own holds come to that. */
function spoolLockLines(): string[] {
  const l = lockStats();
  const sec = (ms: number): string => (ms / 1000).toFixed(4);
  return [
    '# HELP vmbridge_spool_lock_holds_total Asterisk folder locks taken by this process.',
    '# TYPE vmbridge_spool_lock_holds_total counter',
    `vmbridge_spool_lock_holds_total ${l.holds}`,
    '# HELP vmbridge_spool_lock_hold_seconds_max Longest time this process held a folder lock.',
    '# TYPE vmbridge_spool_lock_hold_seconds_max gauge',
    `vmbridge_spool_lock_hold_seconds_max ${sec(l.maxHoldMs)}`,
    '# HELP vmbridge_spool_lock_wait_seconds_max Longest wait for a folder lock.',
    '# TYPE vmbridge_spool_lock_wait_seconds_max gauge',
    `vmbridge_spool_lock_wait_seconds_max ${sec(l.maxWaitMs)}`,
    '# HELP vmbridge_spool_lock_timeouts_total Folder locks given up on (the change is retried).',
    '# TYPE vmbridge_spool_lock_timeouts_total counter',
    `vmbridge_spool_lock_timeouts_total ${l.timeouts}`,
  ];
}
