/**
 * plan(): the whole two-way sync decision for one mailbox, as a pure function.
 *
 * Inputs are three views of every message identity:
 *   - the spool (what the phones see),
 *   - IMAP (what mail clients see),
 *   - the last-synced record (what both looked like when they last agreed).
 * Without the record a two-way sync cannot tell "deleted here" from "new there".
 *
 * The decision table below is the only place where those three are compared. Each row has a name
 * that appears in the op's `reason`, in dry-run output and in the logs.
 *
 *   row                    spool  imap  record  decision
 *   ---------------------  -----  ----  ------  -----------------------------------------------
 *   new-on-phone           yes    no    no      append the email
 *   adopt                  yes    yes   no      record the pair; where they disagree the phone wins
 *   in-step                yes    yes   yes     nothing (refresh the record if its UID is stale)
 *   changed-on-phone       yes    yes   yes     spool moved since the record: move/flag the email
 *   changed-in-mail        yes    yes   yes     email moved/flagged since the record: move in spool
 *   changed-on-both        yes    yes   yes     both moved: agree -> record; else the phone wins
 *   deleted-in-mail        yes    no    yes     the user deleted the email: remove from spool
 *   imap-replaced          yes    no    yes     ...but the email's folder is missing or has another
 *                                               UIDVALIDITY than recorded: held, nothing deleted
 *   deleted-on-phone       no     yes   yes     the user deleted the voicemail: delete the email
 *   orphan-email           no     yes   no      an email of ours with no history: never destroyed
 *   gone-on-both           no     no    yes     forget the record
 *   spool-in-flux          dup    any   any     the id is in two spool folders at once (Asterisk is
 *                                               mid-copy): do nothing this round
 *   duplicate-email        any    dup   any     a second copy in the same IMAP folder (a retried
 *                                               APPEND): expunge the extra copy. A copy marked
 *                                               pending (its transcript follows) beside one that
 *                                               is not was replaced: it is the extra, in any folder
 *
 * "Changed" means the spool folder a side stands for differs from the record's. Flag changes with
 * no meaning (say \Flagged on an Old message) are not changes.
 *
 * IMAP-to-spool rows (changed-in-mail, deleted-in-mail) are gated by `imapToSpool`: without it they
 * are "held", reported and left alone, and nothing is planned that would undo the user's action.
 */
import type { SyncedSpoolFolder } from '../spool/types.js';
import { flagChanges, placementWish, spoolFolderOf, type ImapPlacement, type ImapRole } from './placement.js';

/** A message seen in the spool (reduced to what planning needs). */
export interface SpoolSide {
  readonly folder: SyncedSpoolFolder;
}

/** One copy of a message seen in IMAP. */
export interface ImapSide extends ImapPlacement {
  readonly uid: number;
  /**
   * The copy says its transcript is still being made (X-VMBridge-Transcript: pending). Where a copy
   * without the mark exists, it is that copy's replacement, and the marked one is an extra.
   */
  readonly pending?: boolean;
}

/** The last agreed state of one message. `uid`/`role` are a cache, `folder` is the agreement. */
export interface SyncRecord {
  readonly folder: SyncedSpoolFolder;
  readonly role: ImapRole;
  readonly uid: number;
  readonly uidValidity: string;
}

export interface PlanInput {
  /** id -> every spool copy (normally one; two while Asterisk moves a message). */
  readonly spool: ReadonlyMap<string, readonly SpoolSide[]>;
  /** id -> every IMAP copy in mapped folders, not counting messages flagged \Deleted. */
  readonly imap: ReadonlyMap<string, readonly ImapSide[]>;
  readonly records: ReadonlyMap<string, SyncRecord>;
  /** Current UIDVALIDITY of each mapped folder that exists. */
  readonly uidValidity: Readonly<Partial<Record<ImapRole, string>>>;
  readonly options: PlanOptions;
}

export interface PlanOptions {
  /** Carry mail-client changes to the spool. Off: such changes are held, never undone. */
  readonly imapToSpool: boolean;
  /**
   * Why the IMAP side as a whole cannot be trusted to show deletions (the records were made with
   * another IMAP account): every deletion, either way, is held as imap-replaced.
   */
  readonly imapReplaced?: string;
}

export type Row =
  | 'new-on-phone'
  | 'adopt'
  | 'in-step'
  | 'changed-on-phone'
  | 'changed-in-mail'
  | 'changed-on-both'
  | 'deleted-in-mail'
  | 'imap-replaced'
  | 'deleted-on-phone'
  | 'orphan-email'
  | 'gone-on-both'
  | 'spool-in-flux'
  | 'duplicate-email';

export type Op =
  /** Build the email from the spool message and APPEND it where `folder` maps to. */
  | { readonly kind: 'append'; readonly id: string; readonly folder: SyncedSpoolFolder; readonly reason: Row }
  /** Move and/or re-flag the email so that it stands for spool folder `folder`. */
  | {
      readonly kind: 'update-email';
      readonly id: string;
      readonly uid: number;
      readonly from: ImapRole;
      readonly to: ImapRole;
      readonly folder: SyncedSpoolFolder;
      readonly seen: boolean | undefined;
      readonly flagged: boolean | undefined;
      readonly reason: Row;
    }
  /** \Deleted + UID EXPUNGE of exactly this UID. */
  | { readonly kind: 'delete-email'; readonly id: string; readonly uid: number; readonly role: ImapRole; readonly reason: Row }
  /** Move the voicemail between spool folders. */
  | {
      readonly kind: 'move-voicemail';
      readonly id: string;
      readonly from: SyncedSpoolFolder;
      readonly to: SyncedSpoolFolder;
      /** The email that asked for it, for the record written afterwards. */
      readonly email: ImapSide;
      readonly reason: Row;
    }
  /** Remove the voicemail from the spool (into Deleted/ where backupdeleted asks for it). */
  | { readonly kind: 'delete-voicemail'; readonly id: string; readonly folder: SyncedSpoolFolder; readonly reason: Row }
  /** Write the record: both sides already agree. */
  | { readonly kind: 'record'; readonly id: string; readonly record: SyncRecord; readonly reason: Row }
  /** Drop the record: neither side has the message. */
  | { readonly kind: 'forget'; readonly id: string; readonly reason: Row };

/** Something planning chose not to act on, for the log and dry-run output. */
export interface Held {
  readonly id: string;
  readonly reason: Row;
  readonly detail: string;
}

export interface Plan {
  readonly ops: readonly Op[];
  readonly held: readonly Held[];
}

const ROLE_ORDER: readonly ImapRole[] = ['inbox', 'work', 'family', 'friends'];

export function plan(input: PlanInput): Plan {
  const ops: Op[] = [];
  const held: Held[] = [];
  const ids = new Set<string>([...input.spool.keys(), ...input.imap.keys(), ...input.records.keys()]);

  for (const id of [...ids].sort()) {
    const spoolCopies = input.spool.get(id) ?? [];
    const imapCopies = input.imap.get(id) ?? [];
    const stored = input.records.get(id);
    // A record whose folder was re-created (UIDVALIDITY changed) still says what both sides agreed
    // on; only its UID is stale. Matching is by identity, so it stays usable.
    const record = stored;

    if (spoolCopies.length > 1) {
      held.push({ id, reason: 'spool-in-flux', detail: `in ${spoolCopies.map((c) => c.folder).join(' and ')} at once` });
      continue;
    }
    const spool = spoolCopies[0];

    const { primary, extras, others } = choosePrimary(imapCopies, record, spool);
    for (const extra of extras) {
      ops.push({ kind: 'delete-email', id, uid: extra.uid, role: extra.role, reason: 'duplicate-email' });
    }
    const imap = primary;
    // Moving the email into a folder that already holds a copy would make a duplicate there: use
    // that copy instead and drop the one that would have moved.
    const updateEmail = (folder: SyncedSpoolFolder, from: ImapSide, reason: Row): void => {
      const target = placementWish(folder).role;
      const existing = target !== from.role ? others.get(target) : undefined;
      if (!existing) {
        ops.push(emailUpdate(id, folder, from, reason));
        return;
      }
      ops.push({ kind: 'delete-email', id, uid: from.uid, role: from.role, reason: 'duplicate-email' });
      if (spoolFolderOf(existing) === folder) ops.push({ kind: 'record', id, record: recordOf(folder, existing, input), reason });
      else ops.push(emailUpdate(id, folder, existing, reason));
    };

    if (spool && !imap && !record) {
      ops.push({ kind: 'append', id, folder: spool.folder, reason: 'new-on-phone' });
    } else if (spool && imap && !record) {
      if (spoolFolderOf(imap) === spool.folder) {
        ops.push({ kind: 'record', id, record: recordOf(spool.folder, imap, input), reason: 'adopt' });
      } else {
        updateEmail(spool.folder, imap, 'adopt');
      }
    } else if (spool && imap && record) {
      const imapFolder = spoolFolderOf(imap);
      const spoolChanged = spool.folder !== record.folder;
      const imapChanged = imapFolder !== record.folder;
      if (!spoolChanged && !imapChanged) {
        if (isStale(record, imap, input)) {
          ops.push({ kind: 'record', id, record: recordOf(spool.folder, imap, input), reason: 'in-step' });
        }
      } else if (spoolChanged && !imapChanged) {
        updateEmail(spool.folder, imap, 'changed-on-phone');
      } else if (!spoolChanged && imapChanged) {
        if (input.options.imapToSpool) {
          ops.push({ kind: 'move-voicemail', id, from: spool.folder, to: imapFolder, email: imap, reason: 'changed-in-mail' });
        } else {
          held.push({ id, reason: 'changed-in-mail', detail: `email now means ${imapFolder}, voicemail is in ${spool.folder}` });
        }
      } else if (imapFolder === spool.folder) {
        ops.push({ kind: 'record', id, record: recordOf(spool.folder, imap, input), reason: 'changed-on-both' });
      } else {
        // Both sides moved it to different places since they last agreed. The phone wins: it is
        // what the message-waiting light shows, and neither choice loses the message.
        updateEmail(spool.folder, imap, 'changed-on-both');
      }
    } else if (spool && !imap && record) {
      const replaced = input.options.imapReplaced ?? replacedFolder(record, input);
      if (replaced) {
        // The email's folder is not the one it was recorded in (recreated, renamed away, another
        // account, another mapping): its emails are out of sight, not deleted by a user.
        held.push({ id, reason: 'imap-replaced', detail: `email gone from ${record.role}, whose folder ${replaced}; voicemail kept in ${spool.folder}` });
      } else if (input.options.imapToSpool) {
        ops.push({ kind: 'delete-voicemail', id, folder: spool.folder, reason: 'deleted-in-mail' });
      } else {
        held.push({ id, reason: 'deleted-in-mail', detail: `email gone, voicemail kept in ${spool.folder}` });
      }
    } else if (!spool && imap && record) {
      if (input.options.imapReplaced) held.push({ id, reason: 'imap-replaced', detail: `voicemail gone, email kept in ${imap.role}: ${input.options.imapReplaced}` });
      else ops.push({ kind: 'delete-email', id, uid: imap.uid, role: imap.role, reason: 'deleted-on-phone' });
    } else if (!spool && imap && !record) {
      held.push({ id, reason: 'orphan-email', detail: `email in ${imap.role} with no voicemail and no history: kept` });
    } else if (!spool && !imap && record) {
      ops.push({ kind: 'forget', id, reason: 'gone-on-both' });
    }
  }
  return { ops, held };
}

/**
 * Why the folder a record points at cannot be trusted to show a deletion, if it cannot: it is
 * missing, or its UIDVALIDITY is not the one the record was made under (the folder was deleted and
 * made again, the login landed in another account, or the mapping now names another folder).
 */
function replacedFolder(record: SyncRecord, input: PlanInput): string | undefined {
  const now = input.uidValidity[record.role];
  if (now === undefined) return 'is missing';
  if (record.uidValidity !== '' && record.uidValidity !== now) return `has UIDVALIDITY ${now}, not ${record.uidValidity} as recorded`;
  return undefined;
}

/**
 * Which IMAP copy is "the" email: the one the record points at, else one that already agrees with
 * the spool, else the first by folder and UID. A second copy in the same folder is an extra from a
 * retried APPEND; one copy in each other mapped folder is the user's business and left alone.
 */
function choosePrimary(
  copies: readonly ImapSide[],
  record: SyncRecord | undefined,
  spool: SpoolSide | undefined,
): { primary: ImapSide | undefined; extras: ImapSide[]; others: Map<ImapRole, ImapSide> } {
  if (copies.length === 0) return { primary: undefined, extras: [], others: new Map() };
  // A late transcript's replacement was appended and its pending original not yet expunged (a
  // crash in between): the replacement is the email, and the original goes wherever it is.
  const replaced = copies.some((c) => !c.pending) ? copies.filter((c) => c.pending) : [];
  if (replaced.length > 0) {
    const rest = choosePrimary(copies.filter((c) => !c.pending), record, spool);
    return { ...rest, extras: [...replaced, ...rest.extras] };
  }
  const sorted = [...copies].sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role) || a.uid - b.uid);
  const primary =
    (record && sorted.find((c) => c.role === record.role && c.uid === record.uid)) ??
    (spool && sorted.find((c) => spoolFolderOf(c) === spool.folder)) ??
    sorted[0]!;
  // In each folder the first copy stays (the primary in its own folder); later ones are extras.
  const keep = new Map<ImapRole, ImapSide>([[primary.role, primary]]);
  const extras: ImapSide[] = [];
  for (const c of sorted) {
    if (!keep.has(c.role)) keep.set(c.role, c);
    else if (keep.get(c.role) !== c) extras.push(c);
  }
  keep.delete(primary.role);
  return { primary, extras, others: keep };
}

function emailUpdate(id: string, folder: SyncedSpoolFolder, imap: ImapSide, reason: Row): Op {
  const wish = placementWish(folder);
  if (wish.role !== imap.role) {
    // A move to another folder: the target's wish decides the flags; where it does not care and the
    // message comes from the inbox folder, it was heard before it was filed.
    return {
      kind: 'update-email', id, uid: imap.uid, from: imap.role, to: wish.role, folder,
      seen: wish.seen ?? (imap.role === 'inbox' && !imap.seen ? true : undefined),
      flagged: wish.flagged,
      reason,
    };
  }
  const change = flagChanges(folder, imap);
  return { kind: 'update-email', id, uid: imap.uid, from: imap.role, to: imap.role, folder, seen: change.seen, flagged: change.flagged, reason };
}

function recordOf(folder: SyncedSpoolFolder, imap: ImapSide, input: PlanInput): SyncRecord {
  return { folder, role: imap.role, uid: imap.uid, uidValidity: input.uidValidity[imap.role] ?? '' };
}

function isStale(record: SyncRecord, imap: ImapSide, input: PlanInput): boolean {
  return record.uid !== imap.uid || record.role !== imap.role || record.uidValidity !== (input.uidValidity[imap.role] ?? '');
}

/** Deletions a plan makes, on each side, for the safety stop. */
export function countDeletions(p: Plan): { emails: number; voicemails: number } {
  let emails = 0;
  let voicemails = 0;
  for (const op of p.ops) {
    if (op.kind === 'delete-email' && op.reason !== 'duplicate-email') emails++;
    if (op.kind === 'delete-voicemail') voicemails++;
  }
  return { emails, voicemails };
}
