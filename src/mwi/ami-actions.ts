/**
 * The AMI actions vmbridge uses, typed, on top of AmiClient. Each helper checks its inputs
 * (mailbox and context names, message IDs, folders, counts) before anything is sent, and reads
 * the answer the way Asterisk really gives it (docs/ami.md lists the quirks and the captures that
 * show them):
 * - VoicemailMove and VoicemailRemove answer `Response: Success` even when they failed; only the
 *   `Message:` line tells, and it ends with a stray LF. A failure becomes AmiReportedFailureError.
 * - VoicemailBoxSummary answers Success without a list for an unknown mailbox.
 * - MailboxCount answers zeros for an unknown mailbox; it cannot tell "empty" from "unknown".
 */
import { UnsafeNameError } from '../errors.js';
import type { MailboxRef, SpoolFolder } from '../spool/types.js';
import { AmiActionError, AmiUnsafeValueError, type AmiClient, type AmiEvent, type AmiResponse } from './ami-client.js';

/** Names that may go into an action: the spool's own rule for context and mailbox names. */
const SAFE_NAME = /^[A-Za-z0-9_.+-]+$/;
const MAX_NAME_LENGTH = 80;

/** The folder names app_voicemail knows (get_folder_by_name); anything else fails the action. */
const FOLDERS: readonly SpoolFolder[] = [
  'INBOX', 'Old', 'Work', 'Family', 'Friends', 'Cust1', 'Cust2', 'Cust3', 'Cust4', 'Cust5', 'Deleted', 'Urgent',
];

/** Asterisk said Success, but its Message line says the operation did not happen. */
export class AmiReportedFailureError extends AmiActionError {
  constructor(action: string, response: AmiResponse, why: string) {
    super(action, response, why, 'AMI_REPORTED_FAILURE');
  }
}

function checkName(what: 'context' | 'mailbox', value: string): string {
  if (typeof value !== 'string' || value.length > MAX_NAME_LENGTH || !SAFE_NAME.test(value) || value === '.' || value === '..') {
    throw new UnsafeNameError(what, String(value));
  }
  return value;
}

/** Throws UnsafeNameError unless both parts of `ref` are safe names. */
export function assertMailboxRef(ref: MailboxRef): void {
  checkName('context', ref.context);
  checkName('mailbox', ref.mailbox);
}

/** `mailbox@context`, the MWI state id Asterisk publishes under. */
export function mwiMailboxId(ref: MailboxRef): string {
  assertMailboxRef(ref);
  return `${ref.mailbox}@${ref.context}`;
}

function checkFolder(field: string, folder: string): SpoolFolder {
  const found = FOLDERS.find((f) => f === folder);
  if (!found) throw new AmiUnsafeValueError(field, `${JSON.stringify(folder)} is not a voicemail folder (${FOLDERS.join(', ')})`);
  return found;
}

function checkMessageId(id: string): string {
  // msg_id is `<unix seconds>-<8 hex>`; anything outside the safe set cannot be one.
  if (typeof id !== 'string' || id.length > MAX_NAME_LENGTH || !SAFE_NAME.test(id)) {
    throw new AmiUnsafeValueError('ID', `${JSON.stringify(id)} is not a voicemail message id`);
  }
  return id;
}

function checkCount(field: string, n: number): string {
  // MWI is never published from a guess: a negative or fractional count is a bug upstream.
  if (!Number.isSafeInteger(n) || n < 0) throw new AmiUnsafeValueError(field, `${String(n)} is not a whole number ≥ 0`);
  return String(n);
}

// ---------------------------------------------------------------------------------------------
// MWI

/**
 * Asks the Asterisk that owns the spool to recount `ref` and publish MWI if the counts changed
 * since it last published them (app_voicemail's VoicemailRefresh). Works for any configured
 * mailbox, with or without `pollmailboxes`.
 */
export async function voicemailRefresh(client: AmiClient, ref: MailboxRef): Promise<void> {
  assertMailboxRef(ref);
  await client.action('VoicemailRefresh', { Context: ref.context, Mailbox: ref.mailbox });
}

/**
 * Sets the MWI counts of `mailbox@context` on an Asterisk that runs res_mwi_external_ami (not
 * app_voicemail: there the action does not exist and this rejects with AmiActionError).
 * `new` should include urgent messages, as app_voicemail publishes them.
 */
export async function mwiUpdate(client: AmiClient, ref: MailboxRef, counts: { readonly new: number; readonly old: number }): Promise<void> {
  const mailbox = mwiMailboxId(ref);
  await client.action('MWIUpdate', {
    Mailbox: mailbox,
    NewMessages: checkCount('NewMessages', counts.new),
    OldMessages: checkCount('OldMessages', counts.old),
  });
}

/** Asterisk's entity ID form (`ast_str_to_eid`): six hex pairs joined by colons. */
const ENTITY_ID = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

/**
 * Publishes the MWI state of `mailbox@context` as a remote mailbox, on an Asterisk whose
 * res_manager_devicestate has MailboxStateChange (20.23, 22.13, 23.7, 24.1 and later). Unlike
 * MWIUpdate it needs no res_mwi_external, so it works beside app_voicemail. `entityId` names the
 * system the state comes from; Asterisk refuses its own. Older versions answer
 * `Invalid/unknown command` (AmiActionError). `new` should include urgent messages.
 */
export async function mailboxStateChange(
  client: AmiClient,
  ref: MailboxRef,
  counts: { readonly new: number; readonly old: number },
  entityId: string,
): Promise<void> {
  const mailbox = mwiMailboxId(ref);
  if (typeof entityId !== 'string' || !ENTITY_ID.test(entityId)) {
    throw new AmiUnsafeValueError('EntityID', `${JSON.stringify(entityId)} is not an entity ID (xx:xx:xx:xx:xx:xx)`);
  }
  await client.action('MailboxStateChange', {
    Mailbox: mailbox,
    NewMessages: checkCount('NewMessages', counts.new),
    OldMessages: checkCount('OldMessages', counts.old),
    EntityID: entityId,
  });
}

export interface MailboxCounts {
  /** Messages in Urgent/ (MailboxCount's UrgMessages). */
  readonly urgent: number;
  /** Messages in INBOX/ only: urgent ones are not included here (unlike MessageWaiting's New). */
  readonly new: number;
  readonly old: number;
}

function countHeader(response: AmiResponse, name: string): number {
  const raw = response.reply.get(name);
  const n = raw === undefined ? Number.NaN : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new AmiActionError(response.action, response, `malformed ${name}: ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Asterisk's own counts for `ref` (it reads the disk). Unknown mailboxes count as zeros. */
export async function mailboxCount(client: AmiClient, ref: MailboxRef): Promise<MailboxCounts> {
  const response = await client.action('MailboxCount', { Mailbox: mwiMailboxId(ref) });
  return {
    urgent: countHeader(response, 'UrgMessages'),
    new: countHeader(response, 'NewMessages'),
    old: countHeader(response, 'OldMessages'),
  };
}

// ---------------------------------------------------------------------------------------------
// Messages

export interface VoicemailMessageEntry {
  readonly folder: string;
  readonly callerId: string;
  /** origdate as written in msgNNNN.txt. */
  readonly date: string;
  /** Seconds, as text (Asterisk copies it from the envelope). */
  readonly duration: string;
  readonly flag: string;
  /** The msg_id. */
  readonly id: string;
}

/** Every message of `ref`, folder by folder. An unknown mailbox is an AmiReportedFailureError. */
export async function voicemailBoxSummary(client: AmiClient, ref: MailboxRef): Promise<VoicemailMessageEntry[]> {
  assertMailboxRef(ref);
  const response = await client.action('VoicemailBoxSummary', { Context: ref.context, Mailbox: ref.mailbox }, { list: true });
  if (!response.complete) {
    // Asterisk answers an unknown user with Success and "There is no voicemail user matching ...".
    throw new AmiReportedFailureError(response.action, response, response.message?.trim() || 'no list returned');
  }
  return response.events.map((e) => ({
    folder: e.get('Folder') ?? '',
    callerId: e.get('CallerID') ?? '',
    date: e.get('Date') ?? '',
    duration: e.get('Duration') ?? '',
    flag: e.get('Flag') ?? '',
    id: e.get('ID') ?? '',
  }));
}

/** The Message line decides: Asterisk says Success for failures too, and ends the line with LF. */
function requireSuccessful(response: AmiResponse): void {
  const said = response.message?.trim() ?? '';
  if (!/\bsuccessful$/i.test(said)) {
    throw new AmiReportedFailureError(response.action, response, `Asterisk replied ${response.response} but said ${JSON.stringify(said)}`);
  }
}

/** Moves the message with msg_id `id` from `folder` to `toFolder`, under Asterisk's own locks. */
export async function voicemailMove(
  client: AmiClient,
  ref: MailboxRef,
  move: { readonly folder: SpoolFolder; readonly id: string; readonly toFolder: SpoolFolder },
): Promise<void> {
  assertMailboxRef(ref);
  const response = await client.action('VoicemailMove', {
    Context: ref.context,
    Mailbox: ref.mailbox,
    Folder: checkFolder('Folder', move.folder),
    ID: checkMessageId(move.id),
    ToFolder: checkFolder('ToFolder', move.toFolder),
  });
  requireSuccessful(response);
}

/** Deletes the message with msg_id `id` from `folder` (Asterisk renumbers the folder). */
export async function voicemailRemove(
  client: AmiClient,
  ref: MailboxRef,
  remove: { readonly folder: SpoolFolder; readonly id: string },
): Promise<void> {
  assertMailboxRef(ref);
  const response = await client.action('VoicemailRemove', {
    Context: ref.context,
    Mailbox: ref.mailbox,
    Folder: checkFolder('Folder', remove.folder),
    ID: checkMessageId(remove.id),
  });
  requireSuccessful(response);
}

// ---------------------------------------------------------------------------------------------
// Channels

/** One `CoreShowChannel` event (main/manager.c action_coreshowchannels). */
export interface CoreShowChannel {
  readonly channel: string;
  readonly channelState: string;
  readonly channelStateDesc: string;
  readonly callerIdNum: string;
  readonly callerIdName: string;
  readonly context: string;
  readonly exten: string;
  readonly priority: string;
  readonly uniqueid: string;
  readonly linkedid: string;
  readonly application: string;
  /** The application's arguments after substitution, e.g. `1000@default,s`. */
  readonly applicationData: string;
  /** `HH:MM:SS` since the channel was created. */
  readonly duration: string;
  readonly bridgeId: string;
}

function toChannel(e: AmiEvent): CoreShowChannel {
  const v = (name: string): string => e.get(name) ?? '';
  return {
    channel: v('Channel'),
    channelState: v('ChannelState'),
    channelStateDesc: v('ChannelStateDesc'),
    callerIdNum: v('CallerIDNum'),
    callerIdName: v('CallerIDName'),
    context: v('Context'),
    exten: v('Exten'),
    priority: v('Priority'),
    uniqueid: v('Uniqueid'),
    linkedid: v('Linkedid'),
    application: v('Application'),
    applicationData: v('ApplicationData'),
    duration: v('Duration'),
    bridgeId: v('BridgeId'),
  };
}

/** Every channel Asterisk has right now. */
export async function coreShowChannels(client: AmiClient): Promise<CoreShowChannel[]> {
  const response = await client.action('CoreShowChannels', {}, { list: true });
  return response.events.filter((e) => e.event === 'CoreShowChannel').map(toChannel);
}

/**
 * True when a caller may be in VoiceMailMain for `ref`: Asterisk then keeps message numbers in
 * memory and renumbering the folder under it can make it delete the wrong message. A
 * VoiceMailMain without a mailbox argument asks the caller for one, so it counts as busy for
 * every mailbox. The context defaults to `default`, as in VoiceMailMain itself.
 */
export function voiceMailMainBusy(channels: readonly CoreShowChannel[], ref: MailboxRef): boolean {
  return channels.some((c) => {
    if (c.application.toLowerCase() !== 'voicemailmain') return false;
    const target = (c.applicationData.split(',')[0] ?? '').trim();
    if (target === '') return true;
    const at = target.indexOf('@');
    const mailbox = at < 0 ? target : target.slice(0, at);
    const context = at < 0 ? 'default' : target.slice(at + 1);
    return mailbox === ref.mailbox && context === ref.context;
  });
}
