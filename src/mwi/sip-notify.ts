/**
 * MWI target "SIP NOTIFY": one unsolicited `NOTIFY` with Event `message-summary` (RFC 3842) sent
 * over UDP to a SIP proxy or endpoint, for phones that are not registered to any Asterisk.
 *
 * The request is built by hand, with no SIP stack: it is one fixed-shape, out-of-dialog request,
 * and every byte of it is easier to check here than behind a library. What this module does:
 * - a non-INVITE client transaction over UDP (RFC 3261 §17.1.2): Timer E retransmissions at T1
 *   doubling up to T2, T2 once a provisional response arrived, Timer F giving up after 64*T1;
 * - one Digest retry on 401/407 (RFC 3261 §22.2, RFC 7616, RFC 8760): MD5 or SHA-256;
 * - refusing, before anything is sent, any value that could change the message's shape.
 * The password never appears in the message (only a hash derived from it) nor in any error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import { ConfigError, VmbridgeError } from '../errors.js';
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

/** Where to send the NOTIFY and as whom. */
export interface SipTarget {
  /** The proxy or endpoint the datagram goes to (host name or IP literal). */
  readonly host: string;
  readonly port: number;
  /** Only UDP for now; TCP and TLS are planned. */
  readonly transport: 'udp';
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
  /** Datagrams sent, retransmissions and the authenticated retry included. */
  readonly attempts: number;
  /** Wall-clock time from the first send to the final response. */
  readonly ms: number;
}

/** A NOTIFY could not be delivered. `target` is `host:port`; never carries the password. */
export class SipNotifyError extends VmbridgeError {
  readonly target: string;
  constructor(code: string, target: string, message: string, options?: { cause?: unknown }) {
    super(code, `SIP NOTIFY to ${target}: ${message}`, options);
    this.target = target;
  }
}

/** Timer F fired: no final response (RFC 3261 §17.1.2.2). */
export class SipTimeoutError extends SipNotifyError {
  readonly attempts: number;
  constructor(target: string, attempts: number, timeoutMs: number) {
    super('SIP_TIMEOUT', target, `no final response after ${attempts} transmissions in ${timeoutMs} ms`);
    this.attempts = attempts;
  }
}

/** A challenge could not be answered, or the answer was challenged again (wrong credentials). */
export class SipAuthError extends SipNotifyError {
  readonly status: number;
  constructor(target: string, status: number, message: string) {
    super('SIP_AUTH', target, message);
    this.status = status;
  }
}

/** A final response other than 2xx (and other than a challenge). */
export class SipResponseError extends SipNotifyError {
  readonly status: number;
  readonly reason: string;
  readonly statusLine: string;
  constructor(target: string, status: number, reason: string) {
    const statusLine = `SIP/2.0 ${status} ${reason}`;
    super('SIP_RESPONSE', target, `answered ${statusLine}`);
    this.status = status;
    this.reason = reason;
    this.statusLine = statusLine;
  }
}

/** The network said no: name resolution failed, or ICMP port/host unreachable (RFC 3261 §18.4). */
export class SipTransportError extends SipNotifyError {
  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super('SIP_TRANSPORT', target, message, options);
  }
}

const DEFAULT_T1_MS = 500;
const DEFAULT_T2_MS = 4000;
/** RFC 3261 §18.1.1: over UDP, stay well below the path MTU (1300 bytes when it is unknown). */
const MAX_UDP_MESSAGE = 1300;
/** RFC 3261 §8.1.1.7: every branch starts with this magic cookie. */
const BRANCH_COOKIE = 'z9hG4bK';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

// ------------------------------------------------------------------------------------------
// Validation: everything that reaches the message is checked before a socket exists.

interface Checked {
  readonly host: string;
  readonly hostKind: HostKind;
  readonly port: number;
  readonly label: string;
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
  if (target.transport !== 'udp') {
    throw new SipNotifyError('SIP_UNSUPPORTED', label, `transport ${JSON.stringify(String(target.transport))} is not supported; use udp`);
  }
  const to = parseSipUri('target.toUri', target.toUri);
  // RFC 3261 §26.2.2: a sips: Request-URI must travel over TLS all the way; UDP cannot honour it.
  if (to.scheme === 'sips') throw new SipNotifyError('SIP_UNSUPPORTED', label, 'a sips: toUri needs TLS, which is not supported yet');
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
  return { host, hostKind: kind, port, label, to, from, username, password, localHost, body };
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

// ------------------------------------------------------------------------------------------
// The request.

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
function subscriptionStateHeader(state: 'terminated' | 'active', expires: number): string {
  return state === 'active' ? `active;expires=${expires}` : 'terminated';
}

interface Dialogish {
  readonly callId: string;
  readonly fromTag: string;
  readonly viaHost: string;
  readonly localPort: number;
}

function buildNotify(c: Checked, d: Dialogish, cseq: number, branch: string, extra: readonly string[], subState: string): string {
  const headers = [
    `NOTIFY ${c.to.text} SIP/2.0`,
    // rport (RFC 3581): answer to the port the datagram came from, so NAT in between is harmless.
    `Via: SIP/2.0/UDP ${d.viaHost}:${d.localPort};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <${c.from.text}>;tag=${d.fromTag}`,
    // No To tag: the request is outside any dialog (RFC 3261 §8.1.1.2); a tag would make phones
    // look for a subscription they do not have and answer 481.
    `To: <${c.to.text}>`,
    `Call-ID: ${d.callId}`,
    `CSeq: ${cseq} NOTIFY`,
    // RFC 6665 §8.2.1 (Table 3): Contact is mandatory in NOTIFY.
    `Contact: <sip:${c.from.user}@${d.viaHost}:${d.localPort}>`,
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

interface SipResponse {
  readonly status: number;
  readonly reason: string;
  /** Lower-case header names (compact forms expanded) to values, in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** RFC 3261 §7.3.3 compact forms, for the headers read here. */
const COMPACT: Readonly<Record<string, string>> = { v: 'via', i: 'call-id', f: 'from', t: 'to', l: 'content-length' };

function parseResponse(datagram: Buffer): SipResponse | undefined {
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
function sanitize(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 200);
}

function header(r: SipResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n === name)?.[1];
}

/** RFC 3261 §17.1.3: a response belongs to the transaction whose branch and CSeq method it carries. */
function matches(r: SipResponse, branch: string, cseq: number, callId: string): boolean {
  const topVia = (header(r, 'via') ?? '').split(',')[0] ?? '';
  const viaBranch = /;\s*branch=([^;,\s]+)/i.exec(topVia)?.[1];
  const cseqMatch = /^([0-9]+)\s+NOTIFY$/i.exec(header(r, 'cseq') ?? '');
  return viaBranch === branch && cseqMatch !== null && Number(cseqMatch[1]) === cseq && header(r, 'call-id') === callId;
}

// ------------------------------------------------------------------------------------------
// Digest (RFC 7616 §3.4 computations, RFC 8760 for SIP's use of SHA-256).

interface Challenge {
  readonly proxy: boolean;
  readonly realm: string;
  readonly nonce: string;
  readonly opaque: string | undefined;
  readonly algorithm: string;
  readonly qop: readonly string[] | undefined;
}

/** Splits `Digest a="x", b=y` into parameters; quoted-string escapes per RFC 3261 §25.1. */
function parseAuthParams(value: string): Map<string, string> | undefined {
  const m = /^Digest\s+/i.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  let i = m[0].length;
  while (i < value.length) {
    while (i < value.length && /[\s,]/.test(value[i] ?? '')) i++;
    const name = /^([A-Za-z0-9_.!%*+`'~-]+)\s*=\s*/.exec(value.slice(i));
    if (!name) break;
    i += name[0].length;
    let v = '';
    if (value[i] === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < value.length) i++;
        v += value[i];
        i++;
      }
      i++; // closing quote
    } else {
      const tok = /^[^\s,]*/.exec(value.slice(i))?.[0] ?? '';
      v = tok;
      i += tok.length;
    }
    params.set((name[1] ?? '').toLowerCase(), v);
  }
  return params;
}

const HASHES: Readonly<Record<string, string>> = { 'MD5': 'md5', 'SHA-256': 'sha256' };

function baseAlgorithm(algorithm: string): string {
  return algorithm.endsWith('-SESS') ? algorithm.slice(0, -5) : algorithm;
}

/**
 * The challenge to answer. RFC 8760 §2.4: a server offering several algorithms sends one
 * challenge per algorithm, most preferred first, and the client uses the first one it supports.
 */
function chooseChallenge(r: SipResponse, label: string): Challenge {
  const proxy = r.status === 407;
  const name = proxy ? 'proxy-authenticate' : 'www-authenticate';
  const offered = r.headers.filter(([n]) => n === name).map(([, v]) => v);
  for (const value of offered) {
    const p = parseAuthParams(value);
    if (!p) continue;
    const algorithm = (p.get('algorithm') ?? 'MD5').toUpperCase();
    if (!(baseAlgorithm(algorithm) in HASHES)) continue;
    const realm = p.get('realm');
    const nonce = p.get('nonce');
    if (realm === undefined || nonce === undefined) continue;
    const opaque = p.get('opaque');
    // These values are echoed into our next request; a control character there is an attack.
    for (const [field, v] of [['realm', realm], ['nonce', nonce], ['opaque', opaque ?? '']] as const) {
      if (/[\u0000-\u001f\u007f]/.test(v)) throw new SipAuthError(label, r.status, `challenge ${field} contains a control character`);
    }
    const qopRaw = p.get('qop');
    const qop = qopRaw === undefined ? undefined : qopRaw.split(',').map((q) => q.trim().toLowerCase()).filter(Boolean);
    return { proxy, realm, nonce, opaque, algorithm, qop };
  }
  const what = offered.length === 0 ? `no ${proxy ? 'Proxy' : 'WWW'}-Authenticate header` : 'no Digest challenge with MD5 or SHA-256';
  throw new SipAuthError(label, r.status, `${r.status} ${r.reason} with ${what}`);
}

const quote = (s: string): string => `"${s.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`;

function authorizationHeader(ch: Challenge, username: string, password: string, uri: string, body: string, label: string, status: number): string {
  const hashName = HASHES[baseAlgorithm(ch.algorithm)] ?? 'md5';
  const H = (s: string): string => createHash(hashName).update(s, 'utf8').digest('hex');
  const cnonce = hex(8);
  const nc = '00000001';
  // qop=auth when offered (RFC 7616 §3.3); auth-int, which also covers the body, only when it is all there is.
  let qop: 'auth' | 'auth-int' | undefined;
  if (ch.qop !== undefined) {
    if (ch.qop.includes('auth')) qop = 'auth';
    else if (ch.qop.includes('auth-int')) qop = 'auth-int';
    else throw new SipAuthError(label, status, `challenge offers qop=${ch.qop.join(',')}, none of auth or auth-int`);
  }
  // RFC 7616 §3.4.2: the -sess variants fold nonce and cnonce into A1.
  let ha1 = H(`${username}:${ch.realm}:${password}`);
  if (ch.algorithm.endsWith('-SESS')) ha1 = H(`${ha1}:${ch.nonce}:${cnonce}`);
  // RFC 7616 §3.4.3: A2 is method and digest-uri, plus the body's hash for auth-int.
  const ha2 = H(qop === 'auth-int' ? `NOTIFY:${uri}:${H(body)}` : `NOTIFY:${uri}`);
  // RFC 7616 §3.4.1; without qop, the RFC 2069 form that RFC 2617 §3.2.2.1 keeps for old servers.
  const response = qop ? H(`${ha1}:${ch.nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : H(`${ha1}:${ch.nonce}:${ha2}`);
  const parts = [
    `username=${quote(username)}`,
    `realm=${quote(ch.realm)}`,
    `nonce=${quote(ch.nonce)}`,
    `uri=${quote(uri)}`,
    `response=${quote(response)}`,
    `algorithm=${ch.algorithm}`,
  ];
  if (qop) parts.push(`cnonce=${quote(cnonce)}`, `qop=${qop}`, `nc=${nc}`);
  if (ch.opaque !== undefined) parts.push(`opaque=${quote(ch.opaque)}`);
  return `${ch.proxy ? 'Proxy-Authorization' : 'Authorization'}: Digest ${parts.join(', ')}`;
}

// ------------------------------------------------------------------------------------------
// The client transaction.

interface Run {
  readonly socket: Socket;
  readonly label: string;
  readonly t1: number;
  readonly t2: number;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  attempts: number;
}

/**
 * RFC 3261 §17.1.2.2 (non-INVITE client transaction, unreliable transport). Trying: send, Timer E
 * at T1, on each firing retransmit and double the interval up to T2. A provisional response moves
 * to Proceeding, where retransmissions go on (so the final response is not lost) but every T2.
 * A final response ends it; Timer F (64*T1) ends it with a timeout. Responses that do not match
 * branch, CSeq and Call-ID are ignored, which also absorbs late copies from an earlier transaction.
 */
function runTransaction(run: Run, request: Buffer, branch: string, cseq: number, callId: string): Promise<SipResponse> {
  const { socket, label } = run;
  return new Promise<SipResponse>((resolve, reject) => {
    let interval = run.t1;
    let proceeding = false;
    let timerE: NodeJS.Timeout | undefined;
    let settled = false;

    const finish = (err: Error | undefined, response?: SipResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timerE);
      clearTimeout(timerF);
      socket.off('message', onMessage);
      socket.off('error', onError);
      run.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else if (response) resolve(response);
    };
    const transmit = (): void => {
      run.attempts++;
      socket.send(request, (err) => {
        if (err) finish(new SipTransportError(label, `send failed: ${err.message}`, { cause: err }));
      });
    };
    const fireE = (): void => {
      transmit();
      interval = proceeding ? run.t2 : Math.min(interval * 2, run.t2);
      timerE = setTimeout(fireE, interval);
    };
    const onMessage = (datagram: Buffer): void => {
      const r = parseResponse(datagram);
      if (!r || !matches(r, branch, cseq, callId)) return;
      if (r.status < 200) {
        proceeding = true;
        return;
      }
      finish(undefined, r);
    };
    const onError = (err: Error): void => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const why = code === 'ECONNREFUSED' ? 'nothing listens there (ICMP port unreachable)' : err.message;
      finish(new SipTransportError(label, why, { cause: err }));
    };
    const onAbort = (): void => finish(new SipNotifyError('SIP_ABORTED', label, 'aborted'));
    const timerF = setTimeout(() => finish(new SipTimeoutError(label, run.attempts, run.timeout)), run.timeout);

    socket.on('message', onMessage);
    socket.on('error', onError);
    run.signal?.addEventListener('abort', onAbort, { once: true });
    transmit();
    timerE = setTimeout(fireE, interval);
  });
}

async function openSocket(c: Checked): Promise<Socket> {
  let address: string;
  let family: number;
  try {
    // Plain A/AAAA resolution; RFC 3263 SRV/NAPTR lookup is not done (give the host and port).
    ({ address, family } = await lookup(c.host));
  } catch (err) {
    throw new SipTransportError(c.label, `cannot resolve ${c.host}`, { cause: err });
  }
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    // A connected socket only hears from the target and learns about ICMP errors (RFC 3261 §18.4).
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(c.port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.close();
    throw new SipTransportError(c.label, `cannot open a UDP socket towards ${address}`, { cause: err });
  }
  // Errors are reported by the running transaction's own listener. This one only keeps an ICMP
  // error that lands between two transactions from becoming an uncaught 'error' event.
  socket.on('error', () => undefined);
  return socket;
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

  const socket = await openSocket(c);
  const started = performance.now();
  const run: Run = { socket, label: c.label, t1: timers.t1, t2: timers.t2, timeout: timers.timeout, signal: opts.signal, attempts: 0 };
  try {
    const local = socket.address();
    const viaHost = c.localHost ? hostForUri(c.localHost.host, c.localHost.kind) : local.family === 'IPv6' ? `[${local.address}]` : local.address;
    const d: Dialogish = { callId: hex(16), fromTag: hex(8), viaHost, localPort: local.port };
    assertNoControl('local address', viaHost);

    // Same Call-ID and From tag for the retry; new branch and CSeq+1 (RFC 3261 §22.2, §8.1.3.5).
    let cseq = 1;
    let extra: string[] = [];
    let challenged = false;
    for (;;) {
      const branch = `${BRANCH_COOKIE}${hex(10)}`;
      const text = buildNotify(c, d, cseq, branch, extra, subState);
      const bytes = Buffer.from(text, 'utf8');
      if (bytes.length > MAX_UDP_MESSAGE) {
        throw new SipNotifyError('SIP_TOO_LARGE', c.label, `request is ${bytes.length} bytes; over UDP the limit is ${MAX_UDP_MESSAGE}`);
      }
      const r = await runTransaction(run, bytes, branch, cseq, d.callId);
      if (r.status >= 200 && r.status < 300) {
        return { status: r.status, attempts: run.attempts, ms: Math.round(performance.now() - started) };
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
    socket.close();
  }
}
