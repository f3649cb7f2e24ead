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
import { identityMessageId } from '../../src/imap/identity-header.js';
import { deleteMessage, leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const WAIT = { timeoutMs: 30_000, intervalMs: 100 };
const ref: MailboxRef = { context: 'default', mailbox: '3300' };

/**
 * An email as Asterisk's IMAP storage writes it (make_email_file with imap=1), headers in its order.
 * `extension` is what it writes in X-Asterisk-VM-Extension: the mailbox's imapvmshareid, else its number.
 */
function asteriskStorageEmail(msgnum: number, msgId: string, callerNum: string, mailbox = '3300', extension = mailbox): Buffer {
  const lines = [
    'Date: Sun, 22 Nov 2026 11:32:37 +0000',
    'From: "Voicemail System" <asterisk@pbx.example.invalid>',
    `To: "Owner ${mailbox}" <u${mailbox}@example.invalid>`,
    `Subject: [PBX]: New message ${msgnum + 1} in mailbox ${mailbox}`,
    `Message-ID: <Asterisk-${msgnum + 1}-1804289383-${mailbox}-1070@vm>`,
    `X-Asterisk-VM-Message-Num: ${msgnum + 1}`,
    'X-Asterisk-VM-Server-Name: Voicemail System',
    'X-Asterisk-VM-Context: default',
    `X-Asterisk-VM-Extension: ${extension}`,
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
    `Dear Owner ${mailbox}:`,
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

/**
 * imapvmshareid: mailboxes 3301 and 3302 share IMAP account u3301 and share id 6000, so Asterisk's
 * IMAP storage wrote X-Asterisk-VM-Extension: 6000 into the emails of both, and each phone saw all
 * of them. Each email is adopted by the one mailbox whose spool holds its voicemail; a message
 * Asterisk left for both (same msg_id in both spools, one email each) is adopted by neither and gets
 * an email of each mailbox's own, Asterisk's two left untouched; deleting on one side removes only
 * that mailbox's voicemail and email.
 */
describe('emails of Asterisk\'s IMAP storage with a share id (imapvmshareid) are adopted, each by one mailbox', { timeout: 240_000 }, () => {
  const ida: MailboxRef = { context: 'default', mailbox: '3301' };
  const jack: MailboxRef = { context: 'default', mailbox: '3302' };
  const shared = 'imapuser=u3301|imappassword=pw-u3301|imapvmshareid=6000';
  let h: Harness;
  let service: Service | undefined;
  let mc: MailClient;

  const inSpool = async (ref: MailboxRef, id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of ['INBOX', 'Old'] as const) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };
  const inbox = async (): Promise<Array<{ uid: number; messageId: string; extension: string }>> => {
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.noop();
      if (!mc.client.mailbox || mc.client.mailbox.exists === 0) return [];
      const rows = await mc.client.fetchAll('1:*', { uid: true, flags: true, envelope: true, headers: ['x-asterisk-vm-extension'] }, { uid: true });
      return rows
        .filter((m) => !(m.flags?.has('\\Deleted') ?? false))
        .map((m) => ({ uid: m.uid, messageId: m.envelope?.messageId ?? '', extension: (m.headers?.toString('latin1') ?? '').replace(/^[^:]*:\s*/, '').trim() }));
    } finally {
      lock.release();
    }
  };

  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: ida.mailbox, options: shared }, { mailbox: jack.mailbox, options: shared }] });
    mc = await h.mail(ida);
  });
  after(async () => {
    await service?.close();
    await h?.stop();
  });

  it('the first sync adopts each mailbox\'s own, appends only for the message both hold, and deletions stay on their mailbox', async () => {
    const forIda = await leaveVoicemail(h.spoolDir, ida, { callerid: '"Test Caller" <5550011>', duration: 3 });
    const forJack = await leaveVoicemail(h.spoolDir, jack, { callerid: '"Test Caller" <5550012>', duration: 3 });
    const heardByJack = await leaveVoicemail(h.spoolDir, jack, { callerid: '"Test Caller" <5550013>', duration: 3 });
    await moveMessage(h.spoolDir, jack, 'INBOX', 1, 'Old');
    // VoiceMail(3301&3302): one recording, the same msg_id in both spools.
    const both = await leaveVoicemail(h.spoolDir, ida, { callerid: '"Test Caller" <5550014>', duration: 3 });
    await leaveVoicemail(h.spoolDir, jack, { callerid: '"Test Caller" <5550014>', duration: 3, msgId: both.msgId });

    await mc.client.append('INBOX', asteriskStorageEmail(0, forIda.msgId, '5550011', '3301', '6000'), []);
    await mc.client.append('INBOX', asteriskStorageEmail(0, forJack.msgId, '5550012', '3302', '6000'), []);
    await mc.client.append('INBOX', asteriskStorageEmail(1, heardByJack.msgId, '5550013', '3302', '6000'), ['\\Seen']);
    await mc.client.append('INBOX', asteriskStorageEmail(1, both.msgId, '5550014', '3301', '6000'), []);
    await mc.client.append('INBOX', asteriskStorageEmail(2, both.msgId, '5550014', '3302', '6000'), []);
    await mc.client.append('INBOX', asteriskStorageEmail(3, '1795000000-0000beef', '5550015', '3301', '6000'), []);
    const asterisks = await inbox();
    assert.equal(asterisks.length, 6);

    service = await h.startService();
    const reconciled = (ref: MailboxRef) => () => h.logLines.some((l) => l.includes(`"mailbox":"${ref.mailbox}@default"`) && l.includes('"msg":"reconciled"')) || undefined;
    await waitFor('3301 reconciled', reconciled(ida), WAIT);
    await waitFor('3302 reconciled', reconciled(jack), WAIT);
    await waitFor('the two emails of the message both hold', async () => ((await inbox()).length === 8 ? true : undefined), WAIT);
    await new Promise((r) => setTimeout(r, 1_500));

    const now = await inbox();
    assert.deepEqual(now.slice(0, 6).map((m) => m.uid), asterisks.map((m) => m.uid), 'every email Asterisk wrote is still there');
    const added = now.slice(6);
    assert.deepEqual(added.map((m) => m.messageId).sort(), [identityMessageId(ida, both.msgId, h.settings.email.messageIdDomain), identityMessageId(jack, both.msgId, h.settings.email.messageIdDomain)].sort(), 'appended: only the message both mailboxes hold, once for each');
    assert.deepEqual(added.map((m) => m.extension), ['6000', '6000'], 'vmbridge writes the share id, as Asterisk does');
    assert.equal(h.logLines.filter((l) => l.includes('email appended')).length, 2);
    assert.deepEqual(await inSpool(jack, heardByJack.msgId), ['Old'], 'adopted as heard, as the phone had it');
    assert.deepEqual(await inSpool(ida, forIda.msgId), ['INBOX']);

    // The user deletes Ida's adopted email: her voicemail goes, Jack's are untouched.
    const idaUid = asterisks[0]!.uid;
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageDelete(String(idaUid), { uid: true });
    } finally {
      lock.release();
    }
    await waitFor(`${forIda.msgId} gone from 3301's spool`, async () => ((await inSpool(ida, forIda.msgId)).length === 0 ? true : undefined), WAIT);
    // Jack's phone deletes his first message: its email goes, nothing else.
    await deleteMessage(h.spoolDir, jack, 'INBOX', (await listFolder(h.spoolDir, jack, 'INBOX')).find((m) => m.msgId === forJack.msgId)!.msgnum);
    await waitFor(`${forJack.msgId}'s email deleted`, async () => ((await inbox()).some((m) => m.uid === asterisks[1]!.uid) ? undefined : true), WAIT);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.deepEqual((await inbox()).map((m) => m.uid), [...asterisks.slice(2).map((m) => m.uid), ...added.map((m) => m.uid)], 'the rest is all there');
    assert.deepEqual(await inSpool(jack, heardByJack.msgId), ['Old']);
    assert.deepEqual(await inSpool(jack, both.msgId), ['INBOX']);
    assert.deepEqual(await inSpool(ida, both.msgId), ['INBOX']);
  });
});
