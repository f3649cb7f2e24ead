/**
 * The bytes of SIP NOTIFY (src/mwi/sip-notify.ts): the request, laid out by hand, and what is read
 * of a response (status, the headers that match it to its transaction, a Digest challenge).
 */
import { randomBytes } from 'node:crypto';
import type { SipUri } from './message-summary.js';

/** RFC 3261 §8.1.1.7: every branch starts with this magic cookie. */
export const BRANCH_COOKIE = 'z9hG4bK';

export const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** What of the checked target goes into the request. */
export interface NotifyParts {
  readonly to: SipUri;
  readonly from: SipUri;
  readonly body: string;
}

/**
 * Why `terminated` by default. An unsolicited NOTIFY belongs to no subscription: RFC 6665 §4.1.3
 * lets a strict UA answer it with 481, and RFC 3842 only defines MWI inside a subscription, so
 * this is a de-facto convention, not a standard. The convention is Asterisk's: res_pjsip_mwi's
 * unsolicited NOTIFY carries `Subscription-State: terminated`, and the phones and proxies that
 * accept unsolicited MWI from Asterisk accept this one. It is also the truthful value: there is
 * nothing to refresh and no expiry to keep. No `reason`: RFC 6665 §4.1.3 `noresource` and
 * `invariant` would tell the phone never to subscribe, which is not true (a phone that prefers
 * to SUBSCRIBE may). `active` requires `expires` (RFC 6665 §4.2.2) and is offered as an option.
 */
export function subscriptionStateHeader(state: 'terminated' | 'active', expires: number): string {
  return state === 'active' ? `active;expires=${expires}` : 'terminated';
}

/** The Via transport token (RFC 3261 §18.1.1, §26.2.2): what the request travels over. */
export type ViaTransport = 'UDP' | 'TCP' | 'TLS';

export interface Dialogish {
  readonly callId: string;
  readonly fromTag: string;
  readonly viaHost: string;
  readonly localPort: number;
  /** Default UDP. */
  readonly transport?: ViaTransport;
}

/**
 * The Contact URI (RFC 6665 §8.2.1 makes it mandatory in NOTIFY). Over UDP the plain form, as
 * before; over TCP with `;transport=tcp` (RFC 3261 §19.1.1: without it, UDP is meant); over TLS a
 * `sips:` URI (RFC 3261 §8.1.1.8 requires one when the Request-URI is `sips:`, and it is the way
 * RFC 3261 §26.2.2 says "over TLS", where `transport=tls` is deprecated).
 */
function contactUri(user: string, d: Dialogish): string {
  const hostPort = `${d.viaHost}:${d.localPort}`;
  switch (d.transport ?? 'UDP') {
    case 'UDP':
      return `sip:${user}@${hostPort}`;
    case 'TCP':
      return `sip:${user}@${hostPort};transport=tcp`;
    case 'TLS':
      return `sips:${user}@${hostPort}`;
  }
}

export function buildNotify(c: NotifyParts, d: Dialogish, cseq: number, branch: string, extra: readonly string[], subState: string): string {
  const headers = [
    `NOTIFY ${c.to.text} SIP/2.0`,
    // rport (RFC 3581): answer to the port the request came from, so NAT in between is harmless
    // (over a stream the answer comes on the connection, RFC 3261 §18.2.2; rport also lets a proxy
    // find that connection again by the address it came from).
    `Via: SIP/2.0/${d.transport ?? 'UDP'} ${d.viaHost}:${d.localPort};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <${c.from.text}>;tag=${d.fromTag}`,
    // No To tag: the request is outside any dialog (RFC 3261 §8.1.1.2); a tag would make phones
    // look for a subscription they do not have and answer 481.
    `To: <${c.to.text}>`,
    `Call-ID: ${d.callId}`,
    `CSeq: ${cseq} NOTIFY`,
    // RFC 6665 §8.2.1 (Table 3): Contact is mandatory in NOTIFY.
    `Contact: <${contactUri(c.from.user, d)}>`,
    ...extra,
    'Event: message-summary',
    `Subscription-State: ${subState}`,
    'User-Agent: vmbridge',
    'Content-Type: application/simple-message-summary',
    // In bytes, not characters (RFC 3261 §20.14).
    `Content-Length: ${Buffer.byteLength(c.body, 'utf8')}`,
  ];
  return `${headers.join('\r\n')}\r\n\r\n${c.body}`;
}

// ------------------------------------------------------------------------------------------
// Responses.

export interface SipResponse {
  readonly status: number;
  readonly reason: string;
  /** Lower-case header names (compact forms expanded) to values, in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** RFC 3261 §7.3.3 compact forms, for the headers read here. */
const COMPACT: Readonly<Record<string, string>> = { v: 'via', i: 'call-id', f: 'from', t: 'to', l: 'content-length' };

export function parseResponse(datagram: Buffer): SipResponse | undefined {
  const text = datagram.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end >= 0 ? text.slice(0, end) : text;
  const lines = head.split(/\r?\n/);
  const status = /^SIP\/2\.0 ([1-6][0-9]{2}) ?(.*)$/.exec(lines[0] ?? '');
  if (!status) return undefined;
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const last = headers[headers.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last[1] += ` ${line.trim()}`; // header folding (RFC 3261 §7.3.1)
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.push([COMPACT[name] ?? name, line.slice(colon + 1).trim()]);
  }
  return { status: Number(status[1]), reason: sanitize(status[2] ?? ''), headers };
}

/** A server's text, made safe to put in an error message and a log line. */
export function sanitize(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 200);
}

export function header(r: SipResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n === name)?.[1];
}

/** RFC 3261 §17.1.3: a response belongs to the transaction whose branch and CSeq method it carries. */
export function matches(r: SipResponse, branch: string, cseq: number, callId: string): boolean {
  const topVia = (header(r, 'via') ?? '').split(',')[0] ?? '';
  const viaBranch = /;\s*branch=([^;,\s]+)/i.exec(topVia)?.[1];
  const cseqMatch = /^([0-9]+)\s+NOTIFY$/i.exec(header(r, 'cseq') ?? '');
  return viaBranch === branch && cseqMatch !== null && Number(cseqMatch[1]) === cseq && header(r, 'call-id') === callId;
}
