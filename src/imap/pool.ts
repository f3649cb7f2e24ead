/**
 * One long-lived IMAP command connection per account, reused by every reconcile of that account's
 * mailboxes and closed when idle. Mail servers cap connections per user and per client address,
 * so the connections are bounded (see ConnectionLimiter, shared with the IDLE watcher):
 * imap.maxConnections command connections to the server (one server per settings file) and
 * imap.maxConnectionsPerUser per user, IDLE included. A request beyond a bound waits for a slot;
 * when the server bound is what it waits for, the least recently used unused connection is closed.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from '../log.js';
import { accountKey, type ImapAccount } from './account.js';
import { capabilitiesOf, type ServerCapabilities } from './capabilities.js';
import { connectImap, type ImapServerSettings } from './connect.js';
import { ConnectionLimiter, type ConnectionSlot } from './connection-limiter.js';
import { LoginBackoff, type AuthBackoffOptions } from './login-backoff.js';

export type { AuthBackoffOptions } from './login-backoff.js';

interface Entry {
  client: ImapFlow | undefined;
  connecting: Promise<ImapFlow> | undefined;
  users: number;
  lastUsed: number;
}

/** A logout that gets no answer within this long is cut short, so its slot is not held. */
const LOGOUT_TIMEOUT_MS = 10_000;

/** Logs out, or closes if the server does not answer; resolves once the socket is closed. */
async function closeClient(client: ImapFlow): Promise<void> {
  if (client.usable) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.logout().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, LOGOUT_TIMEOUT_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
  // After LOGOUT the server closes its end; closing ours too makes 'close' (and the slot) certain.
  client.close();
}

export class ImapPool {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  /**
   * Accounts whose login the server refused, and when they may be tried again; kept apart from
   * `entries`, which are dropped when idle. The IDLE watcher shares it (IdleWatcherOptions.logins).
   */
  readonly logins: LoginBackoff;
  /** Slots for every connection to the server; the IDLE watcher takes its slots here too. */
  readonly limiter: ConnectionLimiter;
  /** Unused connections closed to make room whose sockets are not closed yet. */
  private evicting = 0;
  private closed = false;

  constructor(
    private readonly server: ImapServerSettings,
    private readonly log: Logger,
    backoff: AuthBackoffOptions = {},
  ) {
    this.logins = new LoginBackoff(server, log, backoff);
    this.limiter = new ConnectionLimiter({
      perServer: server.maxConnections,
      perServerIdle: server.idle.maxAccounts,
      perUser: server.maxConnectionsPerUser,
    });
    this.sweeper = setInterval(() => this.closeIdle(), 5_000);
    this.sweeper.unref();
  }

  async withClient<T>(account: ImapAccount, fn: (client: ImapFlow, caps: ServerCapabilities) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('IMAP pool is closed');
    const key = accountKey(account);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { client: undefined, connecting: undefined, users: 0, lastUsed: Date.now() };
      this.entries.set(key, entry);
    }
    entry.users++;
    try {
      const client = await this.clientFor(key, entry, account);
      return await fn(client, capabilitiesOf(client));
    } finally {
      entry.users--;
      entry.lastUsed = Date.now();
      // Someone waits for a server slot: an unused connection is the one to give up.
      if (entry.users === 0) this.makeRoom();
    }
  }

  private async clientFor(key: string, entry: Entry, account: ImapAccount): Promise<ImapFlow> {
    if (entry.client?.usable) return entry.client;
    if (!entry.connecting) {
      entry.connecting = this.open(key, entry, account).finally(() => {
        entry.connecting = undefined;
      });
    }
    return entry.connecting;
  }

  private async open(key: string, entry: Entry, account: ImapAccount): Promise<ImapFlow> {
    // A client that is no longer usable may still hold its socket (and slot): let it go first.
    const stale = entry.client;
    entry.client = undefined;
    if (stale) void closeClient(stale);
    // Every retry of a refused login would be refused again, and servers lock accounts that try:
    // during the back-off (started by this pool or the IDLE watcher) this throws
    // ImapAuthBackoffError at once, before a slot is taken (or another connection closed for one).
    await this.logins.check(account);
    const slot = await this.slotFor(account);
    let client: ImapFlow;
    try {
      client = await this.logins.attempt(account, () => connectImap(this.server, account));
    } catch (err) {
      slot.release();
      throw err;
    }
    client.on('close', () => {
      slot.release();
      if (entry.client === client) entry.client = undefined;
    });
    // Closed between connect and here (the 'close' event is gone): give the slot back now.
    if (!client.usable) slot.release();
    if (this.closed) {
      // close() ran while the connection was being made, and could not see it.
      void closeClient(client);
      throw new Error('IMAP pool is closed');
    }
    entry.client = client;
    this.log.debug({ account: key, capabilities: capabilitiesOf(client) }, 'imap connected');
    return client;
  }

  /** A command connection slot for the account, waiting for one when a bound is reached. */
  private async slotFor(account: ImapAccount): Promise<ConnectionSlot> {
    const now = this.limiter.tryAcquire(account.user, 'command');
    if (now) return now;
    const waiting = this.limiter.acquire(account.user, 'command');
    this.makeRoom();
    const started = Date.now();
    this.log.debug({ account: accountKey(account), open: this.limiter.open(account.user), total: this.limiter.open() }, 'imap connection limit reached; waiting for a slot');
    const slot = await waiting;
    this.log.debug({ account: accountKey(account), waitedMs: Date.now() - started }, 'imap connection slot free');
    return slot;
  }

  /**
   * While requests wait for a server slot, closes the least recently used connections no one is
   * using, one per waiter (less those already closing): their 'close' hands the slots on.
   */
  private makeRoom(): void {
    while (this.limiter.commandsBlockedByServer() > this.evicting) {
      let oldest: [string, Entry] | undefined;
      for (const item of this.entries) {
        const e = item[1];
        if (e.users === 0 && e.client && (!oldest || e.lastUsed < oldest[1].lastUsed)) oldest = item;
      }
      if (!oldest) return;
      this.evicting++;
      this.drop(oldest[0], () => this.evicting--);
    }
  }

  private drop(key: string, closed?: () => void): void {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    if (entry?.client) void closeClient(entry.client).finally(closed);
    else closed?.();
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.server.idleCloseSeconds * 1000;
    for (const [key, e] of this.entries) if (e.users === 0 && e.lastUsed < cutoff) this.drop(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    this.limiter.close(new Error('IMAP pool is closed'));
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map(async (e) => {
      const client = e.client ?? (await e.connecting?.catch(() => undefined));
      if (client) await closeClient(client);
    }));
  }
}
