/**
 * The only ways vmbridge changes IMAP. Each is safe to repeat after a crash at any point:
 *  - append looks for the identity in the target folder first, so a retried APPEND makes no copy
 *    (the reconcile's observation covers the folder up to its last UID; mail the server has
 *    announced since, beyond vmbridge's own APPENDs, is fetched with its Message-ID, see
 *    findIdentityInSelected);
 *  - move/flag act on one UID and re-find the message by identity when the server reports no new UID;
 *  - delete acts on exactly one UID: UID EXPUNGE (UIDPLUS), UID MOVE to the trash folder (MOVE), or
 *    only the \Deleted flag, as imap.deleteMode and the server allow (see delete-strategy.ts).
 *
 * A bare EXPUNGE (or CLOSE) would also remove every message the user has flagged \Deleted in that
 * folder, so it is never sent. imapflow's messageDelete and messageMove send one by themselves when
 * the server lacks UIDPLUS or MOVE: they are only called after checking the capability on the live
 * connection (requireCapability), never on a guess.
 */
import type { ImapFlow } from 'imapflow';
import { sameMailbox, type MailboxRef } from '../spool/types.js';
import { ImapError } from '../errors.js';
import { serverHas, type ServerCapabilities } from './capabilities.js';
import { describeImapError } from './connect.js';
import { deleteStrategy, strategyWithoutTrash, usesTrash, type DeleteMode, type DeleteStrategy } from './delete-strategy.js';
import { ensureFolder, trashFolder, type FolderSettings } from './folders.js';
import { identitySearchValue, parseIdentityMessageId } from './identity-header.js';
import { findIdentityInSelected, forgetUid, isPendingUid, messageIdFromHeaders, pendingFromHeaders, rememberOwner } from './observe.js';

export interface EmailLocation {
  readonly uid: number;
  readonly uidValidity: string;
}

export interface Identity {
  readonly ref: MailboxRef;
  readonly id: string;
  readonly domain: string;
}

function who(client: ImapFlow): string {
  // Under an authzid master login the login user is the admin; the mailbox's user is the authzid.
  const auth = client.options?.auth;
  return String(auth?.authzid ?? auth?.user ?? 'imap');
}

/**
 * Throws unless the connection offers `name` now. Called right before every imapflow method that
 * would otherwise fall back to a bare EXPUNGE, so a stale or wrong capability view can never lead
 * to one.
 */
function requireCapability(client: ImapFlow, name: 'UIDPLUS' | 'MOVE', what: string): void {
  if (!serverHas(client, name)) {
    throw new ImapError(who(client), `${what} needs ${name}, which this connection does not offer; nothing was changed`);
  }
}

/**
 * UIDs in the selected folder that carry exactly this identity and are not flagged \Deleted.
 * SEARCH HEADER matches substrings without regard to case, so every hit is read back and compared.
 */
async function findByIdentity(client: ImapFlow, identity: Identity): Promise<number[]> {
  const value = identitySearchValue(identity.ref, identity.id, identity.domain);
  const uids = await client.search({ header: { 'message-id': value }, deleted: false }, { uid: true });
  if (!Array.isArray(uids) || uids.length === 0) return [];
  const exact: number[] = [];
  for (const row of await client.fetchAll(uids.join(','), { uid: true, headers: ['message-id'] }, { uid: true })) {
    const parsed = parseIdentityMessageId(messageIdFromHeaders(row.headers) ?? '', identity.domain);
    if (parsed && parsed.id === identity.id && sameMailbox(parsed.ref, identity.ref)) {
      exact.push(row.uid);
    }
  }
  return exact.sort((a, b) => a - b);
}

export async function appendEmail(
  client: ImapFlow,
  path: string,
  raw: Buffer,
  flags: { seen: boolean; flagged: boolean },
  identity: Identity,
): Promise<EmailLocation> {
  await ensureFolder(client, path);
  const lock = await client.getMailboxLock(path);
  try {
    const uidValidity = client.mailbox ? client.mailbox.uidValidity.toString() : '';
    const existing = await findIdentityInSelected(client, path, identity.ref, identity.id, identity.domain);
    if (existing.length > 0) return { uid: existing[0]!, uidValidity };

    const flagList = [...(flags.seen ? ['\\Seen'] : []), ...(flags.flagged ? ['\\Flagged'] : [])];
    const res = await client.append(path, raw, flagList);
    if (!res) throw new ImapError(who(client), `APPEND to ${JSON.stringify(path)} failed`);
    let uid = res.uid;
    if (uid === undefined) {
      // No APPENDUID (no UIDPLUS): find what was just written by its identity.
      await client.noop();
      uid = (await findByIdentity(client, identity))[0];
      if (uid === undefined) throw new ImapError(who(client), `APPEND to ${JSON.stringify(path)} succeeded but the message cannot be found`);
    }
    const validity = res.uidValidity !== undefined ? res.uidValidity.toString() : uidValidity;
    rememberOwner(client, path, validity, uid, identity.ref, identity.id, { ...flags, pending: pendingFromHeaders(raw) });
    return { uid, uidValidity: validity };
  } finally {
    lock.release();
  }
}

/** Sets/clears \Seen and \Flagged on one UID of the selected folder (undefined = leave as is). */
async function setFlags(client: ImapFlow, uid: number, seen: boolean | undefined, flagged: boolean | undefined): Promise<void> {
  const add = [...(seen === true ? ['\\Seen'] : []), ...(flagged === true ? ['\\Flagged'] : [])];
  const remove = [...(seen === false ? ['\\Seen'] : []), ...(flagged === false ? ['\\Flagged'] : [])];
  if (add.length > 0 && !(await client.messageFlagsAdd(String(uid), add, { uid: true }))) {
    throw new ImapError(who(client), `cannot set ${add.join(' ')} on UID ${uid}`);
  }
  if (remove.length > 0 && !(await client.messageFlagsRemove(String(uid), remove, { uid: true }))) {
    throw new ImapError(who(client), `cannot clear ${remove.join(' ')} on UID ${uid}`);
  }
}

/** Flags first (MOVE and COPY keep them), then the move. Returns where the email is now. */
export async function updateEmail(
  client: ImapFlow,
  caps: ServerCapabilities,
  from: string,
  uid: number,
  to: string,
  seen: boolean | undefined,
  flagged: boolean | undefined,
  identity: Identity,
): Promise<EmailLocation> {
  if (to !== from) await ensureFolder(client, to);
  let newUid: number | undefined;
  let newValidity: string | undefined;
  let pending = false;
  const lock = await client.getMailboxLock(from);
  try {
    pending = isPendingUid(client, from, uid);
    const validity = client.mailbox ? client.mailbox.uidValidity.toString() : '';
    await setFlags(client, uid, seen, flagged);
    if (to === from) return { uid, uidValidity: validity };

    if (caps.move) requireCapability(client, 'MOVE', `moving UID ${uid}`);
    const res = caps.move
      ? await client.messageMove(String(uid), to, { uid: true })
      : await client.messageCopy(String(uid), to, { uid: true });
    if (!res) throw new ImapError(who(client), `cannot ${caps.move ? 'move' : 'copy'} UID ${uid} from ${JSON.stringify(from)} to ${JSON.stringify(to)}`);
    newUid = res.uidMap?.get(uid);
    newValidity = res.uidValidity?.toString();
    // A move without MOVE: the copy is made, now the original goes, by the same safe delete.
    if (!caps.move) await removeOriginal(client, caps, uid);
    if (caps.move || caps.uidplus) forgetUid(client, from, validity, uid);
  } finally {
    lock.release();
  }
  if (newUid !== undefined && newValidity !== undefined) {
    rememberOwner(client, to, newValidity, newUid, identity.ref, identity.id, { seen: false, flagged: false, pending });
    return { uid: newUid, uidValidity: newValidity };
  }
  const lockTo = await client.getMailboxLock(to);
  try {
    const found = (await findByIdentity(client, identity))[0];
    if (found === undefined) throw new ImapError(who(client), `moved UID ${uid} to ${JSON.stringify(to)} but cannot find it there`);
    return { uid: found, uidValidity: client.mailbox ? client.mailbox.uidValidity.toString() : '' };
  } finally {
    lockTo.release();
  }
}

/** UID STORE +FLAGS (\Deleted), then UID EXPUNGE of exactly `uid` in the selected folder. */
async function uidExpunge(client: ImapFlow, uid: number): Promise<void> {
  requireCapability(client, 'UIDPLUS', `UID EXPUNGE ${uid}`);
  if (!(await client.messageDelete(String(uid), { uid: true }))) throw new ImapError(who(client), `UID EXPUNGE ${uid} failed`);
}

async function flagDeleted(client: ImapFlow, uid: number): Promise<void> {
  if (!(await client.messageFlagsAdd(String(uid), ['\\Deleted'], { uid: true }))) {
    throw new ImapError(who(client), `cannot flag UID ${uid} \\Deleted`);
  }
}

/**
 * Removes the original after a COPY (a move on a server without MOVE): UID EXPUNGE with UIDPLUS,
 * else only \Deleted (observation treats it as gone). Never into the trash: it was filed, not deleted.
 */
export async function removeOriginal(client: ImapFlow, caps: ServerCapabilities, uid: number): Promise<void> {
  if (caps.uidplus) await uidExpunge(client, uid);
  else await flagDeleted(client, uid);
}

export interface DeletePolicy {
  readonly deleteMode: DeleteMode;
  readonly folders: Pick<FolderSettings, 'trash'>;
}

/** imap.deleteMode and imap.folders.trash at their defaults. */
const DEFAULT_POLICY: DeletePolicy = { deleteMode: 'auto', folders: {} };

export interface DeleteResult {
  /** The email has left the folder (expunged there, or moved to the trash folder). */
  readonly expunged: boolean;
  /** What was done. */
  readonly how: DeleteStrategy;
  /** The trash folder, when the email went there. */
  readonly trash?: string;
  /** Why the strategy the settings ask for was not used (the safer one in `how` was). */
  readonly fallback?: string;
}

/**
 * Deletes exactly one voicemail email. `policy` is imap.deleteMode and imap.folders.trash (pass
 * settings.imap); without it, auto with the server's own trash folder.
 */
export async function deleteEmail(
  client: ImapFlow,
  caps: ServerCapabilities,
  path: string,
  uid: number,
  policy: DeletePolicy = DEFAULT_POLICY,
): Promise<DeleteResult> {
  let how = deleteStrategy(policy.deleteMode, caps);
  let trash: string | undefined;
  let fallback: string | undefined;
  if (usesTrash(how)) {
    trash = (await trashFolder(client, policy.folders)).path;
    if (trash === path) {
      how = strategyWithoutTrash(caps);
      fallback = `the email is already in the trash folder ${JSON.stringify(trash)}`;
    } else {
      try {
        await ensureFolder(client, trash);
      } catch (err) {
        how = strategyWithoutTrash(caps);
        const cause = err instanceof Error && err.cause !== undefined ? `: ${describeImapError(err.cause)}` : '';
        fallback = `${err instanceof Error ? err.message : String(err)}${cause}`;
      }
    }
  }

  const lock = await client.getMailboxLock(path);
  const validity = client.mailbox ? client.mailbox.uidValidity.toString() : '';
  try {
    const done = await deleteSelected(client, caps, uid, how, trash, fallback);
    if (done.expunged) forgetUid(client, path, validity, uid);
    return done;
  } finally {
    lock.release();
  }
}

async function deleteSelected(
  client: ImapFlow,
  caps: ServerCapabilities,
  uid: number,
  how: DeleteStrategy,
  trash: string | undefined,
  fallback: string | undefined,
): Promise<DeleteResult> {
  switch (how) {
    case 'uid-expunge':
      await uidExpunge(client, uid);
      return result(true, how, undefined, fallback);
    case 'flag-deleted':
      await flagDeleted(client, uid);
      return result(false, how, undefined, fallback);
    case 'move-to-trash': {
      requireCapability(client, 'MOVE', `moving UID ${uid} to the trash folder`);
      if (await client.messageMove(String(uid), trash!, { uid: true })) return result(true, how, trash, fallback);
      break;
    }
    case 'copy-to-trash': {
      // COPY then UID EXPUNGE: a crash in between leaves a second copy in the trash on the retry,
      // never a lost one.
      requireCapability(client, 'UIDPLUS', `UID EXPUNGE ${uid}`);
      if (await client.messageCopy(String(uid), trash!, { uid: true })) {
        await uidExpunge(client, uid);
        return result(true, how, trash, fallback);
      }
      break;
    }
  }
  // The trash folder refused the message (over quota, no rights): delete the way that needs no
  // trash folder, which is never worse for the user's own mail.
  const instead = strategyWithoutTrash(caps);
  const why = `the server refused to put UID ${uid} into ${JSON.stringify(trash)}`;
  if (instead === 'uid-expunge') await uidExpunge(client, uid);
  else await flagDeleted(client, uid);
  return result(instead === 'uid-expunge', instead, undefined, why);
}

function result(expunged: boolean, how: DeleteStrategy, trash: string | undefined, fallback: string | undefined): DeleteResult {
  return { expunged, how, ...(trash !== undefined ? { trash } : {}), ...(fallback !== undefined ? { fallback } : {}) };
}
