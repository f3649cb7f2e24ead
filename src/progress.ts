/**
 * Progress of a pass over many mailboxes (the first import, `vmbridge sync`, the service's start-up
 * pass): mailboxes done of total, messages appended, rate and time left, and when a line is due.
 * Pure: the clock is passed in, so the numbers are the same in every run of a test.
 */

export interface ProgressSnapshot {
  readonly done: number;
  readonly total: number;
  readonly appended: number;
  /** Mailboxes whose reconcile failed; they count as done for this pass. */
  readonly failed: number;
  readonly elapsedSeconds: number;
  /** Messages appended per second since the start. */
  readonly rate: number;
  /** Mailboxes done per second since the start: what the time left is reckoned from. */
  readonly mailboxRate: number;
  /** Seconds left at the rate so far; undefined until one mailbox is done (nothing to go on). */
  readonly etaSeconds: number | undefined;
}

export interface ReportPolicy {
  /** A line at least this often while mailboxes finish. */
  readonly everyMs: number;
  /** ... and after this many more mailboxes, whatever the time. */
  readonly everyMailboxes: number;
}

/** A line every 10 s, or every tenth of the mailboxes, whichever comes first; and the last one. */
export function defaultPolicy(total: number): ReportPolicy {
  return { everyMs: 10_000, everyMailboxes: Math.max(1, Math.ceil(total / 10)) };
}

export class ProgressMeter {
  private readonly started: number;
  private doneCount = 0;
  private appendedCount = 0;
  private failedCount = 0;
  private lastReportAt: number;
  private lastReportDone = 0;

  constructor(
    readonly total: number,
    private readonly now: () => number,
    private readonly policy: ReportPolicy = defaultPolicy(total),
  ) {
    this.started = now();
    this.lastReportAt = this.started;
  }

  /** One mailbox finished (or failed), having appended `appended` messages. */
  mailboxDone(appended: number, failed = false): void {
    this.doneCount++;
    this.appendedCount += appended;
    if (failed) this.failedCount++;
  }

  get finished(): boolean {
    return this.doneCount >= this.total;
  }

  snapshot(): ProgressSnapshot {
    const elapsedSeconds = Math.max(0, (this.now() - this.started) / 1000);
    const rate = elapsedSeconds > 0 ? this.appendedCount / elapsedSeconds : 0;
    const mailboxRate = elapsedSeconds > 0 ? this.doneCount / elapsedSeconds : 0;
    const left = Math.max(0, this.total - this.doneCount);
    const etaSeconds = left === 0 ? 0 : mailboxRate > 0 ? left / mailboxRate : undefined;
    return { done: this.doneCount, total: this.total, appended: this.appendedCount, failed: this.failedCount, elapsedSeconds, rate, mailboxRate, etaSeconds };
  }

  /**
   * Whether a line is due now; a true answer counts as the line written. The last mailbox always
   * gets one, so the final counts are always seen.
   */
  due(): boolean {
    const at = this.now();
    const yes = this.finished
      || at - this.lastReportAt >= this.policy.everyMs
      || this.doneCount - this.lastReportDone >= this.policy.everyMailboxes;
    if (yes && this.doneCount !== this.lastReportDone) {
      this.lastReportAt = at;
      this.lastReportDone = this.doneCount;
      return true;
    }
    // Nothing new since the last line: saying it again tells nothing.
    return false;
  }
}

/** `45s`, `3m05s`, `1h02m`; `?` while unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

/** The terminal line: `12/40 mailboxes, 345 appended (11.2/s), 1 failed, 35s left`. */
export function formatProgress(s: ProgressSnapshot): string {
  const failed = s.failed > 0 ? `, ${s.failed} failed` : '';
  const tail = s.done >= s.total ? `done in ${formatDuration(s.elapsedSeconds)}` : `${formatDuration(s.etaSeconds)} left`;
  return `${s.done}/${s.total} mailboxes, ${s.appended} appended (${formatRate(s.rate)}/s)${failed}, ${tail}`;
}

/** The fields of a `progress` log line: numbers rounded, no unknown ETA written as a number. */
export function progressFields(s: ProgressSnapshot): Record<string, number | null> {
  const round = (n: number, places: number): number => Math.round(n * 10 ** places) / 10 ** places;
  return {
    done: s.done,
    total: s.total,
    appended: s.appended,
    failed: s.failed,
    rate: round(s.rate, 2),
    mailboxRate: round(s.mailboxRate, 3),
    etaSeconds: s.etaSeconds === undefined ? null : Math.round(s.etaSeconds),
    elapsedSeconds: round(s.elapsedSeconds, 1),
  };
}
