/**
 * The file spool as a voicemail store: `<spool>/voicemail/<context>/<mailbox>/<Folder>/msgNNNN.*`,
 * as app_voicemail's file storage lays it out (docs/asterisk-spool.md). Reading, watching and the
 * file changes themselves live in src/spool/; this adapter only puts them behind the store
 * interface, with the owning Asterisk's AMI actions preferred for changes (SpoolChanger).
 */
import { join } from 'node:path';
import type { LockMode } from '../config/asterisk-conf.js';
import { listSpoolMailboxes } from '../spool/list-mailboxes.js';
import { withFolderLock } from '../spool/lock.js';
import { mailboxDir } from '../spool/names.js';
import { readMailbox, readSpoolFile } from '../spool/read-mailbox.js';
import type { MailboxRef, SpoolSnapshot, SyncedSpoolFolder } from '../spool/types.js';
import { watchSpool } from '../spool/watcher.js';
import type { SpoolOwnership } from '../spool/ownership.js';
import { renumberFolder } from '../spool/write.js';
import { SpoolChanger, type SpoolChangerOptions } from './spool-changes.js';
import type { StoreBox, StoreChangeOutcome, StoreWatcher, StoreWatchOptions, VoicemailStore } from './types.js';

export interface FileSpoolStoreOptions {
  /** Asterisk's spool directory (astspooldir); voicemail is under its `voicemail/`. */
  readonly spoolDir: string;
  /** The lock mode shared with Asterisk (asterisk.conf `lockmode`). */
  readonly lockmode: LockMode;
  /** The owning Asterisk's AMI session, for VoicemailMove/VoicemailRemove and the VoiceMailMain check. */
  readonly ami?: SpoolChangerOptions['ami'];
  /**
   * Only when vmbridge runs as root: asterisk.conf runuser/rungroup as ids; the folders vmbridge
   * creates in the spool are given to them (a part left out: to the mailbox folder's owner).
   */
  readonly owner?: SpoolOwnership;
}

export class FileSpoolStore implements VoicemailStore {
  readonly kind = 'spool' as const;
  readonly location: string;
  private readonly changer: SpoolChanger;

  constructor(private readonly opts: FileSpoolStoreOptions) {
    this.location = opts.spoolDir;
    this.changer = new SpoolChanger({ spoolDir: opts.spoolDir, lockmode: opts.lockmode, ...(opts.ami ? { ami: opts.ami } : {}), ...(opts.owner ? { owner: opts.owner } : {}) });
  }

  get spoolDir(): string {
    return this.opts.spoolDir;
  }

  /** True when changes go through the owning Asterisk's AMI (for logs and tests). */
  get usesAmi(): boolean {
    return this.changer.usesAmi;
  }

  listMailboxes(): ReturnType<VoicemailStore['listMailboxes']> {
    return listSpoolMailboxes(this.opts.spoolDir);
  }

  readMailbox(ref: MailboxRef): Promise<SpoolSnapshot> {
    return readMailbox(this.opts.spoolDir, ref);
  }

  readAudio(_ref: MailboxRef, path: string): Promise<Buffer> {
    return readSpoolFile(this.opts.spoolDir, path);
  }

  assertChangeable(ref: MailboxRef): Promise<void> {
    return this.changer.assertNotInVoiceMailMain(ref);
  }

  move(box: StoreBox, id: string, from: SyncedSpoolFolder, to: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
    return this.changer.move(box, id, from, to);
  }

  remove(box: StoreBox, id: string, folder: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
    return this.changer.remove(box, id, folder);
  }

  renumber(ref: MailboxRef, folder: SyncedSpoolFolder): Promise<readonly string[]> {
    return renumberFolder(this.opts.spoolDir, ref, folder, { lockmode: this.opts.lockmode, ...(this.opts.owner ? { owner: this.opts.owner } : {}) });
  }

  withFolderLock<T>(ref: MailboxRef, folder: SyncedSpoolFolder, fn: () => T | Promise<T>): Promise<T> {
    return withFolderLock(join(mailboxDir(this.opts.spoolDir, ref), folder), this.opts.lockmode, fn);
  }

  watch(onChange: (ref: MailboxRef) => void, opts: StoreWatchOptions = {}): StoreWatcher {
    // The .txt is written last, so its event means the message is complete; Redis coalesces bursts.
    return watchSpool(this.opts.spoolDir, (ref) => onChange(ref), { ...(opts.log ? { log: opts.log } : {}), debounceMs: 0 });
  }

  async close(): Promise<void> {
    // Nothing held: the AMI session belongs to the service.
  }
}
