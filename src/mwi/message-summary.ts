/**
 * The `application/simple-message-summary` body of an MWI NOTIFY (RFC 3842 §3.5, §5.2), and the
 * strict checks every value must pass before it may be written into a SIP message. Pure: no I/O.
 *
 * The body is what Asterisk's res_pjsip_mwi sends, so phones that light up for Asterisk light up
 * for vmbridge:
 *
 *     Messages-Waiting: yes
 *     Message-Account: sip:1234@pbx.example
 *     Voice-Message: 2/5 (1/0)
 */
import { isIPv4, isIPv6 } from 'node:net';
import { VmbridgeError } from '../errors.js';

/** Counts for one mailbox, as computed from the spool. */
export interface MessageSummary {
  /** New (unheard) messages, urgent ones included. */
  readonly newCount: number;
  /** Old (heard, kept) messages, urgent ones included. */
  readonly oldCount: number;
  /** How many of `newCount` are urgent. Default 0. */
  readonly urgentNew?: number;
  /** How many of `oldCount` are urgent. Default 0. */
  readonly urgentOld?: number;
  /** `sip:` or `sips:` URI of the mailbox (RFC 3842 Message-Account), e.g. the voicemail pilot. */
  readonly account?: string;
}

/** The counts cannot be published: missing, negative, fractional, or inconsistent. */
export class MessageSummaryError extends VmbridgeError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('MWI_SUMMARY', `${field}: ${message}`);
    this.field = field;
  }
}

/**
 * A value that would reach a SIP message is not safe there: a control character (CR and LF would
 * let it add headers or a body of its own), or a URI, host or user outside the strict shape.
 * The value is quoted with JSON escapes, so the error itself is safe to log.
 */
export class UnsafeSipValueError extends VmbridgeError {
  readonly field: string;
  constructor(field: string, value: unknown, why: string) {
    super('SIP_UNSAFE_VALUE', `${field} ${describe(value)} is not safe in a SIP message: ${why}`);
    this.field = field;
  }
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return `(${typeof value})`;
  const shown = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  return JSON.stringify(shown);
}

/** C0 controls and DEL. Any of them in a header value is refused, not stripped. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** The user part vmbridge accepts: a safe subset of RFC 3261 §25.1 `user` (no escapes, no `;`). */
export const SAFE_USER = /^[A-Za-z0-9_.+-]+$/;
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A string that may be written into a SIP header: no control characters at all. */
export function assertNoControl(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new UnsafeSipValueError(field, value, 'not a string');
  if (CONTROL.test(value)) throw new UnsafeSipValueError(field, value, 'contains a control character (CR, LF, NUL, ...)');
  return value;
}

/** A user part such as a mailbox number or digest username. */
export function assertSafeUser(field: string, value: unknown): string {
  const s = assertNoControl(field, value);
  if (s.length === 0 || s.length > 64 || !SAFE_USER.test(s)) {
    throw new UnsafeSipValueError(field, s, 'only letters, digits and _ . + - are allowed (1 to 64 characters)');
  }
  return s;
}

export type HostKind = 'hostname' | 'ipv4' | 'ipv6';

/**
 * A host name (RFC 1123 labels) or an IP literal. IPv6 may be given bare (`::1`) or bracketed
 * (`[::1]`, the form it takes inside a URI, RFC 3261 §25.1 `IPv6reference`).
 */
export function checkHost(field: string, value: unknown): { host: string; kind: HostKind } {
  const s = assertNoControl(field, value);
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  if (isIPv6(bare)) return { host: bare, kind: 'ipv6' };
  if (bare !== s) throw new UnsafeSipValueError(field, s, 'brackets are only for IPv6 literals');
  if (isIPv4(s)) return { host: s, kind: 'ipv4' };
  // A dotted quad that isIPv4 refused (999.1.1.1) is a typo, not a host name.
  if (/^[0-9.]+$/.test(s)) throw new UnsafeSipValueError(field, s, 'not a valid IPv4 address');
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (name.length === 0 || name.length > 253 || !name.split('.').every((label) => HOST_LABEL.test(label))) {
    throw new UnsafeSipValueError(field, s, 'not a host name or IP address');
  }
  return { host: s, kind: 'hostname' };
}

/** How a host appears inside a URI or a Via sent-by: IPv6 in brackets. */
export function hostForUri(host: string, kind: HostKind): string {
  return kind === 'ipv6' ? `[${host}]` : host;
}

export interface SipUri {
  readonly scheme: 'sip' | 'sips';
  readonly user: string;
  /** Without brackets for IPv6. */
  readonly host: string;
  readonly hostKind: HostKind;
  readonly port: number | undefined;
  /** The URI as it is written into the message. */
  readonly text: string;
}

const SIP_URI = /^(sips?):([^@]*)@(\[[^\]]*\]|[^:]*)(?::([0-9]{1,5}))?$/;

/**
 * Parses the only URI shape vmbridge writes: `sip:user@host[:port]` or `sips:...`. No display
 * names, parameters, headers or escapes (RFC 3261 §19.1.1 allows them; nothing here needs them,
 * and each is a place where a crafted value could change the message's meaning).
 */
export function parseSipUri(field: string, value: unknown): SipUri {
  const s = assertNoControl(field, value);
  const m = SIP_URI.exec(s);
  if (!m) throw new UnsafeSipValueError(field, s, 'expected sip:user@host[:port] or sips:user@host[:port]');
  const [, scheme, user, rawHost, rawPort] = m;
  assertSafeUser(`${field} user part`, user);
  const { host, kind } = checkHost(`${field} host`, rawHost);
  let port: number | undefined;
  if (rawPort !== undefined) {
    port = Number(rawPort);
    if (port < 1 || port > 65535) throw new UnsafeSipValueError(field, s, 'port out of range');
  }
  return { scheme: scheme === 'sips' ? 'sips' : 'sip', user: user ?? '', host, hostKind: kind, port, text: s };
}

/**
 * A count as RFC 3842 §5.2 writes it (`1*DIGIT`). Unknown is not zero and a count is never
 * negative: a caller without a number must not publish at all, so anything else is refused.
 */
function checkCount(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MessageSummaryError(field, `must be a whole number >= 0, got ${typeof value === 'number' ? String(value) : typeof value}`);
  }
  return value;
}

/** The counts after every check, with urgent defaults filled in. */
export interface CheckedSummary {
  readonly newCount: number;
  readonly oldCount: number;
  readonly urgentNew: number;
  readonly urgentOld: number;
  readonly account: SipUri | undefined;
}

export function checkSummary(summary: MessageSummary): CheckedSummary {
  if (typeof summary !== 'object' || summary === null) throw new MessageSummaryError('summary', 'missing');
  const newCount = checkCount('newCount', summary.newCount);
  const oldCount = checkCount('oldCount', summary.oldCount);
  // Only an absent urgent count means 0; null is an unknown value and is refused like any other.
  const urgentNew = checkCount('urgentNew', summary.urgentNew === undefined ? 0 : summary.urgentNew);
  const urgentOld = checkCount('urgentOld', summary.urgentOld === undefined ? 0 : summary.urgentOld);
  // RFC 3842 §3.5: the parenthesised counts are the urgent share of the new and old counts
  // (its example `4/8 (1/2)`), so they can never exceed them.
  if (urgentNew > newCount) throw new MessageSummaryError('urgentNew', `${urgentNew} urgent new is more than ${newCount} new`);
  if (urgentOld > oldCount) throw new MessageSummaryError('urgentOld', `${urgentOld} urgent old is more than ${oldCount} old`);
  const account = summary.account === undefined ? undefined : parseSipUri('account', summary.account);
  return { newCount, oldCount, urgentNew, urgentOld, account };
}

/**
 * The NOTIFY body, CRLF-terminated lines (RFC 3842 §5.2 ABNF):
 * `Messages-Waiting` is `yes` exactly when there is something new (§3.5: the boolean that lights
 * the lamp); `Message-Account` only when an account URI is given; `Voice-Message` always, with
 * the urgent pair written even when zero, as Asterisk does, so phones get the form they already know.
 */
export function messageSummaryBody(summary: MessageSummary): string {
  const c = checkSummary(summary);
  const lines = [`Messages-Waiting: ${c.newCount > 0 ? 'yes' : 'no'}`];
  if (c.account) lines.push(`Message-Account: ${c.account.text}`);
  lines.push(`Voice-Message: ${c.newCount}/${c.oldCount} (${c.urgentNew}/${c.urgentOld})`);
  return lines.map((line) => `${line}\r\n`).join('');
}
