/**
 * Digest answers to a 401/407 challenge for SIP NOTIFY (RFC 7616 §3.4 computations, RFC 8760 for
 * SIP's use of SHA-256). The password is used only to compute the hash.
 */
import { createHash } from 'node:crypto';
import { SipAuthError } from './sip-errors.js';
import { hex, type SipResponse } from './sip-message.js';

export interface Challenge {
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
export function chooseChallenge(r: SipResponse, label: string): Challenge {
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

export function authorizationHeader(ch: Challenge, username: string, password: string, uri: string, body: string, label: string, status: number): string {
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
