/**
 * What an action handler of the test server gets: the request, its session, the state shared by
 * all sessions, and two ways to answer (`reply` now, `emit` once the reply is out).
 */
import type { Counts } from './spool.js';
import type { ServerEvent } from './events.js';
import type { MwiState } from './mwi-state.js';
import type { AmiSession } from './session.js';
import type { AmiRequest } from './wire.js';

export interface AmiUser {
  readonly username: string;
  readonly secret: string;
}

/** A mailbox of voicemail.conf. The other fields of VoicemailUsersList come from VOICEMAIL_GENERAL. */
export interface VoicemailBox {
  readonly context: string;
  readonly mailbox: string;
  readonly fullName?: string;
  readonly email?: string;
  /** voicemail.conf `attach=`; default yes, as the captured configuration's [general]. */
  readonly attach?: boolean;
}

/** A channel for CoreShowChannels. Unset fields take the values Asterisk prints for an idle Local channel. */
export interface FakeChannel {
  readonly channel: string;
  readonly application: string;
  /** Printed as `ApplicationData:` (the real field name; the reference's "AppData" is Newexten's). */
  readonly appData: string;
  readonly state?: number;
  readonly callerIdNum?: string;
  readonly callerIdName?: string;
  readonly context?: string;
  readonly exten?: string;
  readonly priority?: number;
  readonly uniqueid?: string;
  readonly linkedid?: string;
  readonly bridgeId?: string;
  /** Seconds the channel has existed; default: since setChannels(). */
  readonly durationSec?: number;
}

/** MailboxCount / MailboxStatus / MessageWaiting's Waiting come from the registered provider. */
export interface VoicemailProvider {
  inboxCount(spec: string): Promise<Counts>;
  hasVoicemail(spec: string): Promise<boolean>;
}

export interface ServerState {
  readonly profile: 'voicemail' | 'mwiext';
  readonly spoolDir: string;
  readonly users: readonly AmiUser[];
  readonly startedAt: number;
  readonly authFailureDelayMs: number;
  readonly mwi: MwiState;
  readonly provider: VoicemailProvider;
  /** voicemail.conf's mailboxes (the option, or the spool's mailbox directories). */
  boxes(): Promise<VoicemailBox[]>;
  findBox(context: string, mailbox: string): Promise<VoicemailBox | undefined>;
  channels(): Array<{ readonly channel: FakeChannel; readonly since: number }>;
  /** res_mwi_external's stored mailboxes (mwiext profile). */
  readonly external: Map<string, { new: number; old: number }>;
  /**
   * This Asterisk's own entity ID (asterisk.conf `entityid`), six bytes; set only in the opt-in
   * newer-Asterisk mode, where MailboxStateChange refuses updates that claim it.
   */
  readonly entityId?: readonly number[];
}

export interface ActionContext {
  readonly req: AmiRequest;
  readonly session: AmiSession;
  readonly state: ServerState;
  /** Writes to this session now. */
  reply(text: string): void;
  /** Delivered to every session that wants it, after this action's reply (as Asterisk's event queue does). */
  emit(...events: ServerEvent[]): void;
}

/** 'close' ends the connection after the reply (Logoff, failed login). */
export type ActionHandler = (ctx: ActionContext) => Promise<'close' | void> | 'close' | void;
