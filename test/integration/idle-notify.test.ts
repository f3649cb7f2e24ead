/**
 * IMAP NOTIFY (RFC 5465) on the IDLE connection, against the project's Dovecot, which has it: an
 * email filed away and then handled inside Work and Family, folders the IDLE session does not
 * have selected, reaches the spool with no sweep (the sweep is off). Without NOTIFY these changes
 * wait for the sweep.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { settingsSchema } from '../../src/config/schema.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };
const ref: MailboxRef = { context: 'default', mailbox: '1000' };

describe('IDLE with NOTIFY hears every voicemail folder', { timeout: 120_000 }, () => {
  let h: Harness;
  let service: Service;
  let mc: MailClient;

  const spoolFolderOf = async (id: string): Promise<SpoolFolder | 'gone'> => {
    for (const f of ['INBOX', 'Old', 'Work', 'Family', 'Friends'] as const) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === id)) return f;
    return 'gone';
  };
  const inSpool = (id: string, want: SpoolFolder | 'gone'): Promise<true> => waitFor(`${id} ${want === 'gone' ? 'gone from the spool' : `in spool ${want}`}`, async () => ((await spoolFolderOf(id)) === want ? true : undefined), WAIT);
  const move = async (uid: number, from: string, to: string): Promise<void> => {
    const lock = await mc.client.getMailboxLock(from);
    try {
      await mc.client.messageMove(String(uid), to, { uid: true });
    } finally {
      lock.release();
    }
  };
  const uidIn = async (folder: string, id: string): Promise<number> => {
    const email = await waitFor(`the email in ${folder}`, async () => (await mc.list(VOICEMAIL_FOLDERS)).find((e) => e.folder === folder && e.messageId === identityMessageId(ref, id, DOMAIN)), WAIT);
    return email.uid;
  };

  before(async () => {
    h = await startHarness({ boxes: [{ mailbox: ref.mailbox }] });
    const settings = settingsSchema.parse({ ...h.settings, spool: { ...h.settings.spool, sweepSeconds: 0 }, imap: { ...h.settings.imap, idle: { maxAccounts: 10, notify: true } } });
    service = await startService(settings, h.log);
    mc = await h.mail(ref);
    for (const f of ['Work', 'Family']) await mc.client.mailboxCreate(f).catch(() => undefined);
  });

  after(async () => {
    await service?.close();
    await h?.stop();
  });

  it('takes a move from Work to Family, and a delete in Family, to the spool without a sweep', async () => {
    const left = await leaveVoicemail(h.spoolDir, ref);
    // Filed from the inbox folder (heard by IDLE alone)...
    await move(await uidIn('INBOX', left.msgId), 'INBOX', 'Work');
    await inSpool(left.msgId, 'Work');
    // ...then moved between two folders the IDLE session does not have selected: only NOTIFY tells it.
    await move(await uidIn('Work', left.msgId), 'Work', 'Family');
    await inSpool(left.msgId, 'Family');
    const uid = await uidIn('Family', left.msgId);
    const lock = await mc.client.getMailboxLock('Family');
    try {
      await mc.client.messageDelete(String(uid), { uid: true });
    } finally {
      lock.release();
    }
    await inSpool(left.msgId, 'gone');
    assert.equal((await mc.list(VOICEMAIL_FOLDERS)).length, 0);
  });
});
