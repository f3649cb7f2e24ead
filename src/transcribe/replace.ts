/**
 * Late replacement: a transcript that came after its email went (the email is marked
 * X-VMBridge-Transcript: pending) becomes a new version of that email, with the same identity.
 * Under the mailbox's lock, so no reconcile runs meanwhile:
 *
 *   observe IMAP -> no copy: the user deleted it -> nothing appended
 *                -> a copy without the mark: already replaced -> nothing
 *                -> APPEND the new version where the pending copy is now, with its \Seen and
 *                   \Flagged -> record its UID -> UID EXPUNGE the pending copy
 *
 * A crash anywhere leaves either the pending copy alone (the job runs again) or both copies, and
 * the plan keeps the one without the mark (src/sync/plan.ts, duplicate-email): never two, never none.
 */
import type { ImapFlow } from 'imapflow';
import type { Redis } from 'ioredis';
import { ImapError, SpoolBusyError, SpoolError } from '../errors.js';
import { accountKey } from '../imap/account.js';
import type { ServerCapabilities } from '../imap/capabilities.js';
import { rolePaths } from '../imap/folders.js';
import { findCopiesInSelected, forgetUid, observeImap, rememberOwner } from '../imap/observe.js';
import { removeOriginal, type EmailLocation, type Identity } from '../imap/operations.js';
import { noteOwnAppend } from '../imap/own-echoes.js';
import { acquireMailboxLock } from '../queue/mailbox-lock.js';
import { lockKey } from '../queue/reconcile-queue.js';
import { isSyncedSpoolFolder, mailboxKey } from '../spool/types.js';
import type { BoxInfo } from '../sync/directory.js';
import type { ImapSide } from '../sync/plan.js';
import { buildEmail } from '../sync/build-email.js';
import type { ReconcileDeps } from '../sync/reconcile.js';
import { faultPoint } from './fault.js';
import { emailTranscript, type Outcome } from './transcriber.js';

export interface ReplaceDeps extends ReconcileDeps {
  readonly redis: Redis;
}

export type ReplaceResult =
  | { readonly done: 'replaced'; readonly uid: number; readonly folder: string; readonly removed: number }
  /** No copy is left in the mapped folders: the user deleted it (or the reconcile has not appended it). */
  | { readonly done: 'email-gone' }
  /** Every copy already carries its transcript. */
  | { readonly done: 'already' }
  /** The voicemail is no longer in the spool: the reconcile deletes its email. */
  | { readonly done: 'voicemail-gone' };

export async function replaceLate(deps: ReplaceDeps, box: BoxInfo, id: string, outcome: Outcome): Promise<ReplaceResult> {
  const { settings } = deps;
  const log = deps.log.child({ mailbox: mailboxKey(box.ref) });
  const lock = await acquireMailboxLock(deps.redis, lockKey(settings.redis.prefix, box.ref));
  try {
    return await deps.imap.withClient(box.account, async (client, caps) => {
      const paths = await rolePaths(client, settings.imap.folders);
      const observed = await observeImap(client, box.ref, paths, settings.email.messageIdDomain);
      const copies = observed.copies.get(id) ?? [];
      if (copies.length === 0) return { done: 'email-gone' };
      const pending = copies.filter((c) => c.pending);
      // A copy without the mark is the replacement of a run that was cut short: the reconcile removes the rest.
      if (pending.length === 0 || pending.length < copies.length) return { done: 'already' };
      const record = (await deps.state.load(box.ref)).records.get(id);
      const target = pending.find((c) => record !== undefined && c.role === record.role && c.uid === record.uid) ?? pending[0]!;

      const snapshot = await deps.store.readMailbox(box.ref);
      if (!snapshot.settled) throw new SpoolBusyError(mailboxKey(box.ref));
      const message = snapshot.messages.find((m) => m.id === id && isSyncedSpoolFolder(m.folder));
      if (!message) return { done: 'voicemail-gone' };
      const built = await buildEmail({ ...deps, transcriber: { forEmail: async () => emailTranscript(outcome), close: async () => undefined } }, box, message, log);
      if ('problem' in built) throw new SpoolError(built.file, built.problem);

      const identity: Identity = { ref: box.ref, id, domain: settings.email.messageIdDomain };
      const path = paths[target.role];
      const at = await appendReplacement(client, path, built.raw, { seen: target.seen, flagged: target.flagged }, identity);
      noteOwnAppend(accountKey(box.account), path, at.uid);
      if (record) await deps.state.put(box.ref, id, { ...record, role: target.role, uid: at.uid, uidValidity: at.uidValidity });
      log.info({ id, folder: path, uid: at.uid, replaces: target.uid }, 'email with the late transcript appended');
      faultPoint('transcript-appended');
      for (const old of pending) await removeCopy(client, caps, paths[old.role], old);
      return { done: 'replaced', uid: at.uid, folder: path, removed: pending.length };
    });
  } finally {
    await lock.release().catch(() => undefined);
  }
}

/**
 * APPENDs the new version unless a copy without the pending mark is already in the folder (a
 * retried run): then that copy is the answer, and nothing is written.
 */
async function appendReplacement(client: ImapFlow, path: string, raw: Buffer, flags: { seen: boolean; flagged: boolean }, identity: Identity): Promise<EmailLocation> {
  const lock = await client.getMailboxLock(path);
  try {
    const uidValidity = client.mailbox ? client.mailbox.uidValidity.toString() : '';
    const before = await findCopiesInSelected(client, path, identity.ref, identity.id, identity.domain);
    const done = before.find((c) => !c.pending);
    if (done) return { uid: done.uid, uidValidity };
    const flagList = [...(flags.seen ? ['\\Seen'] : []), ...(flags.flagged ? ['\\Flagged'] : [])];
    const res = await client.append(path, raw, flagList);
    if (!res) throw new ImapError(identity.ref.mailbox, `APPEND to ${JSON.stringify(path)} failed`);
    let uid = res.uid;
    if (uid === undefined) {
      // No APPENDUID (no UIDPLUS): the new copy is the one the server announced since, without the mark.
      uid = (await findCopiesInSelected(client, path, identity.ref, identity.id, identity.domain)).filter((c) => !c.pending).pop()?.uid;
      if (uid === undefined) throw new ImapError(identity.ref.mailbox, `APPEND to ${JSON.stringify(path)} succeeded but the message cannot be found`);
    }
    const validity = res.uidValidity !== undefined ? res.uidValidity.toString() : uidValidity;
    rememberOwner(client, path, validity, uid, identity.ref, identity.id, { ...flags, pending: false });
    return { uid, uidValidity: validity };
  } finally {
    lock.release();
  }
}

/** UID EXPUNGE of exactly the old copy (only \Deleted without UIDPLUS); never into the trash: it is replaced, not deleted. */
async function removeCopy(client: ImapFlow, caps: ServerCapabilities, path: string, old: ImapSide): Promise<void> {
  const lock = await client.getMailboxLock(path);
  try {
    const validity = client.mailbox ? client.mailbox.uidValidity.toString() : '';
    await removeOriginal(client, caps, old.uid);
    if (caps.uidplus) forgetUid(client, path, validity, old.uid);
  } finally {
    lock.release();
  }
}
