/**
 * Hearing about mail-client changes within a second or two: one IMAP connection per account sits
 * in IDLE on the inbox folder (RFC 2177) and reports "this account may have changed" whenever the
 * server says a message arrived (EXISTS), left (EXPUNGE: deleted, moved to Trash or to Work) or had
 * its flags changed (FETCH FLAGS: read, unread, flagged).
 *
 * - IDLE blocks its connection, so these are separate from the pool's command connections.
 * - The folder is opened read-only (EXAMINE): watching must never change \Recent or expunge.
 * - The number of accounts is bounded (imap.idle.maxAccounts): thousands of mailboxes must not mean
 *   thousands of idle connections. Accounts beyond the bound are found by the periodic sweep (or
 *   Dovecot push).
 * - Where the server has NOTIFY (RFC 5465; Dovecot does), the same session also hears changes in
 *   Work, Family and Friends (imap.idle.notify); elsewhere changes made inside those folders are
 *   found by the sweep.
 * - Dropped connections come back with capped exponential backoff; after a reconnect the account
 *   is reported once, as changes made meanwhile were not heard.
 * - A refused login (wrong password, expired token) is not retried on that schedule: the watcher
 *   shares the command pool's login back-off (LoginBackoff, 60 s doubling to 15 min), so a refusal
 *   by either holds both off, is logged once, and new credentials end it for both. The login is
 *   checked as the pool's is (checkLogin: no plain-LOGIN fallback for an authzid master login).
 * - Dovecot tells an IDLE session about other sessions' changes after about half a second.
 */
import { ImapFlow } from 'imapflow';
import { ImapAuthBackoffError } from '../errors.js';
import type { Logger } from '../log.js';
import { accountKey, type ImapAccount } from './account.js';
import { checkLogin, describeImapError, imapOptions, isAuthFailure, loginError, type ImapServerSettings } from './connect.js';
import type { ConnectionLimiter, ConnectionSlot } from './connection-limiter.js';
import { rolePaths } from './folders.js';
import { LoginBackoff } from './login-backoff.js';
import { isOwnEcho, onOwnAppend } from './own-echoes.js';
import { notifyOtherFolders } from './notify-set.js';

export interface IdleWatcherOptions {
  readonly server: ImapServerSettings;
  /** Accounts watched at most; 0 watches none. */
  readonly maxAccounts: number;
  readonly log: Logger;
  /** Called with the account key whenever something in its inbox folder may have changed. */
  readonly onChange: (account: string) => void;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  /**
   * The command pool's limiter (ImapPool.limiter): each IDLE connection then takes a slot there
   * before it connects and gives it back once closed, so it counts against
   * imap.maxConnectionsPerUser, and waits while that is reached.
   */
  readonly limiter?: ConnectionLimiter;
  /**
   * The command pool's login back-off (ImapPool.logins): a login refused by the pool or by the
   * watcher holds both off until it ends, and a changed password or token ends it for both.
   * Without one the watcher keeps its own, with the same waits.
   */
  readonly logins?: LoginBackoff;
}

/**
 * Picks the accounts to watch among `keys`, at most `slots` of them, given those `watched` now
 * (./idle-choice.ts chooseIdle).
 */
export type IdleChoice = (keys: readonly string[], watched: ReadonlySet<string>, slots: number) => readonly string[];

interface Watch {
  readonly key: string;
  account: ImapAccount;
  client: ImapFlow | undefined;
  stopped: boolean;
  wake: (() => void) | undefined;
  done: Promise<void> | undefined;
  /** Stops a wait for a connection slot. */
  readonly abort: AbortController;
  /** The folder the session watches, once it is open. */
  folder: string | undefined;
  /** Reports a possible change of the account (while the watch runs). */
  changed: (() => void) | undefined;
  /** vmbridge appended while the watch had no folder open. */
  missed?: boolean;
  /** The look that follows vmbridge's own APPENDs (see followUp). */
  followUp?: { timer: NodeJS.Timeout; first: number };
}

/** IDLE is broken and restarted this often, well inside every server's and proxy's idle limit. */
const IDLE_RESTART_MS = 60_000;
/**
 * After vmbridge's own APPEND (and after an echo that comes when no look is due), one look this long after the last of them (at
 * most FOLLOW_UP_MAX_MS after the first, so a long import is looked at as it goes). Twice the
 * delay with which Dovecot tells an IDLE session of another session's change (~0.5 s): by then
 * the session has either taken the email into its view, and hears whatever happens to it next, or
 * the email came and went unseen, which the look finds.
 */
export const FOLLOW_UP_MS = 1_000;
const FOLLOW_UP_MAX_MS = 10_000;

export class IdleWatcher {
  private readonly watches = new Map<string, Watch>();
  private readonly logins: LoginBackoff;
  private readonly stopListening: () => void;
  private readonly stopAppends: () => void;
  private warnedBeyond = false;
  private closed = false;

  constructor(private readonly opts: IdleWatcherOptions) {
    this.logins = opts.logins ?? new LoginBackoff(opts.server, opts.log);
    // A login that worked (the pool's, with a corrected password or a new token) ended a back-off
    // this account's watch may be waiting out: it connects now.
    this.stopListening = this.logins.onCleared((key) => this.watches.get(key)?.wake?.());
    this.stopAppends = onOwnAppend((account, path) => {
      const w = this.watches.get(account);
      if (!w) return;
      if (w.changed && w.folder === path) this.followUp(w, w.changed);
      // A watch not yet in its folder cannot have heard it: it reports the account when it gets there.
      else if (!w.changed) w.missed = true;
    });
  }

  /** Accounts being watched now (for tests and health). */
  get watching(): readonly string[] {
    return [...this.watches.keys()];
  }

  /**
   * Watches the accounts `choose` picks among these (at most maxAccounts; the first by name if no
   * choice is given), stops watching the others. Called at start, after voicemail.conf is
   * reloaded, and when the choice by need is made again (./idle-choice.ts). The choice is told
   * which accounts are watched now, so that it can leave them be.
   */
  update(accounts: Iterable<ImapAccount>, choose?: IdleChoice): void {
    if (this.closed) return;
    const byKey = new Map<string, ImapAccount>();
    for (const a of accounts) byKey.set(accountKey(a), a);
    const keys = [...byKey.keys()];
    const picked = choose ? choose(keys, new Set(this.watches.keys()), this.opts.maxAccounts) : keys.sort();
    // Only accounts given here, and never more than the bound, whatever the choice returned.
    const wanted = new Set(picked.filter((k) => byKey.has(k)).slice(0, this.opts.maxAccounts));
    if (keys.length > wanted.size && !this.warnedBeyond && this.opts.maxAccounts > 0) {
      this.warnedBeyond = true;
      this.opts.log.info({ accounts: keys.length, watched: wanted.size, setting: 'imap.idle.maxAccounts' }, 'more accounts than IDLE connections: the others are found by the sweep');
    }
    for (const [key, w] of this.watches) {
      if (!wanted.has(key)) void this.stop(w);
    }
    for (const key of wanted) {
      const account = byKey.get(key)!;
      const existing = this.watches.get(key);
      if (existing) {
        const changed = existing.account.password !== account.password;
        existing.account = account; // a changed password is used at the next reconnect
        // ...at once if the watch is waiting (after a refused login, say): it may work now.
        if (changed) existing.wake?.();
        continue;
      }
      const w: Watch = { key, account, client: undefined, stopped: false, wake: undefined, done: undefined, abort: new AbortController(), folder: undefined, changed: undefined };
      this.watches.set(key, w);
      w.done = this.run(w);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopListening();
    this.stopAppends();
    await Promise.all([...this.watches.values()].map((w) => this.stop(w)));
  }

  /** Debounces the look that follows own APPENDs and their echoes: FOLLOW_UP_MS after the last, FOLLOW_UP_MAX_MS after the first. */
  private followUp(w: Watch, changed: () => void): void {
    const now = Date.now();
    const first = w.followUp?.first ?? now;
    if (w.followUp) clearTimeout(w.followUp.timer);
    const delay = Math.max(0, Math.min(FOLLOW_UP_MS, first + FOLLOW_UP_MAX_MS - now));
    const timer = setTimeout(() => {
      w.followUp = undefined;
      changed();
    }, delay);
    timer.unref();
    w.followUp = { timer, first };
  }

  private async stop(w: Watch): Promise<void> {
    w.stopped = true;
    if (w.followUp) clearTimeout(w.followUp.timer);
    if (this.watches.get(w.key) === w) this.watches.delete(w.key);
    w.wake?.();
    w.abort.abort();
    const client = w.client;
    // logout() breaks IDLE (DONE) and ends the session; close() if the server does not answer.
    if (client) await client.logout().catch(() => client.close());
    await w.done;
  }

  private async run(w: Watch): Promise<void> {
    const log = this.opts.log.child({ account: w.key });
    let attempt = 0;
    let connectedBefore = false;
    /** A failure other than a refused login was logged at warn since the last session. */
    let warned = false;
    while (!w.stopped) {
      let slot: ConnectionSlot | undefined;
      /** Set while the account waits out a refused login: no login before then. */
      let backoffUntil: number | undefined;
      try {
        // An account in back-off waits here, holding no connection slot.
        await this.logins.check(w.account);
        slot = await this.opts.limiter?.acquire(w.account.user, 'idle', w.abort.signal);
        if (w.stopped) break;
        const account = w.account;
        const client = new ImapFlow({ ...(await imapOptions(this.opts.server, account)), maxIdleTime: IDLE_RESTART_MS });
        w.client = client;
        client.on('error', () => undefined); // the close that follows is what counts
        const changed = (): void => {
          if (!w.stopped) this.opts.onChange(w.key);
        };
        // An EXISTS that vmbridge's own APPENDs explain needs no reconcile at once (see
        // own-echoes.ts): the look after the APPEND is on its way, or follows if it came already.
        // Not none: a mail client may have marked the new email read before this session took it
        // into its view, and then the EXISTS is all this session is ever told.
        client.on('exists', (event: { path: string; count: number }) => {
          if (isOwnEcho(w.key, event.path, event.count)) {
            if (!w.followUp) this.followUp(w, changed);
          } else {
            changed();
          }
        });
        client.on('expunge', changed);
        client.on('flags', changed);
        // One login of the account at a time, pool or watcher; a refusal starts the shared back-off.
        await this.logins.attempt(account, async () => {
          try {
            await client.connect();
          } catch (err) {
            throw loginError(this.opts.server, account, err);
          }
          // As the pool does: an authzid master login that fell back to a plain LOGIN (the master
          // user's own mailbox) is logged out and refused before anything is read.
          await checkLogin(client, account);
        });
        if (w.stopped) break;
        const paths = await rolePaths(client, this.opts.server.folders);
        const inbox = paths.inbox;
        await client.mailboxOpen(inbox, { readOnly: true });
        w.folder = inbox;
        w.changed = changed;
        // With NOTIFY the same session also hears Work, Family and Friends (./notify-set.ts).
        const others = [paths.work, paths.family, paths.friends].filter((p) => p !== inbox);
        const notified = this.opts.server.idle.notify && (await notifyOtherFolders(client, others, changed));
        log.debug({ folder: inbox, ...(notified ? { notify: others } : {}) }, 'IDLE watching');
        attempt = 0;
        warned = false;
        // Changes made while the connection was down were not heard.
        if (connectedBefore || w.missed) changed();
        w.missed = false;
        connectedBefore = true;
        // idle() returns when IDLE is broken (by a command, or the connection ending); without a
        // selected folder it would return at once, so that ends the session too.
        while (!w.stopped && client.usable && client.mailbox) {
          await client.idle();
        }
      } catch (err) {
        if (w.stopped) {
          // stopping: nothing to report
        } else if (err instanceof ImapAuthBackoffError) {
          backoffUntil = err.retryAt.getTime();
          log.debug({ retryAt: err.retryAt.toISOString() }, 'IDLE waits: the login was refused, not tried again before retryAt unless the password or token changes');
        } else if (isAuthFailure(err)) {
          // Logged once by the shared back-off, which now holds the pool off too.
          backoffUntil = this.logins.retryAt(w.account)?.getTime();
        } else {
          log[warned ? 'debug' : 'warn']({ err: describeImapError(err), attempt }, 'IDLE connection failed; retrying');
          warned = true;
        }
      } finally {
        const client = w.client;
        w.client = undefined;
        w.folder = undefined;
        w.changed = undefined;
        if (client?.usable) await client.logout().catch(() => client.close());
        // Closed for certain (after LOGOUT too) before the slot is given back.
        client?.close();
        slot?.release();
      }
      if (w.stopped) break;
      attempt++;
      const cap = Math.min(this.opts.maxDelayMs ?? 60_000, (this.opts.initialDelayMs ?? 1_000) * 2 ** (attempt - 1));
      let delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
      // During a login back-off a wake-up costs no login (check() says "not yet" unless the
      // password or token file changed, or the pool's login ended the back-off, which wakes this
      // at once); its end is not overslept.
      if (backoffUntil !== undefined) delay = Math.min(delay, Math.max(0, backoffUntil - Date.now()));
      await this.sleep(w, delay);
    }
  }

  private sleep(w: Watch, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        w.wake = undefined;
        resolve();
      }
      w.wake = done;
    });
  }
}
