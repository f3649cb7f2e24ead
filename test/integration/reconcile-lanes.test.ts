/**
 * Interactive work first: a reconcile asked for by an event does not wait behind a backlog of
 * start-up or sweep reconciles, also for a mailbox whose background job is already queued. Real
 * Redis, Dovecot and spool; one reconcile at a time in each lane.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ReconcileRequester, pendingKey } from '../../src/queue/reconcile-queue.js';
import { mailboxKey, type MailboxRef } from '../../src/spool/types.js';
import { startHarness, type Harness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const BOXES = Array.from({ length: 30 }, (_, i) => String(7200 + i));
const ref = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });

describe('reconcile lanes: events before background passes', { timeout: 180_000 }, () => {
  let h: Harness;
  let redis: Redis;
  let requester: ReconcileRequester;
  after(async () => {
    await requester?.close();
    redis?.disconnect();
    await h?.stop();
  });

  it('pending keys: an event is not covered by a queued background job; a background request is covered by anything', async () => {
    h = await startHarness({
      boxes: BOXES.map((mailbox) => ({ mailbox })),
      settings: (b) => ({
        ...b,
        spool: { ...(b.spool as object), watch: false, sweepSeconds: 0 },
        imap: { ...(b.imap as object), idle: { maxAccounts: 0 } },
        sync: { ...(b.sync as object), concurrency: 1, backgroundConcurrency: 1, backgroundCalmConcurrency: 1 },
        alerts: { quotaCheckSeconds: 0 },
      }),
    });
    redis = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    const prefix = h.settings.redis.prefix;
    requester = new ReconcileRequester(redis, prefix);
    // No worker yet: the queue is exactly what the requests made.
    for (const m of BOXES) assert.equal(await requester.request(ref(m), 'sweep'), true);
    assert.equal(await requester.request(ref(BOXES[0]!), 'sweep'), false, 'a second background request is covered');
    assert.equal(await requester.request(ref(BOXES[29]!), 'watcher'), true, 'an event is not covered by a background job');
    assert.equal(await requester.request(ref(BOXES[29]!), 'notify'), false, 'a second event is covered by the first');
    assert.equal(await requester.request(ref(BOXES[29]!), 'start'), false, 'a background request is covered by an event job');
    assert.equal(await requester.request(ref(BOXES[28]!), 'push'), true);
    assert.equal(await redis.get(pendingKey(prefix, ref(BOXES[29]!))), 'event:queued:watcher', 'the key names the lane and reason of the job it stands for');
    assert.equal(await requester.queue.getWaitingCount(), 2, 'the event lane');
    assert.equal(await requester.background.getWaitingCount(), 30, 'the background lane');
  });

  it('the two event jobs are done while the 30 sweep jobs, and the start-up pass behind them, are still to do', async () => {
    const order: string[] = [];
    await h.startService({ onReconciled: (r) => void order.push(mailboxKey(r)) });
    await waitFor('every mailbox reconciled', () => BOXES.every((m) => order.includes(mailboxKey(ref(m)))) || undefined, { timeoutMs: 120_000, intervalMs: 200 });
    // One slot in each lane: the event worker takes both events at once while the background
    // worker works through its queue; in one queue they would come after all 30 sweep jobs.
    for (const m of [BOXES[29]!, BOXES[28]!]) {
      const at = order.indexOf(mailboxKey(ref(m)));
      assert.ok(at >= 0 && at < 6, `${m} reconciled as number ${at + 1}: ${order.slice(0, 8).join(' ')}`);
    }
    // The backlog keeps the order it was queued in.
    const sweepOrder = order.filter((k) => k !== mailboxKey(ref(BOXES[29]!)) && k !== mailboxKey(ref(BOXES[28]!))).slice(0, 3);
    assert.deepEqual(sweepOrder, BOXES.slice(0, 3).map((m) => mailboxKey(ref(m))));
  });
});
