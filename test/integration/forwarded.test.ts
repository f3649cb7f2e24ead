/**
 * A voicemail forwarded with a prepended comment in VoiceMailMain, in the spool state Asterisk
 * leaves it (apps/app_voicemail.c forward_message and vm_forwardoptions): in the recipient's INBOX
 * a copy of the sender's .txt as ast_config_text_file_save rewrote it (a ";!" header, "key = value",
 * duration = comment + original), origmailbox still the sender's mailbox, the audio comment first.
 * The recipient's email says which mailbox it came from and attaches that audio. Real Dovecot.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { simpleParser } from 'mailparser';
import type { Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const sender: MailboxRef = { context: 'default', mailbox: '3830' };
const recipient: MailboxRef = { context: 'default', mailbox: '3831' };

describe('a voicemail forwarded from another mailbox', { timeout: 120_000 }, () => {
  let h: Harness;
  let service: Service | undefined;
  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: sender.mailbox, fullName: 'Sam Sender' }, { mailbox: recipient.mailbox, fullName: 'Rita Recipient' }] });
  });
  after(async () => {
    await service?.close();
    await h?.stop();
  });

  it('says "forwarded or copied from" the sender\'s mailbox with its owner, and attaches the recording as stored (comment first)', async () => {
    const left = await leaveVoicemail(h.spoolDir, recipient, { callerid: '"Original Caller" <5551200>', duration: 4 });
    const txt = await readFile(left.txtPath, 'utf8');
    const values = new Map(txt.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
    values.set('origmailbox', sender.mailbox);
    values.set('duration', '7');
    // What ast_config_text_file_save writes: its own header, then "key = value".
    const rewritten = [';!', ';! Automatically generated configuration file', ';! Filename: msg0000.txt (/var/spool/asterisk/voicemail/default/3830/INBOX/msg0000.txt)', ';! Generator: app_voicemail', ';!', '', '[message]', ...[...values].map(([k, v]) => `${k} = ${v}`), ''].join('\n');
    await writeFile(left.txtPath, rewritten);

    service = await h.startService();
    const mc = await h.mail(recipient);
    try {
      const [email] = await waitFor('the forwarded voicemail\'s email', async () => {
        const found = await mc.list(['INBOX']);
        return found.length === 1 ? found : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      const mail = await simpleParser(await mc.source('INBOX', email!.uid));
      assert.match(mail.text ?? '', /^Forwarded or copied from: mailbox 3830 \(Sam Sender\)$/m);
      assert.match(mail.text ?? '', /^Caller: Original Caller$/m, 'the caller is the original one, from the copied .txt');
      assert.match(mail.text ?? '', /^Duration: 0:07$/m, 'comment and original together, as the rewritten .txt says');
      assert.equal(mail.attachments.length, 1);
    } finally {
      await mc.close();
    }
    // The sender's own mailbox gets nothing from it.
    assert.equal((await h.emails(sender)).length, 0);
  });
});
