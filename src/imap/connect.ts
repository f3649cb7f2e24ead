/**
 * Opens one authenticated imapflow connection for an account, with the server settings.
 * TLS is verified unless the settings explicitly say otherwise (and that is warned about at start).
 */
import { readFileSync } from 'node:fs';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { Settings } from '../config/schema.js';
import { ImapError } from '../errors.js';
import type { ImapAccount } from './account.js';
import { readAccessToken } from './oauth-token.js';

export type ImapServerSettings = Settings['imap'];

export type ImapAuth = { user: string; pass: string } | { user: string; accessToken: string };

/**
 * Async because an OAuth2 token is read (or fetched by a command) at every call: each (re)connect
 * then uses the current token.
 */
export async function imapOptions(server: ImapServerSettings, account: ImapAccount): Promise<ImapFlowOptions> {
  const login = server.login;
  let auth: ImapAuth;
  if (login.mode === 'oauth2') {
    auth = { user: account.user, accessToken: await readAccessToken(login, account.user) };
  } else if (login.mode === 'master') {
    if (!login.masterUser || !login.masterPassword) {
      throw new ImapError(account.user, 'imap.login.mode is master but imap.login.masterUser/masterPassword are not set');
    }
    // Dovecot's master-user login: "<user><separator><master>" with the master's password.
    auth = { user: `${account.user}${login.masterSeparator}${login.masterUser}`, pass: login.masterPassword };
  } else {
    if (account.password === undefined) {
      throw new ImapError(account.user, 'no password: set imappassword= for this mailbox in voicemail.conf, or imap.login.passwordsFile');
    }
    auth = { user: account.user, pass: account.password };
  }
  return {
    host: server.host,
    port: server.port,
    secure: server.secure,
    // requireTls: never send credentials in the clear; STARTTLS becomes mandatory on a plain port.
    doSTARTTLS: server.secure ? undefined : server.requireTls ? true : undefined,
    tls: {
      rejectUnauthorized: server.tls.rejectUnauthorized,
      ...(server.tls.caFile ? { ca: readFileSync(server.tls.caFile) } : {}),
      ...(server.tls.servername ? { servername: server.tls.servername } : {}),
    },
    auth,
    logger: false,
    // vmbridge decides when to IDLE; an automatic IDLE would only delay its commands.
    disableAutoIdle: true,
    connectionTimeout: 15_000,
    greetingTimeout: 10_000,
    socketTimeout: 120_000,
  };
}

export async function connectImap(server: ImapServerSettings, account: ImapAccount): Promise<ImapFlow> {
  const client = new ImapFlow(await imapOptions(server, account));
  // An 'error' with no listener would crash the process; the close that follows is what callers see.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new ImapError(account.user, `cannot log in to ${server.host}:${server.port}: ${describeImapError(err)}`, { cause: err });
  }
  return client;
}

/** Whether `err` (from connectImap or imapflow) is the server refusing the credentials or token. */
export function isAuthFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { authenticationFailed?: boolean }).authenticationFailed === true) return true;
  }
  return false;
}

/** A short, secret-free description of an imapflow error. */
export function describeImapError(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { authenticationFailed?: boolean; responseText?: string; code?: string; message?: string; serverResponseCode?: string };
    if (e.authenticationFailed) return `authentication failed${e.responseText ? ` (${e.responseText})` : ''}`;
    const parts = [e.serverResponseCode && `[${e.serverResponseCode}]`, e.responseText ?? e.message, e.code && `(${e.code})`].filter(Boolean);
    if (parts.length > 0) return parts.join(' ');
  }
  return String(err);
}
