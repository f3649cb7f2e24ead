/**
 * The quick look of background reconciles: a mailbox found quiet is skipped by the next sweep
 * while nothing changes, and every kind of change since (an email read, an email flagged, a new
 * voicemail in the spool, a voicemail deleted on the phone) makes the sweep look in full and act.
 * Real Dovecot (with CONDSTORE), Redis and spool; no watcher, IDLE or push, so only the sweep
 * can find the changes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import type { ReconcileResult } from '../../src/sync/reconcile.js';
import { deleteMessage, leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import { waitFor } from '../support/wait.js';

const REF: MailboxRef = { context: 'default', mailbox: '7400' };
const WAIT = { timeoutMs: 30_000, intervalMs: 50 };

// With LIST-STATUS (one command for every folder) and without it (one STATUS each).
for (const omit of [[], ['LIST-STATUS']] as const) describe(`quick look${omit.length ? ' without LIST-STATUS' : ''}: a quiet mailbox is skipped by the sweep until something changes`, { timeout: 180_000 }, () => {
  let h: Harness;
  let service: Service;
  let tap: ImapTap;
  const results: ReconcileResult[] = [];
  before(async () => {
    // vmbridge reaches Dovecot through the tap, which writes down its commands.
    tap = await startImapTap();
    h = await startHarness({
      boxes: [{ mailbox: REF.mailbox }],
      omitCapabilities: omit,
      settings: (b) => ({
        ...b,
        spool: { ...(b.spool as object), watch: false, sweepSeconds: 0 },
        imap: { ...(b.imap as object), port: tap.port, idle: { maxAccounts: 0 } },
        alerts: { quotaCheckSeconds: 0 },
      }),
    });
    tap.upstreamPort = h.dovecot.port;
    await leaveVoicemail(h.spoolDir, REF, { callerid: '"First" <5550001>', duration: 2 });
    service = await h.startService({ onReconciled: (_ref, r) => void results.push(r) });
  });
  after(async () => {
    await h?.stop();
    await tap?.close();
  });

  /** One sweep reconcile of the mailbox; its result. */
  const sweep = async (): Promise<ReconcileResult> => {
    const before = results.length;
    assert.equal(await service.requester.request(REF, 'sweep'), true);
    await waitFor('the sweep reconcile', () => results.length > before || undefined, WAIT);
    return results[results.length - 1]!;
  };
  const email = async (msgId: string) => {
    const found = (await h.emails(REF)).find((e) => e.messageId === identityMessageId(REF, msgId, 'vmbridge.test'));
    assert.ok(found, `the email of ${msgId}`);
    return found;
  };
  const onClient = async (fn: (c: Awaited<ReturnType<Harness['mail']>>['client']) => Promise<unknown>): Promise<void> => {
    const mc = await h.mail(REF);
    try {
      const lock = await mc.client.getMailboxLock('INBOX');
      try {
        await fn(mc.client);
      } finally {
        lock.release();
      }
    } finally {
      await mc.close();
    }
  };

  it('the start-up pass imports and marks the mailbox quiet; the next sweeps skip it', async () => {
    await waitFor('the start-up reconcile', () => results.length > 0 || undefined, WAIT);
    // With no mark yet, the folders are listed once before the full look: where the server has
    // LIST-STATUS, that one LIST also gives every status (and the full look reuses it); else a
    // STATUS follows for each of the four mapped folders.
    const first = tap.connections[0]!.lines.map((l) => l.line.split(' ').slice(1).join(' '));
    const untilSelect = first.slice(0, first.findIndex((l) => l.startsWith('SELECT ')));
    const seen = untilSelect.join(' | ');
    assert.equal(untilSelect.filter((l) => l.startsWith('LIST "" "*"')).length, 1, `one listing of every folder before the first SELECT: ${seen}`);
    assert.equal(untilSelect.filter((l) => l.startsWith('LIST "" "*" RETURN (STATUS')).length, omit.length > 0 ? 0 : 1, seen);
    assert.equal(untilSelect.filter((l) => l.startsWith('STATUS ')).length, omit.length > 0 ? 4 : 0, seen);
    // The import applied an op: no mark yet. The first quiet sweep looks in full and marks it.
    assert.notEqual((await sweep()).unchanged, true);
    const quiet = await sweep();
    assert.equal(quiet.unchanged, true);
    assert.equal(quiet.imapTotal, 1);
    assert.equal(quiet.spoolTotal, 1);
    assert.deepEqual(quiet.counts, { new: 1, old: 0, urgent: 0 });
    assert.equal((await sweep()).unchanged, true);
  });

  it('an email read in a mail client: the sweep looks in full and moves the voicemail to Old', async () => {
    const [left] = await listFolder(h.spoolDir, REF, 'INBOX');
    assert.ok(left);
    const e = await email(left.msgId);
    await onClient((c) => c.messageFlagsAdd(String(e.uid), ['\\Seen'], { uid: true }));
    const r = await sweep();
    assert.notEqual(r.unchanged, true);
    assert.ok(r.applied > 0);
    await waitFor('the voicemail in Old', async () => ((await listFolder(h.spoolDir, REF, 'Old')).some((m) => m.msgId === left.msgId) || undefined), WAIT);
    assert.notEqual((await sweep()).unchanged, true, 'a reconcile that changed something leaves no mark');
    assert.equal((await sweep()).unchanged, true);
  });

  it('a flag only (\\Flagged, no move) changes HIGHESTMODSEQ: a full look', async () => {
    const [old] = await listFolder(h.spoolDir, REF, 'Old');
    assert.ok(old);
    const e = await email(old.msgId);
    await onClient((c) => c.messageFlagsAdd(String(e.uid), ['\\Flagged'], { uid: true }));
    assert.notEqual((await sweep()).unchanged, true);
  });

  it('a new voicemail in the spool, then one deleted on the phone: each a full look that acts', async () => {
    assert.equal((await sweep()).unchanged, true, 'quiet again');
    const left = await leaveVoicemail(h.spoolDir, REF, { callerid: '"Second" <5550002>', duration: 2 });
    const r = await sweep();
    assert.notEqual(r.unchanged, true);
    await email(left.msgId);
    assert.notEqual((await sweep()).unchanged, true);
    assert.equal((await sweep()).unchanged, true);
    await deleteMessage(h.spoolDir, REF, 'INBOX', 0);
    const gone = await sweep();
    assert.notEqual(gone.unchanged, true);
    await waitFor('the email gone', async () => (!(await h.emails(REF)).some((x) => x.messageId === identityMessageId(REF, left.msgId, 'vmbridge.test')) || undefined), WAIT);
  });
});
