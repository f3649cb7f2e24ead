/**
 * One long-lived IMAP connection per account, reused by every reconcile of that account's
 * mailboxes, bounded in total (mail servers cap connections per user and per IP), closed when idle.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from '../log.js';
import { accountKey, type ImapAccount } from './account.js';
import { capabilitiesOf, type ServerCapabilities } from './capabilities.js';
import { connectImap, type ImapServerSettings } from './connect.js';

interface Entry {
  client: ImapFlow | undefined;
  connecting: Promise<ImapFlow> | undefined;
  users: number;
  lastUsed: number;
}

export class ImapPool {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly server: ImapServerSettings,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.closeIdle(), 5_000);
    this.sweeper.unref();
  }

  async withClient<T>(account: ImapAccount, fn: (client: ImapFlow, caps: ServerCapabilities) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('IMAP pool is closed');
    const key = accountKey(account);
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
          entry.client = client;
          client.on('close', () => {
            if (entry.client === client) entry.client = undefined;
          });
          this.log.debug({ account: key, capabilities: capabilitiesOf(client) }, 'imap connected');
          return client;
        })
        .finally(() => {
          entry.connecting = undefined;
        });
    }
    return entry.connecting;
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
