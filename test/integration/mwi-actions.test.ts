/**
 * Every mail-client action on a voicemail's email, end to end, on real Dovecot and Redis: each
 * one ends with the right spool layout and the right counts at every kind of MWI target at once
 * (test/support/mwi-targets.ts): the owning Asterisk (ami-refresh), an Asterisk with
 * res_mwi_external (ami-mwiupdate), a newer Asterisk with MailboxStateChange (ami-mailboxstate;
 * the AMI test server's opt-in mode, modelled from Asterisk's source) and a private Kamailio
 * (sip-notify). An imapflow session is the user's mail client; the service hears it by IMAP IDLE
 * (the sweep is off), and changes the spool by files under Asterisk's folder lock.
 *
 * Then: the ami-mailboxstate target against that newer Asterisk on its own (what it accepts and
 * refuses), and an AMI MessageWaiting from the owning Asterisk driving a reconcile that nothing
 * else could have started (spool watcher off).
 *
 * Read, filed and deleted-and-expunged are in mwi.test.ts; this file covers the other actions.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MwiTarget, Settings } from '../../src/config/schema.js';
import { settingsSchema } from '../../src/config/schema.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { AmiActionError, AmiClient } from '../../src/mwi/ami-client.js';
import { createSender } from '../../src/mwi/targets.js';
import { startService, type Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient, type SeenEmail } from '../support/mail-client.js';
import { MwiTargets, REMOTE_ENTITY_ID, VMBRIDGE_ENTITY_ID, type Marks } from '../support/mwi-targets.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const WAIT = { timeoutMs: 40_000, intervalMs: 100 };
const FOLDERS: readonly SpoolFolder[] = ['INBOX', 'Old', 'Urgent', 'Work', 'Family', 'Friends', 'Deleted'];
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const mid = (ref: MailboxRef, id: string): string => identityMessageId(ref, id, DOMAIN);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('every mail-client action reaches the spool and every MWI target', { timeout: 300_000 }, () => {
  let spoolDir: string;
  let targets: MwiTargets;
  let h: Harness;
  let service: Service | undefined;

  const start = async (settings: Settings): Promise<void> => {
    service = await startService(settings, h.log);
  };
  const stop = async (): Promise<void> => {
    await service?.close();
    service = undefined;
  };

  /** The spool folders holding message `id` (Deleted/ included). */
  const whereInSpool = async (ref: MailboxRef, id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of FOLDERS) if ((await listFolder(spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };
  /** The whole layout: folder -> msg_ids in message-number order, empty folders left out. */
  const layout = async (ref: MailboxRef): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const f of FOLDERS) {
      const msgs = await listFolder(spoolDir, ref, f);
      assert.deepEqual(msgs.map((m) => m.msgnum), msgs.map((_, i) => i), `${ref.mailbox}/${f} numbered 0..n-1`);
      if (msgs.length > 0) out[f] = msgs.map((m) => m.msgId);
    }
    return out;
  };
  const inSpool = (ref: MailboxRef, id: string, folders: readonly SpoolFolder[]): Promise<SpoolFolder[]> =>
    waitFor(`${id} in ${folders.join('+')}`, async () => {
      const where = await whereInSpool(ref, id);
      return where.length === folders.length && folders.every((f) => where.includes(f)) ? where : undefined;
    }, WAIT);
  const emailOf = (mc: MailClient, ref: MailboxRef, id: string, folder: string): Promise<SeenEmail> =>
    waitFor(`the email of ${id} in ${folder}`, async () => (await mc.list(VOICEMAIL_FOLDERS)).find((e) => e.messageId === mid(ref, id) && e.folder === folder), WAIT);
  const inFolder = async <T>(mc: MailClient, folder: string, fn: (client: MailClient['client']) => Promise<T>): Promise<T> => {
    const lock = await mc.client.getMailboxLock(folder);
    try {
      return await fn(mc.client);
    } finally {
      lock.release();
    }
  };

  before(async () => {
    spoolDir = await mkdtemp(join(tmpdir(), 'vmb-mwi-actions-'));
    await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
    targets = await MwiTargets.start(spoolDir);
    h = await startHarness({
      boxes: [{ mailbox: '4000' }, { mailbox: '4001' }, { mailbox: '4002' }],
      // Deleted messages are kept in Deleted/ (app_voicemail's backupdeleted).
      confExtra: '[general]\nbackupdeleted=10\n',
      settings: (base) => ({
        ...base,
        spool: { ...(base.spool as object), dir: spoolDir },
        mwi: { targets: targets.settings(), retrySeconds: 1, retryMaxSeconds: 2, concurrency: 4 },
      }),
    });
  });
  after(async () => {
    await stop().catch(() => undefined);
    await h?.stop();
    await targets?.stop();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  describe('mail-client actions, heard by IDLE, carried to the spool by files', () => {
    before(async () => {
      await start(h.settings);
    });
    after(async () => {
      await stop();
    });

    it('unread, flag, unflag, Trash, unmapped folder, \\Deleted, expunge: spool layout and counts at every target after each', async () => {
      const ref = box('4000');
      const mc = await h.mail(ref);
      await targets.allShow(ref, { new: 0, old: 0 });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await leaveVoicemail(spoolDir, ref, { callerid: `"Caller ${i}" <55501${i}>`, duration: 3 })).msgId);
      const [a, b, c, d, e] = ids as [string, string, string, string, string];
      await targets.allShow(ref, { new: 5, old: 0, urgent: 0 });
      const uid = new Map<string, number>();
      for (const id of ids) uid.set(id, (await emailOf(mc, ref, id, 'INBOX')).uid);
      const u = (id: string): string => String(uid.get(id));
      // A person takes a moment before acting on new mail; an IDLE session is only told about
      // changes to messages it has seen arrive (Dovecot reports after about half a second).
      await sleep(1_500);

      /** Does `act`, then waits for the spool and every target, each told something new. */
      const step = async (what: string, act: () => Promise<unknown>, id: string, folders: SpoolFolder[], want: { new: number; old: number; urgent: number }, notTold: readonly ('phone' | 'remote')[] = []): Promise<void> => {
        // Targets whose message cannot carry the change are not told anything new.
        const since = { ...(await targets.marks(ref)), ...Object.fromEntries(notTold.map((t) => [t, -1])) } as Marks;
        await act();
        await inSpool(ref, id, folders).catch((err: Error) => {
          throw new Error(`${what}: ${err.message}`);
        });
        await targets.allShow(ref, want, since);
      };

      // Read, to have an Old message to mark unread.
      await step('read', () => inFolder(mc, 'INBOX', (cl) => cl.messageFlagsAdd(u(a), ['\\Seen'], { uid: true })), a, ['Old'], { new: 4, old: 1, urgent: 0 });
      await step('unread', () => inFolder(mc, 'INBOX', (cl) => cl.messageFlagsRemove(u(a), ['\\Seen'], { uid: true })), a, ['INBOX'], { new: 5, old: 0, urgent: 0 });
      // Flagged: Urgent. new counts urgent messages too (as Asterisk publishes), so MWIUpdate and
      // MailboxStateChange (new and old only) have nothing new to say; SIP says the urgent share.
      await step('flag', () => inFolder(mc, 'INBOX', (cl) => cl.messageFlagsAdd(u(b), ['\\Flagged'], { uid: true })), b, ['Urgent'], { new: 5, old: 0, urgent: 1 }, ['phone', 'remote']);
      assert.deepEqual((await targets.sipShown(ref)).at(-1)?.lines, ['Messages-Waiting: yes', 'Voice-Message: 5/0 (1/0)']);
      await step('unflag', () => inFolder(mc, 'INBOX', (cl) => cl.messageFlagsRemove(u(b), ['\\Flagged'], { uid: true })), b, ['INBOX'], { new: 5, old: 0, urgent: 0 }, ['phone', 'remote']);
      assert.deepEqual((await targets.sipShown(ref)).at(-1)?.lines, ['Messages-Waiting: yes', 'Voice-Message: 5/0 (0/0)']);

      await mc.client.mailboxCreate('Trash').catch(() => undefined);
      await step('moved to Trash', () => inFolder(mc, 'INBOX', (cl) => cl.messageMove(u(a), 'Trash', { uid: true })), a, ['Deleted'], { new: 4, old: 0, urgent: 0 });
      await mc.client.mailboxCreate('Archive').catch(() => undefined);
      await step('moved to an unmapped folder', () => inFolder(mc, 'INBOX', (cl) => cl.messageMove(u(b), 'Archive', { uid: true })), b, ['Deleted'], { new: 3, old: 0, urgent: 0 });
      // \Deleted alone (a client that hides deleted mail and expunges later).
      await step('flagged \\Deleted, not expunged', () => inFolder(mc, 'INBOX', (cl) => cl.messageFlagsAdd(u(c), ['\\Deleted'], { uid: true })), c, ['Deleted'], { new: 2, old: 0, urgent: 0 });
      // \Deleted and UID EXPUNGE.
      await step('expunged', () => inFolder(mc, 'INBOX', (cl) => cl.messageDelete(u(d), { uid: true })), d, ['Deleted'], { new: 1, old: 0, urgent: 0 });

      assert.deepEqual(await layout(ref), { INBOX: [e], Deleted: [a, b, c, d] }, 'the spool at the end');
      // The copies the user moved away are the user's: left alone.
      const kept = await mc.list(['Trash', 'Archive']);
      assert.deepEqual(kept.map((x) => [x.folder, x.messageId]).sort(), [['Archive', mid(ref, b)], ['Trash', mid(ref, a)]]);
      // Each value reached the phone server once per change, in order, nothing in between.
      const seq = targets.phoneShown(ref);
      const from = seq.findIndex((x) => x.new === 5 && x.old === 0);
      assert.deepEqual(seq.slice(from), [
        { new: 5, old: 0 }, // five left
        { new: 4, old: 1 }, // read
        { new: 5, old: 0 }, // unread (flag and unflag change only the urgent share: not told)
        { new: 4, old: 0 }, // Trash
        { new: 3, old: 0 }, // Archive
        { new: 2, old: 0 }, // \Deleted
        { new: 1, old: 0 }, // expunged
      ]);
      // The newer Asterisk got the same sequence, each as exactly MailboxStateChange's four headers.
      assert.deepEqual(targets.remoteSent(ref).slice(targets.remoteSent(ref).findIndex((x) => x.new === 5)), seq.slice(from));
      for (const act of targets.remote.received.filter((x) => x.action === 'MailboxStateChange')) {
        assert.deepEqual(act.headers.filter(([k]) => k !== 'ActionID'), [['Action', 'MailboxStateChange'], ['Mailbox', act.get('Mailbox')], ['NewMessages', act.get('NewMessages')], ['OldMessages', act.get('OldMessages')], ['EntityID', VMBRIDGE_ENTITY_ID]]);
      }
    });

    it('changed on both sides between syncs (phone files it in Work, mail client marks it read): the phone wins, and every target shows that', async () => {
      const ref = box('4001');
      const mc = await h.mail(ref);
      const keep = await leaveVoicemail(spoolDir, ref, { callerid: '"Stays new" <5550200>', duration: 2 });
      const both = await leaveVoicemail(spoolDir, ref, { callerid: '"Both" <5550201>', duration: 2 });
      await targets.allShow(ref, { new: 2, old: 0, urgent: 0 });
      const email = await emailOf(mc, ref, both.msgId, 'INBOX');
      await emailOf(mc, ref, keep.msgId, 'INBOX');

      await stop();
      const since = await targets.marks(ref);
      const num = (await listFolder(spoolDir, ref, 'INBOX')).find((m) => m.msgId === both.msgId)!.msgnum;
      await moveMessage(spoolDir, ref, 'INBOX', num, 'Work');
      await inFolder(mc, 'INBOX', (cl) => cl.messageFlagsAdd(String(email.uid), ['\\Seen'], { uid: true }));
      await start(h.settings);

      // Had the mail client won, the voicemail would be in Old and the counts 1/1.
      await emailOf(mc, ref, both.msgId, 'Work');
      await targets.allShow(ref, { new: 1, old: 0, urgent: 0 }, since);
      assert.deepEqual(await layout(ref), { INBOX: [keep.msgId], Work: [both.msgId] });
      for (const [name, seq] of [['phone', targets.phoneShown(ref)], ['remote', targets.remoteShown(ref)], ['proxy', await targets.sipShown(ref)]] as const) {
        assert.ok(!seq.some((s) => s.old > 0), `${name} was never told the mail client's version (an old message): ${JSON.stringify(seq)}`);
      }
    });
  });

  describe('ami-mailboxstate against an Asterisk that has MailboxStateChange', () => {
    it('is accepted and published there; its refusals are the ones in Asterisk\'s source; CR/LF never reaches it', async () => {
      const target = h.settings.mwi.targets.find((t): t is Extract<MwiTarget, { kind: 'ami-mailboxstate' }> => t.kind === 'ami-mailboxstate')!;
      const ref = box('4002');
      // The remote Asterisk has no such mailbox of its own: Waiting (its own has_voicemail) is 0
      // even with new messages, while the state it keeps and tells phones is the published one.
      const sender = createSender(target, { log: h.log, reconnectMaxMs: 1_000 });
      try {
        const before = targets.remoteEvents.length;
        await sender.publish(ref, { new: 3, old: 2, urgent: 1 });
        await waitFor('MessageWaiting 3/2 on the remote Asterisk', () => targets.remoteEvents.length > before, WAIT);
        const ev = targets.remoteEvents.at(-1)!;
        assert.deepEqual(ev.headers.filter(([k]) => k !== 'Privilege'), [['Event', 'MessageWaiting'], ['Mailbox', '4002@default'], ['Waiting', '0'], ['New', '3'], ['Old', '2']]);
        assert.deepEqual(targets.remote.mwiState('4002@default'), { new: 3, old: 2 });

        // Hostile names and values: refused before a byte is sent, not even a login.
        const sent = targets.remote.received.length;
        for (const bad of [box('4002\r\nAction: Logoff'), box('4002\nNewMessages: 99'), { context: 'default\r\nX: y', mailbox: '4002' }, box('4002,4001')]) {
          await assert.rejects(sender.publish(bad, { new: 1, old: 0, urgent: 0 }), `accepted ${JSON.stringify(bad)}`);
        }
        await assert.rejects(sender.publish(ref, { new: -1, old: 0, urgent: 0 }));
        assert.equal(targets.remote.received.length, sent, 'nothing reached the remote Asterisk');
        // And an entity ID with CR/LF never gets past the settings.
        assert.doesNotThrow(() => settingsSchema.shape.mwi.parse({ targets: [target] }));
        assert.throws(() => settingsSchema.shape.mwi.parse({ targets: [{ ...target, entityId: `${VMBRIDGE_ENTITY_ID}\r\nAction: Logoff` }] }), /entityId/);
      } finally {
        await sender.close();
      }

      // A target configured with the remote Asterisk's own entity ID: Asterisk refuses, the
      // sender fails (the job would be retried), and nothing is published there.
      const self = createSender({ ...target, entityId: REMOTE_ENTITY_ID }, { log: h.log, reconnectMaxMs: 1_000 });
      try {
        const events = targets.remoteEvents.length;
        await assert.rejects(self.publish(ref, { new: 9, old: 9, urgent: 0 }), (err: unknown) => err instanceof AmiActionError && /Entity ID is ourself/.test(err.message));
        await sleep(300);
        assert.equal(targets.remoteEvents.length, events, 'no MessageWaiting for a refused update');
        assert.deepEqual(targets.remote.mwiState('4002@default'), { new: 3, old: 2 });
      } finally {
        await self.close();
      }

      // The other refusals, in the order the source checks them.
      const raw = new AmiClient({ host: '127.0.0.1', port: targets.remote.port, username: 'bridge', secret: 'bridge', events: false, reconnect: false });
      await raw.connect();
      try {
        const refused = async (headers: Record<string, string>, message: string): Promise<void> => {
          await assert.rejects(raw.action('MailboxStateChange', headers), (err: unknown) => err instanceof AmiActionError && err.message.includes(message), `${JSON.stringify(headers)} -> ${message}`);
        };
        await refused({ Mailbox: '4002@default', NewMessages: '1', EntityID: VMBRIDGE_ENTITY_ID }, 'Missing required parameters');
        await refused({ Mailbox: '4002@default', NewMessages: '1', OldMessages: '0' }, 'Missing or invalid entity ID');
        await refused({ Mailbox: '4002@default', NewMessages: '1', OldMessages: '0', EntityID: '02:00:00' }, 'Missing or invalid entity ID');
        await refused({ Mailbox: '4002@default', NewMessages: 'one', OldMessages: '0', EntityID: VMBRIDGE_ENTITY_ID }, 'Invalid mailbox counts');
        await refused({ Mailbox: '4002@default', NewMessages: '1', OldMessages: '0', EntityID: REMOTE_ENTITY_ID.toUpperCase() }, 'Entity ID is ourself');
        const ok = await raw.action('MailboxStateChange', { Mailbox: '4002@default', NewMessages: '0', OldMessages: '0', EntityID: VMBRIDGE_ENTITY_ID });
        assert.equal(ok.message, 'Updated mailbox state');
        await waitFor('0/0 on the remote Asterisk', () => targets.remote.mwiState('4002@default')?.new === 0, WAIT);
      } finally {
        await raw.close();
      }
    });
  });

  describe('an AMI MessageWaiting from the owning Asterisk drives a reconcile', () => {
    before(async () => {
      // No spool watcher and no sweep: only the AMI event can make vmbridge look at the spool.
      await start({
        ...h.settings,
        spool: { ...h.settings.spool, watch: false, sweepSeconds: 0 },
        asterisk: { ami: { host: '127.0.0.1', port: targets.owner.port, username: 'bridge', secret: 'bridge', useVoicemailActions: true, secure: false, tls: { rejectUnauthorized: true } } },
      });
    });
    after(async () => {
      await stop();
    });

    it('a voicemail the service cannot see arrives in IMAP and at every target once Asterisk publishes MessageWaiting', async () => {
      const ref = box('4002');
      const mc = await h.mail(ref);
      // The start-up reconcile has run (it publishes the truth once), and the event session is up.
      await targets.allShow(ref, { new: 0, old: 0, urgent: 0 });
      // Its session's ActionIDs start with `vmbridge_`; the MWI sender's with `vmb_mwi_`.
      await waitFor('the service logged in to the owner with events on', () => targets.owner.received.some((a) => a.action === 'Login' && a.get('ActionID').startsWith('vmbridge_') && a.get('Events') === 'on'), WAIT);
      const since = await targets.marks(ref);

      const left = await leaveVoicemail(spoolDir, ref, { callerid: '"Unseen" <5550300>', duration: 4 });
      await sleep(2_000);
      assert.equal((await mc.list(['INBOX'])).filter((x) => x.messageId === mid(ref, left.msgId)).length, 0, 'nothing noticed the voicemail by itself');
      assert.deepEqual(await targets.marks(ref), since, 'no target was told anything');

      // app_voicemail publishes MWI after a message is left (queue_mwi_event): MessageWaiting 1/0.
      assert.equal(await targets.owner.emitMessageWaiting(ref, { force: true }), true);
      await emailOf(mc, ref, left.msgId, 'INBOX');
      await targets.allShow(ref, { new: 1, old: 0, urgent: 0 }, since);
      assert.deepEqual(await layout(ref), { INBOX: [left.msgId] });
    });
  });
});
