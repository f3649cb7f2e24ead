/**
 * MWI target "SIP NOTIFY": one unsolicited `NOTIFY` with Event `message-summary` (RFC 3842) sent
 * over UDP, TCP or TLS to a SIP proxy or endpoint, for phones that are not registered to any Asterisk.
 *
 * The request is built by hand, with no SIP stack: it is one fixed-shape, out-of-dialog request,
 * and every byte of it is easier to check here than behind a library. What this module does:
 * - a non-INVITE client transaction over UDP (RFC 3261 §17.1.2): Timer E retransmissions at T1
 *   doubling up to T2, T2 once a provisional response arrived, Timer F giving up after 64*T1;
 * - or over a TCP or TLS connection (RFC 3261 §18): written once, framed by Content-Length,
 *   Timer F still the bound; TLS with the certificate checked against the host name by default;
 * - one Digest retry on 401/407 (RFC 3261 §22.2, RFC 7616, RFC 8760): MD5 or SHA-256;
 * - refusing, before anything is sent, any value that could change the message's shape.
 * The password never appears in the message (only a hash derived from it) nor in any error.
 *
 * This module checks the target and runs the send; the request and response bytes are in
 * sip-message.ts, the Digest answer in sip-digest.ts, the UDP transaction in sip-udp.ts, the TCP
 * and TLS one in sip-stream.ts, and the errors in sip-errors.ts (re-exported here).
 */
import { performance } from 'node:perf_hooks';
import { ConfigError } from '../errors.js';
import type { TlsSettings } from '../tls.js';
import {
  assertNoControl,
  assertSafeUser,
  checkHost,
  hostForUri,
  messageSummaryBody,
  parseSipUri,
  UnsafeSipValueError,
  type HostKind,
  type MessageSummary,
  type SipUri,
} from './message-summary.js';
import { authorizationHeader, chooseChallenge } from './sip-digest.js';
import { SipAuthError, SipNotifyError, SipResponseError } from './sip-errors.js';
import { BRANCH_COOKIE, buildNotify, hex, subscriptionStateHeader, type Dialogish, type SipResponse, type ViaTransport } from './sip-message.js';
import { SipStream } from './sip-stream.js';
import { openSocket, runTransaction, type Run } from './sip-udp.js';

export { SipAuthError, SipNotifyError, SipResponseError, SipTimeoutError, SipTransportError } from './sip-errors.js';

/** Where to send the NOTIFY and as whom. */
export interface SipTarget {
  /** The proxy or endpoint the request goes to (host name or IP literal). */
  readonly host: string;
  readonly port: number;
  /**
   * `udp`; `tcp`; or `tls` (TLS over TCP, needed for a `sips:` toUri). Over TCP and TLS one
   * connection carries one send (the request and its authenticated retry) and is then closed.
   */
  readonly transport: SipTransport;
  /**
   * How a TLS server's certificate is checked (src/tls.ts). Default: verified against the system's
   * CAs and `host`. Only read for `tls`.
   */
  readonly tls?: TlsSettings;
  /** The settings block of `tls`, named in certificate errors. Default `tls`. */
  readonly tlsSettingsKey?: string;
  /** Request-URI and To: the phone's address of record, e.g. `sip:1000@pbx.example`. */
  readonly toUri: string;
  /** From: who is telling, e.g. `sip:vmbridge@pbx.example`. Its user part also names the Contact. */
  readonly fromUri: string;
  /** Digest username; defaults to the user part of `fromUri`. */
  readonly username?: string;
  /** Digest password. Used only to answer a 401/407 challenge. */
  readonly password?: string;
  /** Host written into Via and Contact (for NAT or several interfaces); default: the socket's own address. */
  readonly localHost?: string;
}

export type SipTransport = 'udp' | 'tcp' | 'tls';
export const SIP_TRANSPORTS: readonly SipTransport[] = ['udp', 'tcp', 'tls'];

/** The registered ports (RFC 3261 §19.1.2): 5061 for TLS, 5060 for the others. */
export function defaultSipPort(transport: SipTransport): number {
  return transport === 'tls' ? 5061 : 5060;
}

export interface SipNotifyOptions {
  /** RFC 3261 T1, the round-trip estimate. Default 500 ms. */
  readonly t1Ms?: number;
  /** RFC 3261 T2, the cap on the retransmit interval. Default 4000 ms. */
  readonly t2Ms?: number;
  /** Timer F, how long one transaction may take. Default 64*T1. */
  readonly timeoutMs?: number;
  /**
   * `terminated` (default) or `active`. See the comment on `subscriptionStateHeader` for why
   * `terminated` is the default; `active` exists for devices that insist on it.
   */
  readonly subscriptionState?: 'terminated' | 'active';
  /** `expires` for `active` (RFC 6665 §4.2.2 requires one). Default 3600 seconds. */
  readonly activeExpiresSeconds?: number;
  /** Abandons the send (for shutdown): the promise rejects with code SIP_ABORTED. */
  readonly signal?: AbortSignal;
}

export interface SipNotifyResult {
  /** The final 2xx status. */
  readonly status: number;
  /** Requests sent, retransmissions (UDP only) and the authenticated retry included. */
  readonly attempts: number;
  /** Wall-clock time from the first send to the final response. */
  readonly ms: number;
}


const DEFAULT_T1_MS = 500;
const DEFAULT_T2_MS = 4000;
/** RFC 3261 §18.1.1: over UDP, stay well below the path MTU (1300 bytes when it is unknown). */
const MAX_UDP_MESSAGE = 1300;

// ------------------------------------------------------------------------------------------
// Validation: everything that reaches the message is checked before a socket exists.

interface Checked {
  readonly host: string;
  readonly hostKind: HostKind;
  readonly port: number;
  readonly label: string;
  readonly transport: SipTransport;
  readonly tls: TlsSettings;
  readonly tlsSettingsKey: string;
  readonly to: SipUri;
  readonly from: SipUri;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly localHost: { host: string; kind: HostKind } | undefined;
  readonly body: string;
}

function checkTarget(target: SipTarget, summary: MessageSummary): Checked {
  if (typeof target !== 'object' || target === null) throw new UnsafeSipValueError('target', target, 'missing');
  const { host, kind } = checkHost('target.host', target.host);
  const port = target.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UnsafeSipValueError('target.port', String(port), 'must be a whole number from 1 to 65535');
  }
  const label = `${hostForUri(host, kind)}:${port}`;
  const transport = target.transport;
  if (!SIP_TRANSPORTS.includes(transport)) {
    throw new SipNotifyError('SIP_UNSUPPORTED', label, `transport ${JSON.stringify(String(transport))} is not supported; use udp, tcp or tls`);
  }
  const to = parseSipUri('target.toUri', target.toUri);
  // RFC 3261 §26.2.2: a sips: Request-URI must travel over TLS all the way; UDP and TCP cannot honour it.
  if (to.scheme === 'sips' && transport !== 'tls') {
    throw new SipNotifyError('SIP_UNSUPPORTED', label, `a sips: toUri must travel over TLS (RFC 3261 §26.2.2), not ${transport}; use transport tls`);
  }
  const tls = target.tls ?? { rejectUnauthorized: true };
  const tlsSettingsKey = target.tlsSettingsKey ?? 'tls';
  const from = parseSipUri('target.fromUri', target.fromUri);
  let password: string | undefined;
  if (target.password !== undefined) {
    // Only a hash of it is sent, but a password is a string; never echo the value itself.
    if (typeof target.password !== 'string' || target.password.length === 0) {
      throw new UnsafeSipValueError('target.password', '(hidden)', 'must be a non-empty string');
    }
    password = target.password;
  }
  const username = target.username !== undefined ? assertSafeUser('target.username', target.username) : password !== undefined ? from.user : undefined;
  const localHost = target.localHost !== undefined ? checkHost('target.localHost', target.localHost) : undefined;
  const body = messageSummaryBody(summary);
  return { host, hostKind: kind, port, label, transport, tls, tlsSettingsKey, to, from, username, password, localHost, body };
}

function checkTimers(opts: SipNotifyOptions): { t1: number; t2: number; timeout: number; expires: number } {
  const positive = (name: string, v: number | undefined, dflt: number): number => {
    const value = v ?? dflt;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(`SIP NOTIFY option ${name} must be a positive number of milliseconds`, { key: name });
    }
    return value;
  };
  const t1 = positive('t1Ms', opts.t1Ms, DEFAULT_T1_MS);
  const t2 = positive('t2Ms', opts.t2Ms, Math.max(DEFAULT_T2_MS, t1));
  const timeout = positive('timeoutMs', opts.timeoutMs, 64 * t1);
  const expires = opts.activeExpiresSeconds ?? 3600;
  if (!Number.isSafeInteger(expires) || expires < 0) {
    throw new ConfigError('SIP NOTIFY option activeExpiresSeconds must be a whole number >= 0', { key: 'activeExpiresSeconds' });
  }
  return { t1, t2, timeout, expires };
}


/**
 * Sends one unsolicited MWI NOTIFY and waits for its final response. Resolves on 2xx; rejects
 * with UnsafeSipValueError or MessageSummaryError (nothing sent), SipTimeoutError, SipAuthError,
 * SipResponseError, SipTransportError, or SipNotifyError code SIP_ABORTED / SIP_UNSUPPORTED.
 */
export async function sendSipNotify(target: SipTarget, summary: MessageSummary, opts: SipNotifyOptions = {}): Promise<SipNotifyResult> {
  const c = checkTarget(target, summary);
  const timers = checkTimers(opts);
  const subState = subscriptionStateHeader(opts.subscriptionState ?? 'terminated', timers.expires);
  if (opts.signal?.aborted) throw new SipNotifyError('SIP_ABORTED', c.label, 'aborted before sending');

  const channel = await openChannel(c, timers, opts.signal);
  const started = performance.now();
  try {
    const local = channel.local;
    const viaHost = c.localHost ? hostForUri(c.localHost.host, c.localHost.kind) : local.family === 'IPv6' ? `[${local.address}]` : local.address;
    const d: Dialogish = { callId: hex(16), fromTag: hex(8), viaHost, localPort: local.port, transport: channel.via };
    assertNoControl('local address', viaHost);

    // Same Call-ID and From tag for the retry; new branch and CSeq+1 (RFC 3261 §22.2, §8.1.3.5).
    let cseq = 1;
    let extra: string[] = [];
    let challenged = false;
    for (;;) {
      const branch = `${BRANCH_COOKIE}${hex(10)}`;
      const text = buildNotify(c, d, cseq, branch, extra, subState);
      const bytes = Buffer.from(text, 'utf8');
      // Over TCP and TLS there is no such limit (RFC 3261 §18.1.1 is why one switches to them).
      if (c.transport === 'udp' && bytes.length > MAX_UDP_MESSAGE) {
        throw new SipNotifyError('SIP_TOO_LARGE', c.label, `request is ${bytes.length} bytes; over UDP the limit is ${MAX_UDP_MESSAGE}`);
      }
      const r = await channel.transact(bytes, branch, cseq, d.callId);
      if (r.status >= 200 && r.status < 300) {
        return { status: r.status, attempts: channel.attempts, ms: Math.round(performance.now() - started) };
      }
      if (r.status === 401 || r.status === 407) {
        if (challenged) {
          throw new SipAuthError(c.label, r.status, `credentials for ${JSON.stringify(c.username ?? '')} were refused (${r.status} ${r.reason})`);
        }
        if (c.username === undefined || c.password === undefined) {
          throw new SipAuthError(c.label, r.status, `${r.status} ${r.reason}: the target asks for credentials and none are configured`);
        }
        const challenge = chooseChallenge(r, c.label);
        extra = [authorizationHeader(challenge, c.username, c.password, c.to.text, c.body, c.label, r.status)];
        challenged = true;
        cseq++;
        continue;
      }
      throw new SipResponseError(c.label, r.status, r.reason);
    }
  } finally {
    channel.close();
  }
}

// ------------------------------------------------------------------------------------------
// The transports, behind one shape.

interface Channel {
  /** The Via transport token. */
  readonly via: ViaTransport;
  /** The local end of the socket, for Via and Contact. */
  readonly local: { readonly address: string; readonly family: string; readonly port: number };
  /** Requests sent so far. */
  readonly attempts: number;
  /** One client transaction: resolves with its final response. */
  transact(request: Buffer, branch: string, cseq: number, callId: string): Promise<SipResponse>;
  close(): void;
}

async function openChannel(c: Checked, timers: { t1: number; t2: number; timeout: number }, signal: AbortSignal | undefined): Promise<Channel> {
  if (c.transport === 'udp') {
    const socket = await openSocket(c);
    const run: Run = { socket, label: c.label, t1: timers.t1, t2: timers.t2, timeout: timers.timeout, signal, attempts: 0 };
    return {
      via: 'UDP',
      local: socket.address(),
      get attempts() {
        return run.attempts;
      },
      transact: (request, branch, cseq, callId) => runTransaction(run, request, branch, cseq, callId),
      close: () => socket.close(),
    };
  }
  // Connecting and the TLS handshake get Timer F's time too; each transaction then has its own.
  const stream = await SipStream.open(
    { host: c.host, hostIsName: c.hostKind === 'hostname', port: c.port, label: c.label, transport: c.transport, tls: c.tls, tlsSettingsKey: c.tlsSettingsKey },
    timers.timeout,
    signal,
  );
  return {
    via: c.transport === 'tls' ? 'TLS' : 'TCP',
    local: stream.local,
    get attempts() {
      return stream.attempts;
    },
    transact: (request, branch, cseq, callId) => stream.transact(request, branch, cseq, callId, timers.timeout, signal),
    close: () => stream.close(),
  };
}
