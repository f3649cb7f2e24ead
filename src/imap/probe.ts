/**
 * Whether the IMAP server answers, without logging in: connect (TLS from the first byte when
 * imap.secure, verified as the settings say), read the greeting, say LOGOUT. No account is used,
 * so no per-user connection limit is touched. For /readyz.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ImapServerSettings } from './connect.js';

export type GreetingVerdict = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly text: string };

/** Greetings longer than this are not an IMAP server's. */
const MAX_GREETING = 4_096;

/**
 * Pure: the server's first line. `* OK` and `* PREAUTH` (RFC 9051 7.1) mean it takes sessions;
 * `* BYE` means it refuses them (overloaded, shutting down); anything else is not IMAP.
 */
export function judgeGreeting(line: string): GreetingVerdict {
  const text = line.replace(/\r?\n$/, '');
  const shown = text.slice(0, 200);
  if (/^\* (OK|PREAUTH)\b/i.test(text)) return { ok: true, text: shown };
  if (/^\* BYE\b/i.test(text)) return { ok: false, text: `the server refuses sessions: ${shown}` };
  return { ok: false, text: `not an IMAP greeting: ${JSON.stringify(shown)}` };
}

/** Resolves with the verdict; rejects only when imap.tls.caFile cannot be read. */
export function probeImapServer(server: Pick<ImapServerSettings, 'host' | 'port' | 'secure' | 'tls'>, timeoutMs: number): Promise<GreetingVerdict> {
  return new Promise((resolve) => {
    let done = false;
    let socket: Socket;
    const finish = (v: GreetingVerdict): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (v.ok && socket.writable) socket.end('vmb1 LOGOUT\r\n');
      else socket.destroy();
      // A server that never closes after LOGOUT must not hold the socket.
      setTimeout(() => socket.destroy(), 1_000).unref();
      resolve(v);
    };
    const timer = setTimeout(() => finish({ ok: false, text: `no greeting from ${server.host}:${server.port} within ${timeoutMs / 1000} s` }), timeoutMs);
    timer.unref();
    if (server.secure) {
      socket = tlsConnect({
        host: server.host,
        port: server.port,
        rejectUnauthorized: server.tls.rejectUnauthorized,
        ...(server.tls.caFile ? { ca: readFileSync(server.tls.caFile) } : {}),
        servername: server.tls.servername ?? server.host,
      });
    } else {
      socket = netConnect({ host: server.host, port: server.port });
    }
    let buffer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end >= 0) finish(judgeGreeting(buffer.slice(0, end + 1)));
      else if (buffer.length > MAX_GREETING) finish({ ok: false, text: 'not an IMAP greeting: no line end' });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, text: err.message }));
    socket.on('close', () => finish({ ok: false, text: `${server.host}:${server.port} closed the connection before its greeting` }));
  });
}
