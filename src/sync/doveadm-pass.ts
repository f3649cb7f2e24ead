/**
 * Beside Dovecot: before each pass over every mailbox, the status of every user's folders from
 * one doveadm API call, kept for the reconcile workers (./folder-status-snapshot.ts).
 */
import type { Settings } from '../config/schema.js';
import { allFolderStatuses } from '../imap/doveadm.js';
import type { Logger } from '../log.js';
import type { FolderStatusSnapshot } from './folder-status-snapshot.js';

/**
 * Takes the doveadm snapshot before a pass. A failure is logged (once a run for the same reason)
 * and the pass goes on with IMAP logins, as without doveadm. True: this pass has a fresh snapshot.
 */
export function folderStatusTaker(settings: Settings, snapshot: FolderStatusSnapshot, log: Logger): () => Promise<boolean> {
  const d = settings.imap.doveadm!;
  // Kept until the next pass replaces it; a stopped sweep lets it lapse.
  const ttlMs = Math.max(600, 2 * settings.spool.sweepSeconds) * 1000;
  let lastProblem = '';
  return async () => {
    const at = Date.now();
    try {
      const byUser = await allFolderStatuses({ url: d.url, apiKey: d.apiKey ?? '', timeoutMs: d.timeoutSeconds * 1000, tls: d.tls });
      await snapshot.write(byUser, at, ttlMs);
      log.info({ users: byUser.size, ms: Date.now() - at }, 'folder status of every user taken from the doveadm API');
      lastProblem = '';
      return true;
    } catch (err) {
      // An older snapshot would hide this pass's changes until the next one: none is better.
      await snapshot.clear().catch(() => undefined);
      const problem = err instanceof Error ? err.message : String(err);
      if (problem !== lastProblem) log.warn({ err: problem, setting: 'imap.doveadm' }, 'doveadm API not usable for this pass; quiet mailboxes are looked at over IMAP');
      lastProblem = problem;
      return false;
    }
  };
}

