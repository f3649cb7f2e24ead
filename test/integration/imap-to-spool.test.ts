/**
 * Mail client to spool against a real private Dovecot and Redis, and the AMI test server acting on
 * the same spool: what a user does to a voicemail's email (read, unread, flag, file, delete) reaches
 * the Asterisk spool, heard through IMAP IDLE (the periodic sweep is off here). First without AMI
 * (the files are changed under Asterisk's folder lock), then with AMI (VoicemailMove/Remove, and no
 * change while a caller is in VoiceMailMain).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Settings } from '../../src/config/schema.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { folderDir, holdLock, leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient, type SeenEmail } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const mid = (ref: MailboxRef, id: string): string => identityMessageId(ref, id, DOMAIN);
const FOLDERS: readonly SpoolFolder[] = ['INBOX', 'Old', 'Urgent', 'Work', 'Family', 'Friends', 'Deleted'];
/** Generous: two cores, other tests may run at the same time. Never a timing assertion. */
const WAIT = { timeoutMs: 40_000, intervalMs: 100 };

describe('mail client to spool on real Dovecot and Redis', { timeout: 600_000 }, () => {
  let h: Harness;
  let ami: AmiTestServer;
  let service: Service | undefined;
  const clients = new Map<string, MailClient>();
  const mailboxes = ['2000', '2001', '2002', '2003', '2004', '2005', '3000', '3001', '3002'];

  const mc = (ref: MailboxRef): MailClient => clients.get(ref.mailbox)!;

  /** The folders of the spool that hold message `id`. */
  const whereInSpool = async (ref: MailboxRef, id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of FOLDERS) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };
  const inSpool = (ref: MailboxRef, id: string, folder: SpoolFolder | 'nowhere') =>
    waitFor(`${id} ${folder === 'nowhere' ? 'gone from the spool' : `in ${folder}`}`, async () => {
      const where = await whereInSpool(ref, id);
      return folder === 'nowhere' ? where.filter((f) => f !== 'Deleted').length === 0 : where.length === 1 && where[0] === folder;
    }, WAIT);
  const assertContiguous = async (ref: MailboxRef): Promise<void> => {
    for (const f of FOLDERS) {
      const nums = (await listFolder(h.spoolDir, ref, f)).map((m) => m.msgnum);
      assert.deepEqual(nums, nums.map((_, i) => i), `${ref.mailbox}/${f} numbered 0..n-1`);
    }
  };

  /** A new voicemail, and its email once vmbridge has put it in INBOX. */
  const newVoicemail = async (ref: MailboxRef, opts: { urgent?: boolean } = {}): Promise<{ id: string; email: SeenEmail }> => {
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Caller" <5550100>', duration: 5, ...(opts.urgent ? { urgent: true } : {}) });
    const email = await emailOf(ref, left.msgId, 'INBOX');
    // A person takes a moment before acting on a new email. Without it the email could come and go
    // within Dovecot's ~0.5 s IDLE delay, and an IDLE session is never told about a message it did
    // not see arrive (the sweep, off here, would find that change).
    await new Promise((r) => setTimeout(r, 1_500));
    return { id: left.msgId, email };
  };
  const emailOf = (ref: MailboxRef, id: string, folder: string): Promise<SeenEmail> =>
    waitFor(`the email of ${id} in ${folder}`, async () => (await mc(ref).list(VOICEMAIL_FOLDERS)).find((e) => e.messageId === mid(ref, id) && e.folder === folder), WAIT);

  /** Runs `fn` with `folder` selected in the user's mail client. */
  const inFolder = async <T>(ref: MailboxRef, folder: string, fn: (client: MailClient['client']) => Promise<T>): Promise<T> => {
    const client = mc(ref).client;
    const lock = await client.getMailboxLock(folder);
    try {
      return await fn(client);
    } finally {
      lock.release();
    }
  };
  const ensureFolder = async (ref: MailboxRef, folder: string): Promise<void> => {
    await mc(ref).client.mailboxCreate(folder).catch(() => undefined);
  };

  const start = async (settings: Settings): Promise<Service> => {
    service = await startService(settings, h.log);
    return service;
  };
  const stop = async (): Promise<void> => {
    await service?.close();
    service = undefined;
  };

  before(async () => {
    h = await startHarness({
      boxes: mailboxes.map((mailbox) => ({ mailbox })),
      // Deleted messages are kept in Deleted/ (app_voicemail's backupdeleted).
      confExtra: '[general]\nbackupdeleted=5\n',
    });
    for (const m of mailboxes) clients.set(m, await h.mail(box(m)));
    ami = await startAmiServer({ spoolDir: h.spoolDir });
  });
  after(async () => {
    await stop().catch(() => undefined);
    await ami?.close();
    await h?.stop();
  });

  describe('without AMI: the files, under the folder lock', () => {
    before(async () => {
      await start(h.settings);
    });
    after(async () => {
      await stop();
    });

    it('marked read -> Old; marked unread -> INBOX; flagged -> Urgent; unflagged -> INBOX', async () => {
      const ref = box('2000');
      const other = await newVoicemail(ref);
      const { id, email } = await newVoicemail(ref);
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true }));
      await inSpool(ref, id, 'Old');
      await assertContiguous(ref);
      assert.deepEqual(await whereInSpool(ref, other.id), ['INBOX'], 'the other voicemail is untouched');

      await inFolder(ref, 'INBOX', (c) => c.messageFlagsRemove(String(email.uid), ['\\Seen'], { uid: true }));
      await inSpool(ref, id, 'INBOX');
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(email.uid), ['\\Flagged'], { uid: true }));
      await inSpool(ref, id, 'Urgent');
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsRemove(String(email.uid), ['\\Flagged'], { uid: true }));
      await inSpool(ref, id, 'INBOX');
      await assertContiguous(ref);
      assert.equal(ami.received.length, 0, 'no AMI traffic without asterisk.ami');
    });

    it('moved to Work, Family, Friends -> moved there in the spool', async () => {
      const ref = box('2001');
      for (const folder of ['Work', 'Family', 'Friends'] as const) {
        const { id, email } = await newVoicemail(ref);
        await ensureFolder(ref, folder);
        await inFolder(ref, 'INBOX', (c) => c.messageMove(String(email.uid), folder, { uid: true }));
        await inSpool(ref, id, folder);
      }
      await assertContiguous(ref);
    });

    it('deleted (\\Deleted + UID EXPUNGE), moved to Trash, moved to an unmapped folder -> removed, kept in Deleted/', async () => {
      const ref = box('2002');
      const a = await newVoicemail(ref);
      const b = await newVoicemail(ref);
      const c = await newVoicemail(ref);
      await inFolder(ref, 'INBOX', (client) => client.messageDelete(String(a.email.uid), { uid: true }));
      await inSpool(ref, a.id, 'nowhere');
      await ensureFolder(ref, 'Trash');
      await inFolder(ref, 'INBOX', (client) => client.messageMove(String(b.email.uid), 'Trash', { uid: true }));
      await inSpool(ref, b.id, 'nowhere');
      await ensureFolder(ref, 'Archive');
      await inFolder(ref, 'INBOX', (client) => client.messageMove(String(c.email.uid), 'Archive', { uid: true }));
      await inSpool(ref, c.id, 'nowhere');
      const deleted = (await listFolder(h.spoolDir, ref, 'Deleted')).map((m) => m.msgId);
      for (const id of [a.id, b.id, c.id]) assert.ok(deleted.includes(id), `${id} kept in Deleted/ (backupdeleted=5)`);
      await assertContiguous(ref);
      // The copies the user moved are the user's.
      const elsewhere = await mc(ref).list(['Trash', 'Archive']);
      assert.equal(elsewhere.length, 2, 'the emails in Trash and Archive are left alone');
    });

    it("a second process holding the folder's .lock makes vmbridge wait, and the change lands after it is released", async () => {
      const ref = box('2004');
      const { id, email } = await newVoicemail(ref);
      const held = await holdLock(folderDir(h.spoolDir, ref, 'INBOX'), 60_000);
      try {
        await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true }));
        // While the lock is held nothing may change (each attempt gives up before Asterisk's 5 s).
        await new Promise((r) => setTimeout(r, 3_000));
        assert.deepEqual(await whereInSpool(ref, id), ['INBOX'], 'unchanged while the folder is locked');
      } finally {
        await held.release();
      }
      await inSpool(ref, id, 'Old');
      await assertContiguous(ref);
    });

    it("the user's own email in the same INBOX is never touched, whatever they do to it", async () => {
      const ref = box('2005');
      const { id } = await newVoicemail(ref);
      const client = mc(ref).client;
      await client.append('INBOX', Buffer.from('From: friend@example.com\r\nSubject: lunch?\r\nMessage-ID: <lunch@example.com>\r\n\r\nat noon\r\n'));
      await client.append('INBOX', Buffer.from('From: friend@example.com\r\nSubject: old\r\nMessage-ID: <old@example.com>\r\n\r\nbye\r\n'));
      const own = async (messageId: string) => (await mc(ref).list(['INBOX'], { includeDeleted: true })).find((e) => e.messageId === messageId);
      const lunch = await waitFor('own email', () => own('<lunch@example.com>'));
      const old = await waitFor('own email', () => own('<old@example.com>'));
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(lunch.uid), ['\\Seen', '\\Flagged'], { uid: true }));
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(old.uid), ['\\Deleted'], { uid: true }));
      // Give vmbridge every chance to do something wrong, then look.
      await service!.requester.request(ref, 'test');
      await new Promise((r) => setTimeout(r, 3_000));
      assert.deepEqual(await whereInSpool(ref, id), ['INBOX'], 'the voicemail stays new');
      const lunchNow = await own('<lunch@example.com>');
      assert.ok(lunchNow?.flags.has('\\Seen') && lunchNow.flags.has('\\Flagged'), 'flags as the user set them');
      const oldNow = await own('<old@example.com>');
      assert.ok(oldNow?.flags.has('\\Deleted'), "the user's \\Deleted email is neither expunged nor undeleted");
    });

    it('changed on both sides (phone files it in Work, mail client marks it read) -> the phone wins', async () => {
      const ref = box('2003');
      const { id, email } = await newVoicemail(ref);
      await stop();
      const num = (await listFolder(h.spoolDir, ref, 'INBOX')).find((m) => m.msgId === id)!.msgnum;
      await moveMessage(h.spoolDir, ref, 'INBOX', num, 'Work');
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true }));
      await start(h.settings);
      await emailOf(ref, id, 'Work');
      assert.deepEqual(await whereInSpool(ref, id), ['Work'], 'the voicemail stays where the phone put it');
      assert.equal(ami.received.length, 0, 'no AMI traffic without asterisk.ami');
    });
  });

  describe('with AMI: VoicemailMove / VoicemailRemove, and never while a caller is in VoiceMailMain', () => {
    before(async () => {
      const settings: Settings = {
        ...h.settings,
        asterisk: { ami: { host: '127.0.0.1', port: ami.port, username: 'bridge', secret: 'bridge', useVoicemailActions: true, secure: false, tls: { rejectUnauthorized: true } } },
      };
      await start(settings);
    });
    after(async () => {
      await stop();
    });

    const actions = (name: string, id: string) => ami.received.filter((a) => a.action.toLowerCase() === name.toLowerCase() && a.get('ID') === id);

    it('read, filed and deleted in the mail client -> VoicemailMove and VoicemailRemove on Asterisk', async () => {
      const ref = box('3000');
      const a = await newVoicemail(ref);
      const b = await newVoicemail(ref);
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(a.email.uid), ['\\Seen'], { uid: true }));
      await inSpool(ref, a.id, 'Old');
      assert.ok(actions('VoicemailMove', a.id).some((x) => x.get('Folder') === 'INBOX' && x.get('ToFolder') === 'Old'), 'moved by Asterisk');
      await ensureFolder(ref, 'Family');
      await inFolder(ref, 'INBOX', (c) => c.messageMove(String(b.email.uid), 'Family', { uid: true }));
      await inSpool(ref, b.id, 'Family');
      assert.ok(actions('VoicemailMove', b.id).some((x) => x.get('ToFolder') === 'Family'));
      const moved = await emailOf(ref, a.id, 'INBOX');
      await inFolder(ref, 'INBOX', (c) => c.messageDelete(String(moved.uid), { uid: true }));
      await inSpool(ref, a.id, 'nowhere');
      assert.ok(actions('VoicemailRemove', a.id).some((x) => x.get('Folder') === 'Old'), 'removed by Asterisk');
      assert.ok(ami.received.some((x) => x.action === 'CoreShowChannels'), 'VoiceMailMain was checked first');
      await assertContiguous(ref);
    });

    it('a caller in VoiceMailMain for the mailbox defers the change until they hang up', async () => {
      const ref = box('3001');
      const { id, email } = await newVoicemail(ref);
      ami.setChannels([{ channel: 'PJSIP/3001-00000001', application: 'VoiceMailMain', appData: '3001@default,s' }]);
      try {
        const asked = ami.received.filter((x) => x.action === 'CoreShowChannels').length;
        await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true }));
        await waitFor('vmbridge asking Asterisk for channels', () => ami.received.filter((x) => x.action === 'CoreShowChannels').length > asked, WAIT);
        // Only the spool waits: a voicemail left meanwhile becomes an email at once.
        const later = await leaveVoicemail(h.spoolDir, ref, { callerid: '"While busy" <5553001>', duration: 2 });
        await emailOf(ref, later.msgId, 'INBOX');
        await new Promise((r) => setTimeout(r, 2_000));
        assert.deepEqual(await whereInSpool(ref, id), ['INBOX'], 'nothing changes while the caller is in VoiceMailMain');
        assert.equal(actions('VoicemailMove', id).length, 0, 'no VoicemailMove while busy');
      } finally {
        ami.setChannels([]);
      }
      await inSpool(ref, id, 'Old');
      assert.ok(actions('VoicemailMove', id).length > 0);
    });

    it('the owning AMI down: the spool change waits, a new voicemail still becomes its email; once AMI is back the change is made', async () => {
      const ref = box('3002');
      const { id, email } = await newVoicemail(ref);
      const port = ami.port;
      await ami.close();
      await inFolder(ref, 'INBOX', (c) => c.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true }));
      // The reconcile that emails this one has seen the read too, with AMI down.
      const later = await leaveVoicemail(h.spoolDir, ref, { callerid: '"While down" <5553002>', duration: 2 });
      await emailOf(ref, later.msgId, 'INBOX');
      assert.deepEqual(await whereInSpool(ref, id), ['INBOX'], 'no spool change while whether a caller is in VoiceMailMain cannot be told');
      ami = await startAmiServer({ spoolDir: h.spoolDir, port });
      await inSpool(ref, id, 'Old');
      assert.ok(actions('VoicemailMove', id).length > 0, 'moved by Asterisk once it was back');
    });
  });
});
