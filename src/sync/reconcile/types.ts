/** The shapes the reconcile phases share (src/sync/reconcile.ts runs them in order). */
import type { ImapFlow } from 'imapflow';
import type { Converter } from '../../audio/attachments.js';
import type { Settings } from '../../config/schema.js';
import type { ImapAccount } from '../../imap/account.js';
import type { ServerCapabilities } from '../../imap/capabilities.js';
import type { RolePaths } from '../../imap/folders.js';
import type { ImapObservation } from '../../imap/observe.js';
import type { ImapPool } from '../../imap/pool.js';
import type { Logger } from '../../log.js';
import type { MwiCounts } from '../../mwi/counts.js';
import type { BreakerState, DeleteBreaker } from '../../queue/delete-breaker.js';
import type { MailboxRef, SpoolMessage, SpoolProblem, SpoolSnapshot } from '../../spool/types.js';
import type { VoicemailStore } from '../../store/types.js';
import type { EmailTranscriber } from '../../transcribe/transcriber.js';
import type { ReconcileFollower } from '../after-reconcile.js';
import type { BoxInfo } from '../directory.js';
import type { Op, Plan, SpoolSide, SyncRecord } from '../plan.js';
import type { FolderStatuses } from '../../imap/doveadm.js';
import type { QuietMarks } from '../quiet-marks.js';
import type { StateStore } from '../state-store.js';

export interface ReconcileDeps {
  /** Where the voicemail is (the file spool, an ODBC table): read, and changed for mail-client changes. */
  readonly store: VoicemailStore;
  readonly settings: Settings;
  readonly state: StateStore;
  readonly imap: ImapPool;
  readonly log: Logger;
  /** Told after the ops are applied (the quota watch: quota, maxmsg, a mailbox refused for quota). */
  readonly followers?: readonly ReconcileFollower[];
  /** Makes MP3 and WAV attachments (SoxTranscoder); absent: recordings are attached as they are. */
  readonly audio?: Converter;
  /** The installation-wide deletion breaker; absent: only the per-mailbox safety stop. */
  readonly breaker?: DeleteBreaker;
  /** Told once when this reconcile's deletions opened the breaker (the admins are alerted). */
  readonly onBreakerOpened?: (state: BreakerState, mailbox: string) => Promise<void>;
  /** The transcription stage (src/transcribe/); absent: no email carries a transcript. */
  readonly transcriber?: EmailTranscriber;
  /** The full name of a mailbox in voicemail.conf, for an email of a message forwarded from it. */
  readonly ownerName?: (ref: MailboxRef) => string | undefined;
  /** Where background reconciles remember a quiet mailbox (./quick-look.ts); absent: always a full look. */
  readonly quietMarks?: QuietMarks;
  /**
   * The account's folder statuses as known without a login (Dovecot's doveadm API, taken by the
   * sweep: ../folder-status-snapshot.ts); undefined when not known. Absent: always the IMAP quick look.
   */
  readonly knownFolderStatus?: (account: ImapAccount) => Promise<FolderStatuses | undefined>;
}

export interface ReconcileOptions {
  /** Plan only; change nothing. */
  readonly dryRun?: boolean;
  /**
   * A background reconcile (start-up pass, sweep): look quickly first, and skip the full look
   * when nothing changed since the mailbox was last found quiet (./quick-look.ts).
   */
  readonly quickLook?: boolean;
  /** Called after each op is applied (progress output, tests). */
  readonly onOp?: (op: Op) => void;
  /**
   * Called right after an op's effect (the APPEND, STORE, MOVE, EXPUNGE, or the store's move or
   * removal) and before its record is written: the worst moment for a stop. The interruption tests
   * throw from here to stop the reconcile at every step of a plan.
   */
  readonly afterEffect?: (op: Op) => void;
}

export interface SkippedOp {
  readonly op: Op;
  readonly problem: string;
}

export interface ReconcileResult {
  readonly plan: Plan;
  readonly applied: number;
  readonly skipped: readonly SkippedOp[];
  readonly spoolProblems: readonly SpoolProblem[];
  /** Messages in the synced folders of the store when the reconcile looked (absent on a dry run: 0). */
  readonly spoolTotal: number;
  /** Voicemail emails (distinct messages) in the mapped IMAP folders when the reconcile looked. */
  readonly imapTotal: number;
  /**
   * MWI counts of the store as the whole plan left it (re-read when the plan changed the store).
   * Absent on a dry run, and when that re-read did not settle: unknown is not zero.
   */
  readonly counts?: MwiCounts;
  /** Where the time went, in milliseconds: reading the store, looking at IMAP, planning, applying. */
  readonly phases: ReconcilePhases;
  /** True when the quick look found nothing changed since the mailbox was last quiet (no full look). */
  readonly unchanged?: boolean;
}

export interface ReconcilePhases {
  spoolMs: number;
  imapMs: number;
  planMs: number;
  applyMs: number;
}

/** One mailbox's reconcile: what every phase is given. */
export interface MailboxRun {
  readonly deps: ReconcileDeps;
  readonly box: BoxInfo;
  readonly log: Logger;
}

/** The store side as observed: the snapshot, and each synced message by identity. */
export interface StoreView {
  readonly snapshot: SpoolSnapshot;
  /** id -> every copy's folder (normally one; two while Asterisk moves a message). */
  readonly sides: ReadonlyMap<string, readonly SpoolSide[]>;
  /** id -> the message (its first copy), to build its email from. */
  readonly messages: ReadonlyMap<string, SpoolMessage>;
}

/** The IMAP side as observed, with the records of the last agreement. */
export interface ImapView {
  readonly client: ImapFlow;
  readonly caps: ServerCapabilities;
  readonly paths: RolePaths;
  readonly observed: ImapObservation;
  readonly records: Map<string, SyncRecord>;
  /** The account key as it is now, and as the records last saw it. */
  readonly account: string;
  readonly lastAccount: string | undefined;
  /** Why the records do not belong to this account (the imap-replaced row), if they do not. */
  readonly accountChanged: string | undefined;
  readonly imapAccount: ImapAccount;
}

/** What the apply phase did. */
export interface Applied {
  readonly applied: number;
  readonly appended: number;
  readonly skipped: readonly SkippedOp[];
  /** The APPEND the server refused for quota, if one was. */
  readonly refused?: unknown;
  /** Store changes waited for (a caller in VoiceMailMain): thrown once the rest is published. */
  readonly deferred?: Error;
}
