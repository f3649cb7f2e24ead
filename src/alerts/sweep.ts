/**
 * The periodic quota sweep: every account's quota, read on a schedule. Reading after APPENDs alone
 * would miss mail that is not voicemail filling a mailbox, and would never see usage going down
 * (which is what re-arms a threshold). One process of any number runs each period's sweep (a
 * Redis claim), accounts a few at a time, one GETQUOTAROOT each on the pooled connection.
 */
import type { FolderSettings } from '../imap/folders.js';
import { rolePaths } from '../imap/folders.js';
import { accountKey, type ImapAccount } from '../imap/account.js';
import type { ImapPool } from '../imap/pool.js';
import { readQuota } from '../imap/quota.js';
import type { Logger } from '../log.js';
import type { BoxInfo, Directory } from '../sync/directory.js';
import type { AlertState } from './state.js';
import type { QuotaWatch } from './watch.js';

export interface SweepDeps {
  readonly directory: Directory;
  readonly imap: ImapPool;
  readonly watch: QuotaWatch;
  readonly folders: FolderSettings;
  readonly log: Logger;
  /** Accounts read at once (each holds one pooled connection while it is read). */
  readonly concurrency: number;
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
    for (let item = queue.shift(); item; item = queue.shift()) await runOne(item);
  });
  await Promise.all(workers);
  return { accounts: byAccount.size, read, unreadable, failed };
}

export interface QuotaSweepTimer {
  stop(): void;
}

/** Runs `sweep` every `seconds`, in the one process that claims the period, never twice at once. */
export function startQuotaSweep(seconds: number, state: AlertState, sweep: () => Promise<SweepResult>, log: Logger): QuotaSweepTimer {
  const periodMs = seconds * 1000;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    state
      .claimSweep(periodMs)
      .then(async (mine) => {
        if (!mine) return;
        const started = performance.now();
        const result = await sweep();
        log.debug({ ...result, ms: Math.round(performance.now() - started) }, 'quota sweep done');
      })
      .catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'quota sweep failed'))
      .finally(() => {
        running = false;
      });
  }, periodMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
