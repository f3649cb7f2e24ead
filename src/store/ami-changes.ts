/**
 * A mail-client change carried out by the Asterisk that owns the store, with AMI VoicemailMove /
 * VoicemailRemove (18.20, 20.5 and later): Asterisk locks, renumbers and publishes MWI itself,
 * whatever its storage. Those actions answer Success even when they failed, so a failure is turned
 * into AmiReportedFailureError by the action helpers, and the result is read back from the store
 * either way. Shared by every store (file spool, ODBC table): only how the store is read differs.
 */
import { VmbridgeError } from '../errors.js';
import { AmiReportedFailureError, voicemailMove, voicemailRemove } from '../mwi/ami-actions.js';
import type { AmiClient } from '../mwi/ami-client.js';
import { DERIVED_ID_PREFIX } from '../spool/identity.js';
import { isSyncedSpoolFolder, mailboxKey, type MailboxRef, type SpoolSnapshot, type SyncedSpoolFolder } from '../spool/types.js';
import { DEFAULT_MAXMSG, MessageNotFoundError } from '../spool/write.js';
import type { StoreBox, StoreChangeOutcome } from './types.js';

export interface AmiChanges {
  readonly client: AmiClient;
  /** asterisk.ami.useVoicemailActions: Asterisk has VoicemailMove/VoicemailRemove. */
  readonly useVoicemailActions: boolean;
}

/** Asterisk said the change was made, but the store does not show it. */
export class SpoolChangeUnverifiedError extends VmbridgeError {
  constructor(ref: MailboxRef, id: string, what: string) {
    super('SPOOL_CHANGE_UNVERIFIED', `${mailboxKey(ref)}: Asterisk reported ${what} of ${JSON.stringify(id)} as done, but the spool does not show it; the reconcile is retried`);
  }
}

/**
 * Whether a change of message `id` goes through AMI. Asterisk's actions find a message by its
 * msg_id; one without (written before Asterisk 11, known by a derived id) is changed by the store.
 */
export function changesViaAmi(ami: AmiChanges | undefined, id: string): ami is AmiChanges {
  return ami?.useVoicemailActions === true && !id.startsWith(DERIVED_ID_PREFIX);
}

/** Where message `id` is in a look at the mailbox, and how full each folder is. */
function locate(snapshot: SpoolSnapshot, id: string): { folders: SyncedSpoolFolder[]; count: (f: SyncedSpoolFolder) => number } {
  const folders: SyncedSpoolFolder[] = [];
  const counts = new Map<string, number>();
  for (const m of snapshot.messages) {
    counts.set(m.folder, (counts.get(m.folder) ?? 0) + 1);
    if (m.id === id && isSyncedSpoolFolder(m.folder)) folders.push(m.folder);
  }
  return { folders, count: (f) => counts.get(f) ?? 0 };
}

type Read = (ref: MailboxRef) => Promise<SpoolSnapshot>;

/** VoicemailMove of message `id`, checked in the store. Already there counts as done. */
export async function moveViaAmi(ami: AmiChanges, read: Read, box: StoreBox, id: string, from: SyncedSpoolFolder, to: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
  const maxmsg = box.maxmsg ?? DEFAULT_MAXMSG;
  try {
    await voicemailMove(ami.client, box.ref, { folder: from, id, toFolder: to });
  } catch (err) {
    if (!(err instanceof AmiReportedFailureError)) throw err;
    // Asterisk does not say why. The store does: already moved (a repeated request), the
    // destination full, or the message gone.
    const where = locate(await read(box.ref), id);
    if (where.folders.length === 1 && where.folders[0] === to) return { done: true, via: 'ami', alreadyDone: true, repairs: [] };
    if (where.folders.includes(from) && where.count(to) >= maxmsg) return { done: false, problem: `${to} is full (maxmsg=${maxmsg})` };
    if (where.folders.length === 0) throw new MessageNotFoundError(box.ref, id, [from, to]);
    throw err;
  }
  const where = locate(await read(box.ref), id);
  if (!(where.folders.length === 1 && where.folders[0] === to)) throw new SpoolChangeUnverifiedError(box.ref, id, `the move ${from} -> ${to}`);
  return { done: true, via: 'ami', alreadyDone: false, repairs: [] };
}

/** VoicemailRemove of message `id`, checked in the store. Already gone counts as done. */
export async function removeViaAmi(ami: AmiChanges, read: Read, box: StoreBox, id: string, folder: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
  let alreadyDone = false;
  try {
    await voicemailRemove(ami.client, box.ref, { folder, id });
  } catch (err) {
    if (!(err instanceof AmiReportedFailureError)) throw err;
    if (locate(await read(box.ref), id).folders.includes(folder)) throw err;
    alreadyDone = true;
  }
  if (locate(await read(box.ref), id).folders.includes(folder)) throw new SpoolChangeUnverifiedError(box.ref, id, `the removal from ${folder}`);
  return { done: true, via: 'ami', alreadyDone, repairs: [] };
}
