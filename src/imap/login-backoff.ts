/**
 * The refused-login back-off of every IMAP connection to one server, command (ImapPool) and IDLE
 * (IdleWatcher) alike: the pool owns one and hands it to the IDLE watcher. A login the server
 * refuses (wrong password, expired or revoked OAuth2 token) puts the account in back-off for both,
 * 60 s doubling up to 15 min, logged once per refusal; a retry during the wait fails at once with
 * ImapAuthBackoffError and never reaches the server, whichever connection makes it. A changed
 * password or a rewritten token file is tried at once, and a login that works ends the back-off
 * for both. Logins of one account run one at a time, so a refusal is seen by the next attempt
 * instead of being repeated by a second connection that started at the same moment.
 *
 * A login turned down for too many connections ([LIMIT]) or a passing server problem
 * ([UNAVAILABLE]) is not a refusal (connect.ts isAuthFailure): no back-off.
 */
import { createHash } from 'node:crypto';
import { ImapAuthBackoffError, ImapError } from '../errors.js';
import type { Logger } from '../log.js';
import { accountKey, type ImapAccount } from './account.js';
import { describeImapError, isAuthFailure, type ImapServerSettings } from './connect.js';
import { readTokenFile } from './oauth-token.js';

export interface AuthBackoffOptions {
  /** Wait after the first refused login. Default 60 s. */
  readonly initialMs?: number;
  /** The wait doubles per refused login up to this. Default 15 min. */
  readonly maxMs?: number;
}

/** An account whose login the server refused: not tried again before `until`. */
interface Refused {
  failures: number;
  until: number;
  reason: string;
  /** Hash of the refused password or token; another one is tried at once. Undefined: unknown. */
  credential: string | undefined;
  /** A changed password or token was noticed (and logged) already. */
  changeNoticed: boolean;
}

export class LoginBackoff {
  private readonly refused = new Map<string, Refused>();
  /** Per account, the end of the last login attempt in line: attempts run one at a time. */
  private readonly inLine = new Map<string, Promise<void>>();
  private readonly cleared = new Set<(account: string) => void>();
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly server: ImapServerSettings,
    private readonly log: Logger,
    opts: AuthBackoffOptions = {},
  ) {
    this.initialMs = opts.initialMs ?? 60_000;
    this.maxMs = opts.maxMs ?? 15 * 60_000;
  }

  /** When the account's back-off ends, if it is in one now. */
  retryAt(account: ImapAccount): Date | undefined {
    const r = this.refused.get(accountKey(account));
    return r && Date.now() < r.until ? new Date(r.until) : undefined;
  }

  /**
   * Calls `listener` with the account key when a login that works ends an account's back-off
   * (a corrected password or a new token); returns the function that stops it.
   */
  onCleared(listener: (account: string) => void): () => void {
    this.cleared.add(listener);
    return () => this.cleared.delete(listener);
  }

  /**
   * Throws ImapAuthBackoffError while the account waits after a refused login, unless its password
   * or token changed since. Nothing is sent to the server. Cheap enough to call before taking a
   * connection slot, so a request that would be turned away at once never waits for one.
   */
  async check(account: ImapAccount): Promise<void> {
    await this.credentialIfAllowed(account);
  }

  /**
   * Runs `login` (connect and log in) for the account once any other login of it has finished and
   * only if the back-off allows it (check()); a refusal starts or lengthens the back-off, a login
   * that works ends it. `login`'s errors are passed on.
   */
  async attempt<T>(account: ImapAccount, login: () => Promise<T>): Promise<T> {
    const key = accountKey(account);
    const before = this.inLine.get(key);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    this.inLine.set(key, mine);
    try {
      await before;
      const credential = await this.credentialIfAllowed(account);
      let result: T;
      try {
        result = await login();
      } catch (err) {
        if (isAuthFailure(err)) this.noteRefused(key, account, err, credential);
        throw err;
      }
      if (this.refused.delete(key)) for (const listener of this.cleared) listener(key);
      return result;
    } finally {
      done();
      if (this.inLine.get(key) === mine) this.inLine.delete(key);
    }
  }

  /** The credential's hash for a login the back-off allows now; throws ImapAuthBackoffError if none. */
  private async credentialIfAllowed(account: ImapAccount): Promise<string | undefined> {
    const key = accountKey(account);
    const refused = this.refused.get(key);
    const credential = await this.credentialOf(account).catch(() => undefined);
    if (!refused || Date.now() >= refused.until) return credential;
    if (credential !== undefined && refused.credential !== undefined && credential !== refused.credential) {
      if (!refused.changeNoticed) this.log.info({ account: key }, 'imap login refused before, but the password or token has changed: trying it now');
      refused.changeNoticed = true;
      return credential;
    }
    throw new ImapAuthBackoffError(account.user, new Date(refused.until), refused.reason);
  }

  /**
   * A hash of what the next login would present, where it can be had without side effects: the
   * password, or the token file (a token command is not run just to compare). Never logged.
   */
  private async credentialOf(account: ImapAccount): Promise<string | undefined> {
    const login = this.server.login;
    let secret: string | undefined;
    if (login.mode === 'oauth2') secret = login.tokenFile !== undefined ? await readTokenFile(login.tokenFile, account.user) : undefined;
    else if (login.mode === 'master') secret = login.masterPassword;
    else secret = account.password;
    return secret === undefined ? undefined : createHash('sha256').update(`${login.mode}\0${account.user}\0${secret}`).digest('hex');
  }

  /** Starts or lengthens the account's back-off, and logs it once for the whole wait. */
  private noteRefused(key: string, account: ImapAccount, err: unknown, credential: string | undefined): void {
    const failures = (this.refused.get(key)?.failures ?? 0) + 1;
    const wait = Math.min(this.initialMs * 2 ** Math.min(failures - 1, 30), this.maxMs);
    const until = Date.now() + wait;
    const reason = err instanceof ImapError ? err.message.replace(`${account.user}: `, '') : describeImapError(err);
    this.refused.set(key, { failures, until, reason, credential, changeNoticed: false });
    this.log.warn(
      { account: key, failures, retryAt: new Date(until).toISOString(), reason },
      `imap login refused; not tried again until retryAt${credential !== undefined ? ' unless its password or token changes' : ''}`,
    );
  }
}
