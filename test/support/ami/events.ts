/**
 * Manager events as Asterisk writes them, and the event classes a session may ask for.
 *
 * An unsolicited event is `Event: <name>`, `Privilege: <class>,all`, its fields, an empty line
 * (manager_event with timestampevents=no, as in the captures: no Timestamp, no SystemName).
 * Classes and their bits are main/manager.c `perms[]` / include/asterisk/manager.h EVENT_FLAG_*.
 */
import { fieldLines } from './wire.js';

export const EVENT_CLASSES = {
  system: 1 << 0,
  call: 1 << 1,
  log: 1 << 2,
  verbose: 1 << 3,
  command: 1 << 4,
  agent: 1 << 5,
  user: 1 << 6,
  config: 1 << 7,
  dtmf: 1 << 8,
  reporting: 1 << 9,
  cdr: 1 << 10,
  dialplan: 1 << 11,
  originate: 1 << 12,
  agi: 1 << 13,
  cc: 1 << 15,
  aoc: 1 << 16,
  test: 1 << 17,
  security: 1 << 18,
  message: 1 << 30,
} as const;
export type EventClass = keyof typeof EVENT_CLASSES;

const ALL = 0x7fffffff;
const TRUE_WORDS = ['yes', 'true', 'y', 't', '1', 'on'];
const FALSE_WORDS = ['no', 'false', 'n', 'f', '0', 'off'];

/**
 * strings_to_mask() for the Login `Events:` header: digits are a raw mask, on/yes/... all
 * classes, off/no/... none, otherwise a comma list of class names (`all` and `none` included).
 * The result is then limited by the user's read permission (here: all).
 */
export function parseEventMask(value: string): number {
  if (/^[0-9]+$/.test(value)) return Number.parseInt(value, 10) & ALL;
  const lower = value.toLowerCase();
  if (FALSE_WORDS.includes(lower)) return 0;
  if (TRUE_WORDS.includes(lower)) return ALL;
  let mask = 0;
  for (const item of lower.split(',')) {
    if (item === 'all') mask |= ALL;
    else if (item in EVENT_CLASSES) mask |= EVENT_CLASSES[item as EventClass];
  }
  return mask;
}

export const ALL_EVENTS = ALL;

export interface ServerEvent {
  readonly name: string;
  readonly category: EventClass;
  readonly fields: ReadonlyArray<readonly [string, string | number]>;
}

export function formatEvent(e: ServerEvent): string {
  return `Event: ${e.name}\r\nPrivilege: ${e.category},all\r\n${fieldLines(e.fields)}\r\n`;
}

// ---------------------------------------------------------------------------------------------
// Values that a real Asterisk fills in from its clock and memory

/** Security events' `EventTV`/`SessionTV`: `2026-11-22T11:31:42.441+0000`. */
export function eventTv(date: Date): string {
  return `${date.toISOString().slice(0, 23)}+0000`;
}

/** Ping's `Timestamp`: seconds and microseconds (`%ld.%06lu`). */
export function pingTimestamp(now: number = Date.now()): string {
  const micros = Math.floor((now % 1000) * 1000);
  return `${Math.floor(now / 1000)}.${String(micros).padStart(6, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Events whose layout the captures show

export interface SessionFacts {
  /** `SessionID`: Asterisk prints the session's memory address. */
  readonly pointer: string;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly username: string;
  readonly sessionTv: Date;
}

/** SuccessfulAuth (security class), field order as in fixtures ami/voicemail/02-login-events-on. */
export function successfulAuth(s: SessionFacts, now: Date): ServerEvent {
  return {
    name: 'SuccessfulAuth',
    category: 'security',
    fields: [
      ['EventTV', eventTv(now)],
      ['Severity', 'Informational'],
      ['Service', 'AMI'],
      ['EventVersion', 1],
      ['AccountID', s.username],
      ['SessionID', s.pointer],
      ['LocalAddress', s.localAddress],
      ['RemoteAddress', s.remoteAddress],
      ['UsingPassword', 0],
      ['SessionTV', eventTv(s.sessionTv)],
    ],
  };
}

/** RequestBadFormat (an unknown action), field order as in fixtures ami/voicemail/99-listener-full-session. */
export function requestBadFormat(s: SessionFacts, action: string, now: Date): ServerEvent {
  return {
    name: 'RequestBadFormat',
    category: 'security',
    fields: [
      ['EventTV', eventTv(now)],
      ['Severity', 'Error'],
      ['Service', 'AMI'],
      ['EventVersion', 1],
      ['SessionID', s.pointer],
      ['LocalAddress', s.localAddress],
      ['RemoteAddress', s.remoteAddress],
      ['RequestType', `Action: ${action}`],
      ['SessionTV', eventTv(s.sessionTv)],
      ['AccountID', s.username],
    ],
  };
}

/** MessageWaiting without a channel (main/manager_mwi.c mwi_update_cb), as in every capture. */
export function messageWaiting(mailbox: string, waiting: boolean, newCount: number, oldCount: number): ServerEvent {
  return {
    name: 'MessageWaiting',
    category: 'call',
    fields: [['Mailbox', mailbox], ['Waiting', waiting ? 1 : 0], ['New', newCount], ['Old', oldCount]],
  };
}

/** DeviceStateChange for `MWI:<mailbox>` (res_mwi_devstate), as in fixtures ami/voicemail/41. */
export function deviceStateChange(device: string, state: string): ServerEvent {
  return { name: 'DeviceStateChange', category: 'call', fields: [['Device', device], ['State', state]] };
}
