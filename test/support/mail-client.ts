/**
 * An independent IMAP session that plays the user's mail client in tests: it sees what any mail
 * client would see, and makes the changes a user would make.
 */
import { ImapFlow } from 'imapflow';

export interface SeenEmail {
  readonly folder: string;
  readonly uid: number;
  readonly flags: ReadonlySet<string>;
  readonly messageId: string;
}

export class MailClient {
  readonly client: ImapFlow;

  private constructor(client: ImapFlow) {
    this.client = client;
  }

  static async open(port: number, user: string, pass: string): Promise<MailClient> {
    const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass }, logger: false, disableAutoIdle: true });
    client.on('error', () => undefined);
    await client.connect();
    return new MailClient(client);
  }

  /** Every message (not flagged \Deleted unless asked) in the named folders that exist. */
  async list(folders: readonly string[], opts: { includeDeleted?: boolean } = {}): Promise<SeenEmail[]> {
    const existing = new Set((await this.client.list()).map((f) => f.path));
    const out: SeenEmail[] = [];
    for (const folder of folders) {
      if (folder !== 'INBOX' && !existing.has(folder)) continue;
      const lock = await this.client.getMailboxLock(folder);
      try {
        await this.client.noop(); // the folder may have stayed selected: take in other sessions' news
        if (!this.client.mailbox || this.client.mailbox.exists === 0) continue;
        for (const m of await this.client.fetchAll('1:*', { uid: true, flags: true, envelope: true }, { uid: true })) {
          const flags = m.flags ?? new Set<string>();
          if (flags.has('\\Deleted') && !opts.includeDeleted) continue;
          out.push({ folder, uid: m.uid, flags, messageId: m.envelope?.messageId ?? '' });
        }
      } finally {
        lock.release();
      }
    }
    return out;
  }

  async source(folder: string, uid: number): Promise<Buffer> {
    const lock = await this.client.getMailboxLock(folder);
    try {
      const m = await this.client.fetchOne(String(uid), { source: true }, { uid: true });
      if (!m || !m.source) throw new Error(`no UID ${uid} in ${folder}`);
      return m.source;
    } finally {
      lock.release();
    }
  }

  async close(): Promise<void> {
    await this.client.logout().catch(() => this.client.close());
  }
}

export const VOICEMAIL_FOLDERS = ['INBOX', 'Work', 'Family', 'Friends'] as const;
