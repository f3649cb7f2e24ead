/**
 * The periodic quota sweep: every account's quota, read on a schedule. Reading after APPENDs alone
 * would miss mail that is not voicemail filling a mailbox, and would never see usage going down
 * (which is what re-arms a threshold). One job of the `quota` queue runs each period's sweep for
 * all processes (workers/quota.ts), accounts a few at a time, one GETQUOTAROOT each on the pooled
 * connection.
 */
import type { FolderSettings } from '../imap/folders.js';
import { rolePaths } from '../imap/folders.js';
import { accountKey, type ImapAccount } from '../imap/account.js';
import type { ImapPool } from '../imap/pool.js';
import { readQuota } from '../imap/quota.js';
import type { Logger } from '../log.js';
import type { BoxInfo, Directory } from '../sync/directory.js';
import type { QuotaWatch } from './watch.js';

export interface SweepDeps {
  readonly directory: Directory;
  readonly imap: ImapPool;
  readonly watch: QuotaWatch;
  readonly folders: FolderSettings;
  readonly log: Logger;
  /** Accounts read at once (each holds one pooled connection while it is read). */
  readonly concurrency: number;
  /** Once aborted, no further account is started (the ones being read finish). */
  readonly signal?: AbortSignal;
}

export interface SweepResult {
  readonly accounts: number;
  /** Accounts whose quota was read. */
  readonly read: number;
  /** Accounts on a server without QUOTA, or without a quota root for the folder. */
  readonly unreadable: number;
  readonly failed: number;
}

export async function sweepQuotas(deps: SweepDeps): Promise<SweepResult> {
  const byAccount = new Map<string, { account: ImapAccount; first: BoxInfo }>();
  for (const box of deps.directory.boxes.values()) {
    const key = accountKey(box.account);
    if (!byAccount.has(key)) byAccount.set(key, { account: box.account, first: box });
  }
  const queue = [...byAccount.values()];
  let read = 0;
  let unreadable = 0;
  let failed = 0;
  const runOne = async (item: { account: ImapAccount; first: BoxInfo }): Promise<void> => {
    try {
      const readings = await deps.imap.withClient(item.account, async (client, caps) => {
        const paths = await rolePaths(client, deps.folders);
        return readQuota(client, caps, paths.inbox);
      });
      if (!readings) {
        unreadable++;
        return;
      }
      read++;
      await deps.watch.evaluate(item.account, readings, undefined, item.first);
    } catch (err) {
      failed++;
      deps.log.warn({ imapUser: item.account.user, err: err instanceof Error ? err.message : String(err) }, 'quota sweep: cannot read this account');
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(deps.concurrency, queue.length)) }, async () => {
    for (let item = queue.shift(); item && !deps.signal?.aborted; item = queue.shift()) await runOne(item);
  });
  await Promise.all(workers);
  return { accounts: byAccount.size, read, unreadable, failed };
}

/**
 * A sweep that read no account because every one it tried failed: the server or Redis is out of
 * reach, and a retry soon is worth it. Some accounts failing (a wrong password, a mailbox gone)
 * is not: a retry would read every account again and fail the same ones.
 */
export function sweepFailed(result: SweepResult): boolean {
  return result.failed > 0 && result.read === 0 && result.unreadable === 0;
}
