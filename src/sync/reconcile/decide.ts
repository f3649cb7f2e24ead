/**
 * Phase 2, plan: the decision table (../plan.ts) over both views and the records, a second look
 * at IMAP before any voicemail is deleted, and the safety stop.
 */
import type { Settings } from '../../config/schema.js';
import { SafetyStopError } from '../../errors.js';
import { observeImap, type ImapObservation } from '../../imap/observe.js';
import type { Logger } from '../../log.js';
import { isNewFinding } from '../../spool/report-once.js';
import { mailboxKey } from '../../spool/types.js';
import { countDeletions, plan, type Held, type Plan } from '../plan.js';
import { withAsteriskCopies } from '../shared-extension.js';
import { asteriskLook } from './observe.js';
import type { ImapView, MailboxRun, ReconcileOptions, StoreView } from './types.js';

export interface Decision {
  readonly plan: Plan;
  /** The IMAP look the plan was made from (the second one, when a deletion asked for it). */
  readonly observed: ImapObservation;
}

export async function decide(run: MailboxRun, store: StoreView, imap: ImapView, opts: ReconcileOptions = {}): Promise<Decision> {
  const { deps, box, log } = run;
  const { settings } = deps;
  const planFor = (seen: ImapObservation): Plan => plan({
    spool: store.sides,
    imap: seen.copies,
    records: imap.records,
    uidValidity: seen.uidValidity,
    options: { imapToSpool: settings.sync.imapToSpool, ...(imap.accountChanged ? { imapReplaced: imap.accountChanged } : {}) },
  });
  let observed = imap.observed;
  let thePlan = planFor(observed);
  if (thePlan.ops.some((op) => op.kind === 'delete-voicemail')) {
    // Folders are read one after the other: an email the user moved between two of them at
    // that moment (Work back to INBOX, say) can be missed in both and look deleted. A voicemail
    // is only deleted if a second look agrees. It lists the folders again too: one the user has
    // just made (and filed the email into) is not in the listing the first look used.
    const looked = await observeImap(imap.client, box.ref, imap.paths, settings.email.messageIdDomain, { relist: true, ...asteriskLook(box) });
    observed = await withAsteriskCopies(run, store, imap.records, looked, opts);
    thePlan = planFor(observed);
  }
  logHeld(log, thePlan.held, mailboxKey(box.ref));
  checkSafety(thePlan, store.sides.size, observed.copies.size, settings, mailboxKey(box.ref));
  return { plan: thePlan, observed };
}

/**
 * A plan that would delete a large share of a mailbox is more likely a wrong account, a wrong spool
 * path or an emptied folder than a user's wish: stop and report instead.
 */
export function checkSafety(p: Plan, spoolTotal: number, imapTotal: number, settings: Settings, what: string): void {
  const { emails, voicemails } = countDeletions(p);
  const { maxDeleteShare, maxDeleteFloor } = settings.sync;
  const tooMany = (n: number, total: number): boolean => n > maxDeleteFloor && n > total * maxDeleteShare;
  if (tooMany(emails, imapTotal)) {
    throw new SafetyStopError(`${what}: the plan would delete ${emails} of ${imapTotal} voicemail emails (limit sync.maxDeleteShare=${maxDeleteShare}, sync.maxDeleteFloor=${maxDeleteFloor}); nothing was changed. Check spool.dir and the IMAP account, then run 'vmbridge sync --mailbox ${what} --dry-run'.`);
  }
  if (tooMany(voicemails, spoolTotal)) {
    throw new SafetyStopError(`${what}: the plan would delete ${voicemails} of ${spoolTotal} voicemails (limit sync.maxDeleteShare=${maxDeleteShare}, sync.maxDeleteFloor=${maxDeleteFloor}); nothing was changed.`);
  }
}

function logHeld(log: Logger, held: readonly Held[], mailbox: string): void {
  for (const h of held) log.debug({ id: h.id, reason: h.reason, detail: h.detail }, 'held');
  // The admin must hear of this one: the mailbox's emails are out of sight and nothing is deleted until it is fixed.
  const replaced = held.filter((h) => h.reason === 'imap-replaced');
  if (replaced.length > 0 && isNewFinding(`imap-replaced ${mailbox}`, replaced.map((h) => h.id).join(','))) {
    log.warn({ voicemails: replaced.length, detail: replaced[0]!.detail }, 'IMAP side looks replaced (folder missing or recreated, another account or mapping): deletions held, both sides kept; check the account and imap.folders');
  }
}
