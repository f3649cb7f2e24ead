/**
 * What a reconcile tells whoever follows it once its ops are applied (the quota watch today). The
 * followers are handed in (ReconcileDeps.followers): the sync engine knows nothing of alerts.
 */
import type { ImapFlow } from 'imapflow';
import type { ServerCapabilities } from '../imap/capabilities.js';
import type { MwiCounts } from '../mwi/counts.js';
import type { BoxInfo } from './directory.js';

export interface ReconcileOutcome {
  /** The connection the reconcile used: a quota reading is one more command on it. */
  readonly client: ImapFlow;
  readonly caps: ServerCapabilities;
  readonly box: BoxInfo;
  /** The server path of the inbox role, whose quota root is read. */
  readonly inboxPath: string;
  /** The store's counts after the plan (maxmsg is checked against them); undefined when unknown. */
  readonly counts: MwiCounts | undefined;
  /** APPENDs that went through in this reconcile. */
  readonly appended: number;
  /** APPENDs planned but not done (refused, not tried, or an unreadable voicemail). */
  readonly waiting: number;
  /** The error of the APPEND the server refused for quota, if one was refused. */
  readonly refused?: unknown;
}

/** Told after every reconcile that was not a dry run, on the reconcile's IMAP connection. */
export interface ReconcileFollower {
  afterReconcile(outcome: ReconcileOutcome): Promise<void>;
}
