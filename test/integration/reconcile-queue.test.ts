/**
 * The reconcile queue's promises, on real Redis, Dovecot and spool: a burst of requests becomes
 * one job; a request made while the mailbox is being reconciled becomes exactly one more run after
 * it; and two services on one Redis (as two worker processes would be) never reconcile one
 * mailbox at the same time.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { CLAIM_LOST_MS } from '../../src/queue/coalesce.js';
import { ReconcileRequester, lockKey, pendingKey } from '../../src/queue/reconcile-queue.js';
import { mailboxKey, type MailboxRef } from '../../src/spool/types.js';
import { leaveVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const A: MailboxRef = { context: 'default', mailbox: '7100' };
const B: MailboxRef = { context: 'default', mailbox: '7101' };
const C: MailboxRef = { context: 'default', mailbox: '7102' };

/** One finished reconcile: which service ran it, and when it held the mailbox (performance.now() ms). */
interface Run {
  readonly service: string;
  readonly mailbox: string;
  readonly start: number;
  readonly end: number;
}

describe('reconcile queue: coalescing and one reconcile per mailbox at a time', { timeout: 240_000 }, () => {
  let h: Harness;
  let redis: Redis;
  let requester: ReconcileRequester;
  const runs: Run[] = [];
  const record = (service: string) => (ref: MailboxRef, _result: unknown, ms: number): void => {
    // Called with the mailbox's lock still held; `ms` counts from the moment the lock was taken.
    const end = performance.now();
    runs.push({ service, mailbox: mailboxKey(ref), start: end - ms, end });
  };

  after(async () => {
    await requester?.close();
    redis?.disconnect();
    await h?.stop();
  });

  const drained = async (): Promise<void> => {
    await waitFor('an empty reconcile queue', async () => {
      return (await requester.unfinished()) === 0;
    }, { timeoutMs: 60_000 });
  };

  it('a burst of 100 requests queues one job; a request during a running reconcile queues exactly one more', async () => {
    h = await startHarness({
      boxes: [{ mailbox: A.mailbox }, { mailbox: B.mailbox }, { mailbox: C.mailbox }],
      settings: (b) => ({
        ...b,
        spool: { ...(b.spool as object), watch: false, sweepSeconds: 0 },
        imap: { ...(b.imap as object), idle: { maxAccounts: 0 } },
        alerts: { quotaCheckSeconds: 0 },
      }),
    });
    redis = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    const prefix = h.settings.redis.prefix;
    requester = new ReconcileRequester(redis, prefix);

    // No worker yet: nothing can clear the pending key, so the outcome is exact.
    const answers = await Promise.all(Array.from({ length: 100 }, () => requester.request(A, 'burst')));
    assert.equal(answers.filter(Boolean).length, 1, 'one of 100 requests queued a job');
    assert.equal(await requester.queue.getWaitingCount(), 1);
    assert.equal(await redis.get(pendingKey(prefix, A)), 'event:queued:burst', 'the claim was confirmed once its job was added');

    // A claim whose job was never added (its process was killed between the two steps) does not
    // swallow requests until the key expires: after CLAIM_LOST_MS the next request queues a job.
    const [sec, usec] = await redis.time();
    const redisNow = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    await redis.set(pendingKey(prefix, B), `event:claimed@${redisNow - 1_000}:watcher`, 'PX', 60_000);
    assert.equal(await requester.request(B, 'watcher'), false, 'a claim made a moment ago is counted on');
    await redis.set(pendingKey(prefix, B), `event:claimed@${redisNow - CLAIM_LOST_MS - 5_000}:watcher`, 'PX', 60_000);
    assert.equal(await requester.request(B, 'watcher'), true, 'a claim older than CLAIM_LOST_MS with no job is taken over');
    assert.equal(await requester.queue.getWaitingCount(), 2);

    // When no later request comes, the request the lost claim covered looks again once the claim
    // counts as lost, and queues the job itself; one whose claim was confirmed meanwhile does not.
    const [sec2, usec2] = await redis.time();
    const redisNow2 = Number(sec2) * 1000 + Math.floor(Number(usec2) / 1000);
    await redis.set(pendingKey(prefix, A), `event:claimed@${redisNow2 - 2_000}:watcher`, 'PX', 60_000);
    assert.equal(await requester.request(A, 'watcher'), false, 'a claim made a moment ago is counted on');
    await redis.set(pendingKey(prefix, A), 'event:queued:watcher', 'KEEPTTL');
    await redis.set(pendingKey(prefix, C), `event:claimed@${redisNow2 - 1_000}:watcher`, 'PX', 60_000);
    assert.equal(await requester.request(C, 'watcher'), false, 'a claim made a moment ago is counted on');
    assert.equal(await requester.queue.getWaitingCount(), 2, 'nothing queued before the claims count as lost');
    await waitFor('the covered request to queue the lost claim\'s job', async () => (await requester.queue.getWaitingCount()) === 3 || undefined, { timeoutMs: CLAIM_LOST_MS + 15_000, intervalMs: 100 });
    await new Promise((r) => setTimeout(r, 1_500)); // A's follow-up was due a second before C's
    assert.equal(await requester.queue.getWaitingCount(), 3, 'the follow-up of a confirmed claim queued nothing');
    assert.equal(await redis.get(pendingKey(prefix, C)), 'event:queued:watcher');
    assert.deepEqual((await requester.queue.getWaiting()).map((j) => j.name).sort(), [mailboxKey(A), mailboxKey(B), mailboxKey(C)].sort());

    await h.startService({ onReconciled: record('one') });
    await drained();
    const mc = await h.mail(A);

    // A reconcile with work enough to be caught running.
    const wave = [];
    for (let i = 0; i < 80; i++) wave.push(await leaveVoicemail(h.spoolDir, A, { callerid: `"Wave ${i}" <${i}>`, duration: 2 }));
    const before = runs.length;
    assert.equal(await requester.request(A, 'wave'), true);
    // Running: the worker holds the lock and has cleared the pending key.
    await waitFor('the wave reconcile to be running', async () => (await redis.get(lockKey(prefix, A))) !== null && (await redis.exists(pendingKey(prefix, A))) === 0, { intervalMs: 2 });
    const late = await leaveVoicemail(h.spoolDir, A, { callerid: '"Late" <99>', duration: 2 });
    const asked = performance.now();
    const lateAnswers = [];
    for (let i = 0; i < 20; i++) lateAnswers.push(await requester.request(A, 'late'));
    const stillRunning = (await redis.get(lockKey(prefix, A))) !== null && runs.length === before;
    assert.ok(stillRunning, 'the wave reconcile ended before the late requests; the test proved nothing');
    assert.deepEqual(lateAnswers.map(Number), [1, ...Array<number>(19).fill(0)], 'the first late request queued a job, the other 19 were covered by it');

    await drained();
    const after = runs.filter((r) => r.mailbox === mailboxKey(A) && r.end > asked);
    assert.equal(after.length, 2, `the running reconcile and exactly one more; got ${after.length}`);
    assert.equal(after.filter((r) => r.start > asked).length, 1, 'exactly one reconcile started after the late requests');
    const ids = new Set((await mc.list(['INBOX'])).map((e) => e.messageId));
    for (const v of [...wave, late]) assert.ok(ids.has(identityMessageId(A, v.msgId, 'vmbridge.test')), `${v.msgId} has its email`);
  });

  it('two services on one Redis, 40 forced jobs for two mailboxes in bursts: never two reconciles of a mailbox at once, every email once', async () => {
    await h.startService({ onReconciled: record('two') });
    await drained();
    runs.length = 0;
    const left = new Map<string, string[]>([[mailboxKey(A), []], [mailboxKey(B), []]]);
    for (let wave = 0; wave < 4; wave++) {
      for (let i = 0; i < 5; i++) {
        for (const ref of [A, B]) {
          const v = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Both ${wave}.${i}" <${i}>`, duration: 2 });
          left.get(mailboxKey(ref))!.push(v.msgId);
        }
      }
      // force: past the coalescing, so ten jobs per mailbox wait side by side and both services
      // (four slots each) take several at once; only the mailbox lock keeps them apart.
      await Promise.all([A, B].flatMap((ref) => Array.from({ length: 5 }, () => requester.request(ref, 'forced', { force: true }))));
      await drained();
    }
    await drained();

    assert.ok(runs.length >= 40, `40 forced jobs ran (${runs.length} reconciles)`);
    for (const service of ['one', 'two']) assert.ok(runs.some((r) => r.service === service), `service ${service} took jobs too`);
    for (const mailbox of left.keys()) {
      const mine = runs.filter((r) => r.mailbox === mailbox).sort((x, y) => x.start - y.start);
      for (let i = 1; i < mine.length; i++) {
        const [prev, next] = [mine[i - 1]!, mine[i]!];
        assert.ok(next.start >= prev.end, `${mailbox}: a reconcile by ${next.service} started ${(prev.end - next.start).toFixed(1)} ms before the one by ${prev.service} ended`);
      }
    }
    for (const ref of [A, B]) {
      const emails = (await (await h.mail(ref)).list(['INBOX'])).map((e) => e.messageId);
      for (const id of left.get(mailboxKey(ref))!) {
        assert.equal(emails.filter((m) => m === identityMessageId(ref, id, 'vmbridge.test')).length, 1, `${id} is in ${mailboxKey(ref)}'s INBOX once`);
      }
    }
  });
});
