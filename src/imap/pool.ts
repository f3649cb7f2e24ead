/**
 * One long-lived IMAP connection per account, reused by every reconcile of that account's
 * mailboxes, bounded in total (mail servers cap connections per user and per IP), closed when idle.
 */
import type { ImapFlow } from 'imapflow';
import { ImapAuthBackoffError } from '../errors.js';
import type { Logger } from '../log.js';
import { accountKey, type ImapAccount } from './account.js';
import { capabilitiesOf, type ServerCapabilities } from './capabilities.js';
import { connectImap, isAuthFailure, type ImapServerSettings } from './connect.js';

interface Entry {
  client: ImapFlow | undefined;
  connecting: Promise<ImapFlow> | undefined;
  users: number;
  lastUsed: number;
}

/** An account whose login the server refused: not tried again before `until`. */
interface AuthBackoff {
  failures: number;
  until: number;
  reason: string;
}

export interface AuthBackoffOptions {
  /** Wait after the first refused login. Default 60 s. */
  readonly initialMs?: number;
  /** The wait doubles per refused login up to this. Default 15 min. */
  readonly maxMs?: number;
}

export class ImapPool {
  private readonly entries = new Map<string, Entry>();
  /** Kept apart from `entries`, which are dropped when idle: the back-off must outlive them. */
  private readonly refused = new Map<string, AuthBackoff>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private closed = false;

  constructor(
    private readonly server: ImapServerSettings,
    private readonly log: Logger,
    backoff: AuthBackoffOptions = {},
  ) {
    this.backoffInitialMs = backoff.initialMs ?? 60_000;
    this.backoffMaxMs = backoff.maxMs ?? 15 * 60_000;
    this.sweeper = setInterval(() => this.closeIdle(), 5_000);
    this.sweeper.unref();
  }

  async withClient<T>(account: ImapAccount, fn: (client: ImapFlow, caps: ServerCapabilities) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('IMAP pool is closed');
    const key = accountKey(account);
    const refused = this.refused.get(key);
    // Every retry of a refused login would be refused again, and servers lock accounts that try.
    if (refused && Date.now() < refused.until) throw new ImapAuthBackoffError(account.user, new Date(refused.until), refused.reason);
    let entry = this.entries.get(key);
    if (!entry) {
      await this.makeRoom();
      entry = this.entries.get(key) ?? { client: undefined, connecting: undefined, users: 0, lastUsed: Date.now() };
      this.entries.set(key, entry);
    }
    entry.users++;
    try {
      const client = await this.clientFor(key, entry, account);
      return await fn(client, capabilitiesOf(client));
    } finally {
      entry.users--;
      entry.lastUsed = Date.now();
    }
  }

  private async clientFor(key: string, entry: Entry, account: ImapAccount): Promise<ImapFlow> {
    if (entry.client?.usable) return entry.client;
    if (!entry.connecting) {
      entry.connecting = connectImap(this.server, account)
        .then((client) => {
          this.refused.delete(key);
          entry.client = client;
          client.on('close', () => {
            if (entry.client === client) entry.client = undefined;
          });
          this.log.debug({ account: key, capabilities: capabilitiesOf(client) }, 'imap connected');
          return client;
        })
        .catch((err: unknown) => {
          if (isAuthFailure(err)) this.noteRefused(key, account, err);
          throw err;
        })
        .finally(() => {
          entry.connecting = undefined;
        });
    }
    return entry.connecting;
  }

  /** Starts or lengthens the account's back-off, and logs it once for the whole wait. */
  private noteRefused(key: string, account: ImapAccount, err: unknown): void {
    const failures = (this.refused.get(key)?.failures ?? 0) + 1;
    const wait = Math.min(this.backoffInitialMs * 2 ** Math.min(failures - 1, 30), this.backoffMaxMs);
    const until = Date.now() + wait;
    const reason = err instanceof Error ? err.message.replace(`${account.user}: `, '') : String(err);
    this.refused.set(key, { failures, until, reason });
    this.log.warn({ account: key, failures, retryAt: new Date(until).toISOString(), reason }, 'imap login refused; not tried again until retryAt');
  }

  /** Waits until a connection may be opened, closing the least recently used idle one if needed. */
  private async makeRoom(): Promise<void> {
    for (;;) {
      if (this.entries.size < this.server.maxConnections) return;
      const idle = [...this.entries].filter(([, e]) => e.users === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      if (idle) {
        this.drop(idle[0]);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    entry?.client?.logout().catch(() => entry.client?.close());
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.server.idleCloseSeconds * 1000;
    for (const [key, e] of this.entries) if (e.users === 0 && e.lastUsed < cutoff) this.drop(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map(async (e) => {
      const client = e.client ?? (await e.connecting?.catch(() => undefined));
      await client?.logout().catch(() => client.close());
    }));
  }
}
