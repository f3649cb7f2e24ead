/**
 * A restart publishes MWI only where the counts changed: the counts last published to each target
 * are kept in Redis, and the start-up pass over every mailbox compares with them. So stopping and
 * starting vmbridge sends no VoicemailRefresh or MWIUpdate for a mailbox whose voicemail did not
 * change meanwhile (a restart must not make every phone's lamp blink), while a mailbox that did
 * change gets its new counts. Two AMI targets on the AMI test server: `owner` (the Asterisk that
 * owns the spool, VoicemailRefresh) and `phone` (res_mwi_external, MWIUpdate).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sameCounts, type MwiCounts } from '../../src/mwi/counts.js';
import { mwiQueueName, MwiStore } from '../../src/queue/mwi-queue.js';
import type { Service } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { startAmiServer, type AmiTestServer, type ReceivedAction } from '../support/ami-server.js';
import { hearMessage, leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const WAIT = { timeoutMs: 60_000, intervalMs: 100 };
const TARGETS = ['owner', 'phone'] as const;
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const counts = (n: number, o: number): MwiCounts => ({ new: n, old: o, urgent: 0 });

describe('MWI after a restart: only where the counts changed', { timeout: 240_000 }, () => {
  const unread = box('7400');
  const heard = box('7401');
  const changing = box('7402');
  let spoolDir: string;
  let owner: AmiTestServer;
  let phone: AmiTestServer;
  let h: Harness;
  let redis: Redis;
  let store: MwiStore;
  let queues: Queue[];

  before(async () => {
    spoolDir = await mkdtemp(join(tmpdir(), 'vmb-mwi-restart-'));
    await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
    owner = await startAmiServer({ spoolDir, profile: 'voicemail' });
    phone = await startAmiServer({ spoolDir, profile: 'mwiext' });
    const ami = (name: string, kind: 'ami-refresh' | 'ami-mwiupdate', port: number) => ({ name, kind, host: '127.0.0.1', port, username: 'bridge', secret: 'bridge', timeoutSeconds: 5 });
    h = await startHarness({
      boxes: [{ mailbox: unread.mailbox }, { mailbox: heard.mailbox }, { mailbox: changing.mailbox }],
      settings: (base) => ({
        ...base,
        spool: { ...(base.spool as object), dir: spoolDir },
        mwi: { targets: [ami('owner', 'ami-refresh', owner.port), ami('phone', 'ami-mwiupdate', phone.port)], retrySeconds: 1, retryMaxSeconds: 2 },
      }),
    });
    redis = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    store = new MwiStore(redis, h.settings.redis.prefix);
    queues = TARGETS.map((t) => new Queue(mwiQueueName(t), { connection: redis, prefix: h.settings.redis.prefix }));
  });
  after(async () => {
    for (const q of queues ?? []) await q.close();
    redis?.disconnect();
    await h?.stop();
    await owner?.close();
    await phone?.close();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  const isFor = (a: ReceivedAction, ref: MailboxRef): boolean =>
    a.action === 'VoicemailRefresh' ? a.get('Context') === ref.context && a.get('Mailbox') === ref.mailbox : a.action === 'MWIUpdate' && a.get('Mailbox') === `${ref.mailbox}@${ref.context}`;
  /** The MWI actions each server got for `ref` since `from` (counts of received actions). */
  const sentSince = (from: { owner: number; phone: number }, ref: MailboxRef): ReceivedAction[] => [
    ...owner.received.slice(from.owner).filter((a) => isFor(a, ref)),
    ...phone.received.slice(from.phone).filter((a) => isFor(a, ref)),
  ];
  const mark = (): { owner: number; phone: number } => ({ owner: owner.received.length, phone: phone.received.length });

  async function publishedEverywhere(ref: MailboxRef, want: MwiCounts): Promise<void> {
    for (const target of TARGETS) {
      await waitFor(`${target} told ${JSON.stringify(want)} for ${ref.mailbox}`, async () => (sameCounts(await store.published(target, ref), want) ? true : undefined), WAIT);
    }
  }

  /**
   * Until nothing more can be sent: every reconcile of the start-up pass is done (it was queued
   * before startService returned, and a job ends after its MWI jobs are queued), then every MWI
   * job (a job ends after its action was answered).
   */
  async function settled(service: Service): Promise<void> {
    await waitFor('no reconcile left', async () => ((await service.requester.unfinished()) === 0 ? true : undefined), WAIT);
    await waitFor('no MWI job left', async () => {
      const left = await Promise.all(queues.map(async (q) => Object.values(await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).reduce((a, b) => a + b, 0)));
      return left.every((n) => n === 0) ? true : undefined;
    }, WAIT);
  }

  it('a second start on the same Redis sends nothing for unchanged mailboxes, and the new counts for a changed one', async () => {
    await leaveVoicemail(spoolDir, unread);
    await leaveVoicemail(spoolDir, unread);
    await leaveVoicemail(spoolDir, heard);
    await hearMessage(spoolDir, heard, 0);

    const first = await h.startService();
    await publishedEverywhere(unread, counts(2, 0));
    await publishedEverywhere(heard, counts(0, 1));
    await publishedEverywhere(changing, counts(0, 0));
    await settled(first);
    // The first start told every target about every mailbox: the second one has something to leave out.
    for (const ref of [unread, heard, changing]) assert.equal(sentSince({ owner: 0, phone: 0 }, ref).length, TARGETS.length, ref.mailbox);
    await first.close();

    // Voicemail left while vmbridge is down: only this mailbox differs from what was published.
    await leaveVoicemail(spoolDir, changing);
    const before = mark();
    const second = await h.startService();
    await publishedEverywhere(changing, counts(1, 0));
    await settled(second);

    assert.deepEqual(sentSince(before, unread).map((a) => a.action), [], 'nothing for the mailbox with unread voicemail');
    assert.deepEqual(sentSince(before, heard).map((a) => a.action), [], 'nothing for the mailbox with heard voicemail');
    assert.deepEqual(sentSince(before, changing).map((a) => a.action).sort(), ['MWIUpdate', 'VoicemailRefresh']);
    const update = phone.received.slice(before.phone).find((a) => isFor(a, changing));
    assert.deepEqual([update?.get('NewMessages'), update?.get('OldMessages')], ['1', '0']);
  });
});
