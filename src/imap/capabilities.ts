/** What the server offers, detected per connection after login (never assumed). */
import type { ImapFlow } from 'imapflow';
import { deleteStrategy, describeStrategy, type DeleteMode, type DeleteStrategy } from './delete-strategy.js';

export interface ServerCapabilities {
  readonly uidplus: boolean;
  readonly move: boolean;
  readonly condstore: boolean;
  readonly qresync: boolean;
  readonly idle: boolean;
  readonly notify: boolean;
  readonly quota: boolean;
  readonly specialUse: boolean;
}

/**
 * RFC 9051 makes these part of IMAP4rev2 itself, so a server that speaks only rev2 need not list
 * them. imapflow counts them as present on such a server, and so must vmbridge: imapflow's own
 * fallbacks (a bare EXPUNGE without UIDPLUS) follow its view, so ours must never be wider than it.
 */
const IN_IMAP4REV2 = new Set(['IDLE', 'MOVE', 'SPECIAL-USE', 'UIDPLUS']);

function rev2Active(client: ImapFlow): boolean {
  return client.enabled.has('IMAP4REV2') || (client.capabilities.has('IMAP4rev2') && !client.capabilities.has('IMAP4rev1'));
}

/** Whether the logged-in server offers `name` right now. */
export function serverHas(client: ImapFlow, name: string): boolean {
  if (client.capabilities.has(name)) return true;
  return IN_IMAP4REV2.has(name) && rev2Active(client);
}

export function capabilitiesOf(client: ImapFlow): ServerCapabilities {
  const has = (name: string): boolean => serverHas(client, name);
  return {
    uidplus: has('UIDPLUS'),
    move: has('MOVE'),
    condstore: has('CONDSTORE'),
    qresync: has('QRESYNC'),
    idle: has('IDLE'),
    notify: has('NOTIFY'),
    quota: has('QUOTA'),
    specialUse: has('SPECIAL-USE'),
  };
}

export const CAPABILITY_NAMES = ['IDLE', 'NOTIFY', 'CONDSTORE', 'QRESYNC', 'MOVE', 'UIDPLUS', 'QUOTA', 'SPECIAL-USE'] as const;
export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

export interface CapabilityNote {
  readonly name: CapabilityName;
  readonly present: boolean;
  /** warn: vmbridge works, but less well than it could (the administrator may want to act). */
  readonly level: 'ok' | 'warn';
  /** What vmbridge does because the server has, or lacks, it. */
  readonly consequence: string;
}

export interface ExplainContext {
  readonly deleteMode: DeleteMode;
  /** The trash folder's path on this server, and where that name came from. */
  readonly trash: string;
  readonly trashSource: 'configured' | 'special-use' | 'default';
  /** spool.sweepSeconds: the safety-net reconcile interval (0 = off). */
  readonly sweepSeconds: number;
  /** imap.idle.maxAccounts (0 = IDLE off) and imap.idle.notify. */
  readonly idleAccounts: number;
  readonly idleNotify: boolean;
}

/**
 * What vmbridge does because of each capability, in the administrator's words (`vmbridge doctor`).
 * Kept next to the detection so that whoever starts using a capability updates its sentence here.
 */
export function explainCapabilities(caps: ServerCapabilities, ctx: ExplainContext): CapabilityNote[] {
  const strategy: DeleteStrategy = deleteStrategy(ctx.deleteMode, caps);
  const sweep = ctx.sweepSeconds > 0 ? `the next reconcile (a spool change, vmbridge notify, or the sweep every ${ctx.sweepSeconds} s)` : 'the next reconcile (a spool change or vmbridge notify; the sweep is off)';
  const watchedFolders = caps.notify && ctx.idleNotify ? 'with NOTIFY, every voicemail folder of theirs' : 'the inbox folder only (Work, Family and Friends at the sweep)';
  const note = (name: CapabilityName, present: boolean, consequence: string, level: 'ok' | 'warn' = 'ok'): CapabilityNote => ({ name, present, level, consequence });
  const deleting = describeStrategy(strategy, ctx.trash);
  const noBare = 'a bare EXPUNGE is never sent';

  const uidplus = caps.uidplus
    ? note('UIDPLUS', true, strategy === 'uid-expunge' ? deleting : `not needed for deleting: imap.deleteMode is ${ctx.deleteMode}, so ${deleting}`)
    : note('UIDPLUS', false, `${deleting}${strategy === 'move-to-trash' ? ' (MOVE present)' : ctx.deleteMode === 'expunge' ? ' (imap.deleteMode is expunge)' : ' (no MOVE either)'}; ${noBare}`, 'warn');

  const move = caps.move
    ? note('MOVE', true, 'filing a voicemail email to Work/Family/Friends is one UID MOVE')
    : note('MOVE', false, caps.uidplus
      ? 'filing a voicemail email is UID COPY, then UID EXPUNGE of exactly the original'
      : `filing a voicemail email is UID COPY, then the original is flagged \\Deleted (no UIDPLUS); ${noBare}`, caps.uidplus ? 'ok' : 'warn');

  return [
    note('IDLE', caps.idle, !caps.idle
      ? `not offered: changes made in mail clients are picked up at ${sweep}`
      : ctx.idleAccounts === 0
        ? `not used (imap.idle.maxAccounts is 0): changes made in mail clients are picked up at ${sweep}`
        : `used: up to ${ctx.idleAccounts} accounts (imap.idle.maxAccounts) are watched, so a mail client's change there is picked up within a second or two; ${watchedFolders}; other accounts at ${sweep}`),
    note('NOTIFY', caps.notify, !caps.notify
      ? `not offered: a watched account's Work, Family and Friends folders are picked up at ${sweep}`
      : !ctx.idleNotify || ctx.idleAccounts === 0 || !caps.idle
        ? `not used (${!caps.idle ? 'no IDLE' : ctx.idleAccounts === 0 ? 'imap.idle.maxAccounts is 0' : 'imap.idle.notify is false'}): only IDLE's selected folder would be heard`
        : 'used: one IDLE connection per watched account hears every voicemail folder, not only the inbox'),
    note('CONDSTORE', caps.condstore, caps.condstore
      ? 'used: a reconcile fetches only the messages of a folder that changed since its last look (CHANGEDSINCE), and the whole folder only after an expunge'
      : 'not offered: each reconcile reads UIDs and flags of every message in the mapped folders (headers only for UIDs it has not seen)'),
    note('QRESYNC', caps.qresync, `${caps.qresync ? 'not used yet' : 'not used'}: expunged messages are noticed by their missing UIDs`),
    move,
    uidplus,
    note('QUOTA', caps.quota, caps.quota
      ? 'each account\'s quota is read (GETQUOTAROOT) after APPENDs and every alerts.quotaCheckSeconds; reaching alerts.quotaThresholds is logged, and mailed to alerts.to'
      : 'no quota readings: a full mailbox is noticed only when the server refuses an APPEND', caps.quota ? 'ok' : 'warn'),
    note('SPECIAL-USE', caps.specialUse, ctx.trashSource === 'configured'
      ? `not needed: the trash folder is imap.folders.trash (${JSON.stringify(ctx.trash)})`
      : ctx.trashSource === 'special-use'
        ? `the trash folder is the one the server marks \\Trash: ${JSON.stringify(ctx.trash)}`
        : `no folder is marked \\Trash: the trash folder is ${JSON.stringify(ctx.trash)} (set imap.folders.trash if the users' trash has another name)`),
  ];
}
