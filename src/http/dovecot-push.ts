/**
 * `POST /dovecot-push`: mail-store events from Dovecot's push_notification plugin, sent by the Lua
 * script in config/dovecot/vmbridge-push.lua. An event only says "this user's mail changed"; the
 * reconcile then looks at IMAP itself, so nothing in the body is trusted beyond naming the user.
 *
 * Dovecot waits for the answer before it tells the mail client OK, so the answer comes as soon as
 * the body is read and checked; the reconcile is queued after it.
 *
 * Body: `{"user":"alice","events":[{"event":"FlagsSet","mailbox":"INBOX","uid":3}],"truncated":false}`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { afterBody } from './after-body.js';

export const DOVECOT_PUSH_PATH = '/dovecot-push';

/**
 * The user `vmbridge doctor` POSTs for to see that push is taken (no IMAP account is called this:
 * voicemail.conf's imapuser cannot hold spaces); it does not count as push arriving.
 */
export const PROBE_USER = 'vmbridge doctor probe';

/** A transaction's events, at most 100 as the script sends them; more is refused as not ours. */
const MAX_BODY_BYTES = 64 * 1024;

const pushEventSchema = z.object({
  event: z.string().min(1).max(64),
  mailbox: z.string().max(1024).optional(),
  uid: z.number().int().nonnegative().optional(),
});

export const pushNoticeSchema = z.object({
  user: z.string().min(1).max(512),
  events: z.array(pushEventSchema).max(1000),
  truncated: z.boolean().optional(),
});
export type PushNotice = z.infer<typeof pushNoticeSchema>;

/** Why a POST was refused; the status and a line for the sender's log. */
export class PushRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PushRequestError';
  }
}

/** Parses and checks a body; throws PushRequestError (400) naming what is wrong. */
export function parsePushNotice(body: Buffer): PushNotice {
  let data: unknown;
  try {
    data = JSON.parse(body.toString('utf8'));
  } catch {
    throw new PushRequestError(400, 'body is not JSON');
  }
  const parsed = pushNoticeSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PushRequestError(400, `body does not match: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unknown'}`);
  }
  return parsed.data;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** True when the request carries `Authorization: Bearer <token>` (compared in constant time). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer +(.+)$/i.exec(header ?? '');
  return m?.[1] !== undefined && timingSafeEqual(digest(m[1]), digest(token));
}

export interface DovecotPushOptions {
  /** Required in `Authorization: Bearer`; undefined: no check (loopback only, see the settings). */
  readonly token: string | undefined;
  /** Told about every accepted notice, after the answer went out, with the address it came from. */
  readonly onNotice: (notice: PushNotice, from: { readonly remoteAddress: string | undefined }) => void;
  /** Told about refused requests (status and reason, never the body or the token). */
  readonly onRefused: (status: number, reason: string) => void;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Keep reading and drop the rest, so the sender gets the 413 rather than a reset.
        chunks.length = 0;
        reject(new PushRequestError(413, `body over ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Handles one request to DOVECOT_PUSH_PATH. */
export function handleDovecotPush(req: IncomingMessage, res: ServerResponse, opts: DovecotPushOptions): void {
  const answer = (status: number, text: string): void => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(text === '' ? undefined : `${text}\n`);
  };
  const refuse = (status: number, reason: string): void => {
    opts.onRefused(status, reason);
    res.setHeader('connection', 'close');
    answer(status, reason);
  };
  if (req.method !== 'POST') return refuse(405, 'only POST');
  if (opts.token !== undefined && !bearerMatches(req.headers.authorization, opts.token)) {
    return afterBody(req, () => refuse(401, 'missing or wrong bearer token'));
  }
  readBody(req).then(
    (body) => {
      let notice: PushNotice;
      try {
        notice = parsePushNotice(body);
      } catch (err) {
        if (err instanceof PushRequestError) return refuse(err.status, err.message);
        throw err;
      }
      answer(204, '');
      opts.onNotice(notice, { remoteAddress: req.socket.remoteAddress });
    },
    (err: unknown) => {
      if (err instanceof PushRequestError) return refuse(err.status, err.message);
      refuse(400, `body could not be read: ${err instanceof Error ? err.message : String(err)}`);
    },
  );
}
