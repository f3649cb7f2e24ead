/**
 * How many background reconciles (start-up pass, sweep, reload) may run at once, following the
 * event lane: the low `busy` number while an event's reconcile runs or ran within `calmMs`, the
 * higher `calm` number otherwise. A pass over thousands of mailboxes thus uses the room nobody
 * else needs (a first start, a night-time sweep), and gives it back as soon as a new voicemail,
 * a mail-client action or an AMI event arrives; reconciles already running are not interrupted,
 * so an event meets at most `calm` of them, each a few round trips long.
 */
export interface PaceSettings {
  /** While events are around: sync.backgroundConcurrency. */
  readonly busy: number;
  /** While none is: sync.backgroundCalmConcurrency. */
  readonly calm: number;
  /** How long after the last event's reconcile the lane stays at `busy`. */
  readonly calmMs: number;
}

export class BackgroundPace {
  private running = 0;
  private lastEventAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly settings: PaceSettings,
    private readonly now: () => number = () => performance.now(),
  ) {}

  eventStarted(): void {
    this.running++;
    this.lastEventAt = this.now();
  }

  eventEnded(): void {
    this.running = Math.max(0, this.running - 1);
    this.lastEventAt = this.now();
  }

  /** Background reconciles allowed at once now. */
  concurrency(): number {
    const { busy, calm } = this.settings;
    return this.calmInMs() === 0 ? Math.max(busy, calm) : busy;
  }

  /**
   * How long until the calm pace applies if no event comes meanwhile: 0 when it does now,
   * undefined while an event's reconcile runs (its end starts the window).
   */
  calmInMs(): number | undefined {
    if (this.running > 0) return undefined;
    return Math.max(0, this.settings.calmMs - (this.now() - this.lastEventAt));
  }
}
