/**
 * Phase 4, publish: the counts the lamps must show (the store as the whole plan left it), told to
 * whoever follows the reconcile (the quota watch), and the IMAP account the records now belong to.
 * The lamps themselves are published by the caller from the result's counts (src/mwi/publisher.ts).
 */
import { mwiCounts, type MwiCounts } from '../../mwi/counts.js';
import type { Op } from '../plan.js';
import type { Applied, ImapView, MailboxRun, StoreView } from './types.js';

export async function publish(run: MailboxRun, store: StoreView, imap: ImapView, ops: readonly Op[], applied: Applied): Promise<MwiCounts | undefined> {
  const counts = await finalCounts(run, store, ops);
  for (const follower of run.deps.followers ?? []) {
    await follower.afterReconcile({
      client: imap.client,
      caps: imap.caps,
      box: run.box,
      inboxPath: imap.paths.inbox,
      counts,
      appended: applied.appended,
      waiting: applied.skipped.filter((s) => s.op.kind === 'append').length,
      ...(applied.refused !== undefined ? { refused: applied.refused } : {}),
    });
  }
  // Records made for another account stay marked so (imap-replaced) until the change is accepted.
  if (!imap.accountChanged && imap.lastAccount !== imap.account) await run.deps.state.setAccount(run.box.ref, imap.account);
  return counts;
}

/**
 * MWI counts after the whole plan: the look's when no op touched the store, else a fresh read.
 * A fresh read that does not settle gives no counts (MWI is never published from a guess).
 */
async function finalCounts(run: MailboxRun, store: StoreView, ops: readonly Op[]): Promise<MwiCounts | undefined> {
  if (!ops.some((op) => op.kind === 'move-voicemail' || op.kind === 'delete-voicemail')) return mwiCounts(store.snapshot);
  const after = await run.deps.store.readMailbox(store.snapshot.ref);
  if (after.settled) return mwiCounts(after);
  run.log.info('spool still changing after the plan; MWI waits for the next reconcile');
  return undefined;
}
