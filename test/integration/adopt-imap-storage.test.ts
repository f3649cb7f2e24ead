/**
 * A site moving from Asterisk's IMAP storage: the mailbox already holds the emails Asterisk's IMAP
 * storage wrote (X-Asterisk-VM-* headers, Old as \Seen in INBOX, saved messages in Work), and the
 * spool holds the same voicemail. The first sync adopts each email in place (no second copy, the
 * same UID, nothing rewritten), and from then on the adopted email is synced both ways. An email of
 * that kind whose voicemail is not in the spool is left alone. Real Dovecot and Redis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const WAIT = { timeoutMs: 30_000, intervalMs: 100 };
const ref: MailboxRef = { context: 'default', mailbox: '3300' };

/** An email as Asterisk's IMAP storage writes it (make_email_file with imap=1), headers in its order. */
function asteriskStorageEmail(msgnum: number, msgId: string, callerNum: string): Buffer {
  const lines = [
    'Date: Sun, 22 Nov 2026 11:32:37 +0000',
    'From: "Voicemail System" <asterisk@pbx.example.invalid>',
    'To: "Hank Example" <u3300@example.invalid>',
    `Subject: [PBX]: New message ${msgnum + 1} in mailbox 3300`,
    `Message-ID: <Asterisk-${msgnum + 1}-1804289383-3300-1070@vm>`,
    `X-Asterisk-VM-Message-Num: ${msgnum + 1}`,
    'X-Asterisk-VM-Server-Name: Voicemail System',
    'X-Asterisk-VM-Context: default',
    'X-Asterisk-VM-Extension: 3300',
    'X-Asterisk-VM-Flag: ',
    'X-Asterisk-VM-Priority: 2',
    `X-Asterisk-VM-Caller-ID-Num: ${callerNum}`,
    'X-Asterisk-VM-Caller-ID-Name: Test Caller',
    'X-Asterisk-VM-Duration: 3',
    'X-Asterisk-VM-Category: ',
    'X-Asterisk-VM-Message-Type: Message',
    'X-Asterisk-VM-Orig-date: Sunday, November 22, 2026 at 11:32:37 AM',
    'X-Asterisk-VM-Orig-time: 1795347157',
    `X-Asterisk-VM-Message-ID: ${msgId}`,
    `X-Asterisk-CallerID: ${callerNum}`,
    'X-Asterisk-CallerIDName: Test Caller',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=ISO-8859-1',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Dear Hank Example:',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

describe('emails of Asterisk\'s IMAP storage are adopted in place', { timeout: 180_000 }, () => {
  let h: Harness;
  let service: Service | undefined;
  let mc: MailClient;

  const where = async (id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of ['INBOX', 'Old', 'Work'] as const) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };
  const folderUids = async (folder: string): Promise<Array<{ uid: number; seen: boolean }>> => {
    const lock = await mc.client.getMailboxLock(folder);
    try {
      await mc.client.noop();
      if (!mc.client.mailbox || mc.client.mailbox.exists === 0) return [];
      return (await mc.client.fetchAll('1:*', { uid: true, flags: true }, { uid: true })).map((m) => ({ uid: m.uid, seen: m.flags?.has('\\Seen') ?? false }));
    } finally {
      lock.release();
    }
  };

  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: ref.mailbox, fullName: 'Hank Example' }] });
    mc = await h.mail(ref);
  });
  after(async () => {
    await service?.close();
    await h?.stop();
  });

  it('the first sync appends nothing for voicemail that already has its email; an unread adopted email moves the voicemail back to INBOX', async () => {
    // The spool as Asterisk left it: one new message, one heard (Old), one saved in Work.
    const fresh = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Test Caller" <5550001>', duration: 3 });
    const heard = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Test Caller" <5550002>', duration: 3 });
    const saved = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Test Caller" <5550003>', duration: 3 });
    const numberOf = async (id: string): Promise<number> => (await listFolder(h.spoolDir, ref, 'INBOX')).find((m) => m.msgId === id)!.msgnum;
    await moveMessage(h.spoolDir, ref, 'INBOX', await numberOf(heard.msgId), 'Old');
    await moveMessage(h.spoolDir, ref, 'INBOX', await numberOf(saved.msgId), 'Work');
    // What Asterisk's IMAP storage had put in the mailbox: Old is \Seen in INBOX, Work a folder;
    // and one email whose voicemail is no longer in the spool.
    await mc.client.mailboxCreate('Work').catch(() => undefined);
    await mc.client.append('INBOX', asteriskStorageEmail(0, fresh.msgId, '5550001'), []);
    await mc.client.append('INBOX', asteriskStorageEmail(1, heard.msgId, '5550002'), ['\\Seen']);
    await mc.client.append('Work', asteriskStorageEmail(0, saved.msgId, '5550003'), ['\\Seen']);
    await mc.client.append('INBOX', asteriskStorageEmail(2, '1795000000-0000dead', '5550004'), []);
    const before = { inbox: await folderUids('INBOX'), work: await folderUids('Work') };
    assert.equal(before.inbox.length, 3);

    service = await h.startService();
    await waitFor('the first reconcile', () => h.logLines.some((l) => l.includes('"mailbox":"3300@default"') && l.includes('"msg":"reconciled"')) || undefined, WAIT);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.deepEqual(await folderUids('INBOX'), before.inbox, 'INBOX: nothing appended, nothing expunged, flags as they were');
    assert.deepEqual(await folderUids('Work'), before.work, 'Work: nothing appended');
    assert.equal(h.logLines.some((l) => l.includes('email appended')), false, 'no second copy of any voicemail');
    assert.deepEqual(await where(fresh.msgId), ['INBOX']);
    assert.deepEqual(await where(heard.msgId), ['Old']);

    // The adopted email is the voicemail's email from now on: unread in the mail client -> INBOX.
    const heardUid = before.inbox.find((m) => m.seen)!.uid;
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageFlagsRemove(String(heardUid), ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
    await waitFor(`${heard.msgId} back in INBOX`, async () => ((await where(heard.msgId)).join() === 'INBOX' ? true : undefined), WAIT);
    assert.equal((await folderUids('INBOX')).length, 3, 'the email whose voicemail is gone is still there');
  });
});
