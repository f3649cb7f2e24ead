/**
 * Carrying a mail-client change to the spool: a voicemail moves to another folder, or leaves its
 * folder (into Deleted/ where voicemail.conf's backupdeleted asks for it).
 *
 * Order of preference (DESIGN, "Decisions already taken"):
 *   1. through the Asterisk that owns the spool, with AMI VoicemailMove / VoicemailRemove (18.20,
 *      20.5 and later): Asterisk locks, renumbers and publishes MWI itself. Those actions answer
 *      Success even when they failed, so the helpers turn a failure into AmiReportedFailureError,
 *      and the result is checked on disk either way;
 *   2. otherwise the files themselves, under Asterisk's folder lock (src/spool/write.ts).
 * Either way, never while a caller is in VoiceMailMain for the mailbox: Asterisk keeps message
 * numbers in memory for the whole session and would act on the wrong files at hang-up. With AMI
 * that is asked (CoreShowChannels) before every change; without AMI it cannot be known.
 */
import { readAsteriskConf, type LockMode } from '../config/asterisk-conf.js';
import type { Settings } from '../config/schema.js';
import { SpoolChangeDeferredError } from '../errors.js';
import { coreShowChannels, voiceMailMainBusy } from '../mwi/ami-actions.js';
import type { AmiClient } from '../mwi/ami-client.js';
import type { SpoolOwnership } from '../spool/ownership.js';
import { readMailbox } from '../spool/read-mailbox.js';
import { mailboxKey, type MailboxRef, type SyncedSpoolFolder } from '../spool/types.js';
import type { StoreBox, StoreChangeOutcome } from './types.js';
import { DEFAULT_MAXMSG, FolderFullError, moveVoicemail, removeVoicemail } from '../spool/write.js';
import { changesViaAmi, moveViaAmi, removeViaAmi, type AmiChanges } from './ami-changes.js';

/** What a change needs to know about the mailbox (the store's StoreBox). */
export type SpoolBox = StoreBox;

export interface SpoolChangerOptions {
  readonly spoolDir: string;
  readonly lockmode: LockMode;
  /** The owning Asterisk's AMI session, when `asterisk.ami` is configured. */
  readonly ami?: AmiChanges;
  /** Whom folders vmbridge creates are given to (FileSpoolStoreOptions.owner); unset: nobody. */
  readonly owner?: SpoolOwnership;
}

export type SpoolChangeOutcome = StoreChangeOutcome;

/** The lock mode vmbridge must share with Asterisk: the setting, else asterisk.conf, else lockfile. */
export async function spoolLockmode(settings: Settings): Promise<LockMode> {
  if (settings.spool.lockmode !== undefined) return settings.spool.lockmode;
  if (settings.spool.asteriskConf !== undefined) return (await readAsteriskConf(settings.spool.asteriskConf)).lockmode;
  return 'lockfile';
}

/**
 * Throws SpoolChangeDeferredError when a caller may be in VoiceMailMain for the mailbox, or when
 * AMI is configured but not connected (then it cannot be told). Without AMI there is no way to
 * know, and it returns. Every store asks this before it changes a mailbox.
 */
export async function assertNoVoiceMailMain(client: AmiClient | undefined, ref: MailboxRef): Promise<void> {
  if (!client) return;
  if (!client.connected) {
    throw new SpoolChangeDeferredError(mailboxKey(ref), 'AMI is not connected, so whether a caller is in VoiceMailMain cannot be told');
  }
  if (voiceMailMainBusy(await coreShowChannels(client), ref)) {
    throw new SpoolChangeDeferredError(mailboxKey(ref), 'a caller is in VoiceMailMain for this mailbox');
  }
}

export class SpoolChanger {
  constructor(private readonly opts: SpoolChangerOptions) {}

  /** True when the changes go through AMI at all (for logs and tests). */
  get usesAmi(): boolean {
    return this.opts.ami !== undefined;
  }

  /**
   * Throws SpoolChangeDeferredError when a caller may be in VoiceMailMain for the mailbox, or when
   * AMI is configured but not connected (then it cannot be told). Without AMI there is no way to
   * know, and it returns.
   */
  assertNotInVoiceMailMain(ref: MailboxRef): Promise<void> {
    return assertNoVoiceMailMain(this.opts.ami?.client, ref);
  }

  /** Moves message `id` from `from` to `to`. Already there counts as done. */
  async move(box: SpoolBox, id: string, from: SyncedSpoolFolder, to: SyncedSpoolFolder): Promise<SpoolChangeOutcome> {
    if (changesViaAmi(this.opts.ami, id)) return moveViaAmi(this.opts.ami, (ref) => readMailbox(this.opts.spoolDir, ref), box, id, from, to);
    const maxmsg = box.maxmsg ?? DEFAULT_MAXMSG;
    try {
      const r = await moveVoicemail(this.opts.spoolDir, box.ref, { id, from, to, lockmode: this.opts.lockmode, maxmsg, ...this.ownerOption() });
      return { done: true, via: 'files', alreadyDone: r.alreadyDone, repairs: r.repairs };
    } catch (err) {
      if (err instanceof FolderFullError) return { done: false, problem: err.message };
      throw err;
    }
  }

  /** Removes message `id` from `folder` (into Deleted/ per backupdeleted). Already gone counts as done. */
  async remove(box: SpoolBox, id: string, folder: SyncedSpoolFolder): Promise<SpoolChangeOutcome> {
    if (changesViaAmi(this.opts.ami, id)) return removeViaAmi(this.opts.ami, (ref) => readMailbox(this.opts.spoolDir, ref), box, id, folder);
    const r = await removeVoicemail(this.opts.spoolDir, box.ref, { id, folder, lockmode: this.opts.lockmode, backupDeleted: box.backupDeleted ?? 0, ...this.ownerOption() });
    return { done: true, via: 'files', alreadyDone: !r.removed, repairs: r.repairs };
  }

  private ownerOption(): { owner?: SpoolOwnership } {
    return this.opts.owner ? { owner: this.opts.owner } : {};
  }
}
