/**
 * Who logged in on each connection an IMAP tap relayed, how, and when; and from that how many
 * sessions a user (or everyone) had at once. A session counts from the line that carried its
 * credentials (the server counts a user's connections from the login on) until the connection
 * closed.
 */
import type { ImapTap, TapConnection } from './imap-tap.js';

export interface TapSession {
  readonly connection: TapConnection;
  readonly user: string;
  /** LOGIN, PLAIN, LOGIN (SASL), OAUTHBEARER or XOAUTH2. */
  readonly mechanism: string;
  /** The password or bearer token sent (for tests that check which token was used). */
  readonly secret: string;
  readonly loginAt: number;
  /** Undefined while open. */
  readonly closedAt: number | undefined;
  /** The session opened a folder read-only and sent IDLE: the IDLE watcher's. */
  readonly idle: boolean;
}

function b64(text: string): string {
  return Buffer.from(text, 'base64').toString('utf8');
}

function unquote(s: string): string {
  return s.startsWith('"') ? s.slice(1, -1).replace(/\\(.)/g, '$1') : s;
}

/** The login on one connection, or undefined if it never sent one. */
export function sessionOf(c: TapConnection): TapSession | undefined {
  for (let i = 0; i < c.lines.length; i++) {
    const { line, at } = c.lines[i]!;
    const words = line.split(' ');
    const verb = words[1]?.toUpperCase();
    let found: { user: string; mechanism: string; secret: string; at: number } | undefined;
    if (verb === 'LOGIN') {
      const m = /^\S+ LOGIN ("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$/i.exec(line);
      if (m) found = { user: unquote(m[1]!), mechanism: 'LOGIN', secret: unquote(m[2]!), at };
    } else if (verb === 'AUTHENTICATE') {
      const mechanism = (words[2] ?? '').toUpperCase();
      // With SASL-IR the payload is on the command line, else it is the next line sent.
      const initial = words[3] ?? c.lines[i + 1]?.line;
      const when = words[3] !== undefined ? at : (c.lines[i + 1]?.at ?? at);
      if (initial === undefined) continue;
      const payload = b64(initial);
      if (mechanism === 'PLAIN') {
        const [authzid, authcid, pass] = payload.split('\0');
        found = { user: authzid || authcid || '', mechanism, secret: pass ?? '', at: when };
      } else if (mechanism === 'OAUTHBEARER') {
        const user = /^n,a=([^,]*),/.exec(payload)?.[1]?.replace(/=2C/g, ',').replace(/=3D/g, '=') ?? '';
        found = { user, mechanism, secret: /\x01auth=Bearer ([^\x01]*)/.exec(payload)?.[1] ?? '', at: when };
      } else if (mechanism === 'XOAUTH2') {
        found = { user: /^user=([^\x01]*)/.exec(payload)?.[1] ?? '', mechanism, secret: /\x01auth=Bearer ([^\x01]*)/.exec(payload)?.[1] ?? '', at: when };
      }
    }
    if (found) {
      const idle = c.lines.some((l) => /^\S+ IDLE$/i.test(l.line));
      return { connection: c, user: found.user, mechanism: found.mechanism, secret: found.secret, loginAt: found.at, closedAt: c.closedAt, idle };
    }
  }
  return undefined;
}

export function sessions(tap: ImapTap): TapSession[] {
  return tap.connections.map(sessionOf).filter((s): s is TapSession => s !== undefined);
}

/** The most of these sessions that were open at the same moment. */
export function maxConcurrent(list: readonly TapSession[]): number {
  const events: [number, number][] = [];
  for (const s of list) {
    events.push([s.loginAt, 1]);
    events.push([s.closedAt ?? Number.POSITIVE_INFINITY, -1]);
  }
  // At equal times a close goes first: a session that ended as another began did not overlap it.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of events) {
    open += d;
    max = Math.max(max, open);
  }
  return max;
}
