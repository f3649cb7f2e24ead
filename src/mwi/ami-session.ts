/**
 * The long-lived AMI session with the Asterisk that owns the spool: used to move and remove
 * voicemail, to ask whether a caller is in VoiceMailMain, and (with events on) to hear
 * MessageWaiting. AmiClient reconnects by itself once it has logged in; until the first login
 * succeeds (Asterisk down when vmbridge starts) this keeps trying, with the same capped backoff.
 */
import { isSafeName } from '../spool/names.js';
import type { MailboxRef } from '../spool/types.js';
import type { Logger } from '../log.js';
import type { TlsSettings } from '../tls.js';
import { AmiAuthError, AmiClient, type AmiEvent } from './ami-client.js';

export interface AmiSessionSettings {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** Resolved by the settings loader (secret or secretFile). */
  readonly secret?: string | undefined;
  /** AMI over TLS, checked as `tls` says. */
  readonly secure?: boolean | undefined;
  readonly tls?: TlsSettings | undefined;
}

/** The connection options of asterisk.ami. */
function transport(settings: AmiSessionSettings): { tls?: TlsSettings } {
  return settings.secure ? { tls: settings.tls ?? { rejectUnauthorized: true } } : {};
}

export interface AmiSession {
  readonly client: AmiClient;
  close(): Promise<void>;
}

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

export function startAmiSession(settings: AmiSessionSettings, log: Logger, opts: { events: boolean }): AmiSession {
  const client = new AmiClient({
    host: settings.host,
    port: settings.port,
    username: settings.username,
    secret: settings.secret ?? '',
    events: opts.events,
    actionIdPrefix: 'vmbridge',
    reconnect: { initialDelayMs: FIRST_DELAY_MS, maxDelayMs: MAX_DELAY_MS },
    ...transport(settings),
  });
  const where = { host: settings.host, port: settings.port };
  client.on('connected', (info) => log.info({ ...where, version: info.version }, 'AMI connected'));
  client.on('disconnected', (err) => log.warn({ ...where, err: err.message }, 'AMI connection lost; reconnecting'));
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let attempt = 0;
  const tryConnect = (): void => {
    client.connect().catch((err: Error) => {
      if (closed) return;
      attempt++;
      const cap = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1));
      const delayMs = Math.round(cap / 2 + (Math.random() * cap) / 2);
      // A refused login will not fix itself; still retried, but said loudly.
      log[err instanceof AmiAuthError || attempt === 1 ? 'warn' : 'debug']({ ...where, attempt, delayMs, err: err.message }, 'AMI login failed; retrying');
      timer = setTimeout(tryConnect, delayMs);
      timer.unref();
    });
  };
  tryConnect();
  return {
    client,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await client.close();
    },
  };
}

/**
 * The mailbox a MessageWaiting event is about (`Mailbox: 1000@default`), or undefined for anything
 * else: other events, a mailbox without a context, names that are not safe spool names.
 */
export function messageWaitingMailbox(event: AmiEvent): MailboxRef | undefined {
  if (event.event?.toLowerCase() !== 'messagewaiting') return undefined;
  const value = event.get('Mailbox')?.trim() ?? '';
  const at = value.lastIndexOf('@');
  if (at <= 0) return undefined;
  const ref = { mailbox: value.slice(0, at), context: value.slice(at + 1) };
  return isSafeName(ref.mailbox) && isSafeName(ref.context) ? ref : undefined;
}

/** One request-only AMI login for a short command (`vmbridge sync`); rejects if it fails. */
export async function connectAmiOnce(settings: AmiSessionSettings): Promise<AmiClient> {
  const client = new AmiClient({ host: settings.host, port: settings.port, username: settings.username, secret: settings.secret ?? '', events: false, reconnect: false, actionIdPrefix: 'vmbridge', ...transport(settings) });
  await client.connect();
  return client;
}
