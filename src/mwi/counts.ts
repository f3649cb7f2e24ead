/**
 * Message-waiting counts of one mailbox, computed from a spool snapshot. Pure: no I/O.
 *
 * The numbers are the ones Asterisk itself publishes (app_voicemail `queue_mwi_event`):
 * new = INBOX + Urgent, old = Old. Asterisk counts an urgent message as new because an unheard
 * urgent message is unheard all the same; a phone that shows `new` must light for it, and every
 * consumer of Asterisk's MWI (res_pjsip_mwi, the MessageWaiting event) already expects that sum.
 * `urgent` (the Urgent folder) is kept apart as well, as the urgent share of `new`: RFC 3842 lets a
 * SIP NOTIFY say it, and MailboxCount reports it separately.
 *
 * Work, Family, Friends and Cust1-5 are filed (heard) messages: Asterisk does not count them.
 */
import { VmbridgeError } from '../errors.js';
import { mailboxKey, type SpoolSnapshot } from '../spool/types.js';

export interface MwiCounts {
  /** Unheard messages: INBOX + Urgent. */
  readonly new: number;
  /** Heard messages kept in Old. */
  readonly old: number;
  /** Unheard urgent messages (the Urgent folder); already included in `new`. */
  readonly urgent: number;
}

/** Counts were asked of a snapshot that cannot give them: unknown is not zero. */
export class MwiCountsError extends VmbridgeError {
  constructor(message: string) {
    super('MWI_COUNTS', message);
  }
}

/** `msg` + 4 digits + `.txt`: the file that makes a message for Asterisk's own count. */
const ENVELOPE_FILE = /(?:^|[\\/])(INBOX|Old|Urgent)[\\/]msg\d{4}\.txt$/;

/**
 * The counts of a settled snapshot. Throws MwiCountsError for a snapshot taken while the mailbox
 * was still changing (`settled: false`): such a view may miss a message, and a light must never
 * be switched from a guess.
 *
 * Asterisk counts every `msgNNNN.txt` (`__has_voicemail` / `inboxcount2` scan names only), so an
 * envelope vmbridge could not use (unreadable, no audio beside it) still counts here: it is
 * reported as a problem, and it is counted from the problem's path.
 */
export function mwiCounts(snapshot: SpoolSnapshot): MwiCounts {
  if (!snapshot.settled) {
    throw new MwiCountsError(`${mailboxKey(snapshot.ref)}: the spool was still changing while it was read; no counts from it`);
  }
  const seen = new Set<string>();
  const tally = { INBOX: 0, Old: 0, Urgent: 0 };
  const add = (folder: string, txtPath: string): void => {
    if (seen.has(txtPath)) return;
    if (folder !== 'INBOX' && folder !== 'Old' && folder !== 'Urgent') return;
    seen.add(txtPath);
    tally[folder] += 1;
  };
  for (const m of snapshot.messages) add(m.folder, m.txtPath);
  for (const p of snapshot.problems) {
    const match = ENVELOPE_FILE.exec(p.path);
    if (match?.[1]) add(match[1], p.path);
  }
  return { new: tally.INBOX + tally.Urgent, old: tally.Old, urgent: tally.Urgent };
}

/** True when both hold the same numbers. */
export function sameCounts(a: MwiCounts | undefined, b: MwiCounts | undefined): boolean {
  return a !== undefined && b !== undefined && a.new === b.new && a.old === b.old && a.urgent === b.urgent;
}

/**
 * Whether a target of this kind already shows `b` when it was last told `a`. MWIUpdate and
 * MailboxStateChange carry only new and old, so a message becoming urgent (or not) is no news to
 * them; VoicemailRefresh makes Asterisk publish its own urgent count, and a SIP NOTIFY carries it.
 * An SMDI lamp only shows whether any message is new.
 */
export function sameAsShown(kind: 'ami-refresh' | 'ami-mwiupdate' | 'ami-mailboxstate' | 'sip-notify' | 'smdi', a: MwiCounts | undefined, b: MwiCounts | undefined): boolean {
  if (kind === 'smdi') return a !== undefined && b !== undefined && a.new > 0 === b.new > 0;
  if (kind === 'ami-mwiupdate' || kind === 'ami-mailboxstate') return a !== undefined && b !== undefined && a.new === b.new && a.old === b.old;
  return sameCounts(a, b);
}

/** Whole numbers ≥ 0, urgent within new: anything else is a bug upstream and is never published. */
export function isValidCounts(c: MwiCounts): boolean {
  const ok = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  return ok(c.new) && ok(c.old) && ok(c.urgent) && c.urgent <= c.new;
}
