/**
 * Whose the folders vmbridge creates in a mailbox are. Asterisk creates them as the user it runs
 * as (asterisk.conf `runuser`/`rungroup`) with 0777 minus the umask (VOICEMAIL_DIR_MODE), and
 * Asterisk must be able to write into them afterwards. A process that is not root makes everything
 * its own and cannot give it away, so an ownership is only passed when vmbridge runs as root.
 *
 * Files are never given away here: a move or a renumbering renames and hard-links the same inodes,
 * which keep the owner and mode Asterisk gave them, and lock files are removed again.
 */
import { lstatSync } from 'node:fs';

/** The complete owner a created folder is given. */
export interface SpoolOwner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Whom vmbridge gives what it creates: asterisk.conf's runuser/rungroup as ids. A missing part is
 * taken from the mailbox folder the change is made in, which Asterisk created as its own.
 */
export interface SpoolOwnership {
  readonly uid?: number;
  readonly gid?: number;
}

/** Asterisk's VOICEMAIL_DIR_MODE; mkdir takes the process umask off, as it does for Asterisk. */
export const DIR_MODE = 0o777;

/**
 * The owner for folders created in mailbox folder `box`, or undefined when nothing is to be given
 * away (no ownership: vmbridge is not root). A part neither configured nor readable from `box` is
 * -1, which chown leaves as it is.
 */
export function ownerIn(box: string, ownership: SpoolOwnership | undefined): SpoolOwner | undefined {
  if (ownership === undefined) return undefined;
  if (ownership.uid !== undefined && ownership.gid !== undefined) return { uid: ownership.uid, gid: ownership.gid };
  let st: { uid: number; gid: number } | undefined;
  try {
    const s = lstatSync(box);
    if (s.isDirectory()) st = s;
  } catch {
    st = undefined; // not there yet: nothing to copy from
  }
  return { uid: ownership.uid ?? st?.uid ?? -1, gid: ownership.gid ?? st?.gid ?? -1 };
}

/** True when this process may give files to another user (and so should). */
export function runsAsRoot(): boolean {
  return process.geteuid?.() === 0;
}
