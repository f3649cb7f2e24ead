/**
 * The default folder mapping (Asterisk IMAP-storage compatible, see docs/sync.md):
 *
 *   spool INBOX   <-> IMAP inbox folder, unseen, not \Flagged
 *   spool Urgent  <-> IMAP inbox folder, unseen, \Flagged
 *   spool Old     <-> IMAP inbox folder, \Seen (any \Flagged)
 *   spool Work/Family/Friends <-> IMAP folders of those names (flags are the user's)
 *
 * Both directions are derived from one table so they cannot disagree:
 * `spoolFolderOf(placementFor(f)) === f` for every synced folder f.
 */
import type { SyncedSpoolFolder } from '../spool/types.js';

export const IMAP_ROLES = ['inbox', 'work', 'family', 'friends'] as const;
export type ImapRole = (typeof IMAP_ROLES)[number];

/** How a message sits in IMAP: which mapped folder, and the two flags that carry meaning. */
export interface ImapPlacement {
  readonly role: ImapRole;
  readonly seen: boolean;
  readonly flagged: boolean;
}

/** What a spool folder asks of IMAP. `undefined` means "whatever the user set": not ours to change. */
export interface PlacementWish {
  readonly role: ImapRole;
  readonly seen: boolean | undefined;
  readonly flagged: boolean | undefined;
}

const WISHES: Readonly<Record<SyncedSpoolFolder, PlacementWish>> = {
  INBOX: { role: 'inbox', seen: false, flagged: false },
  Urgent: { role: 'inbox', seen: false, flagged: true },
  Old: { role: 'inbox', seen: true, flagged: undefined },
  Work: { role: 'work', seen: undefined, flagged: undefined },
  Family: { role: 'family', seen: undefined, flagged: undefined },
  Friends: { role: 'friends', seen: undefined, flagged: undefined },
};

export function placementWish(folder: SyncedSpoolFolder): PlacementWish {
  return WISHES[folder];
}

/**
 * Flags for a message that vmbridge puts into IMAP for the first time (APPEND) or moves to another
 * folder. A voicemail saved to a user folder on the phone has been heard, so it arrives \Seen.
 */
export function initialFlags(folder: SyncedSpoolFolder): { seen: boolean; flagged: boolean } {
  const wish = WISHES[folder];
  return { seen: wish.seen ?? true, flagged: wish.flagged ?? false };
}

/** The spool folder an IMAP placement means. */
export function spoolFolderOf(p: ImapPlacement): SyncedSpoolFolder {
  switch (p.role) {
    case 'inbox':
      if (p.seen) return 'Old';
      return p.flagged ? 'Urgent' : 'INBOX';
    case 'work':
      return 'Work';
    case 'family':
      return 'Family';
    case 'friends':
      return 'Friends';
  }
}

/** The flag changes that make `p` satisfy the wish for `folder` (role must already match). */
export function flagChanges(folder: SyncedSpoolFolder, p: ImapPlacement): { seen?: boolean; flagged?: boolean } {
  const wish = WISHES[folder];
  const out: { seen?: boolean; flagged?: boolean } = {};
  if (wish.seen !== undefined && wish.seen !== p.seen) out.seen = wish.seen;
  if (wish.flagged !== undefined && wish.flagged !== p.flagged) out.flagged = wish.flagged;
  return out;
}
