/**
 * The line protocol between `vmbridge notify` (voicemail.conf externnotify) and the running
 * service, over a Unix socket. One request and one answer per connection, each a single line:
 *
 *   client: notify <context> <mailbox>\n
 *           notify <context> <mailbox> <server>\n   a mailbox of a named voicemail server (servers[].name)
 *   server: ok queued\n          a reconcile of that mailbox is queued (or one already is)
 *           ok unknown\n         not a mailbox of the service's voicemail.conf; nothing queued
 *           error <reason>\n     the request was refused (bad line, unsafe name, queue down)
 *
 * This module is on the client's fast path: it may import only node: builtins and small modules
 * of vmbridge's own that import nothing else.
 */
import { isSafeName, isServerName } from '../spool/names.js';
import type { MailboxRef } from '../spool/types.js';

/**
 * Where the service listens unless notify.socket says otherwise. /run/vmbridge is what systemd
 * creates for RuntimeDirectory=vmbridge (docs/notify.md).
 */
export const DEFAULT_NOTIFY_SOCKET = '/run/vmbridge/notify.sock';
/** Read by `vmbridge notify` (and, as a settings override, by the service for notify.socket). */
export const NOTIFY_SOCKET_ENV = 'VMBRIDGE_NOTIFY_SOCKET';
/** Longer than any valid request or answer; a peer sending more without a newline is cut off. */
export const MAX_LINE_BYTES = 256;

export type NotifyAnswer =
  | { readonly kind: 'queued' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'error'; readonly reason: string };

export type ParsedRequest = { readonly ok: true; readonly ref: MailboxRef } | { readonly ok: false; readonly reason: string };

export function formatRequest(ref: MailboxRef): string {
  return ref.server === undefined ? `notify ${ref.context} ${ref.mailbox}\n` : `notify ${ref.context} ${ref.mailbox} ${ref.server}\n`;
}

/** `line` without its newline. Names are checked as every spool path segment is (names.ts). */
export function parseRequest(line: string): ParsedRequest {
  const parts = line.endsWith('\r') ? line.slice(0, -1).split(' ') : line.split(' ');
  if ((parts.length !== 3 && parts.length !== 4) || parts[0] !== 'notify') return { ok: false, reason: 'expected "notify <context> <mailbox> [<server>]"' };
  const context = parts[1] ?? '';
  const mailbox = parts[2] ?? '';
  const server = parts[3];
  if (!isSafeName(context)) return { ok: false, reason: 'unsafe context name' };
  if (!isSafeName(mailbox)) return { ok: false, reason: 'unsafe mailbox name' };
  if (server !== undefined && !isServerName(server)) return { ok: false, reason: 'not a server name' };
  return { ok: true, ref: server === undefined ? { context, mailbox } : { server, context, mailbox } };
}

export function formatAnswer(a: NotifyAnswer): string {
  if (a.kind === 'error') return `error ${a.reason.replace(/[\r\n]+/g, ' ').slice(0, MAX_LINE_BYTES - 8)}\n`;
  return `ok ${a.kind}\n`;
}

/** undefined: not an answer this client understands (another program on the socket). */
export function parseAnswer(line: string): NotifyAnswer | undefined {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (text === 'ok queued') return { kind: 'queued' };
  if (text === 'ok unknown') return { kind: 'unknown' };
  if (text.startsWith('error ')) return { kind: 'error', reason: text.slice('error '.length) };
  return undefined;
}
