/**
 * Phase 3, apply: each op of the plan, its record written right after it, so that a crash at any
 * point is followed by a reconcile that finishes the job without duplicates.
 *
 * Email changes first, store changes last: a store change renumbers messages, and the emails still
 * to be built read their recordings by the paths this look saw. Emails are built one step ahead, so
 * reading audio and composing the next one overlaps the APPEND of this one.
 */
import { SpoolChangeDeferredError } from '../../errors.js';
import { accountKey } from '../../imap/account.js';
import { explainedCount, type ImapObservation } from '../../imap/observe.js';
import { appendEmail, deleteEmail, updateEmail, type Identity } from '../../imap/operations.js';
import { noteOwnAppend, noteOwnCount } from '../../imap/own-echoes.js';
import { isOverQuotaError, refusalText } from '../../imap/quota.js';
import type { BreakerState } from '../../queue/delete-breaker.js';
import { mailboxKey } from '../../spool/types.js';
import { buildEmail, EmailPipeline } from '../build-email.js';
import type { Op } from '../plan.js';
import { initialFlags, placementWish } from '../placement.js';
import type { Decision } from './decide.js';
import type { Applied, ImapView, MailboxRun, ReconcileOptions, SkippedOp, StoreView } from './types.js';

type OpOf<K extends Op['kind']> = Extract<Op, { kind: K }>;

const touchesStore = (op: Op): boolean => op.kind === 'move-voicemail' || op.kind === 'delete-voicemail';
// An extra copy of vmbridge's own email (duplicate-email) is no one's voicemail: not a deletion the breaker counts.
const deletes = (op: Op): boolean => (op.kind === 'delete-voicemail' || op.kind === 'delete-email') && op.reason !== 'duplicate-email';

/** Why an op is not tried in this reconcile, decided before any op runs. */
interface Gates {
  readonly breakerHeld?: BreakerState;
  readonly deferred?: SpoolChangeDeferredError;
}

export async function apply(run: MailboxRun, store: StoreView, imap: ImapView, decision: Decision, opts: ReconcileOptions): Promise<Applied> {
  const ops = decision.plan.ops;
  const gates = await openGates(run, ops);
  const ordered = [...ops.filter((op) => !touchesStore(op)), ...ops.filter(touchesStore)];
  const applier = new OpApplier(run, imap, decision.observed, opts.afterEffect ?? (() => undefined), new EmailPipeline(ordered, (op) => {
    const message = store.messages.get(op.id);
    if (!message) throw new Error(`plan asked to append ${op.id}, which the store's look does not hold`);
    return buildEmail(run.deps, run.box, message, run.log);
  }));
  const skipped: SkippedOp[] = [];
  let applied = 0;
  for (const op of ordered) {
    if (gates.breakerHeld && deletes(op)) {
      skipped.push({ op, problem: `held: the deletion breaker is open since ${gates.breakerHeld.since} (vmbridge sync --release-deletes)` });
      continue;
    }
    if (gates.deferred && touchesStore(op)) {
      skipped.push({ op, problem: `deferred: ${gates.deferred.message}` });
      continue;
    }
    const problem = await applier.apply(op);
    if (problem !== undefined) {
      skipped.push({ op, problem });
      continue;
    }
    applied++;
    opts.onOp?.(op);
  }
  return { applied, appended: applier.appended, skipped, ...(applier.refused !== undefined ? { refused: applier.refused } : {}), ...(gates.deferred ? { deferred: gates.deferred } : {}) };
}

async function openGates(run: MailboxRun, ops: readonly Op[]): Promise<Gates> {
  const { deps, box, log } = run;
  // A caller in VoiceMailMain holds message numbers in memory, and without AMI vmbridge cannot
  // tell whether one is there: then no store change at all. Only those wait: new emails, email
  // flags and the lamps go on, and the reconcile ends with the retriable error so the store
  // changes are tried again.
  let deferred: SpoolChangeDeferredError | undefined;
  if (ops.some(touchesStore)) {
    try {
      await deps.store.assertChangeable(box.ref);
    } catch (err) {
      if (!(err instanceof SpoolChangeDeferredError)) throw err;
      deferred = err;
    }
  }
  // Deletions are counted against the installation-wide breaker before any is made.
  let breakerHeld: BreakerState | undefined;
  const planned = ops.filter(deletes).length;
  if (deps.breaker && planned > 0) {
    const r = await deps.breaker.reserve(planned);
    if (!r.ok) {
      breakerHeld = r.state;
      log.warn({ deletions: planned, breakerSince: r.state.since }, 'deletions held: the deletion breaker is open');
      if (r.opened) await deps.onBreakerOpened?.(r.state, mailboxKey(box.ref));
    }
  }
  return { ...(deferred ? { deferred } : {}), ...(breakerHeld ? { breakerHeld } : {}) };
}

/** Applies one op at a time; returns a problem when the op was not done (it is tried again later). */
class OpApplier {
  appended = 0;
  refused: unknown;

  constructor(
    private readonly run: MailboxRun,
    private readonly imap: ImapView,
    private readonly observed: ImapObservation,
    private readonly afterEffect: (op: Op) => void,
    private readonly emails: EmailPipeline,
  ) {}

  async apply(op: Op): Promise<string | undefined> {
    const { state } = this.run.deps;
    const ref = this.run.box.ref;
    switch (op.kind) {
      case 'append': return this.append(op);
      case 'update-email': return this.updateEmail(op);
      case 'delete-email': return this.deleteEmail(op);
      case 'record':
        await state.put(ref, op.id, op.record);
        this.afterEffect(op);
        return undefined;
      case 'forget':
        await state.remove(ref, op.id);
        this.afterEffect(op);
        return undefined;
      case 'move-voicemail': return this.moveVoicemail(op);
      case 'delete-voicemail': return this.deleteVoicemail(op);
    }
  }

  private identity(id: string): Identity {
    return { ref: this.run.box.ref, id, domain: this.run.deps.settings.email.messageIdDomain };
  }

  private async append(op: OpOf<'append'>): Promise<string | undefined> {
    const { box, log, deps } = this.run;
    const { client, paths } = this.imap;
    // The server said the mailbox is full: the rest waits in the store for the retry.
    if (this.refused !== undefined) return 'not tried: the mailbox is over quota';
    const built = await this.emails.take(op);
    if ('problem' in built) {
      // One unreadable message must not hold up the rest of the mailbox.
      log.warn({ file: built.file, problem: built.problem }, 'voicemail not turned into an email');
      return built.problem;
    }
    const role = placementWish(op.folder).role;
    const at = await appendEmail(client, paths[role], built.raw, initialFlags(op.folder), this.identity(op.id)).catch((err: unknown) => {
      if (!isOverQuotaError(err)) throw err;
      this.refused = err;
      return undefined;
    });
    if (!at) return `refused for quota: ${refusalText(this.refused)}`;
    this.appended++;
    const count = explainedCount(client, paths[role]);
    if (count !== undefined) noteOwnCount(accountKey(box.account), paths[role], count);
    noteOwnAppend(accountKey(box.account), paths[role], at.uid);
    this.afterEffect(op);
    await deps.state.put(box.ref, op.id, { folder: op.folder, role, uid: at.uid, uidValidity: at.uidValidity });
    log.info({ id: op.id, folder: op.folder, uid: at.uid, reason: op.reason }, 'email appended');
    return undefined;
  }

  private async updateEmail(op: OpOf<'update-email'>): Promise<undefined> {
    const { box, log, deps } = this.run;
    const { client, caps, paths } = this.imap;
    const at = await updateEmail(client, caps, paths[op.from], op.uid, paths[op.to], op.seen, op.flagged, this.identity(op.id));
    this.afterEffect(op);
    await deps.state.put(box.ref, op.id, { folder: op.folder, role: op.to, uid: at.uid, uidValidity: at.uidValidity });
    log.info({ id: op.id, folder: op.folder, uid: at.uid, reason: op.reason }, 'email updated');
    return undefined;
  }

  private async deleteEmail(op: OpOf<'delete-email'>): Promise<undefined> {
    const { box, log, deps } = this.run;
    const { client, caps, paths } = this.imap;
    const { expunged, how, trash, fallback } = await deleteEmail(client, caps, paths[op.role], op.uid, deps.settings.imap);
    this.afterEffect(op);
    if (op.reason !== 'duplicate-email') await deps.state.remove(box.ref, op.id);
    if (!expunged) {
      log.warn({ id: op.id, uid: op.uid, reason: op.reason, how, fallback }, 'email left flagged \\Deleted: no UID EXPUNGE or MOVE to the trash here (a bare EXPUNGE would also remove the user\'s own deleted mail)');
    } else {
      log.info({ id: op.id, uid: op.uid, reason: op.reason, how, trash, fallback }, 'email deleted');
    }
    return undefined;
  }

  private async moveVoicemail(op: OpOf<'move-voicemail'>): Promise<string | undefined> {
    const { box, log, deps } = this.run;
    const outcome = await deps.store.move(box, op.id, op.from, op.to);
    if (!outcome.done) {
      // Not forced: Asterisk refuses a full folder too. The email stays where the user put it, and
      // the move is tried again at the next reconcile of this mailbox.
      log.warn({ id: op.id, from: op.from, to: op.to, problem: outcome.problem }, 'voicemail not moved: the folder is full');
      return outcome.problem;
    }
    this.afterEffect(op);
    await deps.state.put(box.ref, op.id, { folder: op.to, role: op.email.role, uid: op.email.uid, uidValidity: this.observed.uidValidity[op.email.role] ?? '' });
    log.info({ id: op.id, from: op.from, to: op.to, via: outcome.via, alreadyDone: outcome.alreadyDone, repairs: outcome.repairs.length ? outcome.repairs : undefined, reason: op.reason }, 'voicemail moved');
    return undefined;
  }

  private async deleteVoicemail(op: OpOf<'delete-voicemail'>): Promise<string | undefined> {
    const { box, log, deps } = this.run;
    const outcome = await deps.store.remove(box, op.id, op.folder);
    if (!outcome.done) return outcome.problem;
    this.afterEffect(op);
    await deps.state.remove(box.ref, op.id);
    log.info({ id: op.id, folder: op.folder, via: outcome.via, alreadyDone: outcome.alreadyDone, backupDeleted: box.backupDeleted ?? 0, repairs: outcome.repairs.length ? outcome.repairs : undefined, reason: op.reason }, 'voicemail removed');
    return undefined;
  }
}
