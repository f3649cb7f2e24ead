/**
 * MWI publishing end to end, on real Dovecot and Redis, with three targets at once:
 *  - `owner`: an AMI server in the voicemail profile on the same spool (the Asterisk that owns it),
 *    which gets VoicemailRefresh and publishes MessageWaiting from its own count of the spool;
 *  - `phone`: an AMI server in the mwiext profile (an Asterisk phones register to), MWIUpdate;
 *  - `proxy`: a private Kamailio that checks Digest and logs every NOTIFY.
 * Voicemail is left, heard and deleted the way Asterisk does it (test/support/asterisk-spool.ts),
 * and the service notices through its spool watcher.
 *
 * The other mail-client actions, the ami-mailboxstate target against an Asterisk that has
 * MailboxStateChange, and MessageWaiting driving a reconcile are in mwi-actions.test.ts;
 * `vmbridge sync` publishing is in mwi-sync-cli.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { MwiTarget } from '../../src/config/schema.js';
import { mailboxStateChange } from '../../src/mwi/ami-actions.js';
import { AmiActionError, AmiClient, AmiUnsafeValueError, type AmiEvent } from '../../src/mwi/ami-client.js';
import type { MwiCounts } from '../../src/mwi/counts.js';
import { MwiPublisher } from '../../src/mwi/publisher.js';
import { createSender } from '../../src/mwi/targets.js';
import { mwiDesiredKey, mwiQueueName, MwiStore } from '../../src/queue/mwi-queue.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { startAmiServer, type AmiTestServer } from '../support/ami-server.js';
import { deleteMessage, hearMessage, leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { startSipPeer, type SipPeer } from '../support/sip-peer.js';
import { waitFor } from '../support/wait.js';

/**
 * How long the `phone` target stays down. A full minute, as an administrator restarting an
 * Asterisk would see it; the rest of the file takes well under a minute more.
 */
const OUTAGE_MS = 60_000;
const WAIT = { timeoutMs: 45_000, intervalMs: 100 };

const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
interface Shown {
  readonly new: number;
  readonly old: number;
}

describe('MWI to every target after each reconcile', { timeout: 300_000 }, () => {
  let spoolDir: string;
  let owner: AmiTestServer;
  let phone: AmiTestServer;
  let phonePort: number;
  let peer: SipPeer;
  let h: Harness;
  let service: Service;
  let listener: AmiClient;
  /** MessageWaiting events the owner published, in order. */
  const ownerEvents: AmiEvent[] = [];

  before(async () => {
    spoolDir = await mkdtemp(join(tmpdir(), 'vmb-mwi-spool-'));
    await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
    owner = await startAmiServer({ spoolDir, profile: 'voicemail' });
    phone = await startAmiServer({ spoolDir, profile: 'mwiext' });
    phonePort = phone.port;
    peer = await startSipPeer({ username: 'vmbridge' });
    const ami = (name: string, kind: 'ami-refresh' | 'ami-mwiupdate', port: number) => ({ name, kind, host: '127.0.0.1', port, username: 'bridge', secret: 'bridge', timeoutSeconds: 5 });
    h = await startHarness({
      boxes: [{ mailbox: '1000' }, { mailbox: '1001' }, { mailbox: '1002' }],
      settings: (base) => ({
        ...base,
        spool: { ...(base.spool as object), dir: spoolDir },
        mwi: {
          targets: [
            ami('owner', 'ami-refresh', owner.port),
            ami('phone', 'ami-mwiupdate', phone.port),
            { name: 'proxy', kind: 'sip-notify', host: peer.host, port: peer.port, toUri: 'sip:{mailbox}@vmbridge.test', fromUri: 'sip:vmbridge@vmbridge.test', username: peer.username, password: peer.password },
          ],
          retrySeconds: 1,
          retryMaxSeconds: 2,
          concurrency: 4,
        },
      }),
    });
    listener = new AmiClient({ host: '127.0.0.1', port: owner.port, username: 'bridge', secret: 'bridge', reconnect: false });
    listener.on('event', (e) => {
      if (e.event === 'MessageWaiting') ownerEvents.push(e);
    });
    await listener.connect();
    service = await h.startService();
  });
  after(async () => {
    await listener?.close();
    await h?.stop();
    await owner?.close();
    await phone?.close().catch(() => undefined);
    await peer?.stop();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  // --- what each target has been told, in order --------------------------------------------

  const refreshes = (ref: MailboxRef): number =>
    owner.received.filter((a) => a.action === 'VoicemailRefresh' && a.get('Context') === ref.context && a.get('Mailbox') === ref.mailbox).length;
  const ownerShown = (ref: MailboxRef): Shown[] =>
    ownerEvents.filter((e) => e.get('Mailbox') === `${ref.mailbox}@${ref.context}`).map((e) => ({ new: Number(e.get('New')), old: Number(e.get('Old')) }));
  const phoneShown = (server: AmiTestServer, ref: MailboxRef): Shown[] =>
    server.received
      .filter((a) => a.action === 'MWIUpdate' && a.get('Mailbox') === `${ref.mailbox}@${ref.context}`)
      .map((a) => ({ new: Number(a.get('NewMessages')), old: Number(a.get('OldMessages')) }));
  const sipShown = async (ref: MailboxRef): Promise<Array<Shown & { lines: string[] }>> =>
    (await peer.received())
      .filter((r) => r.answered === 200 && r.requestLine === `NOTIFY sip:${ref.mailbox}@vmbridge.test SIP/2.0`)
      .map((r) => {
        const lines = r.body.split('\r\n').filter(Boolean);
        const m = /^Voice-Message: (\d+)\/(\d+) \(\d+\/\d+\)$/.exec(lines.find((l) => l.startsWith('Voice-Message:')) ?? '');
        return { new: Number(m?.[1] ?? Number.NaN), old: Number(m?.[2] ?? Number.NaN), lines };
      });
  const last = <T>(list: readonly T[]): T | undefined => list[list.length - 1];
  const is = (s: Shown | undefined, want: Shown): boolean => s !== undefined && s.new === want.new && s.old === want.old;

  /** Waits until every target shows `want` for `ref`; the owner by its own MessageWaiting. */
  async function allShow(ref: MailboxRef, want: Shown, phoneServer: AmiTestServer = phone): Promise<void> {
    await waitFor(`phone MWIUpdate ${JSON.stringify(want)} for ${ref.mailbox}`, () => is(last(phoneShown(phoneServer, ref)), want), WAIT);
    await waitFor(`SIP NOTIFY ${JSON.stringify(want)} for ${ref.mailbox}`, async () => is(last(await sipShown(ref)), want), WAIT);
    await waitFor(`owner MessageWaiting ${JSON.stringify(want)} for ${ref.mailbox}`, () => is(last(ownerShown(ref)), want), WAIT);
  }

  it('publishes a new voicemail, then heard, then deleted, to every target', async () => {
    const ref = box('1000');
    // The first reconcile of the empty mailboxes tells every target the truth once: nothing.
    await waitFor('initial 0/0 on the phone server', () => is(last(phoneShown(phone, ref)), { new: 0, old: 0 }), WAIT);

    await leaveVoicemail(spoolDir, ref);
    await allShow(ref, { new: 1, old: 0 });
    assert.ok(refreshes(ref) >= 1);
    // VoicemailRefresh names exactly this mailbox: no context-wide or server-wide refresh.
    for (const a of owner.received.filter((x) => x.action === 'VoicemailRefresh')) {
      assert.equal(a.get('Context'), 'default');
      assert.match(a.get('Mailbox'), /^100[0-2]$/);
    }
    const lit = last(await sipShown(ref));
    assert.deepEqual(lit?.lines, ['Messages-Waiting: yes', 'Voice-Message: 1/0 (0/0)']);

    await hearMessage(spoolDir, ref, 0);
    await allShow(ref, { new: 0, old: 1 });
    assert.deepEqual(last(await sipShown(ref))?.lines, ['Messages-Waiting: no', 'Voice-Message: 0/1 (0/0)']);

    await deleteMessage(spoolDir, ref, 'Old', 0);
    await allShow(ref, { new: 0, old: 0 });
    assert.deepEqual(last(await sipShown(ref))?.lines, ['Messages-Waiting: no', 'Voice-Message: 0/0 (0/0)']);

    // Read back from the phone server itself.
    const reader = new AmiClient({ host: '127.0.0.1', port: phone.port, username: 'bridge', secret: 'bridge', events: false, reconnect: false });
    await reader.connect();
    try {
      const got = await reader.action('MWIGet', { Mailbox: '1000@default' }, { list: true });
      assert.deepEqual(got.events.map((e) => [e.get('Mailbox'), e.get('NewMessages'), e.get('OldMessages')]), [['1000@default', '0', '0']]);
    } finally {
      await reader.close();
    }
    // Publish only when changed: no target was told the same counts twice in a row.
    for (const seq of [phoneShown(phone, ref), await sipShown(ref)]) {
      for (let i = 1; i < seq.length; i++) assert.ok(!is(seq[i], seq[i - 1]!), `repeated ${JSON.stringify(seq[i])}`);
    }
  });

  it('a burst of 20 new voicemails reaches each target as a rising sequence ending at 20', async () => {
    const ref = box('1001');
    for (let i = 0; i < 20; i++) await leaveVoicemail(spoolDir, ref, { callerid: `"Burst ${i}" <5550${String(i).padStart(3, '0')}>` });
    await allShow(ref, { new: 20, old: 0 });
    const sequences: Record<string, Shown[]> = {
      phone: phoneShown(phone, ref),
      proxy: await sipShown(ref),
      owner: ownerShown(ref),
    };
    for (const [target, seq] of Object.entries(sequences)) {
      // The light never goes back: every value is above the one before (no N -> M -> N), all
      // old counts stay 0, and the last is exact.
      for (let i = 1; i < seq.length; i++) {
        assert.ok(seq[i]!.new > seq[i - 1]!.new, `${target}: ${JSON.stringify(seq.map((s) => s.new))} goes back or repeats`);
      }
      assert.ok(seq.every((s) => s.old === 0), `${target}: ${JSON.stringify(seq)}`);
      assert.ok(is(last(seq), { new: 20, old: 0 }), `${target}: ${JSON.stringify(seq)}`);
      // Bursts coalesce: fewer publications than changes is expected, more never.
      assert.ok(seq.length <= 21, `${target}: ${seq.length} publications`);
    }
  });

  it('a target that is down for a minute delays no other, and gets the latest counts when back', async () => {
    const ref = box('1002');
    await waitFor('initial 0/0 for 1002 on the phone server', () => is(last(phoneShown(phone, ref)), { new: 0, old: 0 }), WAIT);
    const downAt = Date.now();
    await phone.close();

    // While it is down, the owner and the SIP proxy get every change.
    await leaveVoicemail(spoolDir, ref);
    await waitFor('SIP 1/0 for 1002 while the phone server is down', async () => is(last(await sipShown(ref)), { new: 1, old: 0 }), WAIT);
    await waitFor('owner 1/0 for 1002 while the phone server is down', () => is(last(ownerShown(ref)), { new: 1, old: 0 }), WAIT);
    await leaveVoicemail(spoolDir, ref);
    await hearMessage(spoolDir, ref, 0);
    await waitFor('SIP 1/1 for 1002 while the phone server is down', async () => is(last(await sipShown(ref)), { new: 1, old: 1 }), WAIT);
    await waitFor('owner 1/1 for 1002 while the phone server is down', () => is(last(ownerShown(ref)), { new: 1, old: 1 }), WAIT);
    assert.ok(Date.now() - downAt < OUTAGE_MS, 'the other targets were served during the outage');
    // Three changes while the phone server is down wait as one job (in its retry back-off), not three.
    const queue = new Queue(mwiQueueName('phone'), { connection: { url: h.redisUrl }, prefix: h.settings.redis.prefix });
    try {
      const jobs = (await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized'])).filter((j) => j.name === '1002@default');
      assert.equal(jobs.length, 1, JSON.stringify(jobs.map((j) => j.id)));
    } finally {
      await queue.close();
    }

    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
    phone = await startAmiServer({ spoolDir, profile: 'mwiext', port: phonePort });
    await waitFor('phone server back: 1/1 for 1002', () => is(last(phoneShown(phone, ref)), { new: 1, old: 1 }), { timeoutMs: 60_000, intervalMs: 200 });
    // Only the latest value is sent on return: never the stale 1/0 of the outage.
    assert.deepEqual(phoneShown(phone, ref), [{ new: 1, old: 1 }]);
    // Nothing else changed meanwhile, so nothing else is sent.
    assert.deepEqual(phone.received.filter((a) => a.action === 'MWIUpdate').map((a) => a.get('Mailbox')), ['1002@default']);
  });

  it('mail-client actions (read, filed, deleted) reach the spool and then every target', async () => {
    const ref = box('1000');
    const mc = await h.mail(ref);
    const firstPhone = phoneShown(phone, ref).length;
    for (let i = 0; i < 3; i++) await leaveVoicemail(spoolDir, ref, { callerid: `"Mail ${i}" <${300 + i}>`, duration: 3 });
    await allShow(ref, { new: 3, old: 0 });
    const emails = await waitFor('three voicemail emails', async () => {
      const all = (await mc.list(['INBOX'])).filter((e) => e.messageId.endsWith('@vmbridge.test>'));
      return all.length === 3 ? all : undefined;
    }, WAIT);
    const [a, b] = emails;

    // Read in the mail client: the voicemail is heard, the light counts it as old.
    let lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageFlagsAdd(String(a!.uid), ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
    await allShow(ref, { new: 2, old: 1 });

    // Filed in Work: no longer new.
    await mc.client.mailboxCreate('Work').catch(() => undefined);
    lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageMove(String(b!.uid), 'Work', { uid: true });
    } finally {
      lock.release();
    }
    await allShow(ref, { new: 1, old: 1 });

    // Deleted in the mail client: gone from the phone too.
    lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageDelete(String(a!.uid), { uid: true });
    } finally {
      lock.release();
    }
    await allShow(ref, { new: 1, old: 0 });

    // Each value once, in order: no transient value reached the phone server.
    // (Leaving the three may show 1/0 and 2/0 first: each was a real state.)
    const seq = phoneShown(phone, ref).slice(firstPhone);
    assert.deepEqual(seq.slice(seq.findIndex((x) => is(x, { new: 3, old: 0 }))), [{ new: 3, old: 0 }, { new: 2, old: 1 }, { new: 1, old: 1 }, { new: 1, old: 0 }]);
  });

  it('refuses a mailbox or context with CR, LF or a comma before anything reaches a target', async () => {
    const redis = new Redis(h.redisUrl);
    const publisher = new MwiPublisher({ redis, prefix: h.settings.redis.prefix, targets: h.settings.mwi.targets.map((t) => t.name), store: new MwiStore(redis, h.settings.redis.prefix), log: h.log });
    const senders = h.settings.mwi.targets.map((t: MwiTarget) => createSender(t, { log: h.log, reconnectMaxMs: 1_000 }));
    const before = { owner: owner.received.length, phone: phone.received.length, sip: (await peer.received()).length };
    const counts: MwiCounts = { new: 1, old: 0, urgent: 0 };
    const hostile: MailboxRef[] = [
      { context: 'default', mailbox: '1000\r\nAction: Logoff' },
      { context: 'default', mailbox: '1000\nNewMessages: 99' },
      { context: 'default', mailbox: '1000,1001' },
      { context: 'default\r\nAction: Logoff', mailbox: '1000' },
      { context: 'def,ault', mailbox: '1000' },
    ];
    try {
      for (const ref of hostile) {
        await assert.rejects(publisher.publish(ref, counts), `publisher accepted ${JSON.stringify(ref)}`);
        for (const s of senders) await assert.rejects(s.publish(ref, counts), `${s.name} accepted ${JSON.stringify(ref)}`);
      }
      await assert.rejects(publisher.publish(box('1000'), { new: -1, old: 0, urgent: 0 }));
      await assert.rejects(publisher.publish(box('1000'), { new: 1, old: 0.5, urgent: 0 }));
      await new Promise((r) => setTimeout(r, 1_000));
      assert.deepEqual({ owner: owner.received.length, phone: phone.received.length, sip: (await peer.received()).length }, before, 'nothing reached any server');
      const fields = await redis.hkeys(mwiDesiredKey(h.settings.redis.prefix));
      assert.ok(fields.every((f) => /^default:100[0-2]$/.test(f)), JSON.stringify(fields));
    } finally {
      for (const s of senders) await s.close();
      await publisher.close();
      redis.disconnect();
    }
    assert.ok(service);
  });

  it('MailboxStateChange (ami-mailboxstate) sends exactly its four headers, and refuses unsafe ones', async () => {
    const client = new AmiClient({ host: '127.0.0.1', port: owner.port, username: 'bridge', secret: 'bridge', events: false, reconnect: false });
    await client.connect();
    try {
      const sent = owner.received.length;
      // The captured Asterisk is 22.10.1, older than the action (22.13): it answers unknown command.
      // (A newer one accepting it: the opt-in server mode, in mwi-actions.test.ts.)
      await assert.rejects(mailboxStateChange(client, box('1000'), { new: 2, old: 1 }, '02:00:00:00:00:01'), (err: unknown) => err instanceof AmiActionError && /Invalid\/unknown command/.test(err.message));
      const got = owner.received.slice(sent);
      assert.deepEqual(got.map((a) => a.headers.filter(([k]) => k !== 'ActionID')), [[['Action', 'MailboxStateChange'], ['Mailbox', '1000@default'], ['NewMessages', '2'], ['OldMessages', '1'], ['EntityID', '02:00:00:00:00:01']]]);
      const before = owner.received.length;
      await assert.rejects(mailboxStateChange(client, box('1000'), { new: 1, old: 0 }, '02:00:00:00:00:01\r\nAction: Logoff'), AmiUnsafeValueError);
      await assert.rejects(mailboxStateChange(client, { context: 'default', mailbox: '1000,1001' }, { new: 1, old: 0 }, '02:00:00:00:00:01'));
      await assert.rejects(mailboxStateChange(client, box('1000'), { new: -1, old: 0 }, '02:00:00:00:00:01'), AmiUnsafeValueError);
      assert.equal(owner.received.length, before, 'nothing sent');
    } finally {
      await client.close();
    }
  });
});
