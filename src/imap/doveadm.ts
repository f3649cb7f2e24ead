/**
 * Dovecot's doveadm HTTP API, for one question: the status of every user's folders, in one call
 * (`mailboxStatus` with allUsers, as `doveadm mailbox status -A`). A request is a JSON list of
 * commands, each `[name, parameters, tag]`; the answer is a list of `[type, payload, tag]`, where
 * type is `doveadmResponse` (payload: one object per row) or `error` (payload: the exit code).
 * The key goes in `Authorization: X-Dovecot-API <base64 key>`.
 *
 * The rows carry the same UIDVALIDITY, UIDNEXT, MESSAGES and HIGHESTMODSEQ as IMAP STATUS, read
 * from the same indexes, so they compare with a quiet mark taken over IMAP (docs/sync.md).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { VmbridgeError } from '../errors.js';
import { tlsConnectOptions, type TlsSettings } from '../tls.js';

/** Folder path -> `uidvalidity/uidnext/messages/highestmodseq`, as the quick look writes it. */
export type FolderStatuses = ReadonlyMap<string, string>;

export class DoveadmError extends VmbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DOVEADM', message, options);
  }
}

export interface DoveadmOptions {
  readonly url: string;
  readonly apiKey: string;
  readonly timeoutMs: number;
  readonly tls: TlsSettings;
}

const TAG = 'status';
const FIELDS = ['messages', 'uidnext', 'uidvalidity', 'highestmodseq'] as const;

const rowSchema = z.object({
  username: z.string(),
  mailbox: z.string(),
  messages: z.string().regex(/^\d+$/),
  uidnext: z.string().regex(/^\d+$/),
  uidvalidity: z.string().regex(/^\d+$/),
  highestmodseq: z.string().regex(/^\d+$/),
});
const answerSchema = z.array(z.tuple([z.string(), z.unknown(), z.string()]));

/** The body of the one request. */
export function statusRequestBody(): string {
  return JSON.stringify([['mailboxStatus', { allUsers: true, field: [...FIELDS], mailboxMask: ['*'] }, TAG]]);
}

/**
 * user -> folder statuses, from the answer's text. A user appears as doveadm names it (its userdb
 * name); lookups fold case as Dovecot does by default (see statusOf).
 */
export function parseStatusAnswer(text: string): Map<string, Map<string, string>> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new DoveadmError('the doveadm API answered something that is not JSON', { cause: err });
  }
  const answer = answerSchema.safeParse(data);
  if (!answer.success) throw new DoveadmError('the doveadm API answered a list vmbridge does not understand');
  const mine = answer.data.find((a) => a[2] === TAG);
  if (!mine) throw new DoveadmError('the doveadm API answered without the mailboxStatus result');
  const [type, payload] = mine;
  if (type === 'error') throw new DoveadmError(`doveadm mailboxStatus failed: ${JSON.stringify(payload).slice(0, 200)}`);
  if (type !== 'doveadmResponse' || !Array.isArray(payload)) throw new DoveadmError(`the doveadm API answered ${JSON.stringify(type)} for mailboxStatus`);
  const out = new Map<string, Map<string, string>>();
  for (const raw of payload) {
    const row = rowSchema.safeParse(raw);
    // A row without every field (a folder that cannot be opened) is left out: that user's
    // mailboxes are then looked at over IMAP, as without doveadm.
    if (!row.success) continue;
    const r = row.data;
    const folders = out.get(r.username) ?? new Map<string, string>();
    folders.set(r.mailbox, `${r.uidvalidity}/${r.uidnext}/${r.messages}/${r.highestmodseq}`);
    out.set(r.username, folders);
  }
  return out;
}

/** One POST; resolves with the answer's text, or rejects with a DoveadmError saying what to check. */
export function askDoveadm(opts: DoveadmOptions, body: string): Promise<string> {
  const url = new URL(opts.url);
  const secure = url.protocol === 'https:';
  const request = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: {
        Authorization: `X-Dovecot-API ${Buffer.from(opts.apiKey).toString('base64')}`,
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
      },
      timeout: opts.timeoutMs,
      ...(secure ? tlsConnectOptions(opts.tls) : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(new DoveadmError(`the doveadm API at ${url.host} broke off its answer: ${err.message}`, { cause: err })));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 401 || res.statusCode === 403) return reject(new DoveadmError(`the doveadm API at ${url.host} refused the key (HTTP ${res.statusCode}): imap.doveadm.apiKeyFile must hold Dovecot's doveadm_api_key`));
        if (res.statusCode !== 200) return reject(new DoveadmError(`the doveadm API at ${url.host} answered HTTP ${res.statusCode ?? '?'}: ${text.slice(0, 200)}`));
        resolve(text);
      });
    });
    req.on('timeout', () => req.destroy(new DoveadmError(`the doveadm API at ${url.host} did not answer within ${opts.timeoutMs} ms (imap.doveadm.timeoutSeconds)`)));
    req.on('error', (err) => reject(err instanceof DoveadmError ? err : new DoveadmError(`the doveadm API at ${url.host} cannot be reached: ${err.message}`, { cause: err })));
    req.end(body);
  });
}

export async function allFolderStatuses(opts: DoveadmOptions): Promise<Map<string, Map<string, string>>> {
  return parseStatusAnswer(await askDoveadm(opts, statusRequestBody()));
}
