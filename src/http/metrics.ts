/**
 * What /metrics shows, in one prom-client Registry per process (each worker process reports its
 * own). Events are counted as they happen (the hooks the service hands to the workers); what
 * lives elsewhere (BullMQ's queues in Redis, IMAP connections, the deletion breaker) is read when
 * the page is scraped, each reader bounded by a timeout so a Redis that does not answer leaves
 * those series out instead of hanging the scrape. No label names a mailbox: labels are targets,
 * queues, kinds and outcomes, all bounded by the settings.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { QUEUE_STATES, type QueueCounts } from '../queue/queue-counts.js';
import { lockStats } from '../spool/lock.js';
import type { Op } from '../sync/plan.js';

export const PUSH_OUTCOMES = ['queued', 'unknown-user', 'refused'] as const;
export type PushOutcome = (typeof PUSH_OUTCOMES)[number];

export const PUBLISH_OUTCOMES = ['ok', 'failed'] as const;
export type PublishOutcome = (typeof PUBLISH_OUTCOMES)[number];

/** safety-stop: one mailbox's plan deleted too much; delete-breaker: the installation-wide breaker opened. */
export const DELETION_GUARDS = ['safety-stop', 'delete-breaker'] as const;
export type DeletionGuard = (typeof DELETION_GUARDS)[number];

/** Readers called at scrape time; each is optional (tests, a process without that part). */
export interface MetricsSources {
  readonly queues?: () => Promise<readonly QueueCounts[]>;
  readonly imapConnections?: () => { readonly command: number; readonly idle: number; readonly waiting: number };
  readonly breakerOpen?: () => Promise<boolean>;
  /** Longest a scrape-time reader may take before its series are left out of this scrape. */
  readonly timeoutMs?: number;
}

/** Seconds: a reconcile of a quiet mailbox takes milliseconds, an import of a large one minutes. */
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds: an AMI action answers in milliseconds; a SIP transaction may take up to 32 s. */
const PUBLISH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 32];

/** `p`, or undefined once `ms` have passed (a failure of `p` is undefined too). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

export class Metrics {
  readonly registry = new Registry();
  private readonly started = Date.now();
  /** Mailboxes this process last saw fail to reconcile (cleared when one finishes). */
  private readonly stale = new Set<string>();
  private readonly reconciles: Counter;
  private readonly failures: Counter;
  private readonly ops: Counter<'kind' | 'reason'>;
  private readonly lastReconcile: Gauge;
  private readonly reconcileSeconds: Histogram;
  private readonly pushNotices: Counter<'outcome'>;
  private readonly pushLastSeen: Gauge;
  private readonly publishes: Counter<'target' | 'outcome'>;
  private readonly publishSeconds: Histogram<'target' | 'outcome'>;
  private readonly guardTrips: Counter<'guard'>;

  constructor(sources: MetricsSources = {}, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const timeoutMs = sources.timeoutMs ?? 2_000;
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });

    this.reconciles = new Counter({ name: 'vmbridge_reconciles_total', help: 'Reconciles finished.', registers });
    this.failures = new Counter({ name: 'vmbridge_reconcile_failures_total', help: 'Reconciles that failed (retried with backoff).', registers });
    this.ops = new Counter({ name: 'vmbridge_ops_total', help: 'Changes applied, by kind and decision-table row.', labelNames: ['kind', 'reason'], registers });
    this.lastReconcile = new Gauge({ name: 'vmbridge_last_reconcile_seconds', help: 'Duration of the last reconcile.', registers });
    this.reconcileSeconds = new Histogram({ name: 'vmbridge_reconcile_duration_seconds', help: 'Duration of finished reconciles (the mailbox lock taken to the last change recorded).', buckets: RECONCILE_BUCKETS, registers });
    this.spoolLockMetrics(registers);
    this.pushNotices = new Counter({ name: 'vmbridge_push_notices_total', help: 'POSTs from Dovecot to /dovecot-push: queued (a reconcile was asked for), unknown-user (no voicemail box), refused (token or body).', labelNames: ['outcome'], registers });
    for (const o of PUSH_OUTCOMES) this.pushNotices.inc({ outcome: o }, 0);
    this.pushLastSeen = new Gauge({ name: 'vmbridge_push_last_notice_timestamp_seconds', help: 'When this process last took a POST from Dovecot (Unix time; 0: none since start).', registers });
    const stale = this.stale;
    new Gauge({
      name: 'vmbridge_stale_mailboxes',
      help: 'Mailboxes whose last reconcile in this process did not finish; their lamps follow the spool, their emails catch up once it does.',
      registers,
      collect(this: Gauge) {
        this.set(stale.size);
      },
    });
    const started = this.started;
    new Gauge({
      name: 'vmbridge_uptime_seconds',
      help: 'Seconds since the process started.',
      registers,
      collect(this: Gauge) {
        this.set(Math.round((Date.now() - started) / 1000));
      },
    });

    this.publishes = new Counter({ name: 'vmbridge_mwi_publishes_total', help: 'MWI publications sent to each mwi.targets entry, by outcome (ok: the target confirmed it; failed: retried with backoff).', labelNames: ['target', 'outcome'], registers });
    this.publishSeconds = new Histogram({ name: 'vmbridge_mwi_publish_duration_seconds', help: 'Time from sending an MWI publication to the target\'s answer (or the failure), by target and outcome.', labelNames: ['target', 'outcome'], buckets: PUBLISH_BUCKETS, registers });
    this.guardTrips = new Counter({ name: 'vmbridge_deletion_guard_trips_total', help: 'Deletions refused by a guard: safety-stop (a mailbox\'s plan would delete too much; it stops until checked) and delete-breaker (the installation-wide breaker opened).', labelNames: ['guard'], registers });
    for (const g of DELETION_GUARDS) this.guardTrips.inc({ guard: g }, 0);

    const { queues, imapConnections, breakerOpen } = sources;
    if (queues) {
      new Gauge({
        name: 'vmbridge_queue_jobs',
        help: 'Jobs in each BullMQ queue by state, read from Redis at scrape time (completed and failed: the jobs BullMQ keeps, the newest 1,000 and 5,000).',
        labelNames: ['queue', 'state'],
        registers,
        async collect(this: Gauge<'queue' | 'state'>) {
          this.reset();
          const all = await within(queues(), timeoutMs);
          for (const q of all ?? []) for (const s of QUEUE_STATES) this.set({ queue: q.queue, state: s }, q.counts[s] ?? 0);
        },
      });
    }
    if (imapConnections) {
      new Gauge({
        name: 'vmbridge_imap_connections',
        help: 'IMAP connections this process has open (or opening) to its server, by kind: command (reconciles) and idle (the IDLE watcher).',
        labelNames: ['kind'],
        registers,
        collect(this: Gauge<'kind'>) {
          const c = imapConnections();
          this.set({ kind: 'command' }, c.command);
          this.set({ kind: 'idle' }, c.idle);
        },
      });
      new Gauge({
        name: 'vmbridge_imap_connection_waiters',
        help: 'Requests waiting for an IMAP connection slot (imap.maxConnections, imap.maxConnectionsPerUser reached).',
        registers,
        collect(this: Gauge) {
          this.set(imapConnections().waiting);
        },
      });
    }
    if (breakerOpen) {
      new Gauge({
        name: 'vmbridge_delete_breaker_open',
        help: '1 while the installation-wide deletion breaker holds every deletion (vmbridge sync --release-deletes closes it), read from Redis at scrape time; NaN when Redis did not answer.',
        registers,
        async collect(this: Gauge) {
          const open = await within(breakerOpen(), timeoutMs);
          // An unlabelled series cannot be left out: NaN says "not known in this scrape".
          this.set(open === undefined ? NaN : open ? 1 : 0);
        },
      });
    }
  }

  /** Asterisk gives up on a folder lock after 5 s: how close vmbridge's own holds come to that. */
  private spoolLockMetrics(registers: Registry[]): void {
    new Counter({
      name: 'vmbridge_spool_lock_holds_total',
      help: 'Asterisk folder locks taken by this process.',
      registers,
      collect(this: Counter) {
        this.reset();
        this.inc(lockStats().holds);
      },
    });
    new Gauge({
      name: 'vmbridge_spool_lock_hold_seconds_max',
      help: 'Longest time this process held a folder lock.',
      registers,
      collect(this: Gauge) {
        this.set(lockStats().maxHoldMs / 1000);
      },
    });
    new Gauge({
      name: 'vmbridge_spool_lock_wait_seconds_max',
      help: 'Longest wait for a folder lock.',
      registers,
      collect(this: Gauge) {
        this.set(lockStats().maxWaitMs / 1000);
      },
    });
    new Counter({
      name: 'vmbridge_spool_lock_timeouts_total',
      help: 'Folder locks given up on (the change is retried).',
      registers,
      collect(this: Counter) {
        this.reset();
        this.inc(lockStats().timeouts);
      },
    });
  }

  reconciled(ops: readonly Op[], ms: number): void {
    this.reconciles.inc();
    this.lastReconcile.set(ms / 1000);
    this.reconcileSeconds.observe(ms / 1000);
    for (const op of ops) this.ops.inc({ kind: op.kind, reason: op.reason });
  }

  failed(): void {
    this.failures.inc();
  }

  /** Whether `mailbox`'s email side is behind (its last reconcile here did not finish). */
  staleness(mailbox: string, isStale: boolean): void {
    if (isStale) this.stale.add(mailbox);
    else this.stale.delete(mailbox);
  }

  /** A POST to /dovecot-push, by what came of it. */
  push(outcome: PushOutcome, now = Date.now()): void {
    this.pushNotices.inc({ outcome });
    if (outcome !== 'refused') this.pushLastSeen.set(now / 1000);
  }

  /** One MWI publication to `target` (a name from mwi.targets), and how long it took. */
  published(target: string, outcome: PublishOutcome, ms: number): void {
    this.publishes.inc({ target, outcome });
    this.publishSeconds.observe({ target, outcome }, ms / 1000);
  }

  /** Starts every target's series at 0, so a rate is defined before the first publication. */
  targets(names: readonly string[]): void {
    for (const target of names) for (const outcome of PUBLISH_OUTCOMES) this.publishes.inc({ target, outcome }, 0);
  }

  /** A deletion guard refused a plan's deletions. */
  guardTripped(guard: DeletionGuard): void {
    this.guardTrips.inc({ guard });
  }

  /** The Prometheus text format. */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
