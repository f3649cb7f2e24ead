/**
 * What vmbridge knows about Asterisk's voicemail spool. Pure data: no I/O here.
 * Facts behind these shapes: Asterisk's app_voicemail (file storage), see docs/asterisk-spool.md.
 */

/** Spool folder directory names, in app_voicemail's order (mailbox_folders[]). */
export const SPOOL_FOLDERS = [
  'INBOX', 'Old', 'Work', 'Family', 'Friends',
  'Cust1', 'Cust2', 'Cust3', 'Cust4', 'Cust5',
  'Deleted', 'Urgent',
] as const;
export type SpoolFolder = (typeof SPOOL_FOLDERS)[number];

/** The folders vmbridge keeps in step with IMAP. Cust1..5 and Deleted are left alone. */
export const SYNCED_SPOOL_FOLDERS = ['INBOX', 'Urgent', 'Old', 'Work', 'Family', 'Friends'] as const;
export type SyncedSpoolFolder = (typeof SYNCED_SPOOL_FOLDERS)[number];

export function isSyncedSpoolFolder(name: string): name is SyncedSpoolFolder {
  return (SYNCED_SPOOL_FOLDERS as readonly string[]).includes(name);
}

/**
 * A voicemail box: `<mailbox>@<context>` on one voicemail server. Both parts are validated spool
 * path segments. `server` names an entry of the settings' `servers` list; it is absent for the
 * main server (the top-level spool and asterisk sections), whose mailboxes keep the names and
 * Redis keys they had before there could be several servers (docs/stores.md).
 */
export interface MailboxRef {
  readonly server?: string;
  readonly context: string;
  readonly mailbox: string;
}

/** `<mailbox>@<context>`, or `<server>/<mailbox>@<context>`: the name in logs, metrics and the doctor. */
export function mailboxKey(ref: MailboxRef): string {
  const box = `${ref.mailbox}@${ref.context}`;
  return ref.server === undefined ? box : `${ref.server}/${box}`;
}

/**
 * The mailbox's part of a Redis key: `<context>:<mailbox>`, with `<server>:` in front for a named
 * server. Unambiguous because none of the three names can hold ':' (src/spool/names.ts).
 */
export function redisBoxPart(ref: MailboxRef): string {
  const box = `${ref.context}:${ref.mailbox}`;
  return ref.server === undefined ? box : `${ref.server}:${box}`;
}

/** The same mailbox of the same server. */
export function sameMailbox(a: MailboxRef, b: MailboxRef): boolean {
  return a.context === b.context && a.mailbox === b.mailbox && a.server === b.server;
}

/** A mailbox of `server` (undefined: the main server), without a `server` key for the main one. */
export function boxOn(server: string | undefined, context: string, mailbox: string): MailboxRef {
  return server === undefined ? { context, mailbox } : { server, context, mailbox };
}

/** Parsed `msgNNNN.txt` ([message] category). Unknown keys are kept in `raw`. */
export interface Envelope {
  readonly origmailbox?: string;
  readonly context?: string;
  readonly macrocontext?: string;
  readonly exten?: string;
  readonly rdnis?: string;
  readonly priority?: string;
  readonly callerchan?: string;
  /** As Asterisk writes it: `"Name" <num>`, `num`, `Name` or `Unknown`. */
  readonly callerid?: string;
  readonly origdate?: string;
  /** Epoch seconds. */
  readonly origtime?: number;
  readonly category?: string;
  /** `<unix-seconds>-<8 hex>`; absent before Asterisk 11. */
  readonly msgId?: string;
  /** '', 'Urgent' or 'PRIORITY'. */
  readonly flag?: string;
  /** Seconds. */
  readonly duration?: number;
  readonly raw: Readonly<Record<string, string>>;
  /** What could not be read, each naming its line where it has one; the rest of the envelope is used. */
  readonly problems?: readonly string[];
  /** True when origtime could not be read and is the file's modification time. */
  readonly origtimeFromFile?: boolean;
  /** SHA-256 of the file's bytes, set when origtime could not be read: the message's identity then. */
  readonly contentDigest?: string;
}

export interface AudioFile {
  /** Extension as on disk, case kept (`WAV` is wav49, `wav` is PCM). */
  readonly ext: string;
  readonly path: string;
}

/** One complete message in the spool: a `msgNNNN.txt` plus its audio siblings. */
export interface SpoolMessage {
  /** Stable identity within the mailbox: the envelope's msg_id, or one derived from the envelope. */
  readonly id: string;
  /** True when `id` was derived because the envelope has no msg_id. */
  readonly derivedId: boolean;
  readonly folder: SpoolFolder;
  readonly msgnum: number;
  readonly txtPath: string;
  readonly audio: readonly AudioFile[];
  readonly envelope: Envelope;
}

/** A problem found while reading the spool: named, logged, and the rest goes on. */
export interface SpoolProblem {
  readonly path: string;
  readonly problem: string;
}

/** Result of reading one mailbox's spool directory. */
export interface SpoolSnapshot {
  readonly ref: MailboxRef;
  readonly messages: readonly SpoolMessage[];
  /** Files that are not used (the lamp may still count them). */
  readonly problems: readonly SpoolProblem[];
  /**
   * Messages that are used though part of their envelope could not be read: named once per file
   * version in a process, not at every read.
   */
  readonly warnings?: readonly SpoolProblem[];
  /** False when the mailbox kept changing while it was read: then nothing may be deleted from it. */
  readonly settled: boolean;
}
