/**
 * `vmbridge notify`'s end of the socket. Asterisk waits for externnotify to exit, so every way this
 * can go wrong ends quickly in an outcome, never in an exception or a wait on a dead service.
 */
import { createConnection } from 'node:net';
import type { MailboxRef } from '../spool/types.js';
import { formatRequest, MAX_LINE_BYTES, parseAnswer } from './protocol.js';

export type NotifyOutcome =
  | { readonly kind: 'queued' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'refused'; readonly reason: string }
  /** Nothing listens (ENOENT, ECONNREFUSED), may not connect (EACCES), or an answer not understood. */
  | { readonly kind: 'unreachable'; readonly code: string }
  | { readonly kind: 'timeout'; readonly ms: number };

export function sendNotify(path: string, ref: MailboxRef, timeoutMs: number): Promise<NotifyOutcome> {
  return new Promise((resolve) => {
    let done = false;
    let received = '';
    const socket = createConnection({ path });
    const finish = (o: NotifyOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', ms: timeoutMs }), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(formatRequest(ref)));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const nl = received.indexOf('\n');
      if (nl < 0) {
        if (received.length > MAX_LINE_BYTES) finish({ kind: 'unreachable', code: 'an answer that is not vmbridge\'s' });
        return;
      }
      const a = parseAnswer(received.slice(0, nl));
      if (!a) finish({ kind: 'unreachable', code: 'an answer that is not vmbridge\'s' });
      else if (a.kind === 'error') finish({ kind: 'refused', reason: a.reason });
      else finish(a);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ kind: 'unreachable', code: err.code ?? err.message }));
    socket.once('close', () => finish({ kind: 'unreachable', code: 'closed without an answer' }));
  });
}
