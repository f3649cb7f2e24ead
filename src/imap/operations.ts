/**
 * The only ways vmbridge changes IMAP. Each is safe to repeat after a crash at any point:
 *  - append looks for the identity in the target folder first, so a retried APPEND makes no copy;
 *  - move/flag act on one UID and re-find the message by identity when the server reports no new UID;
 *  - delete sends UID EXPUNGE for exactly that UID, and only where the server has UIDPLUS. A bare
 *    EXPUNGE would also remove every message the user has flagged \Deleted in that folder, so it is
 *    never sent (imapflow's messageDelete/messageMove fall back to one by themselves: not used then).
 */
import type { ImapFlow } from 'imapflow';
import type { MailboxRef } from '../spool/types.js';
import { ImapError } from '../errors.js';
import type { ServerCapabilities } from './capabilities.js';
import { ensureFolder } from './folders.js';
import { identitySearchValue, parseIdentityMessageId } from './identity-header.js';
import { messageIdFromHeaders, rememberOwner } from './observe.js';

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
  return String(client.options?.auth?.user ?? 'imap');
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
    if (parsed && parsed.id === identity.id && parsed.ref.context === identity.ref.context && parsed.ref.mailbox === identity.ref.mailbox) {
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
    const existing = await findByIdentity(client, identity);
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
    rememberOwner(client, path, validity, uid, identity.ref, identity.id);
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
  const lock = await client.getMailboxLock(from);
  try {
    const validity = client.mailbox ? client.mailbox.uidValidity.toString() : '';
    await setFlags(client, uid, seen, flagged);
    if (to === from) return { uid, uidValidity: validity };

    const res = caps.move
      ? await client.messageMove(String(uid), to, { uid: true })
      : await client.messageCopy(String(uid), to, { uid: true });
    if (!res) throw new ImapError(who(client), `cannot ${caps.move ? 'move' : 'copy'} UID ${uid} from ${JSON.stringify(from)} to ${JSON.stringify(to)}`);
    newUid = res.uidMap?.get(uid);
    newValidity = res.uidValidity?.toString();
    if (!caps.move) await removeOne(client, caps, uid);
  } finally {
    lock.release();
  }
  if (newUid !== undefined && newValidity !== undefined) {
    rememberOwner(client, to, newValidity, newUid, identity.ref, identity.id);
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

/**
 * \Deleted + UID EXPUNGE of exactly `uid` in the selected folder. Without UIDPLUS the message is
 * left flagged \Deleted (observation treats it as gone) and `expunged` is false.
 */
async function removeOne(client: ImapFlow, caps: ServerCapabilities, uid: number): Promise<{ expunged: boolean }> {
  if (caps.uidplus) {
    if (!(await client.messageDelete(String(uid), { uid: true }))) throw new ImapError(who(client), `UID EXPUNGE ${uid} failed`);
    return { expunged: true };
  }
  if (!(await client.messageFlagsAdd(String(uid), ['\\Deleted'], { uid: true }))) {
    throw new ImapError(who(client), `cannot flag UID ${uid} \\Deleted`);
  }
  return { expunged: false };
}

export async function deleteEmail(client: ImapFlow, caps: ServerCapabilities, path: string, uid: number): Promise<{ expunged: boolean }> {
  const lock = await client.getMailboxLock(path);
  try {
    return await removeOne(client, caps, uid);
  } finally {
    lock.release();
  }
}
