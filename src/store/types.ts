/**
 * The voicemail store the sync engine works against. Asterisk keeps voicemail in a file spool, in
 * an ODBC table, or in IMAP; the engine sees every store through this one interface, and each
 * implementation passes the same contract tests (test/unit/store-contract.ts).
 *
 * A store speaks in the spool's terms (folders, msgnum, envelope, audio files) because those are
 * app_voicemail's own terms whatever the storage: an ODBC row has the same folder, number,
 * envelope fields and recording as a msgNNNN.* set.
 */
import type { Logger } from '../log.js';
import type { MailboxRef, SpoolProblem, SpoolSnapshot, SyncedSpoolFolder } from '../spool/types.js';

export type StoreKind = 'spool' | 'odbc';

/** What a store needs to know about a mailbox it changes (from voicemail.conf). */
export interface StoreBox {
  readonly ref: MailboxRef;
  /** voicemail.conf maxmsg; default 100. */
  readonly maxmsg?: number;
  /** voicemail.conf backupdeleted; default 0. */
  readonly backupDeleted?: number;
}

export type StoreChangeOutcome =
  | { readonly done: true; readonly via: 'ami' | 'files' | 'sql'; readonly alreadyDone: boolean; readonly repairs: readonly string[] }
  /** The destination folder is full (maxmsg): nothing changed, the email stays where the user put it. */
  | { readonly done: false; readonly problem: string };

export interface StoreWatcher {
  /** Settles once the watch is in place (or known not to be possible yet). */
  readonly ready: Promise<void>;
  close(): void;
}

export interface StoreWatchOptions {
  readonly log?: Logger;
}

export interface VoicemailStore {
  readonly kind: StoreKind;
  /** Where the voicemail is, for logs and `vmbridge doctor` (a path, or a database without its password). */
  readonly location: string;
  /** The mailboxes that have a folder (or rows) in the store; what cannot be read is a problem, not an error. */
  listMailboxes(): Promise<{ refs: MailboxRef[]; problems: SpoolProblem[] }>;
  /**
   * One consistent look at a mailbox: every message with its identity, folder, number, envelope and
   * audio files. `settled: false` when it kept changing while it was read: nothing may be deleted
   * on the strength of such a look.
   */
  readMailbox(ref: MailboxRef): Promise<SpoolSnapshot>;
  /** The bytes of one audio file of a message of `ref`, by the `path` its snapshot gave. */
  readAudio(ref: MailboxRef, path: string): Promise<Buffer>;
  /**
   * Throws SpoolChangeDeferredError while a change must wait (a caller in VoiceMailMain holds the
   * message numbers in memory, or that cannot be told).
   */
  assertChangeable(ref: MailboxRef): Promise<void>;
  /** Moves message `id` from `from` to the end of `to`, renumbering `from`. Already there counts as done. */
  move(box: StoreBox, id: string, from: SyncedSpoolFolder, to: SyncedSpoolFolder): Promise<StoreChangeOutcome>;
  /** Removes message `id` from `folder` (into Deleted per backupdeleted). Already gone counts as done. */
  remove(box: StoreBox, id: string, folder: SyncedSpoolFolder): Promise<StoreChangeOutcome>;
  /** Closes the gaps in a folder's numbers (0, 1, 2, ...) under its lock; returns what it changed. */
  renumber(ref: MailboxRef, folder: SyncedSpoolFolder): Promise<readonly string[]>;
  /** Runs `fn` holding the folder's lock, the one Asterisk takes for the same folder. */
  withFolderLock<T>(ref: MailboxRef, folder: SyncedSpoolFolder, fn: () => T | Promise<T>): Promise<T>;
  /** Calls `onChange` when a mailbox may have changed (a hint: the reconcile looks for itself). */
  watch(onChange: (ref: MailboxRef) => void, opts?: StoreWatchOptions): StoreWatcher;
  /** Releases connections; the store is not used afterwards. */
  close(): Promise<void>;
}
