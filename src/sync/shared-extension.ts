/**
 * Which emails of Asterisk's IMAP storage a mailbox takes as its own when other mailboxes share its
 * X-Asterisk-VM-Extension (imapvmshareid=, src/config/mailbox-share-id.ts).
 *
 * Asterisk finds a mailbox's messages by X-Asterisk-VM-Extension and X-Asterisk-VM-Context in the
 * IMAP account's folder, so mailboxes with one share id on one account all see every such email.
 * The spool gives each mailbox its own messages, and an email may stand for one voicemail only: if
 * two mailboxes took it, a deletion in one would delete the other's voicemail. So a mailbox takes
 * an email only when nothing else can claim it:
 *
 *  - an email another mailbox took is never this mailbox's;
 *  - one this mailbox took stays its own (the claim is kept in Redis beside the records);
 *  - otherwise it takes it when the voicemail with that msg_id is in its spool and neither in the
 *    spool nor in the records of any mailbox sharing the extension (Asterisk copies a message with
 *    its msg_id for VoiceMail(a&b) and forwards: such a message is left to each mailbox's own email).
 *    A record of its own that points at exactly this email counts too (adopted before the share
 *    was known).
 *
 * An email no mailbox takes is left as it is, by every mailbox. Of several emails with one identity
 * (Asterisk wrote one for each mailbox of a VoiceMail(a&b) call) a mailbox takes one; the others
 * are not its duplicates to remove. A mailbox whose extension nobody shares takes every such email,
 * as before.
 */
import { accountKey } from '../imap/account.js';
import type { ImapObservation } from '../imap/observe.js';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import type { ImapSide, SyncRecord } from './plan.js';
import type { MailboxRun, StoreView } from './reconcile/types.js';

const ROLE_ORDER = ['inbox', 'work', 'family', 'friends'] as const;

export type SharedVerdict =
  | { readonly take: ImapSide; readonly claim: boolean }
  | { readonly take?: undefined; readonly why: string };

/** What one mailbox knows about one msg_id when it decides (pure, for the tests). */
export interface SharedFacts {
  /** The Asterisk-written emails with this identity (context, extension, msg_id). */
  readonly copies: readonly ImapSide[];
  readonly self: string;
  /** The mailbox that took these emails, if one did. */
  readonly claimedBy: string | undefined;
  readonly record: SyncRecord | undefined;
  /** How many emails with vmbridge's own identity for this msg_id the mailbox has. */
  readonly ownCopies: number;
  readonly inOwnSpool: boolean;
  /** Whether a mailbox sharing the extension has the msg_id in its spool or records; 'unknown' when a look did not settle. */
  readonly elsewhere: boolean | 'unknown';
}

export function sharedVerdict(f: SharedFacts): SharedVerdict {
  const sorted = [...f.copies].sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role) || a.uid - b.uid);
  const first = sorted[0];
  if (!first) return { why: 'no email' };
  if (f.claimedBy !== undefined && f.claimedBy !== f.self) return { why: `taken by mailbox ${f.claimedBy}` };
  const recorded = f.record ? sorted.find((c) => c.role === f.record!.role && c.uid === f.record!.uid) : undefined;
  // Beside an email of its own, a second one would be taken for a duplicate and removed.
  if (!recorded && f.ownCopies > 0) return { why: 'this mailbox has an email of its own for it' };
  if (f.claimedBy === f.self) return { take: recorded ?? first, claim: false };
  if (f.record) {
    return recorded ? { take: recorded, claim: true } : { why: 'this mailbox has an email of its own for it' };
  }
  if (!f.inOwnSpool) return { why: 'not in this mailbox\'s spool' };
  if (f.elsewhere === 'unknown') return { why: 'the spool of a mailbox sharing the extension is changing; decided next time' };
  if (f.elsewhere) return { why: 'a mailbox sharing the extension has the same message' };
  return { take: first, claim: true };
}

/**
 * The observation with the Asterisk-written emails this mailbox takes merged into its copies.
 * `records` are the mailbox's own.
 */
export async function withAsteriskCopies(
  run: MailboxRun,
  store: StoreView,
  records: ReadonlyMap<string, SyncRecord>,
  observed: ImapObservation,
  opts: { dryRun?: boolean } = {},
): Promise<ImapObservation> {
  const { box } = run;
  if (observed.asteriskCopies.size === 0) return observed;
  const siblings = box.shareSiblings ?? [];
  const copies = new Map(observed.copies);
  const merge = (id: string, add: readonly ImapSide[]): void => {
    copies.set(id, [...(copies.get(id) ?? []), ...add]);
  };
  if (siblings.length === 0) {
    for (const [id, list] of observed.asteriskCopies) merge(id, list);
    return { ...observed, copies };
  }

  const account = accountKey(box.account);
  const extension = box.asteriskExtension ?? box.ref.mailbox;
  const ids = [...observed.asteriskCopies.keys()];
  const claims = await run.deps.state.sharedClaims(account, box.ref.context, extension, ids);
  const others = new SiblingLook(run, siblings);
  for (const id of ids) {
    const claimedBy = claims.get(id);
    const needsOthers = claimedBy === undefined && !records.has(id) && store.sides.has(id);
    const verdict = sharedVerdict({
      copies: observed.asteriskCopies.get(id) ?? [],
      self: box.ref.mailbox,
      claimedBy,
      record: records.get(id),
      ownCopies: observed.copies.get(id)?.length ?? 0,
      inOwnSpool: store.sides.has(id),
      elsewhere: needsOthers ? await others.holds(id) : false,
    });
    if (!verdict.take) {
      run.log.debug({ id, why: verdict.why }, 'email of Asterisk\'s IMAP storage with a shared extension left alone');
      continue;
    }
    if (verdict.claim && !opts.dryRun) {
      const winner = await run.deps.state.claimShared(account, box.ref.context, extension, id, box.ref.mailbox);
      if (winner !== box.ref.mailbox) continue;
      run.log.info({ id, extension }, 'email of Asterisk\'s IMAP storage with a shared extension taken for this mailbox');
    }
    merge(id, [verdict.take]);
  }
  return { ...observed, copies };
}

/** The msg_ids in the spools and records of the mailboxes sharing the extension, read once, when first asked. */
class SiblingLook {
  private known: Promise<Set<string> | 'unknown'> | undefined;

  constructor(private readonly run: MailboxRun, private readonly siblings: readonly MailboxRef[]) {}

  async holds(id: string): Promise<boolean | 'unknown'> {
    this.known ??= this.read();
    const known = await this.known;
    return known === 'unknown' ? 'unknown' : known.has(id);
  }

  private async read(): Promise<Set<string> | 'unknown'> {
    const ids = new Set<string>();
    for (const ref of this.siblings) {
      const snapshot = await this.run.deps.store.readMailbox(ref);
      if (!snapshot.settled) {
        this.run.log.debug({ sibling: mailboxKey(ref) }, 'spool of a mailbox sharing the extension is changing');
        return 'unknown';
      }
      for (const m of snapshot.messages) ids.add(m.id);
      for (const id of (await this.run.deps.state.load(ref)).records.keys()) ids.add(id);
    }
    return ids;
  }
}
