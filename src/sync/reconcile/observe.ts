/**
 * Phase 1, observe: the store as it is (only a look that held still counts), IMAP as it is, and
 * the records of the last agreement. The records load while IMAP is looked at: neither waits for
 * the other's round trips.
 */
import type { ImapFlow } from 'imapflow';
import { SpoolBusyError } from '../../errors.js';
import { accountKey } from '../../imap/account.js';
import type { ServerCapabilities } from '../../imap/capabilities.js';
import { rolePaths } from '../../imap/folders.js';
import { observeImap } from '../../imap/observe.js';
import { isNewFinding } from '../../spool/report-once.js';
import { isSyncedSpoolFolder, mailboxKey, type SpoolMessage } from '../../spool/types.js';
import { adoptLegacyIds } from '../legacy-ids.js';
import { withAsteriskCopies } from '../shared-extension.js';
import type { SpoolSide } from '../plan.js';
import type { ImapView, MailboxRun, ReconcileOptions, StoreView } from './types.js';

export async function observeStore(run: MailboxRun): Promise<StoreView> {
  const { box, log } = run;
  const snapshot = await run.deps.store.readMailbox(box.ref);
  // A view taken while Asterisk was moving files could miss a message and make it look deleted.
  if (!snapshot.settled) throw new SpoolBusyError(mailboxKey(box.ref));
  for (const p of snapshot.problems) log.warn({ file: p.path, problem: p.problem }, 'spool file skipped');
  for (const w of snapshot.warnings ?? []) {
    if (isNewFinding(w.path, w.problem)) log.warn({ file: w.path, problem: w.problem }, 'spool file partly read; the rest of it is used');
  }
  const messages = new Map<string, SpoolMessage>();
  const sides = new Map<string, SpoolSide[]>();
  for (const m of snapshot.messages) {
    if (!isSyncedSpoolFolder(m.folder)) continue;
    const list = sides.get(m.id) ?? [];
    list.push({ folder: m.folder });
    sides.set(m.id, list);
    if (!messages.has(m.id)) messages.set(m.id, m);
  }
  return { snapshot, sides, messages };
}

export async function observeImapSide(run: MailboxRun, store: StoreView, client: ImapFlow, caps: ServerCapabilities, opts: ReconcileOptions): Promise<ImapView> {
  const { deps, box, log } = run;
  const { settings, state } = deps;
  const loading = state.load(box.ref);
  loading.catch(() => undefined); // seen below; not an unhandled rejection if IMAP fails first
  const recordedAccount = state.account(box.ref);
  recordedAccount.catch(() => undefined);
  const paths = await rolePaths(client, settings.imap.folders);
  const looked = await observeImap(client, box.ref, paths, settings.email.messageIdDomain, asteriskLook(box));
  const { records, dropped } = await loading;
  const observed = await withAsteriskCopies(run, store, records, looked, opts);
  const account = accountKey(box.account);
  const lastAccount = await recordedAccount;
  const accountChanged = lastAccount !== undefined && lastAccount !== account && records.size > 0
    ? `the records were made with IMAP account ${lastAccount}, not ${account} (run 'vmbridge sync --mailbox ${mailboxKey(box.ref)} --accept-account' if the change is meant)`
    : undefined;
  if (dropped.length > 0) log.warn({ ids: dropped }, 'unreadable sync records dropped; they are re-learnt from both sides');
  for (const a of adoptLegacyIds(store.messages.values(), observed.copies, records)) {
    if (opts.dryRun || !a.hadLegacyRecord) continue;
    if (a.record) await state.put(box.ref, a.to, a.record);
    await state.remove(box.ref, a.from);
    log.info({ from: a.from, to: a.to }, 'Asterisk gave an old voicemail a msg_id; its email keeps its place');
  }
  return { client, caps, paths, observed, records, account, lastAccount, accountChanged, imapAccount: box.account };
}

/** What Asterisk's IMAP storage wrote in X-Asterisk-VM-Extension for the mailbox, for observeImap. */
export function asteriskLook(box: MailboxRun['box']): { asteriskExtension?: string } {
  return box.asteriskExtension !== undefined ? { asteriskExtension: box.asteriskExtension } : {};
}
