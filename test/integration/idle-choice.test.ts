/**
 * With more accounts than IDLE connections, the watched ones are chosen by need: an account whose
 * mailbox gets unread voicemail takes a connection from one that has none, and a change its user
 * then makes in a mail client is heard at once (no sweep here to find it otherwise). Real Dovecot
 * behind a relay that shows which users hold an IDLE session.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, userOf, type Harness } from '../support/harness.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import { sessionOf, type TapSession } from '../support/tap-sessions.js';
import { waitFor } from '../support/wait.js';

const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };

describe('IDLE connections chosen by need', { timeout: 180_000 }, () => {
  const first = box('7300');
  const second = box('7301');
  let tap: ImapTap;
  let h: Harness;
  const idleUsers = (): string[] => [...new Set(tap.connections.filter((c) => c.closedAt === undefined).map(sessionOf).filter((s): s is TapSession => s !== undefined && s.idle).map((s) => s.user))].sort();

  before(async () => {
    tap = await startImapTap();
    h = await startHarness({
      boxes: [{ mailbox: first.mailbox }, { mailbox: second.mailbox }],
      settings: (base) => {
        const imap = base.imap as { port: number };
        tap.upstreamPort = imap.port;
        return { ...base, spool: { ...(base.spool as object), sweepSeconds: 0 }, imap: { ...imap, port: tap.port, idle: { maxAccounts: 1, rechooseSeconds: 1 } } };
      },
    });
    await h.startService();
  });
  after(async () => {
    await h?.stop();
    await tap?.close();
  });

  it('by name while nothing is known; the account with unread voicemail once it has some, and its change is heard', async () => {
    await waitFor('the first account by name in IDLE', () => (idleUsers().join() === userOf(first) ? true : undefined), WAIT);
    const left = await leaveVoicemail(h.spoolDir, second, { callerid: '"Caller" <5550101>', duration: 2 });
    await waitFor('the account with unread voicemail in IDLE instead', () => (idleUsers().join() === userOf(second) ? true : undefined), WAIT);
    // Reading the email is heard by IDLE alone (no sweep): the voicemail moves to Old.
    const mc = await h.mail(second);
    try {
      const email = (await mc.list(['INBOX'])).find((e) => e.messageId === identityMessageId(second, left.msgId, 'vmbridge.test'));
      assert.ok(email, 'the email is there');
      const lock = await mc.client.getMailboxLock('INBOX');
      try {
        await mc.client.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true });
      } finally {
        lock.release();
      }
    } finally {
      await mc.close();
    }
    await waitFor('the voicemail in Old', async () => ((await listFolder(h.spoolDir, second, 'Old')).some((m) => m.msgId === left.msgId) ? true : undefined), WAIT);
  });
});
