/**
 * The email the administrator configured in voicemail.conf, end to end on real Dovecot and Redis:
 * [general] serveremail=/fromstring=/emailsubject=/emailbody= with variables and a dialplan
 * function vmbridge cannot evaluate; one mailbox with its own subject and attach=no, another with
 * vmbridge_audio=original+mp3. The emails in the mailbox carry what voicemail.conf says, and the
 * one without audio is still synced both ways.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { identityMessageId } from '../../src/imap/identity-header.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { SeenEmail } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });

describe('voicemail.conf email options and attachments, end to end', { timeout: 180_000 }, () => {
  let h: Harness;
  let service: Service;

  const emailOf = async (ref: MailboxRef, id: string): Promise<SeenEmail> => {
    const mc = await h.mail(ref);
    return waitFor(`the email of ${id}`, async () => (await mc.list(['INBOX'])).find((e) => e.messageId === identityMessageId(ref, id, DOMAIN)), WAIT);
  };

  before(async () => {
    h = await startHarness({
      boxes: [
        { mailbox: '3100', fullName: 'Dora Example' },
        { mailbox: '3101', fullName: 'Emil Example', options: 'emailsubject=Mailbox ${VM_MAILBOX}: ${VM_CIDNUM}|attach=no' },
        { mailbox: '3102', fullName: 'Fay Example', options: 'vmbridge_audio=original+mp3' },
      ],
      confExtra: [
        '[general]',
        'serveremail=voicemail@pbx.example.com',
        'fromstring=PBX of ${VM_NAME}',
        'emailsubject=[VM] ${VM_CIDNAME} left ${VM_DUR} ${SHELL(id)}',
        'emailbody=Hello ${VM_NAME},\\n\\tmessage ${VM_MSGNUM} from ${VM_CALLERID} on ${VM_DATE}.\\n',
        'emaildateformat=%Y-%m-%d %H:%M',
        '',
      ].join('\n'),
    });
    service = await h.startService();
  });
  after(async () => {
    await service?.close();
    await h?.stop();
  });

  it('From, Subject and body from voicemail.conf; one MP3; the dialplan function reported once by name', async () => {
    const ref = box('3100');
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Zoe Caller" <5550100>', duration: 7, origtime: 1_795_347_150 });
    const email = await emailOf(ref, left.msgId);
    const parsed = await simpleParser(await (await h.mail(ref)).source('INBOX', email.uid));
    assert.equal(parsed.from?.text, '"PBX of Dora Example" <voicemail@pbx.example.com>');
    assert.equal(parsed.subject, '[VM] Zoe Caller left 0:07');
    assert.equal(parsed.text, 'Hello Dora Example,\n\tmessage 1 from "Zoe Caller" <5550100> on 2026-11-22 11:32.\n');
    assert.deepEqual(parsed.attachments.map((a) => a.contentType), ['audio/mpeg']);
    const second = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Yan" <5550101>', duration: 3 });
    await emailOf(ref, second.msgId);
    const reported = h.logLines.filter((l) => l.includes('cannot evaluate') && l.includes('SHELL()'));
    assert.equal(reported.length, 1, 'reported once, by name');
  });

  it("a mailbox's own subject wins over [general]'s; attach=no: no audio, and reading it moves the voicemail to Old", async () => {
    const ref = box('3101');
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Xavier" <5550200>', duration: 4 });
    const email = await emailOf(ref, left.msgId);
    const mc = await h.mail(ref);
    const parsed = await simpleParser(await mc.source('INBOX', email.uid));
    assert.equal(parsed.subject, 'Mailbox 3101: 5550200');
    assert.equal(parsed.attachments.length, 0);
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
    await waitFor(`${left.msgId} in Old`, async () => {
      const where: SpoolFolder[] = [];
      for (const f of ['INBOX', 'Old'] as const) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === left.msgId)) where.push(f);
      return where.length === 1 && where[0] === 'Old' ? where : undefined;
    }, WAIT);
  });

  it('vmbridge_audio=original+mp3: the recording Asterisk attaches (the first of format=, wav49) and the MP3', async () => {
    const ref = box('3102');
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Will" <5550300>', duration: 2 });
    const email = await emailOf(ref, left.msgId);
    const parsed = await simpleParser(await (await h.mail(ref)).source('INBOX', email.uid));
    assert.deepEqual(parsed.attachments.map((a) => [a.filename?.replace(/\d{4}/, 'NNNN'), a.contentType]), [['msgNNNN.WAV', 'audio/wav'], ['msgNNNN.mp3', 'audio/mpeg']]);
  });
});
