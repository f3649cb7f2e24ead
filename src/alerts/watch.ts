/**
 * The quota and mailbox-size watch. Told by every reconcile what happened (how many APPENDs went
 * through, whether the server refused one for quota) and by the periodic sweep what each account's
 * quota reads; decides with the pure rules of quota.ts, remembers in Redis (state.ts), and queues
 * mails (alert queue). Logging happens whether or not mail is configured.
 *
 * A refused APPEND blocks only its own mailbox: the reconcile skips that mailbox's other APPENDs,
 * the voicemail stays in the spool (vmbridge never deletes on this path), and one delayed
 * reconcile is queued with a doubling delay until an APPEND goes through again.
 */
import type { ImapAccount } from '../imap/account.js';
import { accountKey } from '../imap/account.js';
import { readQuota, refusalText, type QuotaReading } from '../imap/quota.js';
import type { Logger } from '../log.js';
import type { AlertBox, AlertJob, AlertProducer } from '../queue/alert-queue.js';
import type { MwiCounts } from '../mwi/counts.js';
import { mailboxKey, redisBoxPart, type MailboxRef } from '../spool/types.js';
import { jobBox } from '../queue/box-fields.js';
import type { ReconcileFollower, ReconcileOutcome } from '../sync/after-reconcile.js';
import type { BoxInfo, Directory } from '../sync/directory.js';
import type { AlertSettings } from './admin-mail.js';
import { composeAlertMail } from './admin-mail.js';
import { crossings, forceFull, highest, maxmsgLevel, percentOf, quotaLevels, retryDelaySeconds, type Level, type Transition } from './quota.js';
import type { AlertStore } from './state.js';

/** A watch follows every reconcile (src/sync hands it the outcome). */
export type MailboxWatch = ReconcileFollower;

/** The delayed reconciles of mailboxes refused for quota (the reconcile queue in a service). */
export interface RetryScheduler {
  /** Queues one reconcile of `ref` to run after `delayMs`; returns its job id. */
  schedule(ref: MailboxRef, delayMs: number, attempt: number): Promise<string>;
  /** True while that job still waits to run. Asked instead of comparing clocks of several hosts. */
  isPending(jobId: string): Promise<boolean>;
}

export interface QuotaWatchDeps {
  readonly settings: AlertSettings;
  readonly state: AlertStore;
  /** Absent when no mail is configured: alerts are then only logged. */
  readonly producer: Pick<AlertProducer, 'send'> | undefined;
  readonly retries: RetryScheduler;
  readonly directory: () => Directory;
  readonly log: Logger;
  readonly now?: () => number;
  /** Told every quota reading of an account (the status page shows the use). */
  readonly onReadings?: (imapUser: string, readings: readonly QuotaReading[]) => Promise<void>;
}

/** Asterisk's default maxmsg (app_voicemail MAXMSG), for a mailbox whose limit is not known. */
const ASTERISK_DEFAULT_MAXMSG = 100;
/** The spool folders callers' messages go into; Asterisk counts each against maxmsg on its own. */
const CALLER_FOLDERS = ['INBOX', 'Urgent'] as const;
/** The fired-state resource used when the server refused an APPEND but reports no quota. */
const UNREAD_RESOURCE = 'QUOTA';
/**
 * Kept in a resource's fired state while a mailbox of the account is blocked by it: readings then
 * re-arm nothing (a sweep that reads 75% while a large voicemail does not fit must not lead to a
 * new "full" mail at every retry). Removed when an APPEND goes through again.
 */
const BLOCKED_MARK = 'blocked';

export function quotaScope(user: string, resource: string): string {
  return `quota:${user}:${resource}`;
}

export function maxmsgScope(ref: MailboxRef, folder: string): string {
  return `maxmsg:${redisBoxPart(ref)}:${folder}`;
}

function alertBox(box: BoxInfo): AlertBox {
  // The job schema refuses line breaks; names and addresses from voicemail.conf have none, but
  // a stray one must not make the alert unsendable.
  const clean = (s: string, max: number): string => s.replace(/[\r\n\0]/g, ' ').slice(0, max);
  return { ...jobBox(box.ref), ownerName: clean(box.owner.fullName, 200), ownerEmail: clean(box.owner.email, 320) };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class QuotaWatch implements MailboxWatch {
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly deps: QuotaWatchDeps) {
    this.log = deps.log.child({ component: 'quota' });
    this.now = deps.now ?? Date.now;
  }

  async afterReconcile(o: ReconcileOutcome): Promise<void> {
    // The maxmsg check (Redis only) and the quota check (IMAP, then Redis) are independent: run
    // side by side, they hold the mailbox's lock for the longer of the two, not their sum.
    const maxmsg = (async () => {
      try {
        if (o.counts) await this.checkMaxmsg(o.box, o.counts);
      } catch (err) {
        this.log.warn({ mailbox: mailboxKey(o.box.ref), err: describe(err) }, 'maxmsg check failed');
      }
    })();
    try {
      await this.afterAppends(o);
    } finally {
      await maxmsg;
    }
  }

  private async afterAppends(o: ReconcileOutcome): Promise<void> {
    if (o.refused !== undefined) {
      await this.onRefused(o);
      return;
    }
    try {
      // No APPEND was refused and one went through, or none is waiting any more: there is room.
      // (An unreadable voicemail says nothing about room: the block stays.) Cleared first, so
      // that the reading below may re-arm what the block held.
      if (o.appended > 0 || o.waiting === 0) await this.clearBlock(o.box, o.appended > 0 ? 'a voicemail was stored again' : 'no voicemail is waiting any more');
      // Once per reconcile, after its last APPEND: an import burst reads the quota once.
      if (o.appended > 0) {
        const readings = await readQuota(o.client, o.caps, o.inboxPath);
        if (readings) await this.evaluate(o.box.account, readings, undefined, o.box);
      }
    } catch (err) {
      this.log.warn({ mailbox: mailboxKey(o.box.ref), err: describe(err) }, 'quota check failed');
    }
  }

  /**
   * Quota readings of one account (after APPENDs, or from the sweep). `forced` names a resource
   * to treat as full whatever it reads: the server just refused an APPEND.
   */
  async evaluate(account: ImapAccount, readings: readonly QuotaReading[], forced?: { resource: string; refusal: string }, from?: BoxInfo): Promise<void> {
    const { settings, state } = this.deps;
    const boxes = this.boxesOf(account, from);
    for (const r of readings) {
      this.log.debug({ imapUser: account.user, resource: r.resource, root: r.root, usage: r.usage, limit: r.limit }, 'quota read');
    }
    if (this.deps.onReadings && readings.length > 0) {
      await this.deps.onReadings(account.user, readings).catch((err: unknown) => this.log.debug({ imapUser: account.user, err: describe(err) }, 'quota reading not recorded for the status page'));
    }
    const targets: { resource: string; levels: Level[]; usage: number | undefined }[] = readings.map((r) => ({
      resource: r.resource,
      levels: quotaLevels(r.limit, settings.quotaThresholds, settings.rearmMarginPercent),
      usage: r.usage,
    }));
    if (forced && !targets.some((t) => t.resource === forced.resource)) {
      // The server refused but reports no quota: one level, cleared when an APPEND goes through.
      targets.push({ resource: forced.resource, levels: [{ id: 'refused', fireAt: 0, rearmBelow: 0, percent: 100 }], usage: undefined });
    }
    // Every resource's state is asked for at once.
    const firedOf = await Promise.all(targets.map((t) => state.fired(quotaScope(account.user, t.resource))));
    for (const [i, t] of targets.entries()) {
      const scope = quotaScope(account.user, t.resource);
      const fired = firedOf[i] ?? new Set<string>();
      const isForced = forced?.resource === t.resource;
      let change: Transition;
      if (isForced) {
        change = forceFull(t.levels, fired);
      } else {
        // A mark left without its block (a crash between the two writes) must not hold forever.
        if (fired.has(BLOCKED_MARK) && !(await this.anyBlocked(account))) {
          await state.apply(scope, [], [BLOCKED_MARK]);
          fired.delete(BLOCKED_MARK);
        }
        const crossed = crossings(t.levels, t.usage ?? 0, fired);
        change = { fire: crossed.fire, rearm: fired.has(BLOCKED_MARK) ? [] : crossed.rearm.filter((id) => id !== BLOCKED_MARK) };
      }
      const fire = [...change.fire.map((l) => l.id), ...(isForced ? [BLOCKED_MARK] : [])];
      const newly = new Set(await state.apply(scope, fire, change.rearm));
      if (change.rearm.length > 0) {
        this.log.info({ imapUser: account.user, resource: t.resource, rearmed: change.rearm, usage: t.usage }, 'quota went down: thresholds re-armed');
      }
      const top = highest(t.levels.filter((l) => newly.has(l.id)));
      if (!top) continue;
      if (boxes.length === 0) {
        this.log.warn({ imapUser: account.user, resource: t.resource }, 'quota alert for an IMAP user no voicemail box uses any more: not mailed');
        continue;
      }
      await this.alert({
        kind: 'quota',
        imapUser: account.user.slice(0, 320),
        boxes: boxes.slice(0, 100),
        resource: t.resource,
        threshold: isForced ? 100 : Math.min(100, Math.max(1, Math.round(top.percent))),
        readings: readings.slice(0, 20).map((r) => ({ root: r.root.slice(0, 200), resource: r.resource.slice(0, 64), usage: r.usage, limit: r.limit, unit: r.unit })),
        ...(isForced ? { refusal: forced.refusal.replace(/[\r\n\0]/g, ' ').slice(0, 400) } : {}),
        at: new Date(this.now()).toISOString(),
      });
    }
  }

  private async onRefused(o: ReconcileOutcome): Promise<void> {
    const { settings, state } = this.deps;
    const ref = o.box.ref;
    const refusal = refusalText(o.refused);
    const now = this.now();
    let readings: QuotaReading[] = [];
    try {
      readings = (await readQuota(o.client, o.caps, o.inboxPath)) ?? [];
    } catch (err) {
      this.log.debug({ mailbox: mailboxKey(ref), err: describe(err) }, 'quota not readable after a refused APPEND');
    }
    // The fullest resource is the one that refused; with no reading there is only "QUOTA".
    let fullest: QuotaReading | undefined;
    for (const r of readings) {
      if (!fullest || (percentOf(r.usage, r.limit) ?? 0) > (percentOf(fullest.usage, fullest.limit) ?? 0)) fullest = r;
    }
    const resource = fullest?.resource ?? UNREAD_RESOURCE;

    // The retry is the part that must not be lost: if it cannot be scheduled, the reconcile fails
    // and its own job retry takes over. One retry waits at a time: a refusal in a reconcile that
    // some other event started (a new voicemail) leaves a retry that is still waiting alone.
    const block = await state.block(ref);
    if (!block || !block.retryJob || !(await this.deps.retries.isPending(block.retryJob))) {
      const attempts = (block?.attempts ?? 0) + 1;
      const delayMs = retryDelaySeconds(attempts, settings.quotaRetrySeconds, settings.quotaRetryMaxSeconds) * 1000;
      const retryJob = await this.deps.retries.schedule(ref, delayMs, attempts);
      const scope = quotaScope(o.box.account.user, resource);
      await state.setBlock(ref, { since: block?.since ?? now, attempts, nextRetryAt: now + delayMs, retryJob, scope, reason: refusal });
      const fields = { mailbox: mailboxKey(ref), imapUser: o.box.account.user, refusal, resource, retryInSeconds: delayMs / 1000, attempts };
      if (block) this.log.info(fields, 'mailbox still over quota: voicemail stays in the spool, retried later');
      else this.log.warn(fields, 'mail server refused a voicemail for quota: it stays in the spool; mailbox blocked and retried until there is room');
    }
    try {
      await this.evaluate(o.box.account, readings, { resource, refusal }, o.box);
    } catch (err) {
      this.log.warn({ mailbox: mailboxKey(ref), err: describe(err) }, 'quota alert after a refused APPEND failed');
    }
  }

  private async clearBlock(box: BoxInfo, why: string): Promise<void> {
    const { state } = this.deps;
    const block = await state.clearBlock(box.ref);
    if (!block) return;
    if (block.scope) await state.apply(block.scope, [], [BLOCKED_MARK]);
    await state.forget(quotaScope(box.account.user, UNREAD_RESOURCE));
    this.log.info({ mailbox: mailboxKey(box.ref), imapUser: box.account.user, why }, 'quota block cleared: the mailbox takes voicemail again');
  }

  private async checkMaxmsg(box: BoxInfo, counts: MwiCounts): Promise<void> {
    const { settings, state } = this.deps;
    const maxmsg = box.maxmsg ?? ASTERISK_DEFAULT_MAXMSG;
    const level = maxmsgLevel(maxmsg, settings.maxmsgMargin, settings.rearmMarginPercent);
    if (!level) return;
    // Read every time, not cached here: another worker may have fired or re-armed it meanwhile.
    // Both folders' states are asked for at once.
    const firedOf = await Promise.all(CALLER_FOLDERS.map((folder) => state.fired(maxmsgScope(box.ref, folder))));
    for (const [i, folder] of CALLER_FOLDERS.entries()) {
      const count = folder === 'INBOX' ? counts.new - counts.urgent : counts.urgent;
      const scope = maxmsgScope(box.ref, folder);
      const fired = firedOf[i] ?? new Set<string>();
      const change = crossings([level], count, fired);
      const newly = await state.apply(scope, change.fire.map((l) => l.id), change.rearm);
      if (change.rearm.length > 0) this.log.info({ mailbox: mailboxKey(box.ref), folder, count, maxmsg }, 'spool folder has room again: maxmsg warning re-armed');
      if (newly.length === 0) continue;
      await this.alert({ kind: 'maxmsg', box: alertBox(box), folder, count, maxmsg, at: new Date(this.now()).toISOString() });
    }
  }

  private async anyBlocked(account: ImapAccount): Promise<boolean> {
    const key = accountKey(account);
    for (const b of this.deps.directory().boxes.values()) {
      if (accountKey(b.account) === key && (await this.deps.state.block(b.ref))) return true;
    }
    return false;
  }

  /** Every box on this account; `first` (the box a reconcile was about) leads the list. */
  private boxesOf(account: ImapAccount, first?: BoxInfo): AlertBox[] {
    const key = accountKey(account);
    const others = [...this.deps.directory().boxes.values()].filter((b) => accountKey(b.account) === key && (!first || mailboxKey(b.ref) !== mailboxKey(first.ref)));
    return [...(first ? [first] : []), ...others].map(alertBox);
  }

  private async alert(job: Exclude<AlertJob, { kind: 'summary' | 'breaker' }>): Promise<void> {
    const mail = composeAlertMail(job, this.deps.settings);
    const fields = job.kind === 'quota'
      ? { imapUser: job.imapUser, mailboxes: job.boxes.map((b) => `${b.mailbox}@${b.context}`), resource: job.resource, threshold: job.threshold, refused: job.refusal !== undefined }
      : { mailbox: `${job.box.mailbox}@${job.box.context}`, folder: job.folder, count: job.count, maxmsg: job.maxmsg };
    this.log.warn({ ...fields, subject: mail.subject, mailed: this.deps.producer !== undefined }, 'administrator alert');
    await this.deps.producer?.send(job);
  }
}
