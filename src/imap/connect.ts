/**
 * Opens one authenticated imapflow connection for an account, with the server settings.
 * TLS is verified unless the settings explicitly say otherwise (and that is warned about at start).
 */
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { Settings } from '../config/schema.js';
import { ImapError } from '../errors.js';
import { certificateError, tlsConnectOptions } from '../tls.js';
import type { ImapAccount } from './account.js';
import { readAccessToken } from './oauth-token.js';

export type ImapServerSettings = Settings['imap'];

export type ImapAuth =
  | { user: string; pass: string }
  | { user: string; accessToken: string }
  /** SASL PLAIN as `user`, acting as `authzid` (imap.login.masterStyle: authzid). */
  | { user: string; pass: string; authzid: string; loginMethod: 'AUTH=PLAIN' };

/**
 * Notes whether imapflow sent a plain LOGIN command. With an authzid it must not: imapflow falls
 * back to LOGIN when the server offers neither AUTH=PLAIN nor AUTH=LOGIN, and LOGIN has no authzid,
 * so the session would be the master user's own mailbox. Reading the command imapflow logs is the
 * only public way to see which one it chose. Watches only until the login is checked.
 */
interface LoginWatch {
  sentLogin: boolean;
  watching: boolean;
}

const loginWatches = new WeakMap<object, LoginWatch>();

function watchingLogger(watch: LoginWatch): Exclude<ImapFlowOptions['logger'], false | undefined> {
  const ignore = (): void => undefined;
  const logger = {
    // imapflow logs each command it sends at debug, with secrets masked.
    debug(entry: unknown): void {
      if (!watch.watching || !entry || typeof entry !== 'object') return;
      const e = entry as { src?: unknown; msg?: unknown };
      if (e.src === 'c' && typeof e.msg === 'string' && /^\S+ LOGIN /i.test(e.msg)) watch.sentLogin = true;
    },
    info: ignore,
    warn: ignore,
    error: ignore,
    // imapflow asks this before building a debug entry: only while the login is being watched.
    isLevelEnabled: (level: string): boolean => watch.watching && level === 'debug',
  };
  return logger;
}

/**
 * Call right after connect() on a client made from imapOptions(): with imap.login.masterStyle
 * authzid, a session that logged in with a plain LOGIN (as the master user itself, not as the
 * mailbox's user) is logged out and refused before anything is read or changed.
 */
export async function checkLogin(client: ImapFlow, account: ImapAccount): Promise<void> {
  const logger = client.options?.logger;
  const watch = logger ? loginWatches.get(logger) : undefined;
  if (!watch) return;
  watch.watching = false;
  if (!watch.sentLogin) return;
  await client.logout().catch(() => client.close());
  throw new ImapError(account.user, 'imap.login.masterStyle is authzid but the server offers no SASL PLAIN, and a plain LOGIN would open the master user\'s own mailbox; nothing was done');
}

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
    auth = login.masterStyle === 'authzid'
      // SASL PLAIN with an authorization identity (RFC 4616): the master's credentials, the
      // user's mailbox (a Cyrus admin; Dovecot master users accept it too).
      ? { user: login.masterUser, pass: login.masterPassword, authzid: account.user, loginMethod: 'AUTH=PLAIN' }
      // Dovecot's master-user login: "<user><separator><master>" with the master's password.
      : { user: `${account.user}${login.masterSeparator}${login.masterUser}`, pass: login.masterPassword };
  } else {
    if (account.password === undefined) {
      throw new ImapError(account.user, 'no password: set imappassword= for this mailbox in voicemail.conf, or imap.login.passwordsFile');
    }
    auth = { user: account.user, pass: account.password };
  }
  let logger: ImapFlowOptions['logger'] = false;
  if ('authzid' in auth) {
    const watch: LoginWatch = { sentLogin: false, watching: true };
    const watching = watchingLogger(watch);
    loginWatches.set(watching, watch);
    logger = watching;
  }
  return {
    host: server.host,
    port: server.port,
    secure: server.secure,
    // requireTls: never send credentials in the clear; STARTTLS becomes mandatory on a plain port.
    doSTARTTLS: server.secure ? undefined : server.requireTls ? true : undefined,
    tls: tlsConnectOptions(server.tls),
    auth,
    logger,
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
    throw loginError(server, account, err);
  }
  await checkLogin(client, account);
  return client;
}

/** The error for a connect() of a client made from imapOptions() that failed (the cause kept). */
export function loginError(server: ImapServerSettings, account: ImapAccount, err: unknown): ImapError {
  const refused = certificateError(err, `IMAP server ${server.host}:${server.port}`, 'imap.tls', server.tls);
  if (refused) return new ImapError(account.user, refused.message, { cause: refused });
  // A refused bearer token is the usual end of an OAuth2 token's life: say so, not only "failed".
  const hint = server.login.mode === 'oauth2' && isAuthFailure(err)
    ? `; the OAuth2 token was refused (expired, revoked, or not issued for ${account.user}): it is read again from ${server.login.tokenFile !== undefined ? 'imap.login.tokenFile' : 'imap.login.tokenCommand'} at the next attempt`
    : '';
  return new ImapError(account.user, `cannot log in to ${server.host}:${server.port}: ${describeImapError(err)}${hint}`, { cause: err });
}

/**
 * Response codes (RFC 5530) of a login turned down for something other than the credentials: too
 * many connections for the user from this address (LIMIT, Dovecot's mail_max_userip_connections),
 * an authentication backend that is down (UNAVAILABLE), ... The same credentials can work a moment
 * later, so these are no refused login: no back-off, no "wrong password".
 */
const TEMPORARY_LOGIN_CODES: ReadonlySet<string> = new Set(['UNAVAILABLE', 'LIMIT', 'INUSE', 'SERVERBUG']);

/** Whether `err` (from connectImap or imapflow) is the server refusing the credentials or token. */
export function isAuthFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const x = e as { authenticationFailed?: boolean; serverResponseCode?: unknown };
    if (x.authenticationFailed === true) return !(typeof x.serverResponseCode === 'string' && TEMPORARY_LOGIN_CODES.has(x.serverResponseCode.toUpperCase()));
  }
  return false;
}

/** A short, secret-free description of an imapflow error. */
export function describeImapError(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { authenticationFailed?: boolean; responseText?: string; code?: string; message?: string; serverResponseCode?: string; oauthError?: unknown };
    if (e.authenticationFailed) {
      const code = e.serverResponseCode?.toUpperCase();
      const said = [code && `[${code}]`, e.responseText].filter(Boolean).join(' ');
      if (code === 'LIMIT') return `the server allows no more connections for this user from this address (${said}); imap.maxConnectionsPerUser must stay within that limit, other clients on this host count too`;
      if (code !== undefined && TEMPORARY_LOGIN_CODES.has(code)) return `login not possible right now, for a reason other than the credentials (${said}); tried again later`;
      // The status of a refused OAuth2 exchange (RFC 7628 section 3.2.2), e.g. invalid_token.
      const status = e.oauthError && typeof e.oauthError === 'object' ? (e.oauthError as { status?: unknown }).status : undefined;
      const oauth = typeof status === 'string' && /^[\w.-]{1,40}$/.test(status) ? `OAuth2 status ${status}` : '';
      const detail = [said, oauth].filter(Boolean).join('; ');
      return `authentication failed${detail ? ` (${detail})` : ''}`;
    }
    const parts = [e.serverResponseCode && `[${e.serverResponseCode}]`, e.responseText ?? e.message, e.code && `(${e.code})`].filter(Boolean);
    if (parts.length > 0) return parts.join(' ');
  }
  return String(err);
}
